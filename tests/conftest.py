"""Shared fixtures: each real component has its own plugin module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.databases",
    "tests.fixtures.vault",
    "tests.fixtures.prefect_server",
    "tests.fixtures.stripe",
    "tests.fixtures.hubspot",
    "tests.fixtures.erp",
    "tests.fixtures.shopify",
]
