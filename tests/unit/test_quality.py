"""The data-quality expectations: each one fails on a crafted record and passes on a good one.

One parametrised case per expectation in process_apis/quality/expectations.py; a test
checks that no expectation is left without its case.
"""

from __future__ import annotations

import datetime as dt

import pytest

from process_apis.canonical.views import (
    CanonicalCompany,
    CanonicalCustomer,
    CanonicalInventoryLevel,
    CanonicalOrder,
    CanonicalOrderLine,
    CanonicalPayment,
    CanonicalProduct,
)
from process_apis.mapping.base import Rejected
from process_apis.quality import EXPECTATIONS, validate_batch
from process_apis.quality.expectations import as_table
from process_apis.quality.report import RunQuality

NOW = 1_780_000_000.0  # a fixed "now" (epoch seconds) for the future-date checks
PAST = dt.datetime.fromtimestamp(NOW - 86_400, dt.UTC)
SKEW = 300


def line(**kw):
    return CanonicalOrderLine(**{"source": "shop", "source_id": "l1", "order_source_id": "o1",
                                 "sku": "SKU-1", "quantity": 2, "unit_price_minor": 500,
                                 "currency": "USD", **kw})


GOOD = {
    "customer": lambda **kw: CanonicalCustomer(**{
        "source": "stripe", "source_id": "c1", "email": "a@example.com",
        "phone": "+14155550132", "country": "US", "source_created_at": PAST, **kw}),
    "payment": lambda **kw: CanonicalPayment(**{
        "source": "stripe", "source_id": "p1", "kind": "payment", "amount_minor": 100,
        "currency": "EUR", "status": "succeeded", "occurred_at": PAST, **kw}),
    "company": lambda **kw: CanonicalCompany(**{
        "source": "crm", "source_id": "1", "name": "Acme", "domain": "acme.com",
        "country": "DE", "source_updated_at": PAST, **kw}),
    "product": lambda **kw: CanonicalProduct(**{
        "source": "shop", "source_id": "v1", "sku": "SKU-1", "price_minor": 0,
        "currency": "USD", "source_updated_at": PAST, **kw}),
    "order": lambda **kw: CanonicalOrder(**{
        "source": "shop", "source_id": "o1", "status": "paid", "total_minor": 1000,
        "currency": "USD", "email": "a@example.com", "placed_at": PAST,
        "source_updated_at": PAST,
        "lines": (line(source_id=f"{kw.get('source_id', 'o1')}-l1"),), **kw}),
    "inventory_level": lambda **kw: CanonicalInventoryLevel(**{
        "source": "shop", "source_id": "loc:1", "sku": "SKU-1", "location": "loc",
        "available": 0, "source_updated_at": PAST, **kw}),
}

FUTURE = dt.datetime.fromtimestamp(NOW + SKEW + 1, dt.UTC)

# check name -> (entity, the field values that break exactly that check)
BAD = {
    "customer.source_id.required": ("customer", {"source_id": "  "}),
    "customer.email.format": ("customer", {"email": "not-an-email"}),
    "customer.phone.e164": ("customer", {"phone": "4155550132"}),
    "customer.country.iso3166": ("customer", {"country": "usa"}),
    "customer.source_created_at.not_future": ("customer", {"source_created_at": FUTURE}),
    "payment.source_id.required": ("payment", {"source_id": ""}),
    "payment.amount.non_negative": ("payment", {"amount_minor": -1}),
    "payment.currency.iso4217": ("payment", {"currency": "EURO"}),
    "payment.kind.known": ("payment", {"kind": "chargeback"}),
    "payment.occurred_at.not_future": ("payment", {"occurred_at": FUTURE}),
    "company.source_id.required": ("company", {"source_id": ""}),
    "company.domain.format": ("company", {"domain": "https://acme.com/"}),
    "company.country.iso3166": ("company", {"country": "D"}),
    "company.source_updated_at.not_future": ("company", {"source_updated_at": FUTURE}),
    "product.source_id.required": ("product", {"source_id": ""}),
    "product.price.non_negative": ("product", {"price_minor": -100}),
    "product.currency.iso4217": ("product", {"currency": "usd"}),
    "product.source_updated_at.not_future": ("product", {"source_updated_at": FUTURE}),
    "order.source_id.required": ("order", {"source_id": ""}),
    "order.total.non_negative": ("order", {"total_minor": -1}),
    "order.currency.iso4217": ("order", {"currency": "US$"}),
    "order.email.format": ("order", {"email": "a@b"}),
    "order.placed_at.not_future": ("order", {"placed_at": FUTURE}),
    "order.source_updated_at.not_future": ("order", {"source_updated_at": FUTURE}),
    "order_line.source_id.required": ("order", {"lines": (line(source_id=""),)}),
    "order_line.source_key.unique": ("order", {"lines": (line(), line(sku="SKU-2"))}),
    "order_line.quantity.non_negative": ("order", {"lines": (line(quantity=-2),)}),
    "order_line.unit_price.non_negative": ("order", {"lines": (line(unit_price_minor=-5),)}),
    "order_line.currency.iso4217": ("order", {"lines": (line(currency="usd"),)}),
    "inventory_level.source_id.required": ("inventory_level", {"source_id": ""}),
    "inventory_level.location.required": ("inventory_level", {"location": " "}),
    "inventory_level.available.non_negative": ("inventory_level", {"available": -3}),
    "inventory_level.source_updated_at.not_future": (
        "inventory_level", {"source_updated_at": FUTURE}),
}


@pytest.fixture(autouse=True)
def _skew(monkeypatch):
    from interchange.settings import reset_settings

    monkeypatch.setenv("INTERCHANGE_CLOCK_SKEW_SECONDS", str(SKEW))
    reset_settings()
    yield
    reset_settings()


def checks(report, index=0):
    return sorted(f["check"] for f in report.failures.get(index, []))


def test_every_expectation_has_a_failing_case():
    names = {e.name for c in EXPECTATIONS.values() for e in c.gx}
    names |= {e.name for c in EXPECTATIONS.values() for es in c.children.values() for e in es}
    unique = {n for n in names if n.endswith(".source_key.unique")}
    assert names - unique - {"order_line.source_key.unique"} <= set(BAD)
    assert set(BAD) <= names


@pytest.mark.parametrize("entity", sorted(GOOD))
def test_a_good_record_passes_every_expectation(entity):
    report = validate_batch(entity, [GOOD[entity](), GOOD[entity](source_id="other")],
                            now=NOW)
    assert report.failures == {}, report.failures


@pytest.fixture(scope="module")
def crafted():
    """One validation per entity: a good record, then every crafted bad one (fast)."""
    out = {}
    for entity in GOOD:
        names = sorted(c for c, (e, _) in BAD.items() if e == entity)
        records = [GOOD[entity](source_id="good")]
        for i, name in enumerate(names):
            bad = dict(BAD[name][1])
            if "lines" in bad:  # keep line ids unique across the batch's orders
                bad["lines"] = tuple(ln.model_copy(update={
                    "source_id": f"{i}-{ln.source_id}" if ln.source_id else ""})
                    for ln in bad["lines"])
            bad.setdefault("source_id", f"bad-{i}")
            records.append(GOOD[entity](**bad))
        report = validate_batch(entity, records, now=NOW)
        out.update({name: (report, i + 1) for i, name in enumerate(names)})
        assert 0 not in report.failures, report.failures[0]
    return out


@pytest.mark.parametrize("check", sorted(BAD))
def test_each_expectation_fails_on_its_crafted_record(check, crafted):
    report, index = crafted[check]
    assert checks(report, index) == [check]  # exactly that check, mapped back to its record
    failure = report.failures[index][0]
    assert failure["rule"].startswith("gx.expect_") and failure["message"]


@pytest.mark.parametrize("entity", sorted(GOOD))
def test_duplicate_source_keys_in_a_batch_fail_both_copies(entity):
    record = GOOD[entity]()
    report = validate_batch(entity, [record, GOOD[entity](source_id="x"), record], now=NOW)
    assert sorted(report.failures) == [0, 2]
    want = [f"{entity}.source_key.unique"]
    if entity == "order":  # the same order twice carries its lines twice
        want.append("order_line.source_key.unique")
    assert checks(report, 0) == sorted(want)


@pytest.mark.parametrize(("offset", "fails"), [
    (SKEW - 1, False), (SKEW, False), (SKEW + 1, True), (-10 * 365 * 86_400, False)])
def test_future_dates_are_allowed_up_to_the_clock_skew(offset, fails):
    when = dt.datetime.fromtimestamp(NOW + offset, dt.UTC)
    report = validate_batch("payment", [GOOD["payment"](occurred_at=when)], now=NOW)
    assert bool(report.failures) is fails


def test_the_skew_allowance_is_a_setting(monkeypatch):
    from interchange.settings import reset_settings

    when = dt.datetime.fromtimestamp(NOW + 600, dt.UTC)
    assert validate_batch("order", [GOOD["order"](placed_at=when)], now=NOW).failures
    monkeypatch.setenv("INTERCHANGE_CLOCK_SKEW_SECONDS", "900")
    reset_settings()
    assert not validate_batch("order", [GOOD["order"](placed_at=when)], now=NOW).failures


def test_missing_timestamps_and_optional_fields_pass():
    record = GOOD["customer"](email=None, phone=None, country=None, source_created_at=None)
    assert not validate_batch("customer", [record], now=NOW).failures


def test_a_bad_line_quarantines_its_order_once_per_check():
    orders = [GOOD["order"](source_id="o1", lines=(line(source_id="a", quantity=-1),
                                                   line(source_id="b", quantity=-1))),
              GOOD["order"](source_id="o2", lines=(line(source_id="c"),))]
    report = validate_batch("order", orders, now=NOW)
    assert list(report.failures) == [0]
    assert [f["check"] for f in report.failures[0]] == ["order_line.quantity.non_negative"] * 2
    assert {f["message"].split(":")[0] for f in report.failures[0]} == {"line a", "line b"}


def test_unknown_entity_is_an_error():
    with pytest.raises(ValueError, match="no expectations"):
        validate_batch("invoice", [GOOD["customer"]()])


def test_the_list_names_gx_rule_and_run_checks_per_entity():
    rows = as_table()
    layers = {(r["entity"], r["layer"]) for r in rows}
    for entity in EXPECTATIONS:
        assert (entity, "gx") in layers
    names = {r["name"] for r in rows}
    # code lists are rules (pycountry), their formats are gx, references are run checks
    assert {"money.currency", "country.iso3166", "customer.country.iso3166",
            "payment.currency.iso4217", "ref.order.customer",
            "ref.order_line.product"} <= names


def test_the_report_counts_per_check_without_personal_data():
    from process_apis.pipeline import Processed

    quality = RunQuality("stripe")
    bad = GOOD["customer"](source_id="c9", email="secret@example.com", phone="123")
    report = validate_batch("customer", [GOOD["customer"](), bad], now=NOW)
    processed = Processed(source="stripe", stream="customers", entity="customer", read=3,
                          records=[GOOD["customer"]()],
                          rejected=[Rejected("c9", {"email": "secret@example.com"},
                                             report.failures[1]),
                                    Rejected("c8", {"phone": "x"},
                                             [{"rule": "phone.e164", "message": "bad"}])])
    quality.add(processed)
    quality.add(processed)
    assert quality.totals == {"validated": 6, "passed": 2, "failed": 4}
    stream = quality.streams["customers"]
    assert dict(stream.by_check) == {"customer.phone.e164": 2, "phone.e164": 2}
    assert stream.examples["phone.e164"] == ["c8", "c8"]
    markdown = quality.markdown()
    assert "| customers | customer | 2 | 6 | 2 | 4 | 66.7% |" in markdown
    assert "`customer.phone.e164` | 2 | `c9`" in markdown
    assert "secret" not in markdown and "example.com" not in markdown
    assert quality.key == "quality-stripe"
