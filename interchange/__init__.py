"""Interchange platform plumbing: settings, secrets, HTTP, store, CLI, local stack.

Nothing in this package knows about a particular source or business rule; the
layers (`system_apis`, `process_apis`, `experience_apis`) build on it.
"""
