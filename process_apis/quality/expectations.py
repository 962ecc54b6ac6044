"""Every data-quality expectation of every canonical entity, written down in one place.

Two layers enforce them, and this module lists both, per entity:

* **gx** - a Great Expectations expectation, run per batch on the mapped records
  (:mod:`process_apis.quality.suites` builds the suites from :data:`EXPECTATIONS`):
  required identifiers, formats, ranges, dates not in the future, uniqueness of
  ``(source, source_id)`` within the batch.
* **rule** - a canonical rule (:mod:`process_apis.canonical.rules`) applied while a
  record is mapped: code lists (ISO 4217 currencies and ISO 3166 countries against
  ``pycountry``), e-mail syntax (``email-validator``), phone numbers (``phonenumbers``).
  Code lists as GX value sets re-serialise 250 codes on every call (measured at ~40%
  of a sync's CPU), so GX checks the *format* of a code and the rule checks the list.
* **run** - a referential check after every load of a run (:mod:`.referential`):
  an order's customer and its lines' products exist in the hub.

A failing gx or rule check quarantines the record with the check's ``name``; the run
check reports orphans (see :mod:`.referential` for why they are landed, not held).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOMAIN = r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+$"
ISO_4217 = r"^[A-Z]{3}$"
ISO_3166 = r"^[A-Z]{2}$"
PRESENT = r"\S"  # a required identifier: not empty, not blank

# The suite parameter a "not in the future" expectation compares against: epoch seconds
# of now + the clock-skew allowance, computed at validation time (settings.clock_skew_seconds).
NOT_AFTER = "not_after_epoch"

Kind = Literal["required", "unique", "regex", "min", "in_set", "not_future"]


@dataclass(frozen=True)
class Expectation:
    """One gx expectation: ``name`` is what quarantine rows and reports show."""

    name: str
    kind: Kind
    column: str | tuple[str, ...]
    arg: Any = None
    why: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return self.column if isinstance(self.column, tuple) else (self.column,)


@dataclass(frozen=True)
class RuleCheck:
    """A check a canonical rule makes while mapping (named as in quarantine rows)."""

    name: str
    why: str


@dataclass(frozen=True)
class RunCheck:
    """A check made once per run over what the hub holds (see :mod:`.referential`)."""

    name: str
    why: str


@dataclass(frozen=True)
class EntityChecks:
    gx: tuple[Expectation, ...]
    rules: tuple[RuleCheck, ...] = ()
    run: tuple[RunCheck, ...] = ()
    # A nested collection validated as its own GX batch (order lines), mapped back
    # to the parent record: a bad line quarantines its whole order.
    children: dict[str, tuple[Expectation, ...]] = field(default_factory=dict)


def _ids(entity: str) -> tuple[Expectation, ...]:
    return (
        Expectation(f"{entity}.source_id.required", "required", "source_id",
                    why="a record without its source key cannot be upserted"),
        Expectation(f"{entity}.source_key.unique", "unique", ("source", "source_id"),
                    why="one source record once per batch, or an upsert loses one of them"),
    )


def _not_future(entity: str, column: str) -> Expectation:
    return Expectation(f"{entity}.{column}.not_future", "not_future", column,
                       why="a timestamp after now + clock skew is a source or mapping bug")


_CURRENCY_RULE = RuleCheck("money.currency", "ISO 4217 code list (pycountry)")
_AMOUNT_RULE = RuleCheck("money.amount", "a finite amount in the currency's minor units")
_COUNTRY_RULE = RuleCheck("country.iso3166", "ISO 3166-1 alpha-2 code list (pycountry)")
_EMAIL_RULE = RuleCheck("email.valid", "e-mail syntax (email-validator, no DNS)")
_TIME_RULE = RuleCheck("timestamp.utc", "timestamps are aware and converted to UTC")

EXPECTATIONS: dict[str, EntityChecks] = {
    "customer": EntityChecks(
        gx=(
            *_ids("customer"),
            Expectation("customer.email.format", "regex", "email", EMAIL),
            Expectation("customer.phone.e164", "regex", "phone", E164),
            Expectation("customer.country.iso3166", "regex", "country", ISO_3166),
            _not_future("customer", "source_created_at"),
        ),
        rules=(_EMAIL_RULE, RuleCheck("phone.e164", "a valid number (phonenumbers) in E.164"),
               _COUNTRY_RULE, _TIME_RULE),
    ),
    "payment": EntityChecks(
        gx=(
            *_ids("payment"),
            # Refunds are their own rows (kind "refund") with a positive amount, so
            # every amount is >= 0; a negative one is a mapping bug.
            Expectation("payment.amount.non_negative", "min", "amount_minor", 0),
            Expectation("payment.currency.iso4217", "regex", "currency", ISO_4217),
            Expectation("payment.kind.known", "in_set", "kind", ("payment", "refund")),
            _not_future("payment", "occurred_at"),
        ),
        rules=(_AMOUNT_RULE, _CURRENCY_RULE, _TIME_RULE),
        run=(RunCheck("ref.payment.customer", "a payment's customer is in the hub (linked "
                      "by the end-of-run sweep, hub.link_orphans)"),),
    ),
    "company": EntityChecks(
        gx=(
            *_ids("company"),
            Expectation("company.domain.format", "regex", "domain", DOMAIN),
            Expectation("company.country.iso3166", "regex", "country", ISO_3166),
            _not_future("company", "source_updated_at"),
        ),
        rules=(RuleCheck("domain.valid", "a bare lower-case host name"), _COUNTRY_RULE,
               _TIME_RULE),
    ),
    "product": EntityChecks(
        gx=(
            *_ids("product"),
            Expectation("product.price.non_negative", "min", "price_minor", 0),
            Expectation("product.currency.iso4217", "regex", "currency", ISO_4217),
            _not_future("product", "source_updated_at"),
        ),
        rules=(_AMOUNT_RULE, _CURRENCY_RULE, _TIME_RULE),
    ),
    "order": EntityChecks(
        gx=(
            *_ids("order"),
            Expectation("order.total.non_negative", "min", "total_minor", 0),
            Expectation("order.currency.iso4217", "regex", "currency", ISO_4217),
            Expectation("order.email.format", "regex", "email", EMAIL),
            _not_future("order", "placed_at"),
            _not_future("order", "source_updated_at"),
        ),
        children={"lines": (
            Expectation("order_line.source_id.required", "required", "source_id"),
            Expectation("order_line.source_key.unique", "unique", ("source", "source_id"),
                        why="a line id appears once in a batch"),
            Expectation("order_line.quantity.non_negative", "min", "quantity", 0),
            Expectation("order_line.unit_price.non_negative", "min", "unit_price_minor", 0),
            Expectation("order_line.currency.iso4217", "regex", "currency", ISO_4217),
        )},
        rules=(_AMOUNT_RULE, _CURRENCY_RULE, _EMAIL_RULE, _TIME_RULE,
               RuleCheck("quantity.non_negative", "line quantities are >= 0")),
        run=(RunCheck("ref.order.customer", "the order's customer (customer_source_id, "
                      "same source) is in the hub"),
             RunCheck("ref.order_line.product", "each line's SKU is a product in the hub "
                      "(any source: SKUs are the cross-source product key)")),
    ),
    "inventory_level": EntityChecks(
        gx=(
            *_ids("inventory_level"),
            Expectation("inventory_level.location.required", "required", "location"),
            Expectation("inventory_level.available.non_negative", "min", "available", 0),
            _not_future("inventory_level", "source_updated_at"),
        ),
        rules=(RuleCheck("quantity.tracked", "the item is tracked at the location"),
               RuleCheck("quantity.non_negative", "stock is >= 0"), _TIME_RULE),
    ),
}


def checks_for(entity: str) -> EntityChecks:
    try:
        return EXPECTATIONS[entity]
    except KeyError:
        raise ValueError(f"no expectations for entity {entity!r}") from None


def as_table() -> list[dict[str, str]]:
    """Every check of every entity as rows (entity, layer, name, column, detail)."""
    rows: list[dict[str, str]] = []
    for entity, checks in EXPECTATIONS.items():
        for exp in checks.gx:
            rows.append({"entity": entity, "layer": "gx", "name": exp.name,
                         "column": ",".join(exp.columns), "detail": describe(exp)})
        for child, exps in checks.children.items():
            for exp in exps:
                rows.append({"entity": f"{entity}.{child}", "layer": "gx", "name": exp.name,
                             "column": ",".join(exp.columns), "detail": describe(exp)})
        for rule in checks.rules:
            rows.append({"entity": entity, "layer": "rule", "name": rule.name, "column": "",
                         "detail": rule.why})
        for run in checks.run:
            rows.append({"entity": entity, "layer": "run", "name": run.name, "column": "",
                         "detail": run.why})
    return rows


def describe(exp: Expectation) -> str:
    """What the expectation wants, in words (quarantine messages, reports)."""
    return {
        "required": "not null, not blank",
        "unique": "unique within the batch",
        "regex": f"matches {exp.arg}",
        "min": f">= {exp.arg}",
        "in_set": f"one of {', '.join(exp.arg or ())}",
        "not_future": "<= now + clock skew",
    }[exp.kind]
