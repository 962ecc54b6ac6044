"""Legacy ERP rows -> canonical Customer, Product and InventoryLevel.

The ERP keeps dates as ``MM/DD/YYYY`` strings, phones with dashes, prices as decimals
beside a currency column: each goes through the canonical rules (a bad date, a
negative price or stock count is a rejected record, quarantined with its reason).
"""

from __future__ import annotations

from typing import Any

from process_apis.canonical import rules
from process_apis.canonical.views import (
    CanonicalCustomer,
    CanonicalInventoryLevel,
    CanonicalProduct,
)
from process_apis.mapping.base import MapResult
from process_apis.mapping.common import clean, collect, map_batch
from system_apis.erp.streams import parse_record

SOURCE = "erp"
ENTITY_OF_STREAM = {"customers": "customer", "items": "product", "stock": "inventory_level"}


def record_key(raw: dict[str, Any]) -> str:
    """The source id of a raw ERP row (stock rows are keyed by item and warehouse)."""
    if "WAREHOUSE" in raw:
        return f"{raw.get('ITEM_NO')}/{raw.get('WAREHOUSE')}"
    return str(raw.get("CUST_NO") or raw.get("ITEM_NO") or "")


def map_customer(model: Any, *, default_region: str = "US") -> CanonicalCustomer:
    country = collect([("country", lambda: rules.normalize_country(clean(model.COUNTRY)))])
    values = collect([
        ("email", lambda: rules.normalize_email(model.EMAIL)),
        ("phone", lambda: rules.normalize_phone(model.PHONE,
                                                region=country["country"] or default_region)),
        ("source_created_at", lambda: rules.parse_legacy_date(model.CREATED_DT)),
    ])
    name = clean(model.NAME)
    if name and "," in name:  # "LAST, First" as some clerks typed it
        last, first = (part.strip() for part in name.split(",", 1))
        name = f"{first} {last.title()}".strip()
    return CanonicalCustomer(source=SOURCE, source_id=model.source_id, name=name,
                             **country, **values)


def map_item(model: Any) -> CanonicalProduct:
    values = collect([
        ("currency", lambda: rules.normalize_currency(model.CURRENCY)),
        ("price_minor", lambda: rules.non_negative(
            rules.to_minor_units(model.PRICE, model.CURRENCY, minor=False)
            if model.PRICE is not None else None, "money.non_negative", "price")),
    ])
    return CanonicalProduct(source=SOURCE, source_id=model.source_id, sku=model.ITEM_NO,
                            name=clean(model.DESCR), **values)


def map_stock(model: Any) -> CanonicalInventoryLevel:
    values = collect([
        ("available", lambda: rules.non_negative(model.QTY_ON_HAND or 0,
                                                 "quantity.non_negative", "stock")),
    ])
    return CanonicalInventoryLevel(source=SOURCE, source_id=model.source_id, sku=model.ITEM_NO,
                                   location=model.WAREHOUSE, **values)


def map_records(
    stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> MapResult:
    if stream == "customers":
        def mapper(m: Any) -> Any:
            return map_customer(m, default_region=default_region)
    elif stream == "items":
        mapper = map_item
    elif stream == "stock":
        mapper = map_stock
    else:
        raise ValueError(f"unknown ERP stream {stream!r}")
    return map_batch(raws, parse=lambda raw: parse_record(stream, raw), mapper=mapper,
                     source_id=record_key)
