"""The ERP system API: a legacy system of record read over SQLAlchemy.

* :mod:`.client` - :func:`~.client.erp_engine`: SQLite from config for the embedded demo,
  or PostgreSQL logging in with short-lived credentials from Vault's database secrets
  engine (:class:`interchange.dbsecrets.DatabaseCredentials`).
* :mod:`.models` - ``ErpCustomer``, ``ErpItem``, ``ErpStock``: the rows as they are.
* :mod:`.streams` - :func:`~.streams.read_stream` (keyset pages by ``(LAST_MOD, key)``,
  full or incremental, resumable), :func:`~.streams.parse_record` and the drift helpers.
"""
