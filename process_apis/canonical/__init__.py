"""Canonical data: the hub tables and the rules every data type follows."""
