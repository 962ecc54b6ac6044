"""The legacy ERP schema: upper-case tables and columns, as an old system of record has them.

SQLAlchemy Core only, so the same :data:`metadata` creates the tables on SQLite (the
embedded demo) and PostgreSQL (tests, production-like). What is "legacy" about it, on
purpose:

* ``CUST_MASTER.CREATED_DT`` is a ``MM/DD/YYYY`` string, not a date;
* phones are typed by hand with dashes, e-mails in mixed case with stray spaces;
* prices are ``NUMERIC(12,2)`` next to a ``CHAR(3)`` currency column;
* every table has ``LAST_MOD`` (naive UTC timestamp) set by the application on every
  write - the only change marker there is. It only ever moves forward for a row, which
  is what lets readers page by ``(LAST_MOD, key)`` without losing rows (see
  :mod:`system_apis.erp.streams`). Each table has an index on ``(LAST_MOD, key)``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["CUST_MASTER", "ITEM_MASTER", "STOCK", "TABLES", "create_schema", "metadata"]

metadata = sa.MetaData()

CUST_MASTER = sa.Table(
    "CUST_MASTER",
    metadata,
    sa.Column("CUST_NO", sa.String(10), primary_key=True),
    sa.Column("NAME", sa.String(120)),
    sa.Column("EMAIL", sa.String(200)),
    sa.Column("PHONE", sa.String(40)),
    sa.Column("COUNTRY", sa.String(40)),
    sa.Column("CREATED_DT", sa.String(10)),  # MM/DD/YYYY
    sa.Column("LAST_MOD", sa.DateTime(timezone=False), nullable=False),
    sa.Index("IX_CUST_MASTER_LAST_MOD", "LAST_MOD", "CUST_NO"),
)

ITEM_MASTER = sa.Table(
    "ITEM_MASTER",
    metadata,
    sa.Column("ITEM_NO", sa.String(20), primary_key=True),  # the SKU
    sa.Column("DESCR", sa.String(200)),
    sa.Column("PRICE", sa.Numeric(12, 2)),
    sa.Column("CURRENCY", sa.CHAR(3)),
    sa.Column("LAST_MOD", sa.DateTime(timezone=False), nullable=False),
    sa.Index("IX_ITEM_MASTER_LAST_MOD", "LAST_MOD", "ITEM_NO"),
)

STOCK = sa.Table(
    "STOCK",
    metadata,
    sa.Column("ITEM_NO", sa.String(20), primary_key=True),
    sa.Column("WAREHOUSE", sa.String(10), primary_key=True),
    sa.Column("QTY_ON_HAND", sa.Integer),
    sa.Column("LAST_MOD", sa.DateTime(timezone=False), nullable=False),
    sa.Index("IX_STOCK_LAST_MOD", "LAST_MOD", "ITEM_NO", "WAREHOUSE"),
)

TABLES: dict[str, sa.Table] = {t.name: t for t in (CUST_MASTER, ITEM_MASTER, STOCK)}


def create_schema(engine: sa.Engine) -> None:
    """Create the ERP tables and indexes that do not exist yet."""
    metadata.create_all(engine)
