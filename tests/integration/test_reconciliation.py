"""Order-to-cash reconciliation against a real hub (SQLite and PostgreSQL) and a real
Prefect server: the loader's joins and date range, the flow's CSV export, artifacts and
the id-only ``interchange.reconciliation.mismatch`` event.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from interchange.store import session_scope
from process_apis import identity
from process_apis.canonical.models import Customer, Order, Payment
from process_apis.reconciliation import load_rows, reconcile

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
EMAILS = ("ann@example.com", "bob@example.com")


def seed(url: str) -> None:
    """Two people, each a Shopify and a Stripe customer; orders and charges covering
    every category (see the expectations in the tests)."""
    with session_scope(url) as s:
        ids: dict[tuple[str, str], str] = {}
        for source, sid, email, name in [("shopify", "s-ann", EMAILS[0], "Ann Lee"),
                                         ("stripe", "cus_ann", EMAILS[0], "Ann Lee"),
                                         ("shopify", "s-bob", EMAILS[1], "Bob Stone"),
                                         ("stripe", "cus_bob", EMAILS[1], "Bob Stone")]:
            c = Customer(source=source, source_id=sid, email=email, name=name)
            s.add(c)
            ids[(source, sid)] = c.id

        def order(sid, number, who, total, currency="EUR", status="paid", at=T0):
            s.add(Order(source="shopify", source_id=sid, number=number, status=status,
                        customer_id=ids[("shopify", f"s-{who}")], customer_source_id=f"s-{who}",
                        email=f"{who}@example.com", total_minor=total, currency=currency,
                        placed_at=at))  # fmt: skip

        def charge(sid, who, amount, currency="EUR", ref=None, status="succeeded", at=T0,
                   kind="payment", related=None):  # fmt: skip
            s.add(Payment(source="stripe", source_id=sid, kind=kind, status=status,
                          customer_id=ids[("stripe", f"cus_{who}")] if who else None,
                          customer_source_id=f"cus_{who}" if who else None, order_ref=ref,
                          related_source_id=related, amount_minor=amount, currency=currency,
                          occurred_at=at))  # fmt: skip

        order("5001", "#1001", "ann", 5000)  # by reference
        order("5002", "#1002", "bob", 2500, at=T0 + H)  # by customer (golden) and amount
        order("5003", "#1003", "ann", 3000)  # amount mismatch
        order("5004", "#1004", "bob", 1000, currency="USD")  # currency mismatch
        order("5005", "#1005", "ann", 700)  # paid, no payment: unmatched
        order("5006", "#1006", "bob", 800, status="pending")  # not due
        order("5007", "#1007", "ann", 100, at=T0 + 30 * 24 * H)  # outside a range
        charge("ch_1", "ann", 5000, ref="ORD-1001")
        charge("ch_2", "bob", 2500, at=T0 + 3 * H)
        charge("ch_3", "ann", 2900, ref="#1003")
        charge("ch_4", "bob", 1000, currency="GBP", ref="1004")
        charge("ch_5", "ann", 999)  # orphan
        charge("ch_6", "ann", 700, ref="#1005", status="failed")  # not settled
        charge("ch_7", "ann", 100, ref="#1007", at=T0 + 30 * 24 * H)
        charge("re_1", None, 500, kind="refund", related="ch_1")  # refund of a matched order
        charge("re_2", None, 999, kind="refund", related="ch_5")  # refund without order
    identity.resolve(database_url=url)


def test_loader_joins_golden_customers_and_reads_a_range(hub_url):
    seed(hub_url)
    orders, payments = load_rows(database_url=hub_url)
    assert len(orders) == 7 and len(payments) == 9
    by_sid = {o.source_id: o for o in orders}
    assert by_sid["5001"].golden_id and by_sid["5001"].placed_at == T0
    ann_charge = next(p for p in payments if p.source_id == "ch_1")
    assert ann_charge.golden_id == by_sid["5001"].golden_id  # Shopify and Stripe Ann: one
    assert ann_charge.email == EMAILS[0] and ann_charge.order_ref == "ORD-1001"
    assert by_sid["5002"].golden_id != by_sid["5001"].golden_id

    result = reconcile(orders, payments)
    c = result.counts
    assert (c["matched_by_reference"], c["matched_by_customer"], c["amount_mismatch"],
            c["currency_mismatch"], c["unmatched_order"], c["orphan_payment"],
            c["refund_without_order"]) == (2, 1, 1, 1, 1, 1, 1)  # fmt: skip
    assert (c["orders_considered"], c["orders_not_due"], c["refunds_matched"]) == (6, 1, 1)

    # March 1st only: order 5007 and its charge (30 days later) are out of range.
    day = dt.timedelta(days=1)
    orders, payments = load_rows(database_url=hub_url, since=T0 - 12 * H, until=T0 + 12 * H,
                                 margin=72 * H)  # fmt: skip
    assert "5007" not in {o.source_id for o in orders}
    ranged = reconcile(orders, payments, window=72 * H, report_from=T0 - 12 * H,
                       report_until=T0 - 12 * H + day)  # fmt: skip
    assert ranged.counts["orders"] == 6 and ranged.counts["matched_by_reference"] == 1
    assert ranged.problems == 5


@pytest.fixture
def export_home(sync_hub, tmp_path, monkeypatch) -> Path:
    from interchange.settings import reset_settings

    home = tmp_path / "home"
    monkeypatch.setenv("INTERCHANGE_HOME", str(home))
    reset_settings()
    yield home
    reset_settings()


def _find_artifacts(api_url: str, flow_run_id: str) -> dict[str, dict]:
    import httpx

    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    found = httpx.post(f"{api_url}/artifacts/filter", json=body).json()
    return {a["key"]: a for a in found}


def test_reconcile_orders_flow_exports_publishes_and_alerts(sync_hub, export_home,
                                                           prefect_server):  # fmt: skip
    import httpx
    from prefect.events.worker import EventsWorker

    from flows.reconcile_orders import ReconcileParams, reconcile_orders
    from interchange.store import migrate
    from tests.fixtures.common import wait_until

    migrate(sync_hub)
    seed(sync_hub)
    state = reconcile_orders(ReconcileParams(mismatch_threshold=0.5), return_state=True)
    assert state.is_completed()
    out = state.result()
    assert (out["matched_by_reference"], out["matched_by_customer"], out["amount_mismatch"],
            out["currency_mismatch"], out["unmatched_order"], out["orphan_payment"],
            out["refund_without_order"], out["problems"]) == (2, 1, 1, 1, 1, 1, 1, 5)  # fmt: skip
    assert out["mismatch_rate"] == round(5 / 6, 6) and out["alerted"] is True

    # The CSV: every finding, ids and amounts only.
    export = Path(out["export"])
    assert export.parent == export_home / "exports"
    assert export.name.startswith("reconciliation-") and export.suffix == ".csv"
    rows = list(csv.DictReader(export.open()))
    assert len(rows) == 8
    by_cat = {(r["category"], r["order_number"] or r["payment_source_ids"]) for r in rows}
    assert by_cat == {
        ("matched_by_reference", "#1001"), ("matched_by_reference", "#1007"),
        ("matched_by_customer", "#1002"), ("amount_mismatch", "#1003"),
        ("currency_mismatch", "#1004"), ("unmatched_order", "#1005"),
        ("orphan_payment", "ch_5"), ("refund_without_order", "re_2"),
    }  # fmt: skip
    text = export.read_text()
    assert not any(e in text for e in EMAILS) and "Ann" not in text and "Bob" not in text

    # The artifacts on the server: a table of the problems and the summary.
    run_id = str(state.state_details.flow_run_id)
    artifacts = _find_artifacts(prefect_server.api_url, run_id)
    assert {"reconciliation-findings", "reconciliation-summary"} <= set(artifacts)
    table = artifacts["reconciliation-findings"]
    assert table["type"] == "table"
    assert export.name in table["description"]
    assert "ch_5" in str(table["data"]) and "example.com" not in str(table["data"])
    summary = artifacts["reconciliation-summary"]["data"]
    assert "83.33%" in summary and export.name in summary

    # The mismatch event: rate, threshold and counts, no personal data.
    EventsWorker.drain_all(timeout=10)

    def mismatch_events():
        body = {"filter": {"event": {"name": ["interchange.reconciliation.mismatch"]},
                           "related": {"id": [f"prefect.flow-run.{run_id}"]}},
                "limit": 10}  # fmt: skip
        return httpx.post(f"{prefect_server.api_url}/events/filter", json=body).json()["events"]

    wait_until(lambda: len(mismatch_events()) == 1, timeout=20)
    (event,) = mismatch_events()
    assert event["resource"]["prefect.resource.id"] == "interchange.reconciliation.order-to-cash"
    assert event["payload"]["rate"] == out["mismatch_rate"]
    assert event["payload"]["threshold"] == 0.5
    assert event["payload"]["counts"]["unmatched_order"] == 1
    assert event["payload"]["export"] == export.name
    text = str(event)
    assert not any(e in text for e in EMAILS) and "Lee" not in text and "Stone" not in text

    # A day range leaves March 31st's order out (5 problems / 5 orders considered);
    # a rate equal to the threshold is not above it: no alert.
    quiet = reconcile_orders(ReconcileParams(mismatch_threshold=1.0, since=dt.date(2026, 3, 1),
                                             until=dt.date(2026, 3, 1)))  # fmt: skip
    assert quiet["orders"] == 6 and quiet["matched_by_reference"] == 1
    assert (quiet["problems"], quiet["mismatch_rate"], quiet["alerted"]) == (5, 1.0, False)
    assert Path(quiet["export"]) != export and Path(quiet["export"]).exists()


def test_params_reject_a_backwards_range():
    from pydantic import ValidationError

    from flows.reconcile_orders import ReconcileParams

    with pytest.raises(ValidationError, match="until must be on or after since"):
        ReconcileParams(since=dt.date(2026, 3, 2), until=dt.date(2026, 3, 1))
    since, until = ReconcileParams(since=dt.date(2026, 3, 1),
                                   until=dt.date(2026, 3, 1)).bounds()  # fmt: skip
    assert (since, until) == (dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                              dt.datetime(2026, 3, 2, tzinfo=dt.UTC))  # fmt: skip
