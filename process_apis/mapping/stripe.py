"""Stripe records -> canonical Customer and Payment.

Charges become ``payment`` rows and refunds ``refund`` rows, both in integer minor
units (Stripe already sends minor units) with an upper-case ISO 4217 currency.
A national-format phone number is read in the customer's address country when
Stripe has one, else in the configured default region.
"""

from __future__ import annotations

import re
from typing import Any

from process_apis.canonical import rules
from process_apis.canonical.rules import RuleViolation
from process_apis.canonical.views import CanonicalCustomer, CanonicalPayment
from process_apis.mapping.base import MapResult
from process_apis.mapping.common import MappingFailed, collect, map_batch
from system_apis.stripe.streams import parse_record

SOURCE = "stripe"


def _attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def map_customer(model: Any, *, default_region: str = "US") -> CanonicalCustomer:
    """Raise :class:`MappingFailed` with every broken rule, or return the record."""
    if _attr(model, "deleted"):
        # A tombstone carries no data worth checking: the hub keeps the last values.
        return CanonicalCustomer(source=SOURCE, source_id=str(model.id), deleted=True)
    country_raw = _attr(_attr(model, "address"), "country")
    try:
        country = collect([("country", lambda: rules.normalize_country(country_raw))])
    except MappingFailed as exc:
        country, bad_country = {"country": None}, exc.violations
    else:
        bad_country = []
    region = country["country"] or default_region
    try:
        values = collect([
            ("email", lambda: rules.normalize_email(_attr(model, "email"))),
            ("source_created_at", lambda: rules.to_utc(_attr(model, "created"))),
            ("phone", lambda: rules.normalize_phone(_attr(model, "phone"), region=region)),
        ])
    except MappingFailed as exc:
        raise MappingFailed(bad_country + exc.violations) from None
    if bad_country:
        raise MappingFailed(bad_country)
    name = _attr(model, "name")
    return CanonicalCustomer(
        source=SOURCE,
        source_id=str(model.id),
        name=name.strip() if isinstance(name, str) and name.strip() else None,
        **country,
        **values,
    )


def map_charge(model: Any) -> CanonicalPayment:
    return _payment(model, kind="payment", related=_attr(model, "payment_intent"),
                    customer=_attr(model, "customer"))


def map_refund(model: Any) -> CanonicalPayment:
    return _payment(model, kind="refund", related=_attr(model, "charge"),
                    customer=_attr(model, "customer"))


def _payment(model: Any, *, kind: str, related: Any, customer: Any) -> CanonicalPayment:
    currency_raw = _attr(model, "currency")
    values = collect([
        ("currency", lambda: rules.normalize_currency(currency_raw)),
        ("amount_minor", lambda: _amount(model, currency_raw)),
        ("occurred_at", lambda: rules.to_utc(_attr(model, "created"))),
    ])
    return CanonicalPayment(
        source=SOURCE,
        source_id=str(model.id),
        kind=kind,
        customer_source_id=_id_of(customer),
        related_source_id=_id_of(related),
        order_ref=_order_ref(model),
        status=str(_attr(model, "status") or "unknown"),
        **values,
    )


ORDER_REF_KEYS = ("order_id", "order_number", "order_ref", "order")


# An order reference looks like "#1042", "ORD-1042" or an id: anything else (an e-mail
# typed into the field, a formula) is not one, and would only carry personal data or
# spreadsheet formulas into exports and events.
_ORDER_REF = re.compile(r"^[A-Za-z0-9#:_/. -]{1,64}$")


def _order_ref(model: Any) -> str | None:
    """The order a charge pays, from the metadata keys shops conventionally set."""
    metadata = _attr(model, "metadata") or {}
    for key in ORDER_REF_KEYS:
        value = metadata.get(key) if isinstance(metadata, dict) else None
        if isinstance(value, str | int) and str(value).strip():
            ref = str(value).strip()
            return ref if _ORDER_REF.match(ref) else None
    return None


def _amount(model: Any, currency: Any) -> int:
    amount = _attr(model, "amount")
    if amount is None:
        raise RuleViolation("money.amount", "amount is missing")
    return rules.to_minor_units(amount, currency, minor=True)


def _id_of(value: Any) -> str | None:
    """Stripe references are ids or (when expanded) objects with an id."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _attr(value, "id")


ENTITY_OF_STREAM = {"customers": "customer", "payments": "payment", "refunds": "payment"}


def map_records(
    stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> MapResult:
    """Parse (system model) and map (canonical) one batch of raw Stripe records."""
    if stream == "customers":
        def mapper(m: Any) -> Any:
            return map_customer(m, default_region=default_region)
    elif stream == "payments":
        mapper = map_charge
    elif stream == "refunds":
        mapper = map_refund
    else:
        raise ValueError(f"unknown Stripe stream {stream!r}")
    return map_batch(raws, parse=lambda raw: parse_record(stream, raw), mapper=mapper,
                     source_id=lambda raw: str(raw.get("id") or ""))
