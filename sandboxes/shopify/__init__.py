"""A Shopify Admin REST sandbox: the same contract as Shopify, on SQLite, with knobs.

* :mod:`.store` - the state (SQLite, keyset paging, leaky buckets are in :mod:`.app`).
* :mod:`.seed` - deterministic, messy seed data and its ``expected`` counts.
* :mod:`.app` - the FastAPI application (:func:`~sandboxes.shopify.app.create_app`).
* ``python -m sandboxes.shopify --port P [--token T] [--records N] [--db PATH]`` runs it
  in the foreground.
"""

DEFAULT_TOKEN = "shpat_interchange_sandbox"  # noqa: S105 - a public sandbox credential
DEFAULT_PORT = 8422
