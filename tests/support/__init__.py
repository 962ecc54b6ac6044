"""Test helpers that are not fixtures: tools the tests drive directly (``chaos``)."""
