"""Shopify streams: paged, resumable reads of customers, products, orders and inventory
levels, and the idempotent inventory write.

:func:`read_stream` is the entry point the process layer calls. It yields
:class:`Page` objects - one Admin REST page of raw Shopify objects, an opaque cursor to
resume right after that page, the page's high-water ``updated_at`` (epoch seconds) and
whether more follows - one request at a time, so memory stays flat however big the shop.

Paging
------
Shopify pages with cursors in the ``Link`` header (``<...?limit=250&page_info=...>;
rel="next"``). Only the ``page_info`` value is taken from the header: the next request
is built on the configured base URL (never an absolute URL from a response, so the token
cannot be sent elsewhere) with ``limit`` and ``page_info`` alone, because Shopify
rejects other parameters next to ``page_info`` - the filters of the first request live
inside the ``page_info``. ``limit`` is 1-250.

Modes
-----
``full``
    Everything; orders with ``status=any`` (Shopify lists only open orders by default).
``incremental``
    ``updated_at_min=since`` (epoch seconds or an aware datetime; the caller has already
    subtracted its lookback window). Without ``since`` it is a full read. Records are
    listed by id, so one updated behind the read position after the read started shows
    up in the next run: take the next ``since`` from the run's start (or the largest
    ``high_water``) minus a lookback at least as long as a run.

``inventory_levels`` needs ``location_ids`` (Shopify requires it or
``inventory_item_ids``): the locations are listed first and the levels read for up to
50 locations per listing.

Cursors
-------
An opaque string (compact JSON) naming the stream, the mode, ``since``, the next
``page_info`` and, for inventory levels, the location batch. It resumes right after its
page in this or another process. The cursor of the last page is *done*: resuming from it
yields one empty, final page.

Drift and keys
--------------
:func:`parse_record` turns a raw object into its model or raises
:class:`~interchange.errors.SchemaError` naming fields and problems (never values).
:func:`fingerprint` / :func:`diff_fields` summarise and compare top-level field sets.
:func:`record_key` is a record's primary key (``id``, or ``item:location`` for levels),
for dropping duplicates when pages are re-read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson

from interchange import drift
from interchange.errors import ConfigError, SchemaError
from interchange.http import SourceClient
from interchange.records import validate_record
from interchange.streams import InvalidCursor, Page
from system_apis.shopify.models import (
    ShopifyCustomer,
    ShopifyInventoryLevel,
    ShopifyModel,
    ShopifyOrder,
    ShopifyProduct,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "STREAMS",
    "InvalidCursor",
    "Mode",
    "Page",
    "StreamSpec",
    "dedupe",
    "diff_fields",
    "fingerprint",
    "iter_pages",
    "list_location_ids",
    "next_page_info",
    "parse_link_header",
    "parse_record",
    "read_inventory_levels",
    "read_stream",
    "record_key",
    "set_inventory_levels",
]

Mode = Literal["full", "incremental"]
MAX_PAGE_SIZE = 250  # Shopify's maximum ``limit``
LOCATIONS_PER_REQUEST = 50
_CURSOR_VERSION = 1
_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL_RE = re.compile(r';\s*rel\s*=\s*"?([^";]+)"?')


@dataclass(frozen=True)
class StreamSpec:
    name: str
    path: str
    key: str
    model: type[ShopifyModel]
    params: tuple[tuple[str, str], ...] = ()


STREAMS: dict[str, StreamSpec] = {
    "customers": StreamSpec("customers", "customers.json", "customers", ShopifyCustomer),
    "products": StreamSpec("products", "products.json", "products", ShopifyProduct),
    "orders": StreamSpec(
        "orders", "orders.json", "orders", ShopifyOrder, params=(("status", "any"),)
    ),
    "inventory_levels": StreamSpec(
        "inventory_levels", "inventory_levels.json", "inventory_levels", ShopifyInventoryLevel
    ),
}






@dataclass(frozen=True)
class _Cursor:
    stream: str
    mode: Mode
    since: int | None = None
    page_info: str | None = None
    batch: int = 0
    done: bool = False

    def encode(self) -> str:
        return json.dumps(
            {"v": _CURSOR_VERSION, "stream": self.stream, "mode": self.mode,
             "since": self.since, "page_info": self.page_info, "batch": self.batch,
             "done": self.done},
            separators=(",", ":"), sort_keys=True,
        )  # fmt: skip

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            if body["mode"] not in ("full", "incremental"):
                raise ValueError("unknown mode")
            since, info, batch = body.get("since"), body.get("page_info"), body.get("batch", 0)
            if since is not None and type(since) is not int:
                raise ValueError("since is not an integer")
            if info is not None and not isinstance(info, str):
                raise ValueError("page_info is not a string")
            if type(batch) is not int or batch < 0:
                raise ValueError("batch is not a count")
            return cls(str(body["stream"]), body["mode"], since, info, batch,
                       bool(body.get("done")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"not a Shopify stream cursor ({exc})") from None


# --------------------------------------------------------------------------- links


def parse_link_header(value: str | None) -> dict[str, str]:
    """``Link`` header -> ``{rel: url}`` (RFC 8288; several rels per link allowed)."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_RE.finditer(value):
        url, params = match.group(1).strip(), match.group(2)
        for rel in _REL_RE.findall(params):
            for name in rel.split():
                links.setdefault(name.lower(), url)
    return links


def next_page_info(link_header: str | None, rel: str = "next") -> str | None:
    """The ``page_info`` of the ``rel`` link, or None when there is no such page."""
    url = parse_link_header(link_header).get(rel)
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("page_info")
    return values[0] if values and values[0] else None


# --------------------------------------------------------------------------- reading


def _get_page(
    client: SourceClient, path: str, key: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    response = client.request("GET", path, params=params)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    records = body.get(key) if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise SchemaError(f"{client.source}: GET {path} did not answer {{{key!r}: [...]}}")
    for i, item in enumerate(records):
        if not isinstance(item, dict):
            raise SchemaError(f"{client.source}: GET {path}: item {i} is not an object")
    return records, next_page_info(response.headers.get("Link"))


def iter_pages(
    client: SourceClient,
    path: str,
    key: str,
    *,
    params: Mapping[str, Any] | None = None,
    page_info: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """Raw Link-header paging: ``(records, next page_info or None)`` per page.

    Stops after a page without a ``next`` link, or an empty page (so a source that keeps
    linking to empty pages cannot loop forever).
    """
    while True:
        query: dict[str, Any] = {"limit": page_size}
        if page_info:
            query["page_info"] = page_info  # filters travel inside page_info
        else:
            query.update(params or {})
        records, page_info = _get_page(client, path, key, query)
        if not records:
            page_info = None
        yield records, page_info
        if page_info is None:
            return


def read_inventory_levels(
    client: SourceClient, item_ids: Iterable[int], location_ids: Iterable[int],
    *, per_request: int = 50,
) -> dict[tuple[int, int], int | None]:
    """``{(inventory_item_id, location_id): available}`` of the given items at the given
    locations (``GET inventory_levels.json`` by ``inventory_item_ids``, up to
    ``per_request`` ids a request, as Shopify allows)."""
    items = sorted(set(item_ids))
    locations = ",".join(str(x) for x in sorted(set(location_ids)))
    got: dict[tuple[int, int], int | None] = {}
    for i in range(0, len(items), per_request):
        params = {"inventory_item_ids": ",".join(map(str, items[i : i + per_request])),
                  "location_ids": locations}
        for records, _ in iter_pages(client, "inventory_levels.json", "inventory_levels",
                                     params=params):
            for r in records:
                got[(r.get("inventory_item_id"), r.get("location_id"))] = r.get("available")
    return got


def list_location_ids(client: SourceClient) -> list[int]:
    """Every location id of the shop, ascending."""
    ids: set[int] = set()
    for records, _ in iter_pages(client, "locations.json", "locations"):
        ids.update(r["id"] for r in records if type(r.get("id")) is int)
    return sorted(ids)


def read_stream(
    client: SourceClient,
    stream: str,
    *,
    mode: Mode = "full",
    cursor: str | None = None,
    since: int | datetime | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[Page]:
    """Yield the pages of ``stream`` (customers, products, orders, inventory_levels).

    See the module docstring for modes and cursors. ``cursor`` (from a :class:`Page` of
    the same stream and mode) resumes right after that page, and its ``since`` wins over
    the argument. Arguments are checked now; requests start on iteration.
    """
    spec = _spec(stream)
    if mode not in ("full", "incremental"):
        raise ConfigError(f"unknown read mode {mode!r} (expected 'full' or 'incremental')")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if cursor is not None:
        state = _Cursor.decode(cursor)
        if state.stream != spec.name:
            raise InvalidCursor(f"cursor belongs to stream {state.stream!r}, not {spec.name!r}")
        if state.mode != mode:
            raise InvalidCursor(f"cursor comes from a {state.mode} read, not a {mode} one")
    else:
        state = _Cursor(spec.name, mode, _epoch(since) if mode == "incremental" else None)
    return _read(client, spec, state, page_size)


def _read(client: SourceClient, spec: StreamSpec, state: _Cursor, page_size: int):
    if state.done:
        yield Page([], state.encode(), None, False)
        return
    params: dict[str, Any] = dict(spec.params)
    if state.since is not None:
        params["updated_at_min"] = datetime.fromtimestamp(state.since, UTC).isoformat()
    if spec.name != "inventory_levels":
        for records, info in iter_pages(
            client, spec.path, spec.key, params=params, page_info=state.page_info,
            page_size=page_size,
        ):  # fmt: skip
            after = _Cursor(spec.name, state.mode, state.since, info, 0, info is None)
            yield Page(records, after.encode(), _high_water(records), info is not None)
        return
    locations = list_location_ids(client)
    batches = [
        locations[i : i + LOCATIONS_PER_REQUEST]
        for i in range(0, len(locations), LOCATIONS_PER_REQUEST)
    ]
    if state.batch >= len(batches):
        yield Page([], _Cursor(spec.name, state.mode, state.since, done=True).encode(), None,
                   False)  # fmt: skip
        return
    page_info = state.page_info
    for number in range(state.batch, len(batches)):
        batch_params = {**params, "location_ids": ",".join(map(str, batches[number]))}
        for records, info in iter_pages(
            client, spec.path, spec.key, params=batch_params, page_info=page_info,
            page_size=page_size,
        ):  # fmt: skip
            last_batch = number + 1 >= len(batches)
            if info is not None:
                after = _Cursor(spec.name, state.mode, state.since, info, number)
            else:
                after = _Cursor(spec.name, state.mode, state.since, None, number + 1, last_batch)
            more = info is not None or not last_batch
            yield Page(records, after.encode(), _high_water(records), more)
        page_info = None


def _spec(stream: str) -> StreamSpec:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ConfigError(
            f"unknown Shopify stream {stream!r} (have: {', '.join(sorted(STREAMS))})"
        ) from None


def _epoch(since: int | datetime | None) -> int | None:
    if since is None:
        return None
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise ConfigError("since must be an aware datetime (or epoch seconds)")
        return int(since.timestamp())
    if type(since) is not int:
        raise ConfigError("since must be epoch seconds as an int or an aware datetime")
    return since


def _parse_ts(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _high_water(records: Iterable[Mapping[str, Any]]) -> int | None:
    values = [t for t in (_parse_ts(r.get("updated_at")) for r in records) if t is not None]
    return max(values) if values else None


def record_key(stream: str, record: Mapping[str, Any]) -> str:
    """A record's primary key as a string: ``id``, or ``item:location`` for levels."""
    if _spec(stream).name == "inventory_levels":
        return f"{record.get('inventory_item_id')}:{record.get('location_id')}"
    return str(record.get("id"))


def dedupe(stream: str, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records with duplicates (by :func:`record_key`) removed; the last one read wins
    (it is the most recent state), at the position of the first."""
    out: dict[str, Mapping[str, Any]] = {}
    for record in records:
        out[record_key(stream, record)] = record
    return list(out.values())


# --------------------------------------------------------------------------- writing


def set_inventory_levels(
    client: SourceClient, levels: Iterable[Mapping[str, Any] | ShopifyInventoryLevel]
) -> list[dict[str, Any]]:
    """Set each ``{inventory_item_id, location_id, available}`` with
    ``POST inventory_levels/set.json``; Shopify's ``inventory_level`` answers, in order.

    Setting an absolute quantity is idempotent, so each request carries an
    ``Idempotency-Key`` (a hash of its body) that lets the transport retry it after a
    timeout, a 5xx or a 429 like a GET; repeating the whole call ends in the same state.
    """
    out: list[dict[str, Any]] = []
    for level in levels:
        raw = level.model_dump() if isinstance(level, ShopifyModel) else dict(level)
        body = {
            "location_id": raw.get("location_id"),
            "inventory_item_id": raw.get("inventory_item_id"),
            "available": raw.get("available"),
        }
        for name, value in body.items():
            if type(value) is not int:
                raise ConfigError(f"inventory level {name} must be an int")
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:32]
        response = client.request(
            "POST", "inventory_levels/set.json", json=body,
            headers={"Idempotency-Key": f"inventory-set-{digest}"},
        )  # fmt: skip
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        result = answer.get("inventory_level") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise SchemaError(
                f"{client.source}: POST inventory_levels/set.json did not answer an inventory_level"
            )
        out.append(result)
    return out


# --------------------------------------------------------------------------- parsing


def parse_record(stream: str, raw: Any) -> ShopifyModel:
    """Validate one raw object of ``stream`` into its source-shaped model.

    Raises :class:`~interchange.errors.SchemaError` naming the record id, the fields and
    the problems (``problems`` attribute) - never the values.
    """
    spec = _spec(stream)
    return validate_record("shopify", stream, raw, spec.model,
                           record_id=lambda r: str(record_key(stream, r)))


_json_type = drift.json_type
diff_fields = drift.diff_fields


def fingerprint(records: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """The top-level field set of ``records`` with JSON types, and its stable hash
    (see :mod:`interchange.drift`)."""
    return drift.fingerprint(records)


