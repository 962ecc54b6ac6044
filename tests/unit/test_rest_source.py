"""The declarative REST source: description checks, paginators, auth kinds, cursors, mapping.

Wire cases run through the real client stack (rate limiter, retries, auth flows) over
``httpx.MockTransport``; the same source against a sandbox is in
tests/integration/test_sync_rest.py.
"""

from __future__ import annotations

import base64
import threading
import urllib.parse
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from interchange.errors import ConfigError, SchemaError, SourceAuthError
from interchange.settings import SourceConfig, load_sources
from process_apis.mapping.rest import for_source
from system_apis.rest.client import rest_client
from system_apis.rest.spec import dig, rest_spec
from system_apis.rest.streams import InvalidCursor, fingerprint, read_stream, record_key, to_epoch

BASE = "https://api.example.test/v2/"


class Secrets:
    """A dict standing in for Vault (same two methods as VaultSecrets); counts reads."""

    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values
        self.reads = 0
        self.invalidations = 0

    def get(self, path: str, key: str) -> SecretStr:
        self.reads += 1
        return SecretStr(self.values[path][key])

    def invalidate(self, path: str | None = None) -> None:
        self.invalidations += 1


def config(streams: dict[str, Any], auth: dict[str, Any] | None = None, **extra: Any
           ) -> SourceConfig:  # fmt: skip
    return SourceConfig(
        name="demo", kind="rest", base_url=BASE, vault_path="interchange/sources/demo",
        auth=auth or {"kind": "bearer", "key": "token"}, streams=streams,
        rate_limit_per_second=1000, burst=1000, max_retries=2, backoff_base_seconds=0,
        **extra)  # fmt: skip


def people(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "email": f"p{i}@example.com", "updated_at": f"2026-01-01T00:00:{i % 60:02d}Z"}
            for i in range(start, start + count)]


def run(cfg: SourceConfig, handler, secrets=None, stream="people", **kw):
    secrets = secrets or Secrets({"interchange/sources/demo": {"token": "tok-1"}})
    with rest_client(cfg, secrets=secrets, transport=httpx.MockTransport(handler)) as client:
        return list(read_stream(client, client.spec, stream, **kw))


def ids(pages) -> list[int]:
    return [r["id"] for p in pages for r in p.records]


# --------------------------------------------------------------------------- paginators


def test_json_cursor_pages_until_no_cursor():
    data = people(0, 25)
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        seen.append(q)
        start = int(q.get("after", 0))
        page = data[start:start + int(q["limit"])]
        after = start + len(page)
        paging = {"next": {"after": str(after)}} if after < len(data) else {}
        return httpx.Response(200, json={"results": page, "paging": paging})

    cfg = config({"people": {"path": "people", "records": "results", "paginator": {
        "type": "json_cursor", "cursor_path": "paging.next.after", "param": "after"}}})
    pages = run(cfg, handler, page_size=10)
    assert ids(pages) == list(range(25))
    assert [p.has_more for p in pages] == [True, True, False]
    assert seen == [{"limit": "10"}, {"limit": "10", "after": "10"},
                    {"limit": "10", "after": "20"}]


def test_json_cursor_stops_on_a_repeated_cursor_or_an_empty_page():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"results": people(0, 2), "next": "same"})

    cfg = config({"people": {"path": "people", "records": "results", "paginator": {
        "type": "json_cursor", "cursor_path": "next", "param": "cursor"}}})
    with pytest.raises(SchemaError, match="same page twice"):  # the API looped: we do not
        run(cfg, handler)
    assert len(calls) == 2

    def cycling(request: httpx.Request) -> httpx.Response:  # A -> B -> A -> ...
        cursor = request.url.params.get("cursor", "A")
        start = {"A": 0, "B": 2}[cursor]
        return httpx.Response(200, json={"results": people(start, 2),
                                         "next": "B" if cursor == "A" else "A"})

    with pytest.raises(SchemaError, match="came back"):
        run(cfg, cycling)

    def ignores_offset(request: httpx.Request) -> httpx.Response:  # expects "skip"
        return httpx.Response(200, json={"results": people(0, 10)})

    offset = config({"people": {"path": "people", "records": "results",
                                "paginator": {"type": "offset"}}})
    with pytest.raises(SchemaError, match="paginator's parameters"):
        run(offset, ignores_offset, page_size=10)

    def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [], "next": "more"})

    pages = run(cfg, empty)
    assert len(pages) == 1 and pages[0].records == [] and not pages[0].has_more


def test_link_header_follows_next_and_refuses_other_origins():
    data = people(0, 7)

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("page_info", 0))
        page = data[start:start + 3]
        headers = {}
        if start + 3 < len(data):
            headers["Link"] = (f'<{BASE}people.json?limit=3&page_info={start + 3}>; rel="next", '
                               f'<{BASE}people.json?limit=3&page_info=0>; rel="previous"')
        return httpx.Response(200, json={"people": page}, headers=headers)

    cfg = config({"people": {"path": "people.json", "records": "people",
                             "params": {"status": "any"},
                             "paginator": {"type": "link_header"}}})
    pages = run(cfg, handler, page_size=3)
    assert ids(pages) == list(range(7))
    assert [p.has_more for p in pages] == [True, True, False]

    def evil(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"people": data[:1]},
                              headers={"Link": '<https://elsewhere.test/v2/people.json?x=1>; '
                                                'rel="next"'})

    with pytest.raises(SchemaError, match="leaves the source"):
        run(cfg, evil)


def test_offset_uses_total_and_short_pages():
    data = people(0, 23)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["skip"]), int(request.url.params["take"])
        seen.append(offset)
        return httpx.Response(200, json={"data": {"items": data[offset:offset + limit],
                                                  "total": len(data)}})

    cfg = config({"people": {"path": "people", "records": "data.items", "paginator": {
        "type": "offset", "offset_param": "skip", "limit_param": "take",
        "total_path": "data.total"}}})
    assert ids(run(cfg, handler, page_size=10)) == list(range(23))
    assert seen == [0, 10, 20]
    seen.clear()
    data[:] = people(0, 20)  # an exact multiple: the total ends it without an empty page
    assert ids(run(cfg, handler, page_size=10)) == list(range(20))
    assert seen == [0, 10]


def test_page_number_with_total_pages_and_start_zero():
    data = people(0, 9)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["p"]), int(request.url.params["per_page"])
        seen.append(page)
        return httpx.Response(200, json=data[page * size:(page + 1) * size],
                              headers={"X-Total": str(len(data))})

    cfg = config({"people": {"path": "people", "paginator": {
        "type": "page_number", "page_param": "p", "start": 0}}})
    assert ids(run(cfg, handler, page_size=3)) == list(range(9))
    assert seen == [0, 1, 2, 3]  # 3 full pages; the 4th (empty) ends it

    def counted(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["p"])
        seen.append(page)
        return httpx.Response(200, json={"rows": data[page * 3:(page + 1) * 3],
                                         "meta": {"pages": 3}})

    seen.clear()
    cfg = config({"people": {"path": "people", "records": "rows", "paginator": {
        "type": "page_number", "page_param": "p", "start": 0,
        "total_pages_path": "meta.pages"}}})
    assert ids(run(cfg, counted, page_size=3)) == list(range(9))
    assert seen == [0, 1, 2]


# --------------------------------------------------------------------------- incremental


def test_incremental_bound_high_water_and_resume_cursor():
    data = people(0, 6)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        seen.append(q)
        offset = int(q["offset"])
        return httpx.Response(200, json={"items": data[offset:offset + 2]})

    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "offset"},
                             "incremental": {"param": "since", "cursor_field": "updated_at",
                                             "format": "epoch"}}})
    pages = run(cfg, handler, mode="incremental", since=1_700_000_000, page_size=2)
    assert seen[0] == {"since": "1700000000", "offset": "0", "limit": "2"}
    assert pages[0].high_water == to_epoch("2026-01-01T00:00:01Z")
    # Resume after the first page, in a "new process": same bound, next offset.
    seen.clear()
    rest = run(cfg, handler, mode="incremental", cursor=pages[0].cursor, page_size=2)
    assert ids(rest) == [2, 3, 4, 5]
    assert seen[0] == {"since": "1700000000", "offset": "2", "limit": "2"}
    # The last page's cursor is done: one empty final page, no request.
    seen.clear()
    done = run(cfg, handler, mode="incremental", cursor=rest[-1].cursor, page_size=2)
    assert [(p.records, p.has_more) for p in done] == [([], False)] and seen == []
    with pytest.raises(InvalidCursor, match="not a .full. one"):
        run(cfg, handler, mode="full", cursor=pages[0].cursor)
    with pytest.raises(InvalidCursor):
        run(cfg, handler, cursor="not json")


def test_iso_bound_and_time_parsing():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["updated_at_min"])
        return httpx.Response(200, json={"items": []})

    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "link_header"},
                             "incremental": {"param": "updated_at_min",
                                             "cursor_field": "meta.updated"}}})
    run(cfg, handler, mode="incremental", since=0)
    assert seen == ["1970-01-01T00:00:00Z"]
    assert to_epoch("2026-01-01T01:00:00+01:00") == to_epoch("2026-01-01T00:00:00Z")
    assert to_epoch(1_700_000_000_000) == to_epoch("1700000000") == 1_700_000_000
    assert to_epoch("yesterday") is None and to_epoch(True) is None


# --------------------------------------------------------------------------- auth


def test_api_key_header_rereads_vault_once_after_a_401():
    secrets = Secrets({"interchange/sources/demo": {"api_key": "old"}})
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Api-Key"))
        assert "authorization" not in request.headers
        if request.headers.get("X-Api-Key") != "Key new":
            return httpx.Response(401, json={"error": "bad key"})
        return httpx.Response(200, json={"items": people(0, 1)})

    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "link_header"}}},
                 auth={"kind": "api_key", "header": "X-Api-Key", "prefix": "Key "})
    secrets.values["interchange/sources/demo"]["api_key"] = "new"  # rotated in Vault...
    original_get = secrets.get
    stale = {"done": False}

    def get(path, key):  # ...but the first read is served from a stale cache
        if not stale["done"]:
            stale["done"] = True
            return SecretStr("old")
        return original_get(path, key)

    secrets.get = get
    assert ids(run(cfg, handler, secrets=secrets)) == [0]
    assert seen == ["Key old", "Key new"]


def test_bearer_token_never_in_urls_or_reprs():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok-1"
        assert "tok-1" not in str(request.url)
        return httpx.Response(200, json=[])

    cfg = config({"people": {"path": "people", "paginator": {"type": "link_header"}}})
    secrets = Secrets({"interchange/sources/demo": {"token": "tok-1"}})
    with rest_client(cfg, secrets=secrets, transport=httpx.MockTransport(handler)) as c:
        assert list(read_stream(c, c.spec, "people"))[0].records == []
        assert "tok-1" not in repr(c.http.auth)


class TokenServer:
    """An OAuth2 token endpoint + API: tokens expire after ``lifetime`` seconds."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.forms: list[dict[str, str]] = []
        self.basic: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = dict(urllib.parse.parse_qsl(request.content.decode()))
            self.forms.append(form)
            auth = request.headers.get("authorization")
            self.basic.append(base64.b64decode(auth.split()[1]).decode() if auth else None)
            secret = (self.basic[-1] or "").partition(":")[2] or form.get("client_secret")
            if secret != "s3cret":
                return httpx.Response(401, json={"error": "invalid_client",
                                                 "error_description": f"echo {secret}"})
            with self.lock:
                token = f"at-{len(self.issued)}"
                self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer",
                                             "expires_in": self.lifetime})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json={"items": people(0, 2)})


OAUTH = {"kind": "oauth2_client_credentials", "token_url": "/oauth/token", "scope": "read"}
CLIENT = {"interchange/sources/demo": {"client_id": "cid", "client_secret": "s3cret"}}


def test_oauth2_client_credentials_fetches_once_and_refreshes_on_401():
    server = TokenServer()
    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "link_header"}}}, auth=OAUTH)
    secrets = Secrets(CLIENT)
    with rest_client(cfg, secrets=secrets, transport=httpx.MockTransport(server)) as client:
        threads = [threading.Thread(target=lambda: list(read_stream(client, client.spec,
                                                                    "people")))
                   for _ in range(8)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.issued == ["at-0"]  # eight concurrent readers, one token request
        assert server.forms[0] == {"grant_type": "client_credentials", "scope": "read"}
        assert server.basic[0] == "cid:s3cret"  # client_secret_basic, not in the body
        server.revoked.add("at-0")  # the server drops the token early
        assert ids(list(read_stream(client, client.spec, "people"))) == [0, 1]
        assert server.issued == ["at-0", "at-1"]


def test_oauth2_short_lived_tokens_are_reused_for_half_their_life():
    now = [0.0]
    server = TokenServer(lifetime=60)  # as long as the default 60 s margin
    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "link_header"}}}, auth=OAUTH)
    with rest_client(cfg, secrets=Secrets(CLIENT), transport=httpx.MockTransport(server)) as c:
        c.http.auth._clock = lambda: now[0]
        for t in (0, 10, 29):
            now[0] = t
            list(read_stream(c, c.spec, "people"))
        assert server.issued == ["at-0"]
        now[0] = 31  # past half its life: refreshed before it can expire mid-request
        list(read_stream(c, c.spec, "people"))
        assert server.issued == ["at-0", "at-1"]


def test_oauth2_refreshes_before_expiry_and_reports_a_refused_client_cleanly():
    server = TokenServer(lifetime=30)
    cfg = config({"people": {"path": "people", "records": "items",
                             "paginator": {"type": "link_header"}}},
                 auth={**OAUTH, "client_auth": "body"})
    run(cfg, server, secrets=Secrets(CLIENT))
    run(cfg, server, secrets=Secrets(CLIENT))
    assert len(server.issued) == 2
    assert server.forms[0]["client_id"] == "cid" and server.basic[0] is None
    bad = Secrets({"interchange/sources/demo": {"client_id": "cid", "client_secret": "nope"}})
    with pytest.raises(SourceAuthError, match="invalid_client") as err:
        run(cfg, server, secrets=bad)
    assert "nope" not in str(err.value)


# --------------------------------------------------------------------------- description


@pytest.mark.parametrize(("streams", "auth", "message"), [
    ({}, None, "streams"),
    ({"p": {"path": "https://evil.test/x", "paginator": {"type": "offset"}}}, None,
     "relative to base_url"),
    ({"p": {"path": "p", "paginator": {"type": "cursorish"}}}, None, "paginator"),
    ({"p": {"path": "p", "paginator": {"type": "offset"}, "pagesize": 3}}, None, "pagesize"),
    ({"p": {"path": "p", "paginator": {"type": "offset"}}}, {"kind": "basic"}, "auth"),
])  # fmt: skip
def test_a_bad_description_is_named(streams, auth, message):
    with pytest.raises(ConfigError, match=message) as err:
        rest_spec(config(streams, auth=auth))
    assert "source 'demo'" in str(err.value)


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer x"},
                                     {"X-Api-Key": "sk_live_x"}, {"X-Auth-Token": "t"}])
def test_credentials_cannot_be_written_into_yaml(headers):
    with pytest.raises(ConfigError, match="Vault"):
        rest_spec(config({"p": {"path": "p", "paginator": {"type": "offset"}}},
                         headers=headers))
    assert rest_spec(config({"p": {"path": "p", "paginator": {"type": "offset"}}},
                            headers={"Accept-Language": "en"})).headers


def test_page_size_above_the_streams_maximum_is_refused():
    cfg = config({"p": {"path": "p", "paginator": {"type": "offset"}, "max_page_size": 50}})
    with pytest.raises(ConfigError, match="between 1 and 50"):
        run(cfg, lambda r: httpx.Response(200, json=[]), stream="p", page_size=100)


def test_shipped_example_is_valid():
    sources = load_sources()
    spec = rest_spec(sources["storefront"])
    assert spec.auth.kind == "api_key" and spec.streams["customers"].paginator.type == (
        "link_header")
    assert for_source(sources["storefront"]).ENTITY_OF_STREAM == {"customers": "customer"}


# --------------------------------------------------------------------------- mapping


def mapping_config(**stream: Any) -> SourceConfig:
    return config({"people": {"path": "p", "paginator": {"type": "offset"}, **stream}})


def test_mapping_applies_canonical_rules_and_quarantines_with_reasons():
    cfg = mapping_config(entity="customer", primary_key=["org", "id"], required=["email"],
                         fields={"email": "contact.email", "phone": ["phone", "alt.phone"],
                                 "first_name": "first", "last_name": "last",
                                 "country": "country", "created_at": "created"})
    raws = [
        {"org": 1, "id": 7, "contact": {"email": " Ann@Example.COM "}, "alt": {"phone":
         "020 7946 0018"}, "first": "Ann", "last": "Lee", "country": "UK",
         "created": "2026-01-02T03:04:05+01:00", "extra": [1]},
        {"org": 1, "id": 8, "contact": {}, "phone": "555"},
        {"org": 1, "contact": {"email": "x@example.com"}},
    ]
    result = for_source(cfg).map_records("people", raws, default_region="US")
    [ann] = result.records
    assert (ann.source, ann.source_id, ann.email, ann.phone, ann.country, ann.name) == (
        "demo", '["1","7"]', "ann@example.com", "+442079460018", "GB", "Ann Lee")
    assert ann.source_created_at.isoformat() == "2026-01-02T02:04:05+00:00"
    reasons = {r.source_id: [f["rule"] for f in r.failed_rules] for r in result.rejected}
    keyless = next(k for k in reasons if k.startswith("missing-key:"))
    assert reasons == {'["1","8"]': ["required"], keyless: ["schema"]}
    # Keyless rejects stay apart (one quarantine row each), the same one keeps its id;
    # a bad flag is that record's reject, not the batch's crash.
    more = for_source(cfg).map_records("people", [
        {"org": 1, "contact": {"email": "y@example.com"}}, raws[2], raws[2]])
    assert len({r.source_id for r in more.rejected}) == 2 and keyless in {
        r.source_id for r in more.rejected}
    flagged = for_source(mapping_config(entity="customer", fields={"deleted": "gone"}))
    bad = flagged.map_records("people", [{"id": 1, "gone": "2024-01-01T00:00:00Z"}])
    assert [f["rule"] for f in bad.rejected[0].failed_rules] == ["boolean.valid"]


def test_mapping_description_errors():
    with pytest.raises(ConfigError, match="entity must be one of"):
        for_source(mapping_config(entity="invoice"))
    with pytest.raises(ConfigError, match="has no field"):
        for_source(mapping_config(entity="company", fields={"email": "e"}))
    with pytest.raises(ConfigError, match="not in fields"):
        for_source(mapping_config(entity="company", fields={"name": "n"}, required=["domain"]))


def test_product_mapping_prices_and_flags():
    cfg = mapping_config(entity="product", fields={
        "sku": "sku", "name": "title", "price": "price", "currency": "cur",
        "active": "status.live", "updated_at": "ts"})
    result = for_source(cfg).map_records("people", [
        {"id": 1, "sku": "A-1", "title": "Mug", "price": "12.50", "cur": "eur",
         "status": {"live": "no"}, "ts": 1_700_000_000},
        {"id": 2, "price": "-1.00", "cur": "USD"},
        {"id": 3, "price": "1.005", "cur": "USD", "status": {"live": "maybe"}},
    ])
    [mug] = result.records
    assert (mug.price_minor, mug.currency, mug.active) == (1250, "EUR", False)
    reasons = {r.source_id: sorted(f["rule"] for f in r.failed_rules) for r in result.rejected}
    assert reasons == {"2": ["money.non_negative"], "3": ["boolean.valid", "money.amount"]}


def test_keys_fingerprint_and_dig():
    spec = rest_spec(mapping_config(primary_key="meta.id")).streams["people"]
    assert record_key(spec, {"meta": {"id": 5}}) == "5" and record_key(spec, {}) == ""
    _, fields = fingerprint([{"id": 1, "properties": {"email": "a", "n": 1}}])
    assert fields == {"id": "integer", "properties": "object", "properties.email": "string",
                      "properties.n": "integer"}
    assert dig({"a": [{"b": 1}]}, "a.0.b") == 1 and dig({"a": []}, "a.0.b", "x") == "x"
