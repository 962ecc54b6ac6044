"""Stripe streams: paged, resumable reads of customers, payments and refunds.

:func:`read_stream` is the one entry point the process layer calls. It yields
:class:`Page` objects - a page of raw Stripe objects in their *current* state, an
opaque cursor to resume right after that page, the page's high-water ``created`` and
whether more follows. Pages are produced one request (or one request plus the refetches
of that page) at a time, so memory stays flat however large the account is.

Modes
-----
``full``
    ``limit`` / ``starting_after`` / ``has_more`` paging of the stream's list endpoint.
    Every live object is returned once. (Stripe does not list deleted objects, so a
    full read cannot report deletions; the incremental customer read does.)
``incremental``
    What changed since ``since`` (epoch seconds; the caller has already subtracted its
    lookback window). Without ``since`` (a first run) it is a full read. The strategy
    depends on the stream, because localstripe - the sandbox - emits events for some
    objects only and supports ``created`` filters on some lists only:

    ``customers`` (``/v1/customers``) - **events**.
        ``GET /v1/events?created[gte]=since`` pages; the ids of customers named by
        ``customer.created|updated|deleted`` events are deduplicated per page and each
        customer is refetched (``GET /v1/customers/{id}``), so records are current
        state and the order in which events are listed does not matter (localstripe
        lists oldest first, Stripe newest first). A deleted customer comes back as
        ``{"id", "object": "customer", "deleted": true}`` - Stripe's own tombstone, or
        synthesised when the sandbox answers 404. Event types are filtered on our side
        (localstripe has no ``types[]`` filter); event pages naming no customer are not
        yielded, but their ``created`` still counts in the next page's ``high_water``.
        Stripe keeps events for 30 days, so a ``since`` older than
        :data:`EVENT_RETENTION_SECONDS` falls back to a full read (which cannot see
        deletions).
    ``payments`` (``/v1/charges``) - **created filter**.
        The list's own filter, sent as ``created[gt]=since-1`` (the same set as
        ``created[gte]=since`` for integer seconds; localstripe implements only ``gt``
        on charges and answers 500 to ``gte``). Catches new charges; later changes to
        an old charge (capture, refund totals, disputes) are not seen - refunds have
        their own stream, and a periodic full read catches the rest. (localstripe emits
        no ``charge.*`` events; on real Stripe an events strategy would also work.)
    ``refunds`` (``/v1/refunds``) - **full listing**.
        localstripe emits no refund events and its refund list takes no ``created``
        filter, so every refund is listed on each incremental read (idempotent upserts
        downstream make that safe; ``high_water`` is still the largest ``created``).

Cursors
-------
A cursor is an opaque string (compact JSON today) naming the stream, the strategy, the
``since`` the read started with and the id to continue ``starting_after``. Passing it
back resumes right after the page it came with, in this or another process; the
cursor's own ``since`` wins over the argument so a resumed read continues the same
listing. Caveat: if the object a cursor points at is deleted before the resume,
localstripe restarts the listing from the top (duplicates, never loss); Stripe is
expected to reject the ``starting_after`` (not verified here) - start a fresh read then.

Schema drift
------------
:func:`parse_record` turns a raw object into its source-shaped model or raises
:class:`~interchange.errors.SchemaError` naming the fields and problems (never values).
:func:`fingerprint` summarises a page's top-level field set with JSON types and a stable
hash; :func:`diff_fields` compares two such field sets (added, missing, retyped).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import quote

from interchange import drift
from interchange.errors import ConfigError, SchemaError, SourceNotFound
from interchange.http import SourceClient
from interchange.records import validate_record
from interchange.streams import InvalidCursor, Page
from system_apis.stripe.client import get_json
from system_apis.stripe.models import (
    StripeCharge,
    StripeCustomer,
    StripeEvent,
    StripeModel,
    StripeRefund,
)

__all__ = [
    "EVENT_RETENTION_SECONDS",
    "STREAMS",
    "InvalidCursor",
    "Mode",
    "Page",
    "StreamSpec",
    "diff_fields",
    "fetch_current",
    "fingerprint",
    "iter_list",
    "parse_record",
    "read_stream",
]

log = logging.getLogger("system_apis.stripe.streams")

Mode = Literal["full", "incremental"]
Strategy = Literal["list", "created", "events"]

EVENTS_PATH = "/v1/events"
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
MAX_PAGE_SIZE = 100  # Stripe's maximum ``limit``
_CURSOR_VERSION = 1


@dataclass(frozen=True)
class StreamSpec:
    """How one stream is read: endpoint, object type, model and incremental strategy."""

    name: str
    path: str
    object: str
    model: type[StripeModel]
    incremental: Strategy
    event_types: frozenset[str] = frozenset()


STREAMS: dict[str, StreamSpec] = {
    "customers": StreamSpec(
        name="customers",
        path="/v1/customers",
        object="customer",
        model=StripeCustomer,
        incremental="events",
        event_types=frozenset({"customer.created", "customer.updated", "customer.deleted"}),
    ),
    "payments": StreamSpec(
        name="payments",
        path="/v1/charges",
        object="charge",
        model=StripeCharge,
        incremental="created",
        event_types=frozenset({
            "charge.succeeded", "charge.failed", "charge.pending", "charge.captured",
            "charge.updated", "charge.refunded", "charge.expired",
        }),
    ),
    "refunds": StreamSpec(
        name="refunds",
        path="/v1/refunds",
        object="refund",
        model=StripeRefund,
        incremental="list",
        event_types=frozenset({"refund.created", "refund.updated", "refund.failed",
                               "charge.refund.updated"}),
    ),
}






@dataclass(frozen=True)
class _Cursor:
    stream: str
    strategy: Strategy
    since: int | None = None
    after: str | None = None

    def encode(self) -> str:
        body = {
            "v": _CURSOR_VERSION,
            "stream": self.stream,
            "strategy": self.strategy,
            "since": self.since,
            "after": self.after,
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            strategy = body["strategy"]
            if strategy not in ("list", "created", "events"):
                raise ValueError("unknown strategy")
            since, after = body.get("since"), body.get("after")
            if since is not None and type(since) is not int:
                raise ValueError("since is not an integer")
            if after is not None and not isinstance(after, str):
                raise ValueError("after is not a string")
            return cls(stream=str(body["stream"]), strategy=strategy, since=since, after=after)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"not a Stripe stream cursor ({exc})") from None


# --------------------------------------------------------------------------- reading


def read_stream(
    client: SourceClient,
    stream: str,
    *,
    mode: Mode = "full",
    cursor: str | None = None,
    since: int | None = None,
    page_size: int = MAX_PAGE_SIZE,
    strategy: Strategy | None = None,
) -> Iterator[Page]:
    """Yield the pages of ``stream`` (``customers``, ``payments`` or ``refunds``).

    ``mode="full"`` lists everything; ``mode="incremental"`` reads what changed since
    ``since`` (see the module docstring for each stream's strategy). ``cursor`` - from
    an earlier :class:`Page` of the same stream and mode - resumes right after that
    page. ``page_size`` is Stripe's ``limit`` (1-100). ``since`` is ignored in full
    mode. Arguments are checked when this is called; requests start on iteration.
    """
    spec = _spec(stream)
    if mode not in ("full", "incremental"):
        raise ConfigError(f"unknown read mode {mode!r} (expected 'full' or 'incremental')")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if since is not None and type(since) is not int:
        raise ConfigError("since must be epoch seconds as an int")
    if strategy is not None:
        # Per-stream override from sources.yaml (options.incremental.<stream>): real
        # Stripe emits charge.* and refund.* events, which see changes to old objects
        # that the sandbox-friendly defaults (created filter, full listing) miss.
        if strategy not in ("list", "created", "events"):
            raise ConfigError(f"unknown incremental strategy {strategy!r} for {stream}")
        if strategy == "events" and not spec.event_types:
            raise ConfigError(f"stream {stream!r} has no event types to read incrementally")
        spec = replace(spec, incremental=strategy)

    if cursor is not None:
        state = _Cursor.decode(cursor)
        if state.stream != spec.name:
            raise InvalidCursor(f"cursor belongs to stream {state.stream!r}, not {spec.name!r}")
        if mode == "full" and state.strategy != "list":
            raise InvalidCursor("cursor comes from an incremental read, not a full one")
    else:
        state = _Cursor(stream=spec.name, strategy=_plan(spec, mode, since), since=since)
        if state.strategy == "list":
            state = _Cursor(stream=spec.name, strategy="list")

    if state.strategy == "events":
        return _read_events(client, spec, state, page_size)
    params: dict[str, Any] = {}
    if state.strategy == "created" and state.since is not None:
        # created[gt]=since-1 is created[gte]=since for integer seconds; localstripe
        # implements only the gt form on charges.
        params["created"] = {"gt": state.since - 1}
    return _read_list(client, spec, state, params, page_size)


def _spec(stream: str) -> StreamSpec:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ConfigError(
            f"unknown Stripe stream {stream!r} (have: {', '.join(sorted(STREAMS))})"
        ) from None


def _plan(spec: StreamSpec, mode: Mode, since: int | None) -> Strategy:
    if mode == "full" or since is None:
        return "list"
    if spec.incremental == "events" and since < time.time() - EVENT_RETENTION_SECONDS:
        log.warning(
            "stripe %s: since is older than Stripe's event retention; reading in full",
            spec.name,
        )
        return "list"
    return spec.incremental


def iter_list(
    client: SourceClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    starting_after: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """Raw ``limit``/``starting_after`` paging of a Stripe list: ``(data, has_more)``.

    Stops after the page whose ``has_more`` is false (or that is empty, so a source
    that keeps saying ``has_more`` with no data cannot loop forever).
    """
    after = starting_after
    while True:
        body = get_json(
            client, path, {**(params or {}), "limit": page_size, "starting_after": after}
        )
        data, has_more = _list_body(client, path, body)
        more = has_more and bool(data)
        yield data, more
        if not more:
            return
        after = data[-1]["id"]


def _read_list(
    client: SourceClient,
    spec: StreamSpec,
    state: _Cursor,
    params: dict[str, Any],
    page_size: int,
) -> Iterator[Page]:
    after = state.after
    for data, more in iter_list(
        client, spec.path, params=params, starting_after=after, page_size=page_size
    ):
        if data:
            after = data[-1]["id"]
        yield Page(
            records=data,
            cursor=_cursor_after(state, after),
            high_water=_max_created(data),
            has_more=more,
        )


def _read_events(
    client: SourceClient, spec: StreamSpec, state: _Cursor, page_size: int
) -> Iterator[Page]:
    after = state.after
    carried_high: int | None = None  # from event pages that named none of our objects
    for events, more in iter_list(
        client,
        EVENTS_PATH,
        params={"created": {"gte": state.since}},
        starting_after=after,
        page_size=page_size,
    ):
        changed: dict[str, None] = {}  # ordered set: each object refetched once per page
        high = carried_high
        for raw in events:
            event = _parse_event(raw)
            high = event.created if high is None else max(high, event.created)
            obj = event.data.object
            obj_id = obj.get("id")
            if (
                event.type in spec.event_types
                and obj.get("object") == spec.object
                and isinstance(obj_id, str)
                and obj_id
            ):
                changed[obj_id] = None
        if events:
            after = events[-1]["id"]
        if not changed and more:
            # Nothing for this stream on this page: carry on without yielding an empty
            # page; a crash here only means re-reading these events on resume.
            carried_high = high
            continue
        carried_high = None
        records = [
            fetch_current(client, spec.name, obj_id, missing_as_deleted=True) for obj_id in changed
        ]
        yield Page(
            records=records,
            cursor=_cursor_after(state, after),
            high_water=high,
            has_more=more,
        )


def fetch_current(
    client: SourceClient, stream: str, object_id: str, *, missing_as_deleted: bool = False
) -> dict[str, Any]:
    """One object of ``stream`` as it is now (``GET <list path>/<id>``).

    A 404 raises :class:`~interchange.errors.SourceNotFound`, or - with
    ``missing_as_deleted`` - returns the tombstone ``{"id", "object", "deleted": true}``
    that Stripe itself answers for a deleted customer (localstripe answers 404).
    """
    spec = _spec(stream)
    path = f"{spec.path}/{quote(object_id, safe='')}"
    try:
        return get_json(client, path)
    except SourceNotFound:
        if not missing_as_deleted:
            raise
        return {"id": object_id, "object": spec.object, "deleted": True}


def _list_body(
    client: SourceClient, path: str, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    data, has_more = body.get("data"), body.get("has_more")
    if not isinstance(data, list) or not isinstance(has_more, bool):
        raise SchemaError(
            f"{client.source}: GET {path} did not answer a list object "
            "(expected 'data' as an array and 'has_more' as a boolean)"
        )
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise SchemaError(f"{client.source}: GET {path}: item {i} has no string 'id'")
    return data, has_more


def _parse_event(raw: dict[str, Any]) -> StripeEvent:
    return validate_record("stripe", "events", raw, StripeEvent, record_id=_string_id)


def _cursor_after(state: _Cursor, after: str | None) -> str | None:
    if after is None:
        return None
    return _Cursor(
        stream=state.stream, strategy=state.strategy, since=state.since, after=after
    ).encode()


def _max_created(records: Iterable[Mapping[str, Any]]) -> int | None:
    values = [r["created"] for r in records if type(r.get("created")) is int]
    return max(values) if values else None


# --------------------------------------------------------------------------- parsing


def parse_record(stream: str, raw: Any) -> StripeModel:
    """Validate one raw object of ``stream`` into its source-shaped model.

    Raises :class:`~interchange.errors.SchemaError` naming the record id, the fields and
    what is wrong with them - never the values (they may be personal data). The
    structured list is on the exception's ``problems`` attribute.
    """
    spec = _spec(stream)
    return validate_record("stripe", stream, raw, spec.model, record_id=_string_id)


def _string_id(raw: dict[str, Any]) -> str | None:
    return raw.get("id") if isinstance(raw.get("id"), str) else None


# --------------------------------------------------------------------------- drift


_json_type = drift.json_type
diff_fields = drift.diff_fields


def fingerprint(records: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """The top-level field set of ``records`` with JSON types, and its stable hash
    (see :mod:`interchange.drift`). Deletion tombstones carry no field set: skipped."""
    return drift.fingerprint(r for r in records if r.get("deleted") is not True)


