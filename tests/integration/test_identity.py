"""Customer 360: matching, stable golden ids, survivorship with provenance, undoing merges.

Runs on the hub on SQLite and PostgreSQL (``hub_url``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from interchange.errors import ConfigError
from interchange.store import session_scope
from process_apis import identity
from process_apis.canonical.models import Customer, CustomerLink, GoldenCustomer

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def add(url: str, source: str, sid: str, *, minutes: int = 0, **values) -> str:
    with session_scope(url) as s:
        row = s.exec(select(Customer).where(Customer.source == source,
                                            Customer.source_id == sid)).first()
        if row is None:
            row = Customer(source=source, source_id=sid)
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = T0 + dt.timedelta(minutes=minutes)
        s.add(row)
        s.flush()
        return row.id


def golden_of(url: str) -> dict[tuple[str, str], str]:
    with session_scope(url) as s:
        rows = s.exec(select(Customer.source, Customer.source_id, CustomerLink.golden_id)
                      .join(CustomerLink, CustomerLink.customer_id == Customer.id)).all()
        return {(src, sid): gid for src, sid, gid in rows}


def golden(url: str, gid: str) -> GoldenCustomer:
    with session_scope(url) as s:
        g = s.get(GoldenCustomer, gid)
        s.expunge(g)
        return g


def test_one_person_in_four_systems_is_one_golden_customer(hub_url):
    # The same person, each system in its own formats (already canonical in the hub:
    # e-mails lower-cased, phones E.164) and with a stale phone in the CRM.
    add(hub_url, "hubspot", "101", email="ann.lee@example.com", name="Ann Lee",
        phone="+14155550100", minutes=1)
    add(hub_url, "stripe", "cus_A", email="ann.lee@example.com", name="Ann Lee", minutes=5)
    add(hub_url, "shopify", "9001", email=None, name="Lee, Ann", phone="+14155550199",
        country="US", minutes=9)  # no e-mail: matched by phone + surname
    add(hub_url, "erp", "C-7", email="ann.lee@example.com", name="ANN LEE",
        phone="+14155550199", country="GB", minutes=3)
    # Someone else on Ann's old phone line, another surname: not merged.
    add(hub_url, "shopify", "9002", name="Bob Stone", phone="+14155550100", minutes=2)
    # No e-mail, no name: alone.
    add(hub_url, "stripe", "cus_X", phone="+14155550100", minutes=2)

    result = identity.resolve(database_url=hub_url)
    assert result.counts()["golden"] == 3 and len(result.created) == 3
    assert result.by_match == {"email": 3, "phone+name": 1, "alone": 2}
    links = golden_of(hub_url)
    ann = links[("hubspot", "101")]
    assert {k for k, v in links.items() if v == ann} == {
        ("hubspot", "101"), ("stripe", "cus_A"), ("shopify", "9001"), ("erp", "C-7")}
    g = golden(hub_url, ann)
    # survivorship.yaml: e-mail and name by source priority (hubspot first), phone most
    # recent (the shop's, not the CRM's stale one), country ERP first.
    assert (g.email, g.name, g.phone, g.country, g.members) == (
        "ann.lee@example.com", "Ann Lee", "+14155550199", "GB", 4)
    assert g.provenance["phone"]["source"] == "shopify"
    assert g.provenance["phone"]["source_id"] == "9001"
    assert g.provenance["country"] == {"source": "erp", "source_id": "C-7",
                                       "customer_id": g.provenance["country"]["customer_id"]}

    again = identity.resolve(database_url=hub_url)
    assert again.created == again.updated == again.merged == [] and again.unchanged == 3
    assert golden_of(hub_url) == links  # stable ids


def test_an_email_change_moves_the_record_and_merges_keep_the_older_id(hub_url):
    add(hub_url, "hubspot", "1", email="a@example.com", name="A One")
    add(hub_url, "shopify", "1", email="a@example.com", name="A One")
    add(hub_url, "stripe", "c", email="c@example.com", name="C Three")
    identity.resolve(database_url=hub_url)
    before = golden_of(hub_url)
    ga, gc = before[("hubspot", "1")], before[("stripe", "c")]

    # The CRM record's owner changes its e-mail to C's: it moves to C's golden
    # customer; the shop's record keeps A's golden id.
    add(hub_url, "hubspot", "1", email="c@example.com", name="C Three", minutes=10)
    result = identity.resolve(database_url=hub_url)
    after = golden_of(hub_url)
    assert after[("shopify", "1")] == ga
    assert after[("hubspot", "1")] == after[("stripe", "c")] == gc
    assert result.created == [] and result.merged == []

    # Now the shop's record takes C's e-mail too: A's golden customer is absorbed.
    add(hub_url, "shopify", "1", email="c@example.com", minutes=20)
    result = identity.resolve(database_url=hub_url)
    assert result.merged == [(ga, gc)]
    assert set(golden_of(hub_url).values()) == {gc}
    with session_scope(hub_url) as s:
        assert identity.golden_view(s, ga)["golden"].id == gc  # the old id still leads
        absorbed = s.get(GoldenCustomer, ga)
        # only the pointer is kept, not the absorbed record's personal data
        assert (absorbed.email, absorbed.name, absorbed.phone, absorbed.provenance) == (
            None, None, None, {})
    # Every source record gone (an erasure): the golden customer and pointers to it go.
    for source, sid in (("hubspot", "1"), ("shopify", "1"), ("stripe", "c")):
        add(hub_url, source, sid, deleted=True, minutes=30)
    identity.resolve(database_url=hub_url)
    with session_scope(hub_url) as s:
        assert s.exec(select(GoldenCustomer)).all() == []
        assert identity.golden_view(s, ga) is None


def test_a_wrong_merge_is_undone_and_stays_undone(hub_url):
    a = add(hub_url, "hubspot", "1", email="shared@example.com", name="Pat Doe")
    add(hub_url, "stripe", "p", email="shared@example.com", name="Pat Roe")
    identity.resolve(database_url=hub_url)
    merged = golden_of(hub_url)
    assert merged[("hubspot", "1")] == merged[("stripe", "p")]

    new = identity.split(a, database_url=hub_url)
    links = golden_of(hub_url)
    assert links[("hubspot", "1")] == new != links[("stripe", "p")]
    assert links[("stripe", "p")] == merged[("stripe", "p")]  # the rest keeps its id
    assert golden(hub_url, new).email == "shared@example.com"
    identity.resolve(database_url=hub_url)
    assert golden_of(hub_url) == links  # automatic matching leaves a pinned link alone
    identity.unpin(a, database_url=hub_url)
    assert len(set(golden_of(hub_url).values())) == 1
    with pytest.raises(ConfigError, match="not linked"):
        identity.split("cus_nope", database_url=hub_url)


def test_deleted_source_records_leave_and_empty_goldens_go(hub_url):
    add(hub_url, "hubspot", "1", email="x@example.com", name="X")
    add(hub_url, "stripe", "x", email="y@example.com", name="Y")
    identity.resolve(database_url=hub_url)
    add(hub_url, "stripe", "x", deleted=True)
    identity.resolve(database_url=hub_url)
    assert set(golden_of(hub_url)) == {("hubspot", "1")}
    with session_scope(hub_url) as s:
        assert len(s.exec(select(GoldenCustomer)).all()) == 1


def test_surnames_and_rules_file(tmp_path):
    assert identity.surname("Ann Lee") == identity.surname("Lee, Ann") == "lee"
    assert identity.surname("José  Núñez-García") == "nunez-garcia"
    assert identity.surname("  ") is None and identity.surname("42") is None
    bad = tmp_path / "rules.yaml"
    bad.write_text("customer:\n  phone: {rule: loudest}\n")
    with pytest.raises(ConfigError, match="customer.phone"):
        identity.load_rules(bad)
    bad.write_text("customer:\n  shoe_size: {rule: most_recent}\n")
    with pytest.raises(ConfigError, match="shoe_size"):
        identity.load_rules(bad)
    assert identity.load_rules()["email"].order[0] == "hubspot"


def test_resolve_customers_flow_emits_id_only_events(sync_hub, prefect_server):
    import httpx
    from prefect.events.worker import EventsWorker

    from flows.resolve_customers import resolve_customers
    from interchange.store import migrate
    from tests.fixtures.common import wait_until

    migrate(sync_hub)
    add(sync_hub, "hubspot", "1", email="eve@example.com", name="Eve Adams",
        phone="+14155550123")
    add(sync_hub, "stripe", "e", email="eve@example.com", name="Eve Adams")
    add(sync_hub, "erp", "Z", email="zed@example.com", name="Zed Zee")
    counts = resolve_customers()
    assert (counts["customers"], counts["golden"], counts["created"], counts["events"]) == (
        3, 2, 2, 2)
    EventsWorker.drain_all(timeout=10)
    links = golden_of(sync_hub)

    def created():
        body = {"filter": {"event": {"name": ["interchange.customer.created"]},
                           "any_resource": {"id_prefix": ["interchange.customer."]}},
                "limit": 50}  # fmt: skip
        events = httpx.post(f"{prefect_server.api_url}/events/filter", json=body).json()
        return [e for e in events["events"]
                if e["payload"].get("golden_id") in set(links.values())]

    wait_until(lambda: len(created()) == 2, timeout=20)
    for event in created():
        text = str(event)
        assert "eve@example.com" not in text and "Adams" not in text and "+1415" not in text
        assert event["resource"]["prefect.resource.id"] == (
            f"interchange.customer.{event['payload']['golden_id']}")
    assert resolve_customers()["events"] == 0  # nothing changed: nothing to announce


def test_customers_cli_resolves_shows_and_splits(sqlite_url):
    import json

    from typer.testing import CliRunner

    from process_apis.cli import customers_app

    runner = CliRunner()
    ann = add(sqlite_url, "hubspot", "1", email="ann@example.com", name="Ann Lee")
    add(sqlite_url, "stripe", "a", email="ann@example.com", name="Ann Lee")
    out = runner.invoke(customers_app, ["resolve", "--database-url", sqlite_url])
    assert out.exit_code == 0 and json.loads(out.stdout)["golden"] == 1
    gid = golden_of(sqlite_url)[("hubspot", "1")]
    shown = json.loads(runner.invoke(customers_app, ["show", gid, "--database-url",
                                                     sqlite_url]).stdout)  # fmt: skip
    assert shown["provenance"]["email"]["source"] == "hubspot"
    assert {m["source"] for m in shown["members"]} == {"hubspot", "stripe"}
    out = runner.invoke(customers_app, ["split", ann, "--database-url", sqlite_url])
    assert out.exit_code == 0 and golden_of(sqlite_url)[("hubspot", "1")] == out.stdout.strip()
    out = runner.invoke(customers_app, ["split", "cus_missing", "--database-url", sqlite_url])
    assert out.exit_code == 1 and "not linked" in out.stderr
    assert runner.invoke(customers_app, ["show", "gld_nope", "--database-url",
                                         sqlite_url]).exit_code == 1  # fmt: skip


def test_api_serves_the_customer_360(sqlite_url):
    from fastapi.testclient import TestClient

    from experience_apis.http.app import create_app
    from experience_apis.http.keys import create_key
    from interchange.store import get_engine
    from process_apis.canonical.models import Order, Payment

    hs = add(sqlite_url, "hubspot", "51", email="ada@example.com", name="Ada Lovelace",
             minutes=1)
    st = add(sqlite_url, "stripe", "cus_ada", email="ada@example.com", name="A. Lovelace",
             phone="+442079460018", minutes=2)
    sh = add(sqlite_url, "shopify", "77", email="ada@example.com", minutes=3)
    other = add(sqlite_url, "stripe", "cus_bob", email="bob@example.com", name="Bob")
    with session_scope(sqlite_url) as s:
        for i in range(3):
            s.add(Payment(source="stripe", source_id=f"ch_{i}", kind="payment",
                          customer_id=st, amount_minor=100 * (i + 1), currency="GBP",
                          status="succeeded", occurred_at=T0 + dt.timedelta(days=i)))
        s.add(Payment(source="stripe", source_id="ch_bob", kind="payment", customer_id=other,
                      amount_minor=5, currency="USD", status="succeeded"))
        s.add(Order(source="shopify", source_id="1001", number="1001", customer_id=sh,
                    status="paid", total_minor=600, currency="GBP", placed_at=T0))
        _, full = create_key(s, name="full", scopes=["customers:read", "payments:read"])
        _, narrow = create_key(s, name="narrow", scopes=["customers:read"])
    before = TestClient(create_app(database_url=sqlite_url))
    record = before.get(f"/v1/customers/{hs}", headers={"X-API-Key": full}).json()
    assert record["golden_id"] is None  # not resolved yet: said, not guessed
    identity.resolve(database_url=sqlite_url)
    with TestClient(create_app(database_url=sqlite_url)) as client:
        record = client.get(f"/v1/customers/{hs}", headers={"X-API-Key": full}).json()
        gid = record["golden_id"]
        assert gid.startswith("gld_")
        listed = client.get("/v1/customers", headers={"X-API-Key": full}).json()["data"]
        assert {c["id"]: c["golden_id"] for c in listed}[st] == gid
        body = client.get(f"/v1/customers/{gid}", headers={"X-API-Key": full}).json()
        assert (body["id"], body["email"], body["name"], body["phone"]) == (
            gid, "ada@example.com", "Ada Lovelace", "+442079460018")
        assert body["provenance"]["name"]["source"] == "hubspot"
        assert body["provenance"]["phone"]["customer_id"] == st
        assert {r["source"] for r in body["sources"]} == {"hubspot", "stripe", "shopify"}
        assert [o["number"] for o in body["orders"]] == ["1001"] and body["order_count"] == 1
        assert [p["source_id"] for p in body["payments"]] == ["ch_2", "ch_1", "ch_0"]
        assert body["payment_count"] == 3
        limited = client.get(f"/v1/customers/{gid}", headers={"X-API-Key": narrow}).json()
        assert limited["payments"] is None and limited["orders"]
        missing = client.get("/v1/customers/gld_nope", headers={"X-API-Key": full})
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    get_engine(sqlite_url).dispose()
