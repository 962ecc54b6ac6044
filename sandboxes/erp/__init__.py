"""The ERP sandbox: a legacy system-of-record schema, a messy seed, and its Vault setup.

Development, demos and tests only (see :mod:`sandboxes`).

* :mod:`.schema` - the legacy tables (``CUST_MASTER``, ``ITEM_MASTER``, ``STOCK``) as
  SQLAlchemy Core, for SQLite (the embedded demo) and PostgreSQL.
* :mod:`.seed` - a deterministic, realistically messy data set with its ``expected``
  counts, and :func:`~.seed.create_and_seed`.
* :mod:`.vault_setup` - the dev-only OpenBao database secrets engine setup that issues
  short-lived PostgreSQL logins for the ERP tables.

Command line (creates the tables if needed and seeds them)::

    python -m sandboxes.erp --url sqlite:///erp.db --records 1000
"""
