"""``interchange quarantine list | show | replay | stats`` on a real hub (CliRunner)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from interchange.store import session_scope
from process_apis import hub
from process_apis.canonical.models import Customer, Payment, QuarantineRecord
from process_apis.cli import app
from process_apis.mapping.base import Rejected
from sandboxes.shopify.seed import generate

CREATED = 1_767_225_600
OLD_RULE = [{"rule": "email.valid", "message": "rejected by last week's (too strict) rule"}]


def cust(i, **kw):
    return {"id": f"cus_{i}", "object": "customer", "created": CREATED,
            "email": f"user{i}@example.com", "phone": "+14155550132", "name": f"U {i}",
            "address": {"country": "US"}, **kw}


def charge(i, customer):
    return {"id": f"ch_{i}", "object": "charge", "amount": 1000, "currency": "usd",
            "created": CREATED, "status": "succeeded", "customer": customer}


@pytest.fixture
def hub_db(sqlite_url):
    """Four open quarantine rows, as left by earlier syncs: three would pass today's rules
    (a rule was too strict then), one is still broken."""
    shop_customer = next(body for resource, body in generate(3) if resource == "customers")
    with session_scope(sqlite_url) as s:
        hub.quarantine(s, entity="customer", source="stripe", stream="customers", rejected=[
            Rejected("cus_1", cust(1), OLD_RULE),
            Rejected("cus_2", cust(2, email="not-an-email"), OLD_RULE)])
        hub.quarantine(s, entity="payment", source="stripe", stream="payments", rejected=[
            Rejected("ch_3", charge(3, "cus_1"), [{"rule": "money.currency", "message": "x"}])])
        hub.quarantine(s, entity="customer", source="shopify", stream="customers", rejected=[
            Rejected(str(shop_customer["id"]), shop_customer, OLD_RULE)])
    return sqlite_url


def cli(url, *args, code=0):
    result = CliRunner().invoke(app, [*args, "--database-url", url])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def ids(url, **filters):
    with session_scope(url) as s:
        return {(r.source, r.source_id): r for r in hub.list_quarantine(s, **filters)}


def test_list_defaults_to_every_source_and_filters(hub_db):
    rows = json.loads(cli(hub_db, "list", "--json").output)
    assert {(r["source"], r["entity"]) for r in rows} == {
        ("stripe", "customer"), ("stripe", "payment"), ("shopify", "customer")}
    assert len(rows) == 4 and all(r["status"] == "open" and r["failed_rules"] for r in rows)
    assert len(json.loads(cli(hub_db, "list", "--json", "--source", "shopify").output)) == 1
    only = json.loads(cli(hub_db, "list", "--json", "--entity", "payment").output)
    assert [r["source_id"] for r in only] == ["ch_3"]
    assert json.loads(cli(hub_db, "list", "--json", "--status", "replayed").output) == []
    table = cli(hub_db, "list").output
    assert "4 quarantine records" in table and "cus_2" in table
    bad = cli(hub_db, "list", "--entity", "invoice", code=1)
    assert "unknown entity 'invoice'" in bad.output
    assert "unknown status" in cli(hub_db, "list", "--status", "closed", code=1).output


def test_show_prints_the_record_its_rules_payload_and_history(hub_db):
    row = ids(hub_db)[("stripe", "cus_2")]
    body = json.loads(cli(hub_db, "show", str(row.id)).output)
    assert body["source_id"] == "cus_2" and body["entity"] == "customer"
    assert body["failed_rules"] == OLD_RULE and body["raw"]["email"] == "not-an-email"
    assert body["occurrences"] == 1 and body["status"] == "open"
    assert body["first_seen_at"] and body["replayed_at"] is None
    missing = cli(hub_db, "show", "99999", code=1)
    assert "no quarantine record 99999" in missing.output


def test_replay_by_entity_then_source_then_everything(hub_db):
    out = json.loads(cli(hub_db, "replay", "--entity", "payment").output)
    assert (out["candidates"], out["replayed"], out["still_failing"]) == (1, 1, 0)
    assert out["by_source"] == {"stripe": {"payment": {"candidates": 1, "replayed": 1,
                                                       "still_failing": 0}}}
    assert ids(hub_db, status="open").keys() == {
        ("stripe", "cus_1"), ("stripe", "cus_2"), ("shopify", next(
            k[1] for k in ids(hub_db) if k[0] == "shopify"))}

    out = json.loads(cli(hub_db, "replay", "--source", "shopify").output)
    assert (out["candidates"], out["replayed"]) == (1, 1)
    assert ("shopify",) not in {(k[0],) for k in ids(hub_db, status="open")}

    out = json.loads(cli(hub_db, "replay").output)  # all that is left: stripe customers
    assert (out["candidates"], out["replayed"], out["still_failing"]) == (2, 1, 1)
    rows = ids(hub_db)
    assert rows[("stripe", "cus_1")].status == "replayed"
    still = rows[("stripe", "cus_2")]
    assert still.status == "open" and still.occurrences == 2
    assert [f["rule"] for f in still.failed_rules] == ["email.valid"]  # today's reason
    assert still.failed_rules != OLD_RULE
    with session_scope(hub_db) as s:
        assert s.exec(select(func.count()).select_from(QuarantineRecord)).one() == 4  # kept
        assert {c.source_id for c in s.exec(select(Customer)).all()} >= {"cus_1"}
        payment = s.exec(select(Payment)).one()
        customer = s.exec(select(Customer).where(Customer.source_id == "cus_1")).one()
    assert payment.customer_id == customer.id  # linked once its customer was replayed


def test_replay_by_ids_and_bad_input(hub_db):
    rows = ids(hub_db)
    wanted = rows[("stripe", "cus_1")].id
    out = json.loads(cli(hub_db, "replay", "--id", str(wanted)).output)
    assert (out["candidates"], out["replayed"]) == (1, 1)
    assert "not open" in cli(hub_db, "replay", "--id", str(wanted), code=1).output
    assert "no quarantine record 424242" in cli(hub_db, "replay", "--id", "424242",
                                                code=1).output
    assert "unknown entity" in cli(hub_db, "replay", "--entity", "nope", code=1).output
    refused = cli(hub_db, "replay", "--source", "shopify", "--refetch", code=1)
    assert "refetch is not available for source 'shopify'" in refused.output


def test_stats_counts_by_source_entity_status_and_rule(hub_db):
    cli(hub_db, "replay", "--entity", "payment")
    body = json.loads(cli(hub_db, "stats", "--json").output)
    assert body["by_status"] == [
        {"source": "shopify", "entity": "customer", "status": "open", "count": 1},
        {"source": "stripe", "entity": "customer", "status": "open", "count": 2}]
    assert body["by_rule"] == [
        {"source": "shopify", "entity": "customer", "rule": "email.valid", "count": 1},
        {"source": "stripe", "entity": "customer", "rule": "email.valid", "count": 2}]
    # The replayed payment landed, but its customer (cus_1) is still in the quarantine.
    assert body["orphans"] == [{"source": "stripe", "check": "ref.payment.customer",
                                "count": 1}]
    every = json.loads(cli(hub_db, "stats", "--json", "--status", "all").output)
    assert {"source": "stripe", "entity": "payment", "status": "replayed",
            "count": 1} in every["by_status"]
    text = cli(hub_db, "stats").output
    assert "Quarantine by source" in text and "By failed rule" in text
    cli(hub_db, "replay", "--source", "stripe")
    assert json.loads(cli(hub_db, "stats", "--json").output)["orphans"] == []
