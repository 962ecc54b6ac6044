"""System APIs: one package per source system.

Each ``system_apis/<source>/`` package owns everything needed to talk to that one
source - protocol, auth (secrets read from Vault at request time), pagination, rate
limits, source-shaped pydantic models and schema-drift fingerprints - and nothing
else: no business rules, no canonical model, no hub store.

A source package imports only :mod:`interchange` (and third-party libraries).
Sources never import each other: every source is a spoke into the hub, connected
once, and the process layer is the only place where sources meet.
"""
