"""The Shopify system API against real components: the Shopify sandbox and OpenBao.

The access token lives in a real OpenBao dev server and is read by
:class:`interchange.secrets.VaultSecrets`; requests go to ``python -m sandboxes.shopify``
processes started by ``tests.fixtures.shopify`` on free ports. Run with
``-p tests.fixtures.shopify``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from interchange import vaultdev
from interchange.errors import SourceAuthError, SourceClientError, SourceRateLimited
from interchange.secrets import VaultSecrets
from interchange.settings import SourceConfig
from system_apis.shopify.client import shopify_client
from system_apis.shopify.streams import (
    STREAMS,
    dedupe,
    diff_fields,
    fingerprint,
    parse_record,
    read_stream,
    record_key,
    set_inventory_levels,
)

SHARED_LEAK_RATE = 20.0  # the shared sandbox leaks like a Plus shop so tests never queue


@pytest.fixture(scope="module")
def shared(shopify_sandbox):
    shopify_sandbox.config(leak_rate=SHARED_LEAK_RATE)
    return shopify_sandbox


@pytest.fixture
def secrets(vault) -> Iterator[VaultSecrets]:
    s = VaultSecrets(addr=vault.addr, token=vault.root_token, cache_ttl=300)
    try:
        yield s
    finally:
        s.close()


def vault_path_for(vault, token: str) -> str:
    path = f"interchange/sources/shopify-{uuid.uuid4().hex[:8]}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": token}})
    return path


def make_client(sandbox, vault, secrets, *, max_retries: int = 3, **options):
    config = SourceConfig(
        name="shopify-it",
        base_url=sandbox.url,
        vault_path=vault_path_for(vault, sandbox.token),
        rate_limit_per_second=1000,
        burst=100,
        max_retries=max_retries,
        backoff_base_seconds=0.01,
        options={"api_version": sandbox.version, **options},
    )
    return shopify_client(config, secrets=secrets)


def keys(stream: str, pages) -> list[str]:
    return [record_key(stream, r) for p in pages for r in p.records]


# --------------------------------------------------------------------------- reads


def test_full_walk_returns_every_record_of_every_stream_exactly_once(shared, vault, secrets):
    expected = shared.expected
    with make_client(shared, vault, secrets, leak_rate=SHARED_LEAK_RATE) as client:
        for stream in STREAMS:
            pages = list(read_stream(client, stream, page_size=100))
            got = keys(stream, pages)
            assert len(got) == len(set(got)) == expected[stream], stream
            assert [p.has_more for p in pages][-1] is False
            assert all(p.has_more for p in pages[:-1])
            for page in pages:
                for raw in page.records:
                    parse_record(stream, raw)
            # one field set per stream across pages: no drift on a quiet sandbox
            sets = [fingerprint(p.records)[1] for p in pages if p.records]
            for other in sets[1:]:
                assert set(diff_fields(sets[0], other)["retyped"]) == set(), stream
            assert all(p.high_water for p in pages if p.records)
        assert client.stats.retries == 0

        orders = [r for p in read_stream(client, "orders", page_size=250) for r in p.records]
        # status=any: open, closed and cancelled orders all listed
        states = {("c" if o["cancelled_at"] else "x" if o["closed_at"] else "o") for o in orders}
        assert states == {"o", "x", "c"}
        order = parse_record("orders", orders[0])
        assert isinstance(order.total_price, str) and "." in order.total_price
        assert len(order.currency) == 3 and order.line_items
        assert order.created_at[-6] in "+-"  # an offset, not Z
        customers = [r for p in read_stream(client, "customers") for r in p.records]
        emails = [c["email"] for c in customers]
        assert None in emails and any(e and e != e.strip() for e in emails)  # messy, as typed


def test_resume_from_a_cursor_in_the_middle(shared, vault, secrets):
    with make_client(shared, vault, secrets, leak_rate=SHARED_LEAK_RATE) as client:
        pages = list(read_stream(client, "customers", page_size=50))
        cursor = pages[2].cursor
        ids = keys("customers", pages)
    # a new client (another process, as far as the cursor knows) carries on after page 3
    with make_client(shared, vault, secrets, leak_rate=SHARED_LEAK_RATE) as client:
        rest = keys("customers", read_stream(client, "customers", cursor=cursor, page_size=50))
    assert rest == ids[150:]


def test_incremental_by_updated_at_min_after_an_update(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    started = int(time.time())
    with make_client(sandbox, vault, secrets) as client:
        # seeded data is older than "now": nothing changed yet
        for stream in STREAMS:
            pages = list(read_stream(client, stream, mode="incremental", since=started - 5))
            assert keys(stream, pages) == [], stream

        first = [r["id"] for r in next(iter(read_stream(client, "customers"))).records]
        orders = [r["id"] for r in next(iter(read_stream(client, "orders"))).records]
        changed_customers = [first[3], first[17], first[40]]
        assert sandbox.touch("customers", changed_customers, {"email": " New@Example.COM"}) == 3
        assert sandbox.touch("orders", orders[:2], {"closed_at": "2026-11-30T01:02:03-05:00"})

        since = started - 60  # the caller's lookback
        pages = list(read_stream(client, "customers", mode="incremental", since=since, page_size=2))
        got = {r["id"]: r for p in pages for r in p.records}
        assert sorted(got) == sorted(changed_customers)
        assert {r["email"] for r in got.values()} == {" New@Example.COM"}
        assert max(p.high_water or 0 for p in pages) >= started
        closed = list(read_stream(client, "orders", mode="incremental", since=since))
        assert sorted(keys("orders", closed)) == sorted(map(str, orders[:2]))  # status=any


def test_records_changing_while_paging_lose_nothing(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    expected = sandbox.expected["customers"]
    with make_client(sandbox, vault, secrets) as client:
        all_ids = [r["id"] for p in read_stream(client, "customers", page_size=250)
                   for r in p.records]  # fmt: skip
        seen: list[dict] = []
        reader = read_stream(client, "customers", page_size=30)
        first = next(reader)
        seen.extend(first.records)
        # behind and ahead of the read position, while paging
        sandbox.touch("customers", [all_ids[0], all_ids[5], all_ids[100], all_ids[-1]],
                      {"note": "edited mid-read"})  # fmt: skip
        for page in reader:
            seen.extend(page.records)
        assert len({r["id"] for r in seen}) == expected
        edited = {r["id"] for r in seen if r.get("note") == "edited mid-read"}
        assert edited == {all_ids[100], all_ids[-1]}  # the ones ahead show their new state

        # incremental while records keep changing: re-reading from an earlier cursor
        # (a retried task) gives duplicates, which dedupe by id removes
        since = int(time.time()) - 60
        sandbox.touch("customers", all_ids[:40], {"tags": "wave-1"})
        reader = read_stream(client, "customers", mode="incremental", since=since, page_size=10)
        page1 = next(reader)
        sandbox.touch("customers", [all_ids[1], all_ids[60]], {"tags": "wave-2"})
        rest = [r for p in reader for r in p.records]
        replay = [r for p in read_stream(client, "customers", mode="incremental",
                                         cursor=page1.cursor, page_size=10)
                  for r in p.records]  # fmt: skip
        merged = dedupe("customers", [*page1.records, *rest, *replay])
        ids = [r["id"] for r in merged]
        assert len(ids) == len(set(ids))
        mid_read = {all_ids[100], all_ids[-1]}  # edited above, also inside the lookback
        assert set(ids) == set(all_ids[:40]) | {all_ids[60]} | mid_read
        assert len(page1.records) + len(rest) + len(replay) > len(merged)


# --------------------------------------------------------------------------- limits


def test_a_storm_of_429s_is_retried_with_exact_counts(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    sandbox.config(throttle_next=3, retry_after=0.05)
    with make_client(sandbox, vault, secrets, max_retries=5) as client:
        started = time.monotonic()
        pages = list(read_stream(client, "customers", page_size=250))
        elapsed = time.monotonic() - started
        assert len(keys("customers", pages)) == sandbox.expected["customers"]
        assert client.stats.retries == 3
        assert dict(client.stats.statuses) == {"429": 3, "200": 1}
        assert elapsed >= 0.15  # Retry-After honoured each time
    assert sandbox.stats()["statuses"] == {"429": 3, "200": 1}

    # a storm longer than the retry budget surfaces as SourceRateLimited, after exactly
    # max_retries + 1 attempts
    sandbox.clear_stats()
    sandbox.config(throttle_next=10)
    with make_client(sandbox, vault, secrets, max_retries=2) as client:
        with pytest.raises(SourceRateLimited) as info:
            list(read_stream(client, "orders"))
        assert info.value.retry_after == pytest.approx(0.05)
        assert client.stats.requests == 3
    assert sandbox.stats()["statuses"] == {"429": 3}


def test_server_errors_and_latency_are_retried_without_loss(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    sandbox.config(error_rate=0.3, chaos_seed=7, latency_ms=5)
    with make_client(sandbox, vault, secrets, max_retries=10) as client:
        got = keys("orders", read_stream(client, "orders", page_size=20))
        assert len(got) == len(set(got)) == sandbox.expected["orders"]
        errors = client.stats.statuses["500"]
        assert errors > 0 and client.stats.retries == errors
    assert sandbox.stats()["statuses"]["500"] == errors


def test_leaky_bucket_header_429_shape_and_client_pacing(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    sandbox.config(bucket_size=5, leak_rate=0.2)
    with sandbox.client(timeout=10) as http:
        used = [http.get("customers.json", params={"limit": 1}) for _ in range(5)]
        assert [r.headers["X-Shopify-Shop-Api-Call-Limit"] for r in used] == [
            "1/5", "2/5", "3/5", "4/5", "5/5",
        ]  # fmt: skip
        full = http.get("customers.json", params={"limit": 1})
    assert full.status_code == 429
    assert full.headers["Retry-After"] == "2.0"
    assert full.headers["X-Shopify-Shop-Api-Call-Limit"] == "5/5"
    assert full.json() == {
        "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
        "resume uninterrupted service."
    }

    # the system API reads the header and slows down before the bucket fills: no 429s
    sandbox.config(bucket_size=5, leak_rate=10.0)
    sandbox.clear_stats()
    with make_client(sandbox, vault, secrets, leak_rate=10.0, bucket_headroom=1) as client:
        pages = list(read_stream(client, "products", page_size=4))
        assert len(pages) >= 12
        assert client.call_limit.waits > 0
        assert client.call_limit.last_header.endswith("/5")
        assert client.stats.retries == 0
    assert set(sandbox.stats()["statuses"]) == {"200"}


def test_401_shape_and_auth_error(shared, vault, secrets):
    wrong = httpx.get(
        f"{shared.api}/orders.json", headers={"X-Shopify-Access-Token": "shpat_wrong"}, timeout=10
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert httpx.get(f"{shared.api}/orders.json", timeout=10).status_code == 401

    bad = "shpat_revoked_" + uuid.uuid4().hex
    config = SourceConfig(
        name="shopify-it", base_url=shared.url, vault_path=vault_path_for(vault, bad),
        max_retries=0, options={"api_version": shared.version},
    )  # fmt: skip
    with shopify_client(config, secrets=secrets) as client:
        with pytest.raises(SourceAuthError) as info:
            list(read_stream(client, "customers"))
        assert info.value.status_code == 401
        assert bad not in str(info.value) and bad not in repr(info.value.args)
        assert client.stats.requests == 1


def test_token_rotated_in_the_middle_of_paging(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    path = vault_path_for(vault, sandbox.token)
    config = SourceConfig(
        name="shopify-it", base_url=sandbox.url, vault_path=path, rate_limit_per_second=1000,
        burst=100, max_retries=0, options={"api_version": sandbox.version},
    )  # fmt: skip
    with shopify_client(config, secrets=secrets) as client:
        reader = read_stream(client, "customers", page_size=50)
        seen = list(next(reader).records)  # the old token is now cached for 300 s
        new = "shpat_rotated_" + uuid.uuid4().hex
        sandbox.rotate_token(new)
        vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": new}})
        for page in reader:
            seen.extend(page.records)
        assert len({r["id"] for r in seen}) == len(seen) == sandbox.expected["customers"]
        assert client.http.auth.rotations == 1
        assert dict(client.stats.statuses) == {"200": 4, "401": 1}  # 4 pages, 1 refused


def test_contract_edges(shared):
    with shared.client(timeout=10) as http:
        first = http.get("orders.json", params={"limit": 5, "status": "any"})
        assert first.status_code == 200 and len(first.json()["orders"]) == 5
        assert 'rel="next"' in first.headers["Link"] and "previous" not in first.headers["Link"]
        next_url = first.headers["Link"].split(">")[0][1:]
        second = http.get(next_url)
        assert 'rel="previous"' in second.headers["Link"]
        back = http.get(second.headers["Link"].split(">")[0][1:])
        assert back.json() == first.json()
        # with page_info only limit and fields are allowed
        mixed = http.get(next_url + "&status=any")
        assert mixed.status_code == 400 and "errors" in mixed.json()
        capped = http.get("customers.json", params={"limit": 1000})
        assert len(capped.json()["customers"]) == 250
        assert len(http.get("customers.json").json()["customers"]) == 50  # default limit
        assert http.get("inventory_levels.json").status_code == 422
        fields = http.get("products.json", params={"limit": 2, "fields": "id,title"}).json()
        assert all(set(p) == {"id", "title"} for p in fields["products"])
    for version in ("2024-01", "2025-10"):
        ok = httpx.get(f"{shared.url}/admin/api/{version}/customers.json?limit=1",
                       headers=shared.headers, timeout=10)  # fmt: skip
        assert ok.status_code == 200 and ok.headers["X-Shopify-API-Version"] == version
    gone = httpx.get(f"{shared.url}/admin/api/2019-04/customers.json", headers=shared.headers)
    assert gone.status_code == 404


def test_schema_drift_knob_is_seen_by_fingerprints(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    with make_client(sandbox, vault, secrets) as client:
        before = fingerprint(next(iter(read_stream(client, "customers"))).records)[1]
        sandbox.config(drift={"customers": {"renamed": {"email": "email_address"},
                                            "removed": ["phone"],
                                            "retyped": {"orders_count": "string"}}})  # fmt: skip
        page = next(iter(read_stream(client, "customers")))
    diff = diff_fields(before, fingerprint(page.records)[1])
    assert set(diff["added"]) == {"email_address"}
    assert set(diff["missing"]) == {"email", "phone"}
    assert diff["retyped"] == {"orders_count": {"old": "integer", "new": "string"}}
    with pytest.raises(Exception, match="orders_count"):
        parse_record("customers", page.records[0])


# --------------------------------------------------------------------------- writes


def test_inventory_set_is_idempotent(fresh_shopify, vault, secrets):
    sandbox = fresh_shopify
    with make_client(sandbox, vault, secrets) as client:
        level = next(iter(read_stream(client, "inventory_levels"))).records[0]
        item, location = level["inventory_item_id"], level["location_id"]
        target = (level["available"] or 0) + 7
        want = {"inventory_item_id": item, "location_id": location, "available": target}

        since = int(time.time()) - 5
        [first] = set_inventory_levels(client, [want])
        assert first["available"] == target and first["location_id"] == location
        time.sleep(1.1)  # a second write that changed something would get a newer updated_at
        [again] = set_inventory_levels(client, [want])
        assert again == first

        changed = list(read_stream(client, "inventory_levels", mode="incremental", since=since))
        rows = [r for p in changed for r in p.records]
        assert [(r["inventory_item_id"], r["location_id"], r["available"]) for r in rows] == [
            (item, location, target)
        ]
        assert parse_record("inventory_levels", rows[0]).available == target

        # a throttled write is retried (it is idempotent), not failed
        sandbox.config(throttle_next=1, retry_after=0.05)
        retries = client.stats.retries
        [third] = set_inventory_levels(client, [{**want, "available": target + 1}])
        assert third["available"] == target + 1 and client.stats.retries == retries + 1

        with pytest.raises(SourceClientError) as info:
            set_inventory_levels(client, [{**want, "location_id": 1}])
        assert info.value.status_code == 422
