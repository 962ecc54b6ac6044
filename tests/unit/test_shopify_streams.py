"""Shopify stream readers on the wire, for cases a sandbox does not produce on demand.

``httpx.MockTransport`` plays Shopify: Link headers in their documented forms, an empty
first page, a last page without ``rel="next"``, a next link pointing at another host,
and the call-limit header that paces the client.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from interchange.errors import SchemaError, SourceAuthError
from interchange.settings import SourceConfig
from system_apis.shopify.client import CallLimitTransport, shopify_client
from system_apis.shopify.streams import (
    InvalidCursor,
    dedupe,
    diff_fields,
    fingerprint,
    next_page_info,
    parse_link_header,
    parse_record,
    read_stream,
)

TOKEN = "shpat_unit_token"
BASE = "https://shop.example.com"


class FakeSecrets:
    def __init__(self, value: str = TOKEN) -> None:
        self.value = value

    def get(self, path: str, key: str) -> SecretStr:
        assert key == "access_token"
        return SecretStr(self.value)

    def invalidate(self, path: str | None = None) -> None:
        pass


def config(**options) -> SourceConfig:
    return SourceConfig(
        name="shopify-unit",
        base_url=BASE,
        vault_path="interchange/sources/shopify",
        rate_limit_per_second=1000,
        burst=100,
        max_retries=1,
        backoff_base_seconds=0.0,
        retry_after_cap_seconds=0.0,
        options={"api_version": "2024-10", **options},
    )


def link(path: str, page_info: str, rel: str, host: str = BASE) -> str:
    return f'<{host}/admin/api/2024-10/{path}?limit=2&page_info={page_info}>; rel="{rel}"'


class Shop:
    """A scripted Shopify: ``pages[page_info or ""] -> (records, link header)``."""

    def __init__(self, key: str, pages: dict[str, tuple[list[dict], str | None]]) -> None:
        self.key = key
        self.pages = pages
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})
        info = request.url.params.get("page_info", "")
        records, link_header = self.pages[info]
        headers = {"X-Shopify-Shop-Api-Call-Limit": "1/40"}
        if link_header:
            headers["Link"] = link_header
        return httpx.Response(200, json={self.key: records}, headers=headers)

    def client(self, **options):
        return shopify_client(
            config(**options), secrets=FakeSecrets(), transport=httpx.MockTransport(self)
        )


def customers(*ids: int) -> list[dict]:
    return [
        {"id": i, "created_at": "2025-01-02T03:04:05-05:00",
         "updated_at": f"2025-01-0{i % 9 + 1}T03:04:05-05:00", "email": f" C{i}@Example.com"}
        for i in ids
    ]  # fmt: skip


# --------------------------------------------------------------------------- Link


def test_link_header_with_previous_and_next():
    header = f"{link('orders.json', 'p1', 'previous')}, {link('orders.json', 'n1', 'next')}"
    links = parse_link_header(header)
    assert set(links) == {"previous", "next"}
    assert next_page_info(header) == "n1"
    assert next_page_info(header, "previous") == "p1"


def test_link_header_forms():
    assert parse_link_header(None) == {} and parse_link_header("") == {}
    assert next_page_info(link("orders.json", "abc", "previous")) is None  # first... last page
    unquoted = "<https://x/admin/api/2024-10/p.json?page_info=z9&limit=5>; rel=next"
    assert next_page_info(unquoted) == "z9"
    spaced = '<https://x/a.json?limit=1&page_info=q-_Q>;rel="next"'
    assert next_page_info(spaced) == "q-_Q"


# --------------------------------------------------------------------------- paging


def test_walks_pages_by_page_info_and_stops_on_the_last_page():
    shop = Shop(
        "customers",
        {
            "": (customers(1, 2), link("customers.json", "A", "next")),
            "A": (
                customers(3, 4),
                f"{link('customers.json', 'Z', 'previous')}, {link('customers.json', 'B', 'next')}",
            ),
            "B": (customers(5), link("customers.json", "Y", "previous")),
        },
    )
    with shop.client() as client:
        pages = list(read_stream(client, "customers", page_size=2))
    assert [[r["id"] for r in p.records] for p in pages] == [[1, 2], [3, 4], [5]]
    assert [p.has_more for p in pages] == [True, True, False]
    assert len(shop.requests) == 3
    first, *rest = (parse_qs(urlsplit(str(r.url)).query) for r in shop.requests)
    assert first == {"limit": ["2"]}
    # with page_info, Shopify accepts only limit (and fields): no filters are resent
    assert rest == [{"limit": ["2"], "page_info": ["A"]}, {"limit": ["2"], "page_info": ["B"]}]
    assert all(r.url.path == "/admin/api/2024-10/customers.json" for r in shop.requests)
    assert pages[0].high_water is not None

    # resume from the first page's cursor: only pages 2 and 3
    shop.requests.clear()
    with shop.client() as client:
        rest_pages = list(read_stream(client, "customers", cursor=pages[0].cursor, page_size=2))
    assert [r["id"] for p in rest_pages for r in p.records] == [3, 4, 5]
    assert shop.requests[0].url.params["page_info"] == "A"

    # the last page's cursor is done: one empty final page, no request
    shop.requests.clear()
    with shop.client() as client:
        tail = list(read_stream(client, "customers", cursor=pages[-1].cursor))
    assert [(p.records, p.has_more) for p in tail] == [([], False)]
    assert shop.requests == []


def test_empty_first_page_is_one_final_page():
    shop = Shop("orders", {"": ([], None)})
    with shop.client() as client:
        pages = list(read_stream(client, "orders", mode="incremental", since=1_767_225_600))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].has_more is False
    assert pages[0].high_water is None
    params = shop.requests[0].url.params
    assert params["status"] == "any"
    assert params["updated_at_min"] == "2026-01-01T00:00:00+00:00"


def test_an_empty_page_that_still_links_onwards_ends_the_read():
    shop = Shop("products", {"": ([], link("products.json", "X", "next"))})
    with shop.client() as client:
        pages = list(read_stream(client, "products"))
    assert len(pages) == 1 and not pages[0].has_more and len(shop.requests) == 1


def test_next_link_to_another_host_is_not_followed():
    shop = Shop(
        "customers",
        {
            "": (customers(1), link("customers.json", "A", "next", host="https://evil.example")),
            "A": (customers(2), None),
        },
    )
    with shop.client() as client:
        ids = [r["id"] for p in read_stream(client, "customers") for r in p.records]
    assert ids == [1, 2]
    assert {r.url.host for r in shop.requests} == {"shop.example.com"}


def test_inventory_levels_batch_locations_fifty_at_a_time():
    location_ids = list(range(1, 61))
    levels_seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/locations.json"):
            return httpx.Response(200, json={"locations": [{"id": i} for i in location_ids]})
        assert request.url.path.endswith("/inventory_levels.json")
        ids = request.url.params["location_ids"]
        levels_seen.append(ids)
        first = int(ids.split(",")[0])
        rows = [{"inventory_item_id": 9, "location_id": first, "available": 1,
                 "updated_at": "2025-03-04T05:06:07+05:30"}]  # fmt: skip
        return httpx.Response(200, json={"inventory_levels": rows})

    client = shopify_client(config(), secrets=FakeSecrets(), transport=httpx.MockTransport(handler))
    with client:
        pages = list(read_stream(client, "inventory_levels"))
        assert [len(ids.split(",")) for ids in levels_seen] == [50, 10]
        assert [p.has_more for p in pages] == [True, False]
        # resume after the first batch: the second batch only
        levels_seen.clear()
        again = list(read_stream(client, "inventory_levels", cursor=pages[0].cursor))
        assert [len(ids.split(",")) for ids in levels_seen] == [10]
        assert [r["location_id"] for p in again for r in p.records] == [51]


def test_cursor_checks():
    shop = Shop("customers", {"": (customers(1), None)})
    with shop.client() as client:
        cursor = next(iter(read_stream(client, "customers"))).cursor
        with pytest.raises(InvalidCursor):
            read_stream(client, "orders", cursor=cursor)
        with pytest.raises(InvalidCursor):
            read_stream(client, "customers", mode="incremental", cursor=cursor)
        with pytest.raises(InvalidCursor):
            read_stream(client, "customers", cursor="not json")
        with pytest.raises(Exception, match="page_size"):
            read_stream(client, "customers", page_size=251)


def test_401_is_an_auth_error_without_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})

    client = shopify_client(config(), secrets=FakeSecrets(), transport=httpx.MockTransport(handler))
    with client, pytest.raises(SourceAuthError) as info:
        list(read_stream(client, "customers"))
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------- leaky bucket


def test_call_limit_header_paces_requests_near_a_full_bucket():
    now = [0.0]
    slept: list[float] = []
    used = iter([38, 39, 10, 5])

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"X-Shopify-Shop-Api-Call-Limit": f"{next(used)}/40"}
        return httpx.Response(200, json={}, headers=headers)

    pacer = CallLimitTransport(
        httpx.MockTransport(handler),
        leak_rate=2.0,
        clock=lambda: now[0],
        sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)),
    )
    request = httpx.Request("GET", "https://x/a.json")
    pacer.handle_request(request)  # nothing known yet: no wait; bucket now 38/40
    assert slept == []
    pacer.handle_request(request)  # 38 + 1 > 36 allowed: wait 1.5 s at 2/s
    assert slept == [pytest.approx(1.5)]
    pacer.handle_request(request)  # 39 - 0 leaked + 1 > 36: wait 2 s
    assert slept[-1] == pytest.approx(2.0)
    now[0] += 100
    pacer.handle_request(request)  # 10/40 long ago: no wait
    assert len(slept) == 2 and pacer.waits == 2


# --------------------------------------------------------------------------- records


def test_parse_record_and_drift():
    order = {
        "id": 1, "created_at": "2025-01-02T03:04:05-05:00",
        "updated_at": "2025-01-02T03:04:05-05:00", "currency": "EUR", "total_price": "10.50",
        "line_items": [{"id": 7, "quantity": 2, "price": "5.25", "sku": "A-1"}],
        "brand_new_field": {"kept": True},
    }  # fmt: skip
    model = parse_record("orders", order)
    assert model.total_price == "10.50" and model.line_items[0].price == "5.25"
    assert model.model_extra == {"brand_new_field": {"kept": True}}

    retyped = json.loads(json.dumps(order))
    retyped["total_price"] = 10.5
    del retyped["currency"]
    with pytest.raises(SchemaError) as info:
        parse_record("orders", retyped)
    fields = {p["field"] for p in info.value.problems}
    assert fields == {"total_price", "currency"} and "10.5" not in str(info.value)

    _, before = fingerprint([order])
    _, after = fingerprint([retyped])
    assert diff_fields(before, after) == {
        "added": {},
        "missing": {"currency": "string"},
        "retyped": {"total_price": {"old": "string", "new": "number"}},
    }


def test_dedupe_keeps_the_latest_state_by_key():
    rows = [{"id": 1, "v": "old"}, {"id": 2}, {"id": 1, "v": "new"}]
    assert dedupe("customers", rows) == [{"id": 1, "v": "new"}, {"id": 2}]
    levels = [
        {"inventory_item_id": 1, "location_id": 1, "available": 1},
        {"inventory_item_id": 1, "location_id": 2, "available": 1},
        {"inventory_item_id": 1, "location_id": 1, "available": 5},
    ]
    assert [r["available"] for r in dedupe("inventory_levels", levels)] == [5, 1]
