"""Process APIs: canonical models and rules, mapping, quality, the hub store.

Imports ``system_apis.<source>.models`` (data types) and system API read functions,
plus ``interchange``; never ``experience_apis`` or ``flows``.
"""
