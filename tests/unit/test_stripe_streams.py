"""Stripe system API on the wire, without a network: httpx.MockTransport plays Stripe.

Covers what the sandbox cannot show on its own: newest-first event order (Stripe) as
well as oldest-first (localstripe), Stripe's deleted-customer tombstones, malformed
answers, and the exact query strings and headers sent.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pydantic import SecretStr

from interchange.errors import ConfigError, SchemaError, SourceAuthError, SourceNotFound
from interchange.settings import SourceConfig
from system_apis.stripe.auth import StripeKeyAuth
from system_apis.stripe.client import DEFAULT_STRIPE_VERSION, encode_params, stripe_client
from system_apis.stripe.models import StripeCustomer
from system_apis.stripe.streams import (
    STREAMS,
    InvalidCursor,
    Page,
    diff_fields,
    fetch_current,
    fingerprint,
    parse_record,
    read_stream,
)

NOW = int(time.time())
KEY = "sk_test_unit_" + "x" * 12


class FakeSecrets:
    """Same interface as VaultSecrets: get() serves a cache until invalidate()."""

    def __init__(self, value: str) -> None:
        self.vault_value = value
        self._cached: str | None = None
        self.reads = 0
        self.invalidations = 0

    def get(self, path: str, key: str) -> SecretStr:
        assert key == "api_key"
        if self._cached is None:
            self.reads += 1
            self._cached = self.vault_value
        return SecretStr(self._cached)

    def invalidate(self, path: str | None = None) -> None:
        self.invalidations += 1
        self._cached = None


class FakeStripe:
    """A tiny Stripe: lists with limit/starting_after, events, retrieve, auth."""

    def __init__(self, *, newest_first: bool = False, tombstones: bool = False) -> None:
        self.newest_first = newest_first
        self.tombstones = tombstones  # Stripe style deleted objects instead of 404
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            "customers": {},
            "charges": {},
            "refunds": {},
        }
        self.deleted: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.auth_headers: list[str | None] = []
        self.valid_keys = {KEY}

    # -- data
    def add_customer(self, cid: str, created: int, **fields: Any) -> dict[str, Any]:
        obj = {
            "id": cid,
            "object": "customer",
            "created": created,
            "email": None,
            "name": None,
            "phone": None,
            "address": None,
            "metadata": {},
            **fields,
        }
        self.objects["customers"][cid] = obj
        return obj

    def add_event(self, eid: str, type_: str, obj: dict[str, Any], created: int) -> None:
        self.events.append(
            {
                "id": eid,
                "object": "event",
                "type": type_,
                "created": created,
                "data": {"object": dict(obj)},
                "api_version": "2024-06-20",
            }
        )

    # -- wire
    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.auth_headers.append(request.headers.get("Authorization"))  # before any retry
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_keys:
            return httpx.Response(401, json={"error": {"type": "invalid_request_error"}})
        raw_path = request.url.raw_path.decode().split("?")[0]
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]  # v1/<kind>[/<id>]
        kind = parts[1]
        q = request.url.params
        if len(parts) == 3:
            oid = parts[2]
            if oid in self.deleted:
                if self.tombstones:
                    return httpx.Response(
                        200, json={"id": oid, "object": "customer", "deleted": True}
                    )
                return httpx.Response(404, json={"error": {"message": "Not Found"}})
            obj = self.objects[kind].get(oid)
            if obj is None:
                return httpx.Response(404, json={"error": {"message": "Not Found"}})
            return httpx.Response(200, json=obj)
        if kind == "events":
            items = list(self.events)
            if "created[gte]" in q:
                since = int(q["created[gte]"])
                items = [
                    e for e in items if not isinstance(e["created"], int) or e["created"] >= since
                ]
        else:
            items = [o for o in self.objects[kind].values() if o["id"] not in self.deleted]
            if "created[gt]" in q:
                items = [o for o in items if o["created"] > int(q["created[gt]"])]
        if self.newest_first:
            items = list(reversed(items))
        start = 0
        if "starting_after" in q:
            ids = [o["id"] for o in items]
            start = ids.index(q["starting_after"]) + 1
        limit = int(q.get("limit", 10))
        page = items[start : start + limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "url": f"/v1/{kind}",
                "data": page,
                "has_more": start + limit < len(items),
            },
        )


def make_client(fake: Any, secrets: FakeSecrets | None = None, **options: Any):
    config = SourceConfig(
        name="stripe-unit",
        base_url="https://api.stripe.test",
        vault_path="interchange/sources/stripe",
        rate_limit_per_second=100000,
        burst=1000,
        max_retries=0,
        options=options,
    )
    return stripe_client(
        config, secrets=secrets or FakeSecrets(KEY), transport=httpx.MockTransport(fake)
    )


def ids(pages: list[Page]) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


# --------------------------------------------------------------------------- full mode


def test_full_paging_follows_has_more_and_starting_after():
    fake = FakeStripe()
    for i in range(7):
        fake.add_customer(f"cus_{i:03d}", NOW - 100 + i)
    with make_client(fake) as client:
        pages = list(read_stream(client, "customers", mode="full", page_size=3))
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    assert ids(pages) == [f"cus_{i:03d}" for i in range(7)]
    assert pages[0].high_water == NOW - 98 and pages[2].high_water == NOW - 94
    sent = [dict(r.url.params) for r in fake.requests]
    assert sent[0] == {"limit": "3"}
    assert sent[1] == {"limit": "3", "starting_after": "cus_002"}
    assert sent[2] == {"limit": "3", "starting_after": "cus_005"}


def test_cursor_resumes_right_after_its_page_and_is_a_string():
    fake = FakeStripe(newest_first=True)
    for i in range(10):
        fake.add_customer(f"cus_{i:03d}", NOW - 100 + i)
    with make_client(fake) as client:
        everything = ids(list(read_stream(client, "customers", page_size=4)))
        first = next(iter(read_stream(client, "customers", page_size=4)))
        assert isinstance(first.cursor, str)
        rest = ids(list(read_stream(client, "customers", cursor=first.cursor, page_size=4)))
    assert [r["id"] for r in first.records] + rest == everything
    assert len(set(everything)) == 10


def test_has_more_with_empty_data_does_not_loop():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": True})

    with make_client(handler) as client:
        pages = list(read_stream(client, "refunds"))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].has_more is False
    assert pages[0].cursor is None


def test_malformed_list_answer_is_a_schema_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": {"oops": 1}})

    with make_client(handler) as client, pytest.raises(SchemaError, match="list object"):
        list(read_stream(client, "customers"))


# --------------------------------------------------------------------------- incremental


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_events_refetch_current_state_deduplicated_per_page(newest_first):
    fake = FakeStripe(newest_first=newest_first)
    a = fake.add_customer("cus_a", NOW - 50, name="Ann")
    b = fake.add_customer("cus_b", NOW - 40, name="Bob")
    fake.add_customer("cus_old", NOW - 5000, name="Old")
    fake.add_event("evt_0", "customer.created", fake.objects["customers"]["cus_old"], NOW - 5000)
    fake.add_event("evt_1", "customer.created", a, NOW - 50)
    fake.add_event("evt_2", "customer.created", b, NOW - 40)
    fake.add_event("evt_3", "customer.updated", {**a, "name": "Ann B"}, NOW - 30)
    fake.add_event(
        "evt_4",
        "customer.source.created",
        {"id": "card_1", "object": "card", "customer": "cus_a"},
        NOW - 20,
    )
    a["name"] = "Ann C"  # current state is newer than every event payload
    with make_client(fake) as client:
        pages = list(
            read_stream(client, "customers", mode="incremental", since=NOW - 60, page_size=10)
        )
    assert len(pages) == 1
    page = pages[0]
    assert sorted(ids(pages)) == ["cus_a", "cus_b"]
    assert {r["id"]: r["name"] for r in page.records}["cus_a"] == "Ann C"
    assert page.high_water == NOW - 20  # max created of the events, whatever their order
    assert page.has_more is False
    gets = [r.url.path for r in fake.requests]
    assert gets.count("/v1/customers/cus_a") == 1  # deduplicated
    assert "/v1/customers/card_1" not in gets
    assert dict(fake.requests[0].url.params) == {"created[gte]": str(NOW - 60), "limit": "10"}


@pytest.mark.parametrize("tombstones", [False, True], ids=["404", "stripe-tombstone"])
def test_deleted_customer_is_reported_deleted(tombstones):
    fake = FakeStripe(tombstones=tombstones)
    c = fake.add_customer("cus_gone", NOW - 50, email="x@example.com")
    fake.add_event("evt_1", "customer.deleted", c, NOW - 10)
    fake.deleted.add("cus_gone")
    with make_client(fake) as client:
        pages = list(read_stream(client, "customers", mode="incremental", since=NOW - 60))
    assert pages[0].records == [{"id": "cus_gone", "object": "customer", "deleted": True}]
    model = parse_record("customers", pages[0].records[0])
    assert isinstance(model, StripeCustomer) and model.deleted and model.created is None


def test_fetch_current_raises_on_404_unless_asked_for_a_tombstone():
    fake = FakeStripe()
    fake.add_customer("cus_here", NOW - 5, name="Here")
    with make_client(fake) as client:
        assert fetch_current(client, "customers", "cus_here")["name"] == "Here"
        with pytest.raises(SourceNotFound):
            fetch_current(client, "customers", "cus_gone")
        assert fetch_current(client, "customers", "cus_gone", missing_as_deleted=True) == {
            "id": "cus_gone",
            "object": "customer",
            "deleted": True,
        }
        with pytest.raises(SourceNotFound):
            fetch_current(client, "payments", "ch/../x")  # ids are quoted into the path
    assert fake.requests[-1].url.raw_path == b"/v1/charges/ch%2F..%2Fx"


def test_event_pages_without_our_objects_are_skipped_but_counted_in_high_water():
    fake = FakeStripe()
    for i in range(5):
        fake.add_event(
            f"evt_p{i}", "product.created", {"id": f"prod_{i}", "object": "product"}, NOW - 100 + i
        )
    c = fake.add_customer("cus_z", NOW - 90)
    fake.add_event("evt_c", "customer.created", c, NOW - 90)
    fake.add_event("evt_p9", "product.created", {"id": "prod_9", "object": "product"}, NOW - 1)
    with make_client(fake) as client:
        pages = list(
            read_stream(client, "customers", mode="incremental", since=NOW - 200, page_size=2)
        )
    # event pages: [p0,p1] skipped, [p2,p3] skipped, [p4,c] -> cus_z, [p9] -> last, empty
    assert [ids([p]) for p in pages] == [["cus_z"], []]
    assert pages[0].high_water == NOW - 90 and pages[0].has_more is True
    assert pages[1].high_water == NOW - 1 and pages[1].has_more is False
    assert pages[1].cursor is not None


def test_incremental_resume_from_cursor_continues_the_event_listing():
    fake = FakeStripe()
    for i in range(6):
        c = fake.add_customer(f"cus_{i}", NOW - 50 + i)
        fake.add_event(f"evt_{i}", "customer.created", c, NOW - 50 + i)
    with make_client(fake) as client:
        first = next(
            iter(read_stream(client, "customers", mode="incremental", since=NOW - 60, page_size=2))
        )
        # the cursor's own `since` wins over a different argument
        rest = list(
            read_stream(
                client, "customers", mode="incremental", since=NOW, cursor=first.cursor, page_size=2
            )
        )
    assert ids([first]) == ["cus_0", "cus_1"]
    assert ids(rest) == ["cus_2", "cus_3", "cus_4", "cus_5"]


def test_payments_incremental_uses_the_created_filter():
    fake = FakeStripe()
    fake.objects["charges"]["ch_old"] = {
        "id": "ch_old",
        "object": "charge",
        "created": NOW - 999,
        "amount": 100,
        "currency": "eur",
        "status": "succeeded",
    }
    fake.objects["charges"]["ch_new"] = {
        "id": "ch_new",
        "object": "charge",
        "created": NOW - 60,
        "amount": 200,
        "currency": "eur",
        "status": "succeeded",
    }
    with make_client(fake) as client:
        pages = list(read_stream(client, "payments", mode="incremental", since=NOW - 60))
    assert ids(pages) == ["ch_new"]  # created == since is included
    assert dict(fake.requests[0].url.params)["created[gt]"] == str(NOW - 61)
    assert fake.requests[0].url.path == "/v1/charges"


def test_refunds_incremental_is_a_full_listing():
    fake = FakeStripe()
    for i in range(3):
        fake.objects["refunds"][f"re_{i}"] = {
            "id": f"re_{i}",
            "object": "refund",
            "created": NOW - 9999 + i,
            "amount": 1,
            "currency": "usd",
            "charge": "ch_1",
        }
    with make_client(fake) as client:
        pages = list(read_stream(client, "refunds", mode="incremental", since=NOW - 60))
    assert ids(pages) == ["re_0", "re_1", "re_2"]
    assert "created[gt]" not in fake.requests[0].url.params
    assert "created[gte]" not in fake.requests[0].url.params


@pytest.mark.parametrize("since", [None, NOW - 40 * 24 * 3600], ids=["first-run", "too-old"])
def test_customers_incremental_without_usable_since_lists_everything(since):
    fake = FakeStripe()
    fake.add_customer("cus_1", NOW - 10)
    with make_client(fake) as client:
        pages = list(read_stream(client, "customers", mode="incremental", since=since))
    assert ids(pages) == ["cus_1"]
    assert fake.requests[0].url.path == "/v1/customers"


# --------------------------------------------------------------------------- arguments


def test_bad_arguments_and_cursors_are_config_errors():
    fake = FakeStripe()
    fake.add_customer("cus_1", NOW - 10)
    with make_client(fake) as client:
        with pytest.raises(ConfigError, match="unknown Stripe stream"):
            read_stream(client, "orders")
        with pytest.raises(ConfigError, match="page_size"):
            read_stream(client, "customers", page_size=101)
        with pytest.raises(InvalidCursor):
            read_stream(client, "customers", cursor="garbage")
        customers_cursor = next(iter(read_stream(client, "customers"))).cursor
        events_cursor = json.dumps(
            {"v": 1, "stream": "customers", "strategy": "events", "since": NOW, "after": "evt_1"}
        )
        with pytest.raises(InvalidCursor, match="belongs to stream"):
            read_stream(client, "payments", cursor=customers_cursor)
        with pytest.raises(InvalidCursor, match="incremental"):
            read_stream(client, "customers", mode="full", cursor=events_cursor)
    assert set(STREAMS) == {"customers", "payments", "refunds"}


def test_encode_params_uses_stripe_bracket_notation():
    assert encode_params(
        {
            "created": {"gte": 5},
            "expand": ["data.customer", "x"],
            "flag": True,
            "none": None,
            "metadata": {"a": {"b": "c"}},
        }
    ) == {
        "created[gte]": "5",
        "expand[0]": "data.customer",
        "expand[1]": "x",
        "flag": "true",
        "metadata[a][b]": "c",
    }


# --------------------------------------------------------------------------- auth


def test_key_goes_in_the_authorization_header_only_with_stripe_version():
    fake = FakeStripe()
    fake.add_customer("cus_1", NOW - 10)
    with make_client(fake) as client:
        list(read_stream(client, "customers"))
        assert KEY not in repr(client.http.auth) and KEY not in str(client.http.auth)
    request = fake.requests[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Stripe-Version"] == DEFAULT_STRIPE_VERSION
    assert all(KEY not in str(r.url) for r in fake.requests)


def test_stripe_version_comes_from_options():
    fake = FakeStripe()
    with make_client(fake, stripe_version="2023-10-16") as client:
        list(read_stream(client, "refunds"))
    assert fake.requests[0].headers["Stripe-Version"] == "2023-10-16"


def test_401_with_rotated_key_in_vault_succeeds_after_one_reread():
    fake = FakeStripe()
    fake.add_customer("cus_1", NOW - 10)
    old, new = "sk_test_old_key_aaaaaaaa", "sk_test_new_key_bbbbbbbb"
    secrets = FakeSecrets(old)
    fake.valid_keys = {old}
    with make_client(fake, secrets) as client:
        assert ids(list(read_stream(client, "customers"))) == ["cus_1"]
        # rotate: Stripe now only accepts the new key, Vault holds it, our cache the old one
        fake.valid_keys = {new}
        secrets.vault_value = new
        assert ids(list(read_stream(client, "customers"))) == ["cus_1"]
        assert client.http.auth.rotations == 1
    assert secrets.invalidations == 1 and secrets.reads == 2
    assert fake.auth_headers == [f"Bearer {old}", f"Bearer {old}", f"Bearer {new}"]


def test_401_with_unchanged_key_is_an_auth_error_without_the_key():
    fake = FakeStripe()
    bad = "sk_test_revoked_cccccccc"
    secrets = FakeSecrets(bad)
    with make_client(fake, secrets) as client, pytest.raises(SourceAuthError) as info:
        list(read_stream(client, "customers"))
    assert len(fake.requests) == 1  # same key after re-read: not sent again
    assert secrets.invalidations == 1
    assert bad not in str(info.value) and bad not in repr(info.value)
    assert info.value.status_code == 401


def test_auth_repr_has_no_secret():
    auth = StripeKeyAuth(secrets=FakeSecrets(KEY), vault_path="interchange/sources/stripe")
    assert "interchange/sources/stripe" in repr(auth) and KEY not in repr(auth)


# --------------------------------------------------------------------------- parsing


def test_parse_record_keeps_source_values_and_extra_fields():
    raw = {
        "id": "cus_1",
        "object": "customer",
        "created": NOW,
        "email": "  Ann@Example.COM ",
        "address": {"country": "fr", "city": None},
        "metadata": {"k": "v"},
        "account_balance": 0,
        "brand_new_field": [1, 2],
    }
    model = parse_record("customers", raw)
    assert model.email == "  Ann@Example.COM "
    assert model.address.country == "fr"
    assert model.model_extra["brand_new_field"] == [1, 2]
    charge = parse_record(
        "payments",
        {
            "id": "ch_1",
            "object": "charge",
            "created": NOW,
            "amount": 1234,
            "currency": "eur",
            "status": "succeeded",
            "customer": None,
            "payment_intent": "pi_1",
        },
    )
    assert charge.amount == 1234 and charge.payment_intent == "pi_1"
    refund = parse_record(
        "refunds",
        {
            "id": "re_1",
            "object": "refund",
            "created": NOW,
            "amount": 5,
            "currency": "eur",
            "charge": "ch_1",
            "payment_intent": None,
            "status": "succeeded",
        },
    )
    assert refund.charge == "ch_1"


def test_parse_errors_name_fields_and_problems_but_no_values():
    secretish = "4242424242424242-personal"
    with pytest.raises(SchemaError) as info:
        parse_record(
            "customers",
            {
                "id": "cus_9",
                "created": "2024-01-01",
                "email": 42,
                "name": secretish,
                "metadata": {"k": 1},
            },
        )
    message = str(info.value)
    assert "cus_9" in message and "created" in message and "email" in message
    assert "metadata.k" in message and "got string" in message
    assert "2024-01-01" not in message and secretish not in message
    fields = {p["field"] for p in info.value.problems}
    assert fields == {"created", "email", "metadata.k"}

    with pytest.raises(SchemaError, match="created.*required"):
        parse_record("customers", {"id": "cus_9", "object": "customer"})
    with pytest.raises(SchemaError, match="amount"):
        parse_record(
            "payments",
            {"id": "ch_1", "created": NOW, "amount": 1.5, "currency": "eur", "status": "succeeded"},
        )
    with pytest.raises(SchemaError, match="not an object"):
        parse_record("refunds", ["re_1"])
    with pytest.raises(SchemaError, match="without an id"):
        parse_record("refunds", {"amount": 1})


def test_malformed_event_is_a_schema_error():
    fake = FakeStripe()
    fake.events.append(
        {
            "id": "evt_bad",
            "object": "event",
            "type": "customer.created",
            "created": "yesterday",
            "data": {"object": {}},
        }
    )
    with make_client(fake) as client, pytest.raises(SchemaError, match="evt_bad.*created"):
        list(read_stream(client, "customers", mode="incremental", since=NOW - 1000))


# --------------------------------------------------------------------------- drift


def test_fingerprint_is_stable_and_typed():
    a = [
        {"id": "cus_1", "created": 1, "email": None, "metadata": {}, "ratio": 1},
        {"metadata": {"x": "y"}, "email": "a@b", "created": 2, "id": "cus_2", "ratio": 1.5},
        {"id": "cus_3", "object": "customer", "deleted": True},
    ]
    h1, fields = fingerprint(a)
    h2, _ = fingerprint(list(reversed([dict(reversed(list(r.items()))) for r in a])))
    assert h1 == h2 and len(h1) == 16
    assert fields == {
        "id": "string",
        "created": "integer",
        "email": "string",
        "metadata": "object",
        "ratio": "number",
    }
    assert "deleted" not in fields  # tombstones carry no field set
    assert fingerprint([{"a": None}])[1] == {"a": "null"}
    assert fingerprint([{"a": 1}, {"a": "1"}])[1] == {"a": "integer|string"}
    assert fingerprint([{"a": 1}])[0] != fingerprint([{"a": "1"}])[0]


def test_diff_fields_reports_added_missing_retyped():
    old = {
        "id": "string",
        "created": "integer",
        "email": "string",
        "phone": "null",
        "gone": "boolean",
    }
    new = {
        "id": "string",
        "created": "string",
        "email": "string",
        "phone": "string",
        "new_one": "object",
    }
    assert diff_fields(old, new) == {
        "added": {"new_one": "object"},
        "missing": {"gone": "boolean"},
        "retyped": {"created": {"old": "integer", "new": "string"}},
    }
    assert diff_fields(new, new) == {"added": {}, "missing": {}, "retyped": {}}
