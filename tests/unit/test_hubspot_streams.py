"""HubSpot system API on the wire, without a network: httpx.MockTransport plays HubSpot.

Covers what a sandbox cannot show on demand: search results past HubSpot's 10,000-result
cap with many records sharing one modification time (in an unstable order, as HubSpot's
ties are), records changing while paging, 401s and token expiry with concurrent threads,
refresh-token rotation, HubSpot's error bodies and rate-limit headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from interchange.errors import (
    ConfigError,
    SchemaError,
    SourceAuthError,
    SourceClientError,
    SourceError,
)
from interchange.settings import SourceConfig
from system_apis.hubspot.auth import HubSpotOAuth, HubSpotPrivateAppAuth, auth_kind
from system_apis.hubspot.client import hubspot_client
from system_apis.hubspot.models import HubSpotContact
from system_apis.hubspot.streams import (
    SEARCH_RESULT_CAP,
    InvalidCursor,
    batch_upsert_contacts,
    diff_fields,
    fingerprint,
    parse_record,
    read_stream,
)

BASE = "https://api.hubapi.test"
PATH = "interchange/sources/hubspot-unit"
T0 = 1_700_000_000_000  # epoch ms
PRIVATE_TOKEN = "pat-na1-unit-" + "p" * 16


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


class FakeSecrets:
    """Same interface as VaultSecrets: a cache in front of a 'vault' dict."""

    def __init__(self, values: dict[str, str]) -> None:
        self.vault = dict(values)
        self._cache: dict[str, str] | None = None
        self.writes: list[dict[str, str]] = []
        self.reads = 0
        self._lock = threading.Lock()

    def read(self, path: str) -> dict[str, SecretStr]:
        assert path == PATH
        with self._lock:
            if self._cache is None:
                self.reads += 1
                self._cache = dict(self.vault)
            return {k: SecretStr(v) for k, v in self._cache.items()}

    def get(self, path: str, key: str) -> SecretStr:
        return self.read(path)[key]

    def write(self, path: str, values: dict[str, Any]) -> None:
        plain = {
            k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()
        }
        with self._lock:
            self.vault = dict(plain)
            self._cache = dict(plain)
            self.writes.append(plain)

    def invalidate(self, path: str | None = None) -> None:
        with self._lock:
            self._cache = None


def error(status: int, category: str, message: str, **headers: str) -> httpx.Response:
    body = {"status": "error", "message": message, "correlationId": "corr-1234",
            "category": category}
    return httpx.Response(status, json=body, headers=headers)


class FakeHubSpot:
    """A small HubSpot: list and search (with the 10,000 cap), batch upsert, OAuth."""

    def __init__(self, *, rotate: bool = False, expires_in: int = 1800) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "companies": {}}
        self.valid_tokens = {PRIVATE_TOKEN}
        self.refresh_token = "rt-0"
        self.client_id, self.client_secret = "client-id-unit", "client-secret-unit"
        self.rotate = rotate
        self.expires_in = expires_in
        self.token_calls = 0
        self.requests: list[httpx.Request] = []
        self.search_bodies: list[dict[str, Any]] = []
        self.queries = 0
        self.on_search: Any = None  # hook(fake, n) run before answering search number n
        self.token_delay = 0.0
        self.fail_next: list[httpx.Response] = []
        self._next_id = 1
        self.cap = SEARCH_RESULT_CAP
        self._lock = threading.Lock()

    # -- data
    def add(self, kind: str, modified_ms: int, **props: Any) -> dict[str, Any]:
        oid = str(self._next_id)
        self._next_id += 1
        prop_name = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
        obj = {
            "id": oid,
            "properties": {"hs_object_id": oid, prop_name: iso(modified_ms),
                           "createdate": iso(T0), **props},
            "createdAt": iso(T0),
            "updatedAt": iso(modified_ms),
            "archived": False,
        }
        self.objects[kind][oid] = obj
        return obj

    def touch(self, kind: str, oid: str, modified_ms: int) -> None:
        obj = self.objects[kind][oid]
        prop_name = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
        obj["properties"][prop_name] = iso(modified_ms)
        obj["updatedAt"] = iso(modified_ms)

    def match(self, obj: dict[str, Any], flt: dict[str, Any]) -> bool:
        if flt["propertyName"] == "hs_object_id":
            value, wanted = int(obj["id"]), int(flt["value"])
        else:
            assert flt["propertyName"] in ("lastmodifieddate", "hs_lastmodifieddate")
            value, wanted = self.modified(obj), int(flt["value"])
        return {"GTE": value >= wanted, "GT": value > wanted, "EQ": value == wanted}[
            flt["operator"]]

    @staticmethod
    def modified(obj: dict[str, Any]) -> int:
        return int(datetime.fromisoformat(obj["updatedAt"].replace("Z", "+00:00")).timestamp()
                   * 1000)

    # -- wire
    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if self.fail_next:
                return self.fail_next.pop(0)
        path = request.url.path
        if path == "/oauth/v1/token":
            return self._token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return error(401, "INVALID_AUTHENTICATION",
                         "Authentication credentials not found.")
        parts = path.strip("/").split("/")  # crm v3 objects <kind> [search|batch upsert]
        kind = parts[3]
        if request.method == "GET" and len(parts) == 4:
            return self._list(kind, request)
        if request.method == "POST" and parts[4:] == ["search"]:
            return self._search(kind, json.loads(request.content))
        if request.method == "POST" and parts[4:] == ["batch", "upsert"]:
            return self._upsert(kind, json.loads(request.content))
        return error(404, "OBJECT_NOT_FOUND", "no route")

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if self.token_delay:
            time.sleep(self.token_delay)
        with self._lock:
            self.token_calls += 1
            if (
                form.get("grant_type") != "refresh_token"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
                or form.get("refresh_token") != self.refresh_token
            ):
                return httpx.Response(400, json={
                    "status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token",
                    "correlationId": "corr-tok"})
            access = f"at-{self.token_calls}-" + "a" * 20
            self.valid_tokens = {access}  # older access tokens stop working
            if self.rotate:
                self.refresh_token = f"rt-{self.token_calls}"
            return httpx.Response(200, json={
                "access_token": access, "refresh_token": self.refresh_token,
                "expires_in": self.expires_in, "token_type": "bearer"})

    def _list(self, kind: str, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        limit = int(q.get("limit", "10"))
        if limit > 100:
            return error(400, "VALIDATION_ERROR", "limit must be at most 100")
        after = int(q.get("after", "0"))
        items = sorted(self.objects[kind].values(), key=lambda o: int(o["id"]))
        page = items[after:after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(items):
            body["paging"] = {"next": {"after": str(after + limit), "link": "x"}}
        return httpx.Response(200, json=body)

    def _search(self, kind: str, body: dict[str, Any]) -> httpx.Response:
        with self._lock:
            self.search_bodies.append(body)
            self.queries += 1
            n = self.queries
        if self.on_search is not None:
            self.on_search(self, n)
        limit = body.get("limit", 10)
        if limit > 200:
            return error(400, "VALIDATION_ERROR", "limit must be at most 200")
        after = int(body.get("after") or 0)
        if after >= self.cap:
            return error(400, "VALIDATION_ERROR", "There are more than 10,000 results")
        (group,) = body["filterGroups"]
        matches = [o for o in self.objects[kind].values()
                   if all(self.match(o, f) for f in group["filters"])]
        (sort,) = body["sorts"]
        assert sort["direction"] == "ASCENDING"
        if sort["propertyName"] == "hs_object_id":
            matches.sort(key=lambda o: int(o["id"]))
        else:
            assert sort["propertyName"] == group["filters"][0]["propertyName"]
            # ties come back in an order that differs from one request to the next
            matches.sort(key=lambda o: (self.modified(o), hash((o["id"], n)) % 9973))
        total = len(matches)
        matches = matches[:self.cap]
        page = matches[after:after + limit]
        answer: dict[str, Any] = {"total": total, "results": page}
        if after + limit < len(matches):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return httpx.Response(200, json=answer)

    def _upsert(self, kind: str, body: dict[str, Any]) -> httpx.Response:
        inputs = body["inputs"]
        if len(inputs) > 100:
            return error(400, "VALIDATION_ERROR", "at most 100 inputs")
        keys = [i["id"].lower() for i in inputs]
        if len(set(keys)) != len(keys):
            return error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        results = []
        for item in inputs:
            assert item["idProperty"] == "email"
            found = next(
                (o for o in self.objects[kind].values()
                 if (o["properties"].get("email") or "").lower() == item["id"].lower()),
                None,
            )
            if found is None:
                found = self.add(kind, T0, **item["properties"])
                new = True
            else:
                changed = {k: v for k, v in item["properties"].items()
                           if found["properties"].get(k) != v}
                found["properties"].update(changed)
                new = False
            results.append({**found, "new": new})
        return httpx.Response(200, json={"status": "COMPLETE", "results": results})


def make_config(**options: Any) -> SourceConfig:
    return SourceConfig(
        name="hubspot-unit",
        base_url=BASE,
        vault_path=PATH,
        rate_limit_per_second=10_000,
        burst=1000,
        max_retries=5,
        backoff_base_seconds=0.001,
        options={"search_requests_per_second": 10_000, **options},
    )


def private_secrets() -> FakeSecrets:
    return FakeSecrets({"access_token": PRIVATE_TOKEN})


def oauth_secrets(fake: FakeHubSpot) -> FakeSecrets:
    return FakeSecrets({"client_id": fake.client_id, "client_secret": fake.client_secret,
                        "refresh_token": fake.refresh_token})


def ids(pages) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


# --------------------------------------------------------------------------- reading


def test_full_paging_last_page_without_paging_and_resume():
    fake = FakeHubSpot()
    made = [fake.add("contacts", T0 + i, email=f"C{i}@Example.com ") for i in range(250)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        pages = list(read_stream(client, "contacts", mode="full", page_size=100))
        assert [len(p.records) for p in pages] == [100, 100, 50]
        assert [p.has_more for p in pages] == [True, True, False]
        assert ids(pages) == [o["id"] for o in made]
        assert pages[-1].high_water == (T0 + 249) // 1000
        first = fake.requests[0].url.params
        assert first["limit"] == "100" and "after" not in first
        assert "email" in first["properties"].split(",")
        assert "lastmodifieddate" in first["properties"].split(",")
        # resume after the first page with only the cursor string
        rest = ids(read_stream(client, "contacts", cursor=pages[0].cursor))
        assert rest == [o["id"] for o in made[100:]]
        # raw values kept as the source has them
        model = parse_record("contacts", pages[0].records[0])
        assert isinstance(model, HubSpotContact) and model.prop("email") == "C0@Example.com "
        # page_size above the list maximum is capped at 100 for lists
        list(read_stream(client, "companies", page_size=200))
        assert fake.requests[-1].url.params["limit"] == "100"


def test_empty_streams_yield_one_final_empty_page():
    fake = FakeHubSpot()
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        for mode, since in (("full", None), ("incremental", T0 // 1000)):
            pages = list(read_stream(client, "companies", mode=mode, since=since))
            assert len(pages) == 1
            assert pages[0].records == [] and pages[0].has_more is False
            assert pages[0].high_water is None


def test_incremental_windows_past_the_10k_cap_with_shared_timestamps():
    fake = FakeHubSpot()
    old = [fake.add("contacts", T0 - 5000 + i) for i in range(5)]  # before since
    # 10,300 changed contacts, seven per millisecond: page boundaries land inside groups
    changed = [fake.add("contacts", T0 + i // 7) for i in range(10_300)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        pages = list(read_stream(client, "contacts", mode="incremental", since=T0 // 1000,
                                 page_size=200))
    got = ids(pages)
    assert Counter(got) == Counter(o["id"] for o in changed)  # each exactly once
    assert not set(got) & {o["id"] for o in old}
    assert pages[-1].has_more is False and all(p.has_more for p in pages[:-1])
    assert not any(b.get("after") for b in fake.search_bodies)  # keyset: never an offset
    assert all(b["limit"] == 200 for b in fake.search_bodies)
    assert len(fake.search_bodies) <= 10_300 // (200 - 7) + 2
    # each window starts where the last page ended (keyset), as epoch ms
    starts = [int(b["filterGroups"][0]["filters"][0]["value"]) for b in fake.search_bodies]
    assert starts[0] == (T0 // 1000) * 1000 and starts == sorted(starts)
    assert max(p.high_water for p in pages) == (T0 + 10_299 // 7) // 1000
    # the search carries a key so the resilient transport may retry it
    assert all("idempotency-key" in r.headers for r in fake.requests)


def test_one_millisecond_larger_than_a_page_pages_by_offset_and_resumes():
    fake = FakeHubSpot()
    same = [fake.add("companies", T0) for _ in range(250)]
    later = [fake.add("companies", T0 + 1) for _ in range(3)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        pages = list(read_stream(client, "companies", mode="incremental", since=T0 // 1000,
                                 page_size=100))
        assert Counter(ids(pages)) == Counter(o["id"] for o in same + later)
        # resume from the middle of the millisecond: the rest, nothing twice
        first = next(read_stream(client, "companies", mode="incremental", since=T0 // 1000,
                                 page_size=100))
        rest = ids(read_stream(client, "companies", mode="incremental", cursor=first.cursor,
                               page_size=100))
        assert Counter([r["id"] for r in first.records] + rest) == Counter(
            o["id"] for o in same + later
        )


def test_more_than_the_cap_in_one_millisecond_is_read_by_id():
    fake = FakeHubSpot()
    fake.cap = 30  # a small cap makes the case cheap; the reader never pages by offset
    before = [fake.add("contacts", T0 - 1) for _ in range(5)]
    same = [fake.add("contacts", T0) for _ in range(75)]
    after = [fake.add("contacts", T0 + 1) for _ in range(12)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        pages = list(read_stream(client, "contacts", mode="incremental", since=(T0 - 1) // 1000,
                                 page_size=10))
    assert Counter(ids(pages)) == Counter(o["id"] for o in before + same + after)
    tie_queries = [b for b in fake.search_bodies if b["sorts"][0]["propertyName"] == "hs_object_id"]
    assert tie_queries and all(not b.get("after") for b in fake.search_bodies)
    eq, gt = tie_queries[0]["filterGroups"][0]["filters"]
    assert (eq["operator"], eq["value"], gt["propertyName"]) == ("EQ", str(T0), "hs_object_id")


def test_records_modified_while_paging_are_not_lost():
    fake = FakeHubSpot()
    made = [fake.add("contacts", T0 + i) for i in range(500)]

    def churn(f: FakeHubSpot, n: int) -> None:
        if n == 2:  # after the first page: records already read move to the end
            for obj in made[:50]:
                f.touch("contacts", obj["id"], T0 + 10_000)

    fake.on_search = churn
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        got = ids(read_stream(client, "contacts", mode="incremental", since=T0 // 1000,
                              page_size=100))
    assert set(got) == {o["id"] for o in made}  # nothing lost
    assert len(got) == 550  # the 50 moved records come again, in their new state


def test_incremental_cursor_resumes_and_cursor_checks():
    fake = FakeHubSpot()
    made = [fake.add("contacts", T0 + i // 3) for i in range(90)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        it = read_stream(client, "contacts", mode="incremental", since=T0 // 1000, page_size=25)
        first = next(it)
        rest = ids(read_stream(client, "contacts", mode="incremental", cursor=first.cursor,
                               page_size=25))
        assert Counter([r["id"] for r in first.records] + rest) == Counter(o["id"] for o in made)
        with pytest.raises(InvalidCursor):
            read_stream(client, "contacts", mode="full", cursor=first.cursor)
        with pytest.raises(InvalidCursor):
            read_stream(client, "companies", mode="incremental", cursor=first.cursor)
        with pytest.raises(InvalidCursor):
            read_stream(client, "contacts", cursor="garbage")
        with pytest.raises(ConfigError):
            read_stream(client, "contacts", page_size=201)
        with pytest.raises(ConfigError):
            read_stream(client, "deals")


def test_parse_record_and_fingerprint_look_inside_properties():
    raw = {"id": "1", "properties": {"email": "a@b.c", "phone": None}, "archived": False,
           "createdAt": iso(T0), "updatedAt": iso(T0)}
    assert parse_record("contacts", raw).prop("email") == "a@b.c"
    with pytest.raises(SchemaError) as info:
        parse_record("contacts", {"id": 7, "properties": {"email": "secret@x.y"}})
    assert info.value.problems[0]["field"] == "id"
    assert "secret@x.y" not in str(info.value)
    _, before = fingerprint([raw])
    drifted = {**raw, "properties": {"e_mail": "a@b.c", "phone": 5551234}}
    _, after = fingerprint([drifted])
    diff = diff_fields(before, after)
    assert diff["added"] == {"properties.e_mail": "string"}
    assert diff["missing"] == {"properties.email": "string"}
    assert fingerprint([raw])[0] == fingerprint([dict(raw)])[0]


# --------------------------------------------------------------------------- auth


def test_private_app_token_from_vault_and_kind_by_keys():
    fake = FakeHubSpot()
    fake.add("contacts", T0)
    secrets = private_secrets()
    with hubspot_client(make_config(), secrets=secrets,
                        transport=httpx.MockTransport(fake)) as client:
        assert isinstance(client.auth, HubSpotPrivateAppAuth)
        assert len(ids(read_stream(client, "contacts"))) == 1
        assert fake.requests[0].headers["Authorization"] == f"Bearer {PRIVATE_TOKEN}"
        assert PRIVATE_TOKEN not in repr(client.auth)
    assert fake.token_calls == 0
    assert auth_kind({"access_token": 1, "refresh_token": 1, "client_id": 1,
                      "client_secret": 1}) == "oauth"
    with pytest.raises(ConfigError) as info:
        auth_kind({"refresh_token": "x"})
    assert "refresh_token" in str(info.value)


def test_private_app_401_rereads_vault_once():
    fake = FakeHubSpot()
    fake.add("contacts", T0)
    secrets = FakeSecrets({"access_token": "pat-old-revoked-token"})
    with hubspot_client(make_config(), secrets=secrets,
                        transport=httpx.MockTransport(fake)) as client:
        secrets.read(PATH)  # cached
        secrets.vault["access_token"] = PRIVATE_TOKEN  # rotated in Vault
        assert len(ids(read_stream(client, "contacts"))) == 1
        assert client.auth.rotations == 1
        secrets.vault["access_token"] = "pat-revoked-again-token"
        secrets.invalidate()
        fake.valid_tokens = {"something-else"}
        with pytest.raises(SourceAuthError) as info:
            list(read_stream(client, "contacts"))
    assert "pat-revoked-again-token" not in str(info.value)
    assert info.value.category == "INVALID_AUTHENTICATION"
    assert info.value.correlation_id == "corr-1234"


def test_oauth_401_refreshes_once_retries_and_writes_rotated_token():
    fake = FakeHubSpot(rotate=True)
    fake.add("contacts", T0)
    secrets = oauth_secrets(fake)
    with hubspot_client(make_config(), secrets=secrets,
                        transport=httpx.MockTransport(fake)) as client:
        assert isinstance(client.auth, HubSpotOAuth)
        assert len(ids(read_stream(client, "contacts"))) == 1
        assert fake.token_calls == 1  # first use: one refresh, no 401
        assert secrets.vault["refresh_token"] == "rt-1" == fake.refresh_token
        assert secrets.writes == [{"client_id": fake.client_id,
                                   "client_secret": fake.client_secret,
                                   "refresh_token": "rt-1"}]
        fake.valid_tokens = set()  # HubSpot revokes the access token early: 401
        assert len(ids(read_stream(client, "contacts"))) == 1
        assert fake.token_calls == 2 and client.auth.refreshes == 2
        statuses = [r.url.path for r in fake.requests[-3:]]
        assert statuses == ["/crm/v3/objects/contacts", "/oauth/v1/token",
                            "/crm/v3/objects/contacts"]
        assert secrets.vault["refresh_token"] == "rt-2"
        token = fake.requests[-1].headers["Authorization"][7:]
        for text in (repr(client.auth), str(client.auth), repr(client)):
            assert token not in text and "rt-2" not in text


def test_oauth_refreshes_before_expiry_with_a_margin():
    fake = FakeHubSpot(expires_in=100)
    fake.add("contacts", T0)
    now = [1000.0]
    auth = HubSpotOAuth(secrets=oauth_secrets(fake), vault_path=PATH,
                        token_url=BASE + "/oauth/v1/token", margin=30,
                        transport=httpx.MockTransport(fake), clock=lambda: now[0])
    with httpx.Client(base_url=BASE, auth=auth, transport=httpx.MockTransport(fake)) as http:
        assert http.get("/crm/v3/objects/contacts").status_code == 200
        now[0] += 69  # 31 s left: still used
        assert http.get("/crm/v3/objects/contacts").status_code == 200
        assert fake.token_calls == 1
        now[0] += 2  # 29 s left: inside the margin, refreshed before sending
        assert http.get("/crm/v3/objects/contacts").status_code == 200
        assert fake.token_calls == 2
    assert all(r.url.path == "/oauth/v1/token" or r.headers["Authorization"]
               for r in fake.requests)
    assert not any(r.url.path != "/oauth/v1/token" and r.headers.get("Authorization") == ""
                   for r in fake.requests)


def test_concurrent_requests_refresh_once():
    fake = FakeHubSpot(rotate=True)
    fake.add("contacts", T0)
    fake.token_delay = 0.05  # a slow token endpoint: everyone else waits on the lock
    secrets = oauth_secrets(fake)
    client = hubspot_client(make_config(), secrets=secrets, transport=httpx.MockTransport(fake))
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def worker() -> None:
        barrier.wait()
        statuses.append(client.request("GET", "/crm/v3/objects/contacts").status_code)

    def run() -> None:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    with client:
        run()  # no token yet
        assert fake.token_calls == 1
        fake.valid_tokens = set()  # all eight get a 401 at once
        barrier.reset()
        run()
    assert statuses == [200] * 16
    assert fake.token_calls == 2
    assert len(secrets.writes) == 2 and secrets.vault["refresh_token"] == "rt-2"


def test_refused_refresh_token_rereads_vault_then_fails_cleanly():
    fake = FakeHubSpot(rotate=True)
    fake.add("contacts", T0)
    secrets = oauth_secrets(fake)
    secrets.read(PATH)  # cached with rt-0
    fake.refresh_token = "rt-other-process"  # another process rotated it ...
    secrets.vault["refresh_token"] = "rt-other-process"  # ... and wrote it to Vault
    with hubspot_client(make_config(), secrets=secrets,
                        transport=httpx.MockTransport(fake)) as client:
        assert len(ids(read_stream(client, "contacts"))) == 1
        assert fake.token_calls == 2
        fake.valid_tokens = set()
        fake.refresh_token = "rt-revoked-by-user"  # app uninstalled: nothing helps
        with pytest.raises(SourceAuthError) as info:
            list(read_stream(client, "contacts"))
    message = str(info.value)
    assert "BAD_REFRESH_TOKEN" in message and "corr-tok" in message
    for secret in (fake.client_secret, secrets.vault["refresh_token"]):
        assert secret not in message and secret not in info.value.body


# --------------------------------------------------------------------------- limits, errors


def test_hubspot_error_body_becomes_the_error_message():
    fake = FakeHubSpot()
    fake.fail_next = [error(400, "VALIDATION_ERROR", "Property values were not valid")]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        with pytest.raises(SourceClientError) as info:
            list(read_stream(client, "contacts"))
    exc = info.value
    assert exc.status_code == 400 and exc.category == "VALIDATION_ERROR"
    assert exc.correlation_id == "corr-1234"
    assert "VALIDATION_ERROR" in str(exc) and "corr-1234" in str(exc)
    assert "Property values were not valid" in str(exc)
    assert PRIVATE_TOKEN not in str(exc)


def test_429_storm_without_retry_after_waits_for_hubspots_window():
    fake = FakeHubSpot()
    for i in range(3):
        fake.add("contacts", T0 + i)
    limited = {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
               "X-HubSpot-RateLimit-Interval-Milliseconds": "20"}
    fake.fail_next = [error(429, "RATE_LIMITS", "You have reached your secondly limit.",
                            **limited) for _ in range(4)]
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        started = time.monotonic()
        pages = list(read_stream(client, "contacts", mode="incremental", since=T0 // 1000))
        elapsed = time.monotonic() - started
        assert len(ids(pages)) == 3
        assert client.stats.retries == 4 and client.stats.statuses["429"] == 4
        assert client.stats.statuses["200"] == 1
        assert elapsed >= 4 * 0.02
        # a storm longer than the retry budget surfaces as a typed, retryable error
        fake.fail_next = [error(429, "RATE_LIMITS", "secondly limit", **limited)
                          for _ in range(6)]
        with pytest.raises(SourceError) as info:
            list(read_stream(client, "contacts"))
        assert info.value.retryable and info.value.category == "RATE_LIMITS"
        assert len(fake.requests) == 5 + 6


# --------------------------------------------------------------------------- writing


def test_batch_upsert_contacts_in_batches_and_idempotent():
    fake = FakeHubSpot()
    contacts = [{"email": f"u{i}@example.com", "firstname": f"U{i}"} for i in range(250)]
    contacts.append({"email": "U7@Example.com", "lastname": "Seven"})  # same key, merged
    with hubspot_client(make_config(), secrets=private_secrets(),
                        transport=httpx.MockTransport(fake)) as client:
        first = batch_upsert_contacts(client, contacts)
        assert first["batches"] == 3 and first["inputs"] == 250
        assert first["created"] == 250 and first["updated"] == 0 and not first["errors"]
        sizes = [len(json.loads(r.content)["inputs"]) for r in fake.requests]
        assert sizes == [100, 100, 50]
        assert all(r.headers.get("idempotency-key") for r in fake.requests)
        seven = fake.objects["contacts"][first["ids"]["u7@example.com"]]
        assert seven["properties"]["lastname"] == "Seven"
        state = json.dumps(fake.objects, sort_keys=True)
        again = batch_upsert_contacts(client, contacts)
        assert again["created"] == 0 and again["updated"] == 250
        assert again["ids"] == first["ids"]
        assert json.dumps(fake.objects, sort_keys=True) == state
        keys = [r.headers["idempotency-key"] for r in fake.requests]
        assert keys[:3] == keys[3:]  # same content, same key
        with pytest.raises(SchemaError):
            batch_upsert_contacts(client, [{"firstname": "no e-mail"}])


def test_token_request_borrows_the_transport_without_closing_it():
    fake = FakeHubSpot()
    fake.add("contacts", T0)

    class Counting(httpx.MockTransport):
        closed = 0

        def close(self) -> None:
            Counting.closed += 1

    transport = Counting(fake)
    client = hubspot_client(make_config(), secrets=oauth_secrets(fake), transport=transport)
    with client:
        for _ in range(3):
            fake.valid_tokens = set()  # every read needs a refresh first
            assert len(ids(read_stream(client, "contacts"))) == 1
        assert fake.token_calls >= 3 and Counting.closed == 0
    assert Counting.closed == 1  # closed once, by the API client that owns it


def test_rotated_refresh_token_survives_a_failed_vault_write():
    from interchange.errors import SecretsError

    fake = FakeHubSpot(rotate=True)
    fake.add("contacts", T0)
    secrets = oauth_secrets(fake)
    real_write, failures = secrets.write, [1]

    def flaky_write(path: str, values: dict[str, Any]) -> None:
        if failures:
            failures.pop()
            raise SecretsError("Vault at http://vault unreachable for write")
        real_write(path, values)

    secrets.write = flaky_write  # type: ignore[method-assign]
    with hubspot_client(make_config(), secrets=secrets,
                        transport=httpx.MockTransport(fake)) as client:
        assert len(ids(read_stream(client, "contacts"))) == 1  # rt-1 issued, write failed
        assert secrets.vault["refresh_token"] == "rt-0" and not secrets.writes
        fake.valid_tokens = set()
        assert len(ids(read_stream(client, "contacts"))) == 1  # refreshed with rt-1 from memory
    assert fake.token_calls == 2
    assert secrets.vault["refresh_token"] == "rt-2" == fake.refresh_token
    assert secrets.vault["client_secret"] == fake.client_secret
