"""CRM enrichment: metrics on a hand-made hub (SQLite and PostgreSQL) and pushes to the
HubSpot sandbox through the ``enrich-crm`` flow - exact values, idempotent, only changes."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from flows.enrich_crm import EnrichCrmParams, EnrichmentFailed, enrich_crm
from interchange import vaultdev
from interchange.settings import SourceConfig
from interchange.store import get_engine, migrate, session_scope
from process_apis.canonical.models import (
    Customer,
    CustomerLink,
    EnrichmentPush,
    GoldenCustomer,
    Order,
    Payment,
)
from process_apis.enrichment import (
    LAST_ORDER_DATE,
    LTV,
    ORDER_COUNT,
    PROPERTIES,
    compute_chunk,
    enrich_chunk,
)
from system_apis.hubspot.client import hubspot_client
from tests.fixtures.databases import count_rows

T = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)


class HubBuilder:
    """Hand-made hub rows: golden customers with source customers, orders and payments."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n:06d}"

    def golden(self, gid: str, email: str | None, *, merged_into: str | None = None) -> str:
        with session_scope(self.url) as s:
            s.add(GoldenCustomer(id=gid, email=email, provenance={}, members=1,
                                 merged_into=merged_into))  # fmt: skip
        return gid

    def customer(self, gid: str, source: str) -> str:
        cid = self._id("cus")
        with session_scope(self.url) as s:
            s.add(Customer(id=cid, source=source, source_id=cid))
            s.add(CustomerLink(customer_id=cid, golden_id=gid, matched_by="email"))
        return cid

    def order(self, cid: str, *, total: int = 1000, currency: str = "USD",
              status: str = "paid", at: dt.datetime | None = T, source: str = "shopify"
              ) -> str:  # fmt: skip
        oid = self._id("ord")
        with session_scope(self.url) as s:
            s.add(Order(id=oid, source=source, source_id=oid, customer_id=cid, status=status,
                        total_minor=total, currency=currency, placed_at=at))  # fmt: skip
        return oid

    def pay(self, cid: str, amount: int, *, currency: str = "USD", kind: str = "payment",
            status: str = "succeeded") -> str:  # fmt: skip
        pid = self._id("pay")
        with session_scope(self.url) as s:
            s.add(Payment(id=pid, source="stripe", source_id=pid, kind=kind, customer_id=cid,
                          amount_minor=amount, currency=currency, status=status))  # fmt: skip
        return pid


def hand_made_hub(url: str) -> HubBuilder:
    b = HubBuilder(url)
    # Ann: three source records; orders in two sources; a cancelled one; refunds and
    # failed/pending money that must not count.
    b.golden("gld_a", "ann@example.com")
    hs, shop, stripe = (b.customer("gld_a", s) for s in ("hubspot", "shopify", "stripe"))
    erp = b.customer("gld_a", "erp")
    b.order(shop, at=dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC))
    b.order(erp, source="erp", at=dt.datetime(2026, 2, 3, 23, 30, tzinfo=dt.UTC))
    b.order(shop, status="cancelled", at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    b.order(shop, status="voided", at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    b.order(shop, status="refunded", at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
    b.pay(stripe, 5000)
    b.pay(stripe, 700, status="failed")
    b.pay(stripe, 1500, kind="refund")
    b.pay(stripe, 200, kind="refund", status="pending")
    b.pay(stripe, 300, kind="refund", status="failed")
    assert hs
    # Bob: money in two currencies -> no lifetime value in USD.
    b.golden("gld_b", "bob@example.com")
    bob = b.customer("gld_b", "stripe")
    b.pay(bob, 1000)
    b.pay(bob, 2000, currency="EUR")
    b.order(bob, at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    # No e-mail: cannot be keyed in HubSpot.
    b.golden("gld_c", None)
    b.order(b.customer("gld_c", "shopify"))
    # Carl: no activity at all.
    b.golden("gld_d", "carl@example.com")
    b.customer("gld_d", "hubspot")
    # Dana: EUR only.
    b.golden("gld_e", "dana@example.com")
    dana = b.customer("gld_e", "stripe")
    b.pay(dana, 1234, currency="EUR")
    # A merged golden customer is not pushed (its members now link to Ann).
    b.golden("gld_f", "ann.old@example.com", merged_into="gld_a")
    return b


def metrics_of(url: str, *, size: int, currency: str = "USD") -> dict[str, tuple]:
    out, after = {}, None
    with get_engine(url).connect() as conn:
        while chunk := compute_chunk(conn, after=after, size=size, currency=currency):
            for m in chunk:
                day = m.last_order_at.date().isoformat() if m.last_order_at else None
                out[m.golden_id] = (m.email, m.order_count, day, m.net_minor,
                                    m.other_currency, m.payments)  # fmt: skip
            after = chunk[-1].golden_id
    return out


def test_metrics_on_a_hand_made_hub(hub_url):
    hand_made_hub(hub_url)
    want = {
        "gld_a": ("ann@example.com", 3, "2026-02-03", 3500, 0, 2),
        "gld_b": ("bob@example.com", 1, "2026-01-02", 1000, 1, 2),
        "gld_c": (None, 1, "2026-01-10", 0, 0, 0),
        "gld_d": ("carl@example.com", 0, None, 0, 0, 0),
        "gld_e": ("dana@example.com", 0, None, 0, 1, 1),
    }
    assert metrics_of(hub_url, size=1000) == want
    assert metrics_of(hub_url, size=2) == want  # keyset chunks see the same
    eur = metrics_of(hub_url, size=3, currency="EUR")
    assert eur["gld_e"][3:5] == (1234, 0) and eur["gld_b"][3:5] == (2000, 1)

    out = enrich_chunk(None, dry_run=True, database_url=hub_url).as_dict()
    assert {k: out[k] for k in ("computed", "changed", "pushed", "unchanged",
                                "skipped_no_email", "skipped_no_activity",
                                "ltv_other_currency", "failed", "requests")} == {
        "computed": 5, "changed": 3, "pushed": 0, "unchanged": 0, "skipped_no_email": 1,
        "skipped_no_activity": 1, "ltv_other_currency": 2, "failed": 0, "requests": 0,
    }  # fmt: skip
    assert out["changed_properties"] == {LAST_ORDER_DATE: 3, LTV: 3, ORDER_COUNT: 3}
    assert count_rows(hub_url, EnrichmentPush) == 0  # a dry run records nothing


# ------------------------------------------------------------------- the sandbox


@pytest.fixture
def crm(sync_hub, tmp_path, vault, monkeypatch, fresh_hubspot_sandbox):
    """The hub (migrated), the sandbox's token in Vault and a sources file naming it."""
    sandbox = fresh_hubspot_sandbox
    path = f"interchange/sources/hubspot-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": sandbox.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  hubspot:\n    base_url: {sandbox.url}\n    vault_path: {path}\n"
        "    rate_limit_per_second: 200\n    burst: 50\n    max_retries: 0\n")
    migrate(sync_hub)
    return sync_hub, sandbox


def read_contact(sandbox, email: str) -> dict:
    with sandbox.client(timeout=10) as http:
        r = http.get(f"/crm/v3/objects/contacts/{email}",
                     params={"idProperty": "email", "properties": ",".join(PROPERTIES)})
        r.raise_for_status()
        return r.json()


def read_all(sandbox) -> dict[str, dict]:
    """Every contact's enrichment properties by e-mail, read through the list endpoint."""
    out, after = {}, None
    with sandbox.client(timeout=30) as http:
        while True:
            params = {"limit": 100, "properties": ",".join(("email", *PROPERTIES))}
            if after:
                params["after"] = after
            page = http.get("/crm/v3/objects/contacts", params=params)
            page.raise_for_status()
            body = page.json()
            for row in body["results"]:
                props = row["properties"]
                out[(props.get("email") or "").lower()] = {p: props.get(p) for p in PROPERTIES}
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return out


def an_existing_contact_email(sandbox) -> str:
    with sandbox.client(timeout=10) as http:
        page = http.get("/crm/v3/objects/contacts",
                        params={"limit": 100, "properties": "email"}).json()
    for row in page["results"]:
        email = row["properties"].get("email") or ""
        if email.count("@") == 1 and email == email.strip().lower() and " " not in email:
            return email
    raise AssertionError("no usable e-mail among the sandbox's first contacts")


def test_an_enrichment_push_is_idempotent(crm):
    url, sandbox = crm
    b = HubBuilder(url)
    existing = an_existing_contact_email(sandbox)
    before = sandbox.state()["counts"]["contacts"]
    expected: dict[str, dict[str, str]] = {}
    customers: dict[str, str] = {}
    # 150 customers with activity (two upsert batches), one of them already in HubSpot.
    for i in range(150):
        email = existing if i == 0 else f"enrich-{i:03d}@example.com"
        gid = b.golden(f"gld_{i:04d}", email)
        cid = customers[gid] = b.customer(gid, "shopify")
        day = dt.datetime(2026, 1, 1 + i % 28, 15, tzinfo=dt.UTC)
        for k in range(i % 3 + 1):
            b.order(cid, at=day - dt.timedelta(days=k))
        b.pay(cid, 1000 + i)
        if i % 10 == 0:
            b.pay(cid, 250, kind="refund")
        expected[email] = {LTV: f"{(1000 + i - (250 if i % 10 == 0 else 0)) / 100:.2f}",
                           ORDER_COUNT: str(i % 3 + 1),
                           LAST_ORDER_DATE: day.date().isoformat()}  # fmt: skip
    b.golden("gld_x_noemail", None)
    b.order(b.customer("gld_x_noemail", "shopify"))
    b.golden("gld_x_idle", "idle@example.com")

    first = enrich_crm(EnrichCrmParams(chunk_size=100))
    assert {k: first[k] for k in ("computed", "changed", "pushed", "failed", "batches",
                                  "skipped_no_email", "skipped_no_activity", "created")} == {
        "computed": 152, "changed": 150, "pushed": 150, "failed": 0, "batches": 2,
        "skipped_no_email": 1, "skipped_no_activity": 1, "created": 149,
    }  # fmt: skip
    assert sandbox.state()["counts"]["contacts"] == before + 149
    # The three properties were created first, as real HubSpot requires.
    defined = {p["name"] for p in httpx.get(f"{sandbox.url}/crm/v3/properties/contacts",
                                             headers=sandbox.headers).json()["results"]}
    assert {ORDER_COUNT, "interchange_lifetime_value", "interchange_last_order_date"} <= defined
    everything = read_all(sandbox)
    assert {email: everything[email] for email in expected} == expected
    # nobody else got the properties (no-email and idle customers were not pushed)
    assert sum(1 for v in everything.values() if v[ORDER_COUNT] is not None) == 150
    with session_scope(url) as s:
        pushes = s.exec(select(EnrichmentPush)).all()
    assert len(pushes) == 150 and all(p.hubspot_id for p in pushes)
    stamp = read_contact(sandbox, "enrich-007@example.com")["updatedAt"]

    second = enrich_crm(EnrichCrmParams())
    assert (second["changed"], second["pushed"], second["batches"], second["requests"],
            second["unchanged"]) == (0, 0, 0, 0, 150)  # fmt: skip
    assert read_contact(sandbox, "enrich-007@example.com")["updatedAt"] == stamp

    # A new order for one customer: exactly that contact, only what changed.
    b.order(customers["gld_0007"], at=dt.datetime(2026, 3, 5, 8, tzinfo=dt.UTC))
    preview = enrich_crm(EnrichCrmParams(dry_run=True))
    assert (preview["changed"], preview["pushed"], preview["requests"]) == (1, 0, 0)
    assert read_contact(sandbox, "enrich-007@example.com")["updatedAt"] == stamp
    third = enrich_crm(EnrichCrmParams())
    assert (third["changed"], third["pushed"], third["batches"], third["requests"]) == (
        1, 1, 1, 1)
    assert third["changed_properties"] == {LAST_ORDER_DATE: 1, ORDER_COUNT: 1}
    props = read_contact(sandbox, "enrich-007@example.com")["properties"]
    assert {p: props[p] for p in PROPERTIES} == {
        LTV: "10.07", ORDER_COUNT: "3", LAST_ORDER_DATE: "2026-03-05"}
    fourth = enrich_crm(EnrichCrmParams())
    assert (fourth["changed"], fourth["requests"]) == (0, 0)


def test_a_failed_push_is_not_recorded_and_goes_out_next_time(crm):
    url, sandbox = crm
    b = HubBuilder(url)
    for i in range(3):
        cid = b.customer(b.golden(f"gld_{i}", f"fail-{i}@example.com"), "stripe")
        b.pay(cid, 500)
    sandbox.configure(error_rate=1.0)
    with pytest.raises(EnrichmentFailed):  # the push itself fails (properties exist)
        enrich_crm(EnrichCrmParams(create_properties=False))
    assert count_rows(url, EnrichmentPush) == 0

    sandbox.configure(error_rate=0.0)
    out = enrich_crm(EnrichCrmParams(limit=2))  # a backfill in slices
    assert (out["pushed"], out["deferred"], count_rows(url, EnrichmentPush)) == (2, 1, 2)
    out = enrich_crm(EnrichCrmParams())
    assert (out["pushed"], out["unchanged"], count_rows(url, EnrichmentPush)) == (1, 2, 3)
    assert read_contact(sandbox, "fail-2@example.com")["properties"][LTV] == "5.00"


def test_pushes_of_gone_golden_customers_are_forgotten(crm):
    url, sandbox = crm
    b = HubBuilder(url)
    for gid in ("gld_1", "gld_2"):
        b.pay(b.customer(b.golden(gid, f"{gid}@example.com"), "stripe"), 100)
    assert enrich_crm(EnrichCrmParams())["pushed"] == 2
    with session_scope(url) as s:
        s.get(GoldenCustomer, "gld_2").merged_into = "gld_1"
    out = enrich_crm(EnrichCrmParams())
    assert (out["pruned"], out["computed"], out["changed"]) == (1, 1, 0)
    assert httpx.get(f"{sandbox.url}/_sandbox/state").json()["counts"]["contacts"] >= 2


# ------------------------------------- wire cases the sandbox cannot produce (MockTransport)


class _Secrets:
    def read(self, path: str) -> dict:
        return {"access_token": SecretStr("pat-na1-unit-token")}

    def get(self, path: str, key: str) -> SecretStr:
        return self.read(path)[key]

    def write(self, path: str, values: dict) -> None:  # pragma: no cover
        raise AssertionError("never written")

    def invalidate(self, path: str | None = None) -> None:
        pass


def test_partial_answers_and_a_failed_batch_record_only_what_hubspot_took(sqlite_url):
    b = HubBuilder(sqlite_url)
    for i in range(250):  # three batches: 100, 100, 50
        b.pay(b.customer(b.golden(f"gld_{i:04d}", f"p-{i:03d}@example.com"), "stripe"), 100)
    calls = {"n": 0}
    broken = {"upsert": True}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/crm/v3/objects/contacts/batch/upsert"
        calls["n"] += 1
        inputs = json.loads(request.content)["inputs"]
        if broken["upsert"] and calls["n"] == 3:
            return httpx.Response(500, json={"status": "error", "category": "INTERNAL_ERROR",
                                             "message": "boom"})
        rejected = {"p-150@example.com"} if broken["upsert"] else set()
        results = [{"id": str(1000 + i), "new": True, "properties": {"email": x["id"]}}
                   for i, x in enumerate(inputs) if x["id"] not in rejected]
        errors = [{"status": "error", "category": "VALIDATION_ERROR",
                   "message": f"Property values were not valid for {x['id']}",
                   "context": {"id": [x["id"]]}} for x in inputs if x["id"] in rejected]
        return httpx.Response(207 if errors else 200,
                              json={"status": "COMPLETE", "results": results, "errors": errors})

    config = SourceConfig(name="hubspot-mock", base_url="https://api.hubapi.test",
                          vault_path="interchange/sources/hubspot-mock", max_retries=0)
    with hubspot_client(config, secrets=_Secrets(), transport=httpx.MockTransport(handler)
                        ) as client:  # fmt: skip
        out = enrich_chunk(None, database_url=sqlite_url, client=client).as_dict()
        assert (out["changed"], out["pushed"], out["failed"], out["batches"],
                out["requests"], out["aborted"]) == (250, 199, 51, 2, 3, True)  # fmt: skip
        assert out["error"] == "SourceServerError (500)"
        assert count_rows(sqlite_url, EnrichmentPush) == 199
        with session_scope(sqlite_url) as s:
            assert s.get(EnrichmentPush, "gld_0150") is None  # rejected: sent again
            assert s.get(EnrichmentPush, "gld_0149").properties[LTV] == "1.00"

        broken["upsert"] = False
        again = enrich_chunk(None, database_url=sqlite_url, client=client).as_dict()
        assert (again["changed"], again["pushed"], again["failed"], again["unchanged"],
                again["batches"]) == (51, 51, 0, 199, 1)  # fmt: skip
        assert count_rows(sqlite_url, EnrichmentPush) == 250


def test_two_golden_customers_on_one_email_are_not_pushed(sqlite_url):
    # A split (an undone merge) can leave two live golden customers with one e-mail:
    # both would upsert the same HubSpot contact. Counted, never guessed.
    b = HubBuilder(sqlite_url)
    b.pay(b.customer(b.golden("gld_one", "Twin@example.com"), "stripe"), 500)
    b.pay(b.customer(b.golden("gld_two", "twin@example.com"), "shopify"), 700)
    b.pay(b.customer(b.golden("gld_solo", "solo@example.com"), "stripe"), 900)
    out = enrich_chunk(None, dry_run=True, database_url=sqlite_url).as_dict()
    assert (out["skipped_shared_email"], out["changed"]) == (2, 1)
