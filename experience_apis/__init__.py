"""Experience APIs: what consumers (apps, analysts, partners) use.

- ``http/`` — the versioned REST API (FastAPI): ``/v1`` resources, API keys with
  scopes, RFC 9457 problem details, OpenAPI with examples.
- ``cli.py`` — operator commands for the API (``interchange keys ...``).

Imports ``process_apis`` (read and process functions) and ``interchange`` (plumbing)
only; never ``system_apis`` or ``flows``.
"""
