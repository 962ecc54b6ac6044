"""A deterministic, realistically messy ERP data set, and the function that loads it.

:func:`build_dataset` returns rows for the three legacy tables plus ``expected``:

* ``CUST_MASTER`` - ``records`` customers ``C000001``...: names, e-mails in mixed case
  with stray spaces, phones typed with dashes / dots / parentheses, countries as codes
  or names, ``CREATED_DT`` as ``MM/DD/YYYY``;
* ``ITEM_MASTER`` - ``max(1, records // 2)`` items ``SKU-00001``... with ``NUMERIC(12,2)``
  prices in ``USD``/``EUR``/``GBP`` (a few lower-case, one padded);
* ``STOCK`` - every item in warehouses ``WH1`` and ``WH2``.

``LAST_MOD`` starts at :data:`BASE_TIME` and advances one second every three rows, so
several rows share a timestamp (readers must break ties by key). About 2 % of the rows
are invalid for the canonical rules; ``expected["invalid"]`` names them per table with
the rules they break (``email.valid``, ``phone.e164``, ``date.valid``,
``money.currency``, ``money.non_negative``, ``quantity.non_negative``). Same arguments, same
data set.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sandboxes.erp.schema import CUST_MASTER, ITEM_MASTER, STOCK, create_schema

__all__ = ["BASE_TIME", "WAREHOUSES", "build_dataset", "create_and_seed", "seed"]

BASE_TIME = datetime(2024, 1, 2, 8, 0, 0)  # naive UTC, like LAST_MOD itself
WAREHOUSES = ("WH1", "WH2")

_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov"]
_DOMAINS = ["example.com", "Example.COM", "mail.example.org", "acme.com"]
_COUNTRIES = ["US", "us", "USA", "United States", "GB", "DE", "Germany", "FR", None]
_WORDS = ["Widget", "Gadget", "Bolt", "Bracket", "Valve", "Sensor", "Cable", "Panel"]
_CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP", "usd"]


_AREAS = [212, 303, 312, 415, 617, 646, 718, 206]
_EXCHANGES = [555, 234, 467, 789, 823, 349]
_FOREIGN = {  # the ERP was American: foreign numbers were keyed in with dashes too
    "GB": "+44-20-7946-{n:04d}", "DE": "+49-30-9018-{n2:02d}", "Germany": "+49-30-9018-{n2:02d}",
    "FR": "+33-1-42-68-{n2:02d}-{n3:02d}",
}


def _phone(rng: random.Random, country: str | None) -> str:
    n = rng.randint(0, 9999)
    if country in _FOREIGN:
        return _FOREIGN[country].format(n=n % 1000, n2=n % 100, n3=n // 100 % 100)
    area, mid = rng.choice(_AREAS), rng.choice(_EXCHANGES)
    style = rng.randrange(4)
    if style == 0:
        return f"{area}-555-{n:04d}"
    if style == 1:
        return f"({area}) {mid}-{n:04d}"
    if style == 2:
        return f"{area}.{mid}.{n:04d}"
    return f"1-{area}-{mid}-{n:04d}"


def build_dataset(records: int, *, seed: int = 7) -> dict[str, Any]:
    """Rows for ``CUST_MASTER``, ``ITEM_MASTER`` and ``STOCK`` plus ``expected``."""
    if records < 1:
        raise ValueError("records must be >= 1")
    rng = random.Random(seed)
    invalid: dict[str, dict[str, list[str]]] = {"CUST_MASTER": {}, "ITEM_MASTER": {}, "STOCK": {}}

    def stamp(i: int) -> datetime:
        return BASE_TIME + timedelta(seconds=i // 3)

    customers = []
    for i in range(records):
        cust_no = f"C{i + 1:06d}"
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}{i}@{rng.choice(_DOMAINS)}"
        if rng.random() < 0.3:
            email = f"  {email.upper()} "
        created = datetime(2015, 1, 1) + timedelta(days=rng.randrange(3000))
        country = rng.choice(_COUNTRIES)
        row = {
            "CUST_NO": cust_no,
            "NAME": f"{first} {last}" if rng.random() > 0.05 else f"{last.upper()}, {first}",
            "EMAIL": email if rng.random() > 0.03 else None,
            "PHONE": _phone(rng, country) if rng.random() > 0.05 else None,
            "COUNTRY": country,
            "CREATED_DT": created.strftime("%m/%d/%Y"),
            "LAST_MOD": stamp(i),
        }
        if i % 50 == 13:  # about 2 %: broken in one of three ways
            kind = (i // 50) % 3
            if kind == 0:
                row["EMAIL"], rules = f"{first}.{last} at example.com", ["email.valid"]
            elif kind == 1:
                row["PHONE"], rules = "555-01", ["phone.e164"]
            else:
                row["CREATED_DT"], rules = "13/45/2019", ["date.valid"]
            invalid["CUST_MASTER"][cust_no] = rules
        customers.append(row)

    items, stock = [], []
    for i in range(max(1, records // 2)):
        item_no = f"SKU-{i + 1:05d}"
        row = {
            "ITEM_NO": item_no,
            "DESCR": f"{rng.choice(_WORDS)} {rng.choice(_WORDS).lower()} {rng.randint(1, 99)}",
            "PRICE": Decimal(rng.randint(99, 99999)) / 100,
            "CURRENCY": rng.choice(_CURRENCIES),
            "LAST_MOD": stamp(i),
        }
        if i % 50 == 7:
            if (i // 50) % 2 == 0:
                row["CURRENCY"], rules = "XXQ", ["money.currency"]
            else:
                row["PRICE"], rules = Decimal("-5.00"), ["money.non_negative"]
            invalid["ITEM_MASTER"][item_no] = rules
        items.append(row)
        for w, warehouse in enumerate(WAREHOUSES):
            qty = rng.randint(0, 500)
            key = f"{item_no}/{warehouse}"
            if i % 50 == 21 and w == 0:
                qty = -3
                invalid["STOCK"][key] = ["quantity.non_negative"]
            stock.append(
                {
                    "ITEM_NO": item_no,
                    "WAREHOUSE": warehouse,
                    "QTY_ON_HAND": qty,
                    "LAST_MOD": stamp(2 * i + w),
                }
            )

    expected = {
        "CUST_MASTER": len(customers),
        "ITEM_MASTER": len(items),
        "STOCK": len(stock),
        "invalid": invalid,
        "last_mod_max": max(r["LAST_MOD"] for r in customers + items + stock),
    }
    return {"CUST_MASTER": customers, "ITEM_MASTER": items, "STOCK": stock, "expected": expected}


def seed(engine: sa.Engine, dataset: dict[str, Any], *, chunk: int = 1000) -> None:
    """Insert ``dataset`` (from :func:`build_dataset`) in chunks, one transaction."""
    with engine.begin() as conn:
        for table in (CUST_MASTER, ITEM_MASTER, STOCK):
            rows = dataset[table.name]
            for start in range(0, len(rows), chunk):
                conn.execute(table.insert(), rows[start : start + chunk])


def create_and_seed(url: str, records: int, *, seed_value: int = 7) -> dict[str, Any]:
    """Create the tables at ``url``, seed ``records`` customers; returns ``expected``."""
    engine = sa.create_engine(url)
    try:
        create_schema(engine)
        dataset = build_dataset(records, seed=seed_value)
        seed(engine, dataset)
        return dataset["expected"]
    finally:
        engine.dispose()
