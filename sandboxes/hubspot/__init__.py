"""A local HubSpot CRM v3 + OAuth sandbox that the official SDK works against unchanged.

* :mod:`sandboxes.hubspot.app` — the FastAPI app (``create_app``): the HTTP contract,
  auth, rate limits and the knobs.
* :mod:`sandboxes.hubspot.store` — SQLite state, fast at 100,000+ records.
* :mod:`sandboxes.hubspot.seed` — deterministic, realistically messy contacts and companies.
* ``python -m sandboxes.hubspot --port P`` — run it seeded, in the foreground.
"""
