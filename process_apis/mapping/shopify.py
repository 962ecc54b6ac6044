"""Shopify customers, products, orders and inventory levels -> canonical records.

* customers -> Customer: e-mail and phone through the canonical rules, the phone read
  in the default address's country (else the configured default region);
* products -> one Product per *variant* (keyed by the variant id): the variant's SKU,
  "Product - Variant" as the name ("Default Title" variants keep the product title),
  the decimal price string in minor units of the shop currency (a ``currency`` on the
  record, else ``options.currency`` of the source, else USD); draft/archived = inactive;
* orders -> Order with its lines: money in minor units of the order's currency, status
  ``cancelled`` or Shopify's ``financial_status``, timestamps with their UTC offsets
  read as UTC;
* inventory_levels -> InventoryLevel keyed ``"<location_id>:<inventory_item_id>"``; a
  level Shopify does not track (``available`` null) is rejected, not read as zero.

A bad record is rejected with every broken rule (quarantined), never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from interchange.errors import ConfigError, SchemaError
from process_apis.canonical import rules
from process_apis.canonical.rules import RuleViolation
from process_apis.canonical.views import (
    CanonicalCustomer,
    CanonicalInventoryLevel,
    CanonicalOrder,
    CanonicalOrderLine,
    CanonicalProduct,
)
from process_apis.mapping.base import MapResult, Rejected
from process_apis.mapping.common import MappingFailed, clean, collect, map_batch
from system_apis.shopify.streams import parse_record

SOURCE = "shopify"
DEFAULT_CURRENCY = "USD"
ENTITY_OF_STREAM = {
    "customers": "customer",
    "products": "product",
    "orders": "order",
    "inventory_levels": "inventory_level",
}
_DEFAULT_VARIANT = "Default Title"


def record_key(raw: dict[str, Any]) -> str:
    """The source id of a raw Shopify object (levels: ``location_id:inventory_item_id``)."""
    if not isinstance(raw, dict):
        return ""
    if "id" not in raw and "inventory_item_id" in raw:
        return f"{raw.get('location_id')}:{raw.get('inventory_item_id')}"
    return str(raw.get("id") or "")


_MAX_MINOR = 2**63 - 1  # what the hub's integer columns hold


def _money(amount: str | None, currency: str, what: str) -> int | None:
    """A decimal major-unit string in minor units (never negative, never infinite)."""
    if amount is None:
        return None
    try:
        finite = Decimal(str(amount).strip()).is_finite()
    except ArithmeticError:
        finite = True  # not a number at all: to_minor_units names the problem
    if not finite:
        raise RuleViolation("money.amount", f"{what} {amount!r} is not a finite amount")
    value = rules.non_negative(rules.to_minor_units(amount, currency, minor=False),
                               "money.non_negative", what)
    if value is not None and value > _MAX_MINOR:
        raise RuleViolation("money.amount", f"{what} {amount!r} is out of range")
    return value


def map_customer(model: Any, *, default_region: str = "US") -> CanonicalCustomer:
    address = model.default_address
    country = collect([("country", lambda: rules.normalize_country(
        clean(address.country_code) or clean(address.country)) if address else None)])
    values = collect([
        ("email", lambda: rules.normalize_email(model.email)),
        ("phone", lambda: rules.normalize_phone(
            clean(model.phone) or (clean(address.phone) if address else None),
            region=country["country"] or default_region)),
        ("source_created_at", lambda: rules.to_utc(model.created_at)),
    ])
    name = " ".join(x for x in (clean(model.first_name), clean(model.last_name)) if x)
    return CanonicalCustomer(source=SOURCE, source_id=str(model.id), name=name or None,
                             **country, **values)


def _variant_name(title: str | None, variant: str | None) -> str | None:
    title, variant = clean(title), clean(variant)
    if variant and variant != _DEFAULT_VARIANT:
        return f"{title} - {variant}" if title else variant
    return title


def _shop_currency() -> str:
    try:
        from interchange.settings import get_source

        return str(get_source(SOURCE).options.get("currency") or DEFAULT_CURRENCY)
    except ConfigError:
        return DEFAULT_CURRENCY


def map_variant(product: Any, variant: Any, currency: str) -> CanonicalProduct:
    extra = variant.model_extra or {}
    values = collect([
        ("currency", lambda: rules.normalize_currency(extra.get("currency") or currency)),
        ("price_minor", lambda: _money(variant.price, extra.get("currency") or currency,
                                       "price")),
        ("product_updated", lambda: rules.to_utc(product.updated_at)),
        ("variant_updated", lambda: rules.to_utc(variant.updated_at)),
    ])
    stamps = [t for t in (values.pop("product_updated"), values.pop("variant_updated")) if t]
    return CanonicalProduct(
        source=SOURCE, source_id=str(variant.id), sku=clean(variant.sku),
        name=_variant_name(product.title, variant.title),
        active=(product.status or "active") == "active",
        source_updated_at=max(stamps) if stamps else None, **values,
    )


def map_products(raws: list[dict[str, Any]], currency: str) -> MapResult:
    """One canonical product per variant; each keeps its product's raw object."""
    result: MapResult = MapResult()
    for raw in raws:
        try:
            product = parse_record("products", raw)
        except SchemaError as exc:
            variants = raw.get("variants") if isinstance(raw, dict) else None
            ids = [str(v["id"]) for v in variants or [] if isinstance(v, dict) and v.get("id")]
            for key in ids or [record_key(raw) if isinstance(raw, dict) else ""]:
                result.rejected.append(
                    Rejected(key, raw, [{"rule": "schema", "message": str(exc)}]))
            continue
        product_currency = (product.model_extra or {}).get("currency") or currency
        for variant in product.variants:
            try:
                record = map_variant(product, variant, product_currency)
            except MappingFailed as exc:
                result.rejected.append(Rejected(str(variant.id), raw, exc.violations))
            else:
                result.records.append(record)
                result.raws.append(raw)
    return result


def _order_status(model: Any) -> str:
    if model.cancelled_at:
        return "cancelled"
    return clean(model.financial_status) or "pending"


def _line(model: Any, line: Any, currency: str) -> Callable[[], CanonicalOrderLine]:
    def build() -> CanonicalOrderLine:
        quantity = rules.non_negative(line.quantity, "quantity.non_negative",
                                      f"line {line.id} quantity")
        price = _money(line.price, currency, f"line {line.id} price")
        return CanonicalOrderLine(
            source=SOURCE, source_id=str(line.id), order_source_id=str(model.id),
            sku=clean(line.sku), name=_variant_name(line.title, line.variant_title),
            quantity=quantity, unit_price_minor=price, currency=rules.normalize_currency(currency),
        )
    return build


def map_order(model: Any) -> CanonicalOrder:
    customer = model.customer
    values = collect([
        ("currency", lambda: rules.normalize_currency(model.currency)),
        ("total_minor", lambda: _money(model.total_price, model.currency, "total")),
        ("email", lambda: rules.normalize_email(
            model.email or (customer.email if customer else None))),
        ("placed_at", lambda: rules.to_utc(model.created_at)),
        ("source_updated_at", lambda: rules.to_utc(model.updated_at)),
        *((f"line:{line.id}", _line(model, line, model.currency)) for line in model.line_items),
    ])
    lines = tuple(values.pop(f"line:{line.id}") for line in model.line_items)
    number = clean(model.name) or (str(model.order_number) if model.order_number else None)
    return CanonicalOrder(
        source=SOURCE, source_id=str(model.id), number=number,
        customer_source_id=str(customer.id) if customer else None,
        status=_order_status(model), lines=lines, **values,
    )


def map_level(model: Any) -> CanonicalInventoryLevel:
    def available() -> int:
        if model.available is None:
            raise RuleViolation("quantity.tracked",
                                "available is null: the item is not tracked at this location")
        return rules.non_negative(model.available, "quantity.non_negative", "available")

    values = collect([
        ("available", available),
        ("source_updated_at", lambda: rules.to_utc(model.updated_at)),
    ])
    sku = clean((model.model_extra or {}).get("sku"))
    return CanonicalInventoryLevel(
        source=SOURCE, source_id=f"{model.location_id}:{model.inventory_item_id}",
        sku=sku, location=str(model.location_id), **values,
    )


def map_records(
    stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> MapResult:
    if stream == "products":
        return map_products(raws, _shop_currency())
    if stream == "customers":
        def mapper(m: Any) -> Any:
            return map_customer(m, default_region=default_region)
    elif stream == "orders":
        mapper = map_order
    elif stream == "inventory_levels":
        mapper = map_level
    else:
        raise ValueError(f"unknown Shopify stream {stream!r}")
    return map_batch(raws, parse=lambda raw: parse_record(stream, raw), mapper=mapper,
                     source_id=record_key)
