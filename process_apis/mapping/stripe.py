"""Stripe records -> canonical Customer and Payment.

Charges become ``payment`` rows and refunds ``refund`` rows, both in integer minor
units (Stripe already sends minor units) with an upper-case ISO 4217 currency.
A national-format phone number is read in the customer's address country when
Stripe has one, else in the configured default region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from interchange.errors import SchemaError
from process_apis.canonical import rules
from process_apis.canonical.rules import RuleViolation
from process_apis.canonical.views import CanonicalCustomer, CanonicalPayment
from process_apis.mapping.base import MapResult, Rejected
from system_apis.stripe.streams import parse_record

SOURCE = "stripe"


def _attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _collect(checks: Iterable[tuple[str, Callable[[], Any]]]) -> tuple[dict[str, Any], list]:
    values: dict[str, Any] = {}
    violations: list[dict[str, str]] = []
    for name, check in checks:
        try:
            values[name] = check()
        except RuleViolation as exc:
            violations.append(exc.as_dict())
    return values, violations


def map_customer(model: Any, *, default_region: str = "US") -> CanonicalCustomer:
    """Raise :class:`MappingFailed` with every broken rule, or return the record."""
    deleted = bool(_attr(model, "deleted"))
    country_raw = _attr(_attr(model, "address"), "country")
    values, violations = _collect(
        [
            ("country", lambda: rules.normalize_country(country_raw)),
            ("email", lambda: rules.normalize_email(_attr(model, "email"))),
            ("source_created_at", lambda: rules.to_utc(_attr(model, "created"))),
        ]
    )
    region = values.get("country") or default_region
    values2, violations2 = _collect(
        [("phone", lambda: rules.normalize_phone(_attr(model, "phone"), region=region))]
    )
    violations += violations2
    if violations and not deleted:
        raise MappingFailed(violations)
    name = _attr(model, "name")
    return CanonicalCustomer(
        source=SOURCE,
        source_id=str(model.id),
        name=name.strip() if isinstance(name, str) and name.strip() else None,
        deleted=deleted,
        **{k: v for k, v in {**values, **values2}.items() if not violations},
    )


def map_charge(model: Any) -> CanonicalPayment:
    return _payment(model, kind="payment", related=_attr(model, "payment_intent"),
                    customer=_attr(model, "customer"))


def map_refund(model: Any) -> CanonicalPayment:
    return _payment(model, kind="refund", related=_attr(model, "charge"),
                    customer=_attr(model, "customer"))


def _payment(model: Any, *, kind: str, related: Any, customer: Any) -> CanonicalPayment:
    currency_raw = _attr(model, "currency")
    values, violations = _collect(
        [
            ("currency", lambda: rules.normalize_currency(currency_raw)),
            ("amount_minor", lambda: _amount(model, currency_raw)),
            ("occurred_at", lambda: rules.to_utc(_attr(model, "created"))),
        ]
    )
    if violations:
        raise MappingFailed(violations)
    return CanonicalPayment(
        source=SOURCE,
        source_id=str(model.id),
        kind=kind,
        customer_source_id=_id_of(customer),
        related_source_id=_id_of(related),
        status=str(_attr(model, "status") or "unknown"),
        **values,
    )


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


class MappingFailed(Exception):
    def __init__(self, violations: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{v['rule']}: {v['message']}" for v in violations))
        self.violations = violations


ENTITY_OF_STREAM = {"customers": "customer", "payments": "payment", "refunds": "payment"}


def map_records(
    stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> MapResult:
    """Parse (system model) and map (canonical) one batch of raw Stripe records."""
    mapper: Callable[[Any], Any]
    if stream == "customers":
        mapper = lambda m: map_customer(m, default_region=default_region)  # noqa: E731
    elif stream == "payments":
        mapper = map_charge
    elif stream == "refunds":
        mapper = map_refund
    else:
        raise ValueError(f"unknown Stripe stream {stream!r}")
    result: MapResult = MapResult()
    for raw in raws:
        source_id = str(raw.get("id") or "")
        try:
            model = parse_record(stream, raw)
            record = mapper(model)
        except SchemaError as exc:
            result.rejected.append(
                Rejected(source_id, raw, [{"rule": "schema", "message": str(exc)}])
            )
        except MappingFailed as exc:
            result.rejected.append(Rejected(source_id, raw, exc.violations))
        else:
            result.records.append(record)
            result.raws.append(raw)
    return result
