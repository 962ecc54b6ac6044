"""Deployable Prefect flows: thin wiring of the layers, one module per deployment."""
