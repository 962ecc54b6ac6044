"""HubSpot streams: paged, resumable reads of contacts and companies, and contact upserts.

:func:`read_stream` is the one entry point the process layer calls. It yields
:class:`Page` objects - a page of raw CRM v3 objects, an opaque cursor to resume right
after that page, the page's high-water last-modified time (epoch seconds) and whether
more follows. One request per page, so memory stays flat however large the portal is.

Modes
-----
``full``
    ``GET /crm/v3/objects/{type}?limit=&after=&properties=`` paging on
    ``paging.next.after`` (``limit`` at most :data:`MAX_LIST_PAGE_SIZE`). The last page
    has no ``paging``. Every live object is returned once.
``incremental``
    What changed since ``since`` (epoch seconds; the caller has already subtracted its
    lookback window) through ``POST /crm/v3/objects/{type}/search``, filtered
    ``<last-modified> GTE since`` and sorted ascending by it (``lastmodifieddate`` for
    contacts, ``hs_lastmodifieddate`` for companies, as HubSpot names them; ``limit`` at
    most :data:`MAX_SEARCH_PAGE_SIZE`). Without ``since`` (a first run) it is a full read.

    HubSpot's search answers at most :data:`SEARCH_RESULT_CAP` results per query (paging
    past it is a 400). The read is therefore *windowed*, by keyset rather than offset:
    every request is a new query starting at the last modification time seen so far,
    skipping the ids already returned at exactly that millisecond, so no query nears
    the cap however many records changed. Keyset paging also means that a record
    modified while we page - it moves to the end of the sort order - cannot shift unread
    records into offsets already read: it is simply read again later (a duplicate,
    removed downstream by key) and nothing is lost. When a whole page shares one
    millisecond (ties have no stable order, so the time alone cannot page past them),
    the rest of that millisecond is read with ``<last-modified> EQ t`` and
    ``hs_object_id GT last id`` sorted by ``hs_object_id``, then the read carries on
    after it.

Cursors
-------
An opaque string (compact JSON today): the stream, the strategy, the ``since`` the read
started with, and where to continue - ``after`` for a list; for a search the window start
(epoch ms), the ids already returned at that millisecond and, inside a millisecond read
by id, the last ``hs_object_id`` read. Passing it back resumes right after the page it
came with, in this or another process; the cursor's own ``since`` wins over the argument.

Writes
------
:func:`batch_upsert_contacts` - ``POST /crm/v3/objects/contacts/batch/upsert`` by
``idProperty`` (e-mail by default), :data:`MAX_BATCH_INPUTS` inputs per request. Upserting
the same contacts again changes nothing, so it is idempotent and safe to retry.
:func:`ensure_properties` - ``POST /crm/v3/properties/{type}`` for custom properties
that do not exist yet (409 means it exists), so upserts may write them.

Schema drift
------------
:func:`parse_record` turns a raw object into its model or raises
:class:`~interchange.errors.SchemaError` naming fields and problems (never values).
:func:`fingerprint` summarises a page's field set - the envelope *and* each
``properties.<name>`` - with JSON types and a stable hash; :func:`diff_fields` compares
two such field sets (added, missing, retyped).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from interchange import drift
from interchange.errors import ConfigError, SchemaError, SourceHTTPError
from interchange.http import SourceClient
from interchange.records import validate_record
from interchange.streams import InvalidCursor, Page
from system_apis.hubspot.client import get_json, post_json
from system_apis.hubspot.models import HubSpotCompany, HubSpotContact, HubSpotModel

__all__ = [
    "MAX_BATCH_INPUTS",
    "MAX_LIST_PAGE_SIZE",
    "MAX_SEARCH_PAGE_SIZE",
    "SEARCH_RESULT_CAP",
    "STREAMS",
    "InvalidCursor",
    "Mode",
    "Page",
    "StreamSpec",
    "batch_upsert_contacts",
    "diff_fields",
    "ensure_properties",
    "fingerprint",
    "parse_record",
    "read_stream",
]

log = logging.getLogger("system_apis.hubspot.streams")

Mode = Literal["full", "incremental"]
Strategy = Literal["list", "search"]

MAX_LIST_PAGE_SIZE = 100  # HubSpot's maximum ``limit`` on list endpoints
MAX_SEARCH_PAGE_SIZE = 200  # HubSpot's maximum ``limit`` on search endpoints
SEARCH_RESULT_CAP = 10_000  # HubSpot answers at most this many results per search query
MAX_BATCH_INPUTS = 100  # HubSpot's maximum inputs per batch request
_CURSOR_VERSION = 1


@dataclass(frozen=True)
class StreamSpec:
    name: str
    object_type: str
    model: type[HubSpotModel]
    modified_property: str
    properties: tuple[str, ...]


STREAMS: dict[str, StreamSpec] = {
    "contacts": StreamSpec(
        name="contacts",
        object_type="contacts",
        model=HubSpotContact,
        modified_property="lastmodifieddate",
        properties=(
            "email", "firstname", "lastname", "phone", "mobilephone", "company", "jobtitle",
            "website", "address", "city", "state", "zip", "country", "lifecyclestage",
            "createdate", "lastmodifieddate", "hs_object_id",
        ),
    ),
    "companies": StreamSpec(
        name="companies",
        object_type="companies",
        model=HubSpotCompany,
        modified_property="hs_lastmodifieddate",
        properties=(
            "name", "domain", "website", "phone", "industry", "numberofemployees",
            "annualrevenue", "address", "city", "state", "zip", "country", "createdate",
            "hs_lastmodifieddate", "hs_object_id",
        ),
    ),
}






@dataclass(frozen=True)
class _Cursor:
    stream: str
    strategy: Strategy
    since: int | None = None
    after: str | None = None  # list: HubSpot's paging token; search: last id of a tie run
    window_ms: int | None = None  # search: the window's lower bound (epoch ms)
    seen: tuple[str, ...] = field(default=())  # search: ids returned at exactly window_ms

    def encode(self) -> str:
        body: dict[str, Any] = {
            "v": _CURSOR_VERSION,
            "stream": self.stream,
            "strategy": self.strategy,
            "since": self.since,
            "after": self.after,
        }
        if self.strategy == "search":
            body["window_ms"] = self.window_ms
            body["seen"] = list(self.seen)
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            strategy = body["strategy"]
            if strategy not in ("list", "search"):
                raise ValueError("unknown strategy")
            since, after = body.get("since"), body.get("after")
            if since is not None and type(since) is not int:
                raise ValueError("since is not an integer")
            if after is not None and not isinstance(after, str):
                raise ValueError("after is not a string")
            window, seen = body.get("window_ms"), body.get("seen") or []
            if strategy == "search" and type(window) is not int:
                raise ValueError("window_ms is not an integer")
            if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
                raise ValueError("seen is not a list of ids")
            return cls(
                stream=str(body["stream"]), strategy=strategy, since=since, after=after,
                window_ms=window, seen=tuple(seen),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"not a HubSpot stream cursor ({exc})") from None


# --------------------------------------------------------------------------- reading


def read_stream(
    client: SourceClient,
    stream: str,
    *,
    mode: Mode = "full",
    cursor: str | None = None,
    since: int | None = None,
    page_size: int = MAX_LIST_PAGE_SIZE,
    properties: Sequence[str] | None = None,
) -> Iterator[Page]:
    """Yield the pages of ``stream`` (``contacts`` or ``companies``).

    ``mode="full"`` lists everything; ``mode="incremental"`` searches what changed since
    ``since`` (epoch seconds). ``cursor`` - from an earlier :class:`Page` of the same
    stream and mode - resumes right after that page. ``page_size`` is HubSpot's ``limit``
    (1-200; list requests use at most 100). ``properties`` replaces the stream's default
    property list. Arguments are checked when this is called; requests start on
    iteration.
    """
    spec = _spec(stream)
    if mode not in ("full", "incremental"):
        raise ConfigError(f"unknown read mode {mode!r} (expected 'full' or 'incremental')")
    if not 1 <= page_size <= MAX_SEARCH_PAGE_SIZE:
        raise ConfigError(
            f"page_size must be between 1 and {MAX_SEARCH_PAGE_SIZE}, got {page_size}"
        )
    if since is not None and type(since) is not int:
        raise ConfigError("since must be epoch seconds as an int")
    props = tuple(properties) if properties is not None else spec.properties
    if spec.modified_property not in props:
        props = (*props, spec.modified_property)

    if cursor is not None:
        state = _Cursor.decode(cursor)
        if state.stream != spec.name:
            raise InvalidCursor(f"cursor belongs to stream {state.stream!r}, not {spec.name!r}")
        if mode == "full" and state.strategy != "list":
            raise InvalidCursor("cursor comes from an incremental read, not a full one")
    elif mode == "incremental" and since is not None:
        state = _Cursor(stream=spec.name, strategy="search", since=since,
                        window_ms=since * 1000)
    else:
        state = _Cursor(stream=spec.name, strategy="list")

    if state.strategy == "search":
        return _read_search(client, spec, state, props, page_size)
    return _read_list(client, spec, state, props, min(page_size, MAX_LIST_PAGE_SIZE))


def _spec(stream: str) -> StreamSpec:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ConfigError(
            f"unknown HubSpot stream {stream!r} (have: {', '.join(sorted(STREAMS))})"
        ) from None


def _read_list(
    client: SourceClient,
    spec: StreamSpec,
    state: _Cursor,
    props: tuple[str, ...],
    limit: int,
) -> Iterator[Page]:
    path = f"/crm/v3/objects/{spec.object_type}"
    after = state.after
    while True:
        body = get_json(
            client,
            path,
            {"limit": limit, "after": after, "properties": ",".join(props), "archived": "false"},
        )
        results = _results(client, f"GET {path}", body)
        next_after = _next_after(client, f"GET {path}", body)
        more = next_after is not None and bool(results)
        if more:
            after = next_after
        yield Page(
            records=results,
            cursor=_Cursor(stream=spec.name, strategy="list", after=after).encode()
            if after is not None
            else None,
            high_water=_high_water(spec, results),
            has_more=more,
        )
        if not more:
            return


def _read_search(
    client: SourceClient,
    spec: StreamSpec,
    state: _Cursor,
    props: tuple[str, ...],
    limit: int,
) -> Iterator[Page]:
    path = f"/crm/v3/objects/{spec.object_type}/search"
    window = state.window_ms if state.window_ms is not None else 0
    seen = set(state.seen)
    tie = state.after  # inside one millisecond: the last hs_object_id read, keyset by id
    while True:
        if tie is None:
            filters = [{"propertyName": spec.modified_property, "operator": "GTE",
                        "value": str(window)}]
            sort = spec.modified_property
        else:
            filters = [
                {"propertyName": spec.modified_property, "operator": "EQ",
                 "value": str(window)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": tie},
            ]
            sort = "hs_object_id"
        query = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": list(props),
            "limit": limit,
        }
        body = post_json(client, path, query, idempotency_key=_key(spec.name, query))
        results = _results(client, f"POST {path}", body)
        more = _next_after(client, f"POST {path}", body) is not None and bool(results)

        records: list[dict[str, Any]] = []
        start = window
        for record in results:
            modified = _modified_ms(spec, record)
            if modified is None:
                raise SchemaError(
                    f"{client.source} {spec.name} record {record['id']!r} has no readable "
                    f"{spec.modified_property} or updatedAt"
                )
            if modified < window or (modified == window and record["id"] in seen):
                continue  # already returned at the window's boundary
            if modified > window:
                window, seen = modified, set()
            seen.add(record["id"])
            records.append(record)

        if tie is not None:
            if more:
                tie = results[-1]["id"]
                if tie.isdigit():  # ids at or below the tie are never listed again
                    seen = {i for i in seen if not i.isdigit() or int(i) > int(tie)}
            else:
                # This millisecond is done: go on after it with a fresh window.
                tie, more, window, seen = None, True, window + 1, set()
        elif more and window == start:
            # A whole page inside one millisecond: sorting on the modification time alone
            # cannot page past it (ties have no stable order), so read the rest of that
            # millisecond by hs_object_id, then carry on after it.
            tie = "0"
        yield_page = bool(records) or not more
        cursor = _Cursor(
            stream=spec.name, strategy="search", since=state.since, after=tie,
            window_ms=window, seen=tuple(sorted(seen)),
        ).encode()
        if yield_page:
            yield Page(
                records=records, cursor=cursor, high_water=_high_water(spec, records),
                has_more=more,
            )
        if not more:
            return


def _key(stream: str, query: Mapping[str, Any]) -> str:
    text = json.dumps(query, sort_keys=True, separators=(",", ":"))
    return f"hubspot-{stream}-search-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _results(client: SourceClient, what: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    results = body.get("results")
    if not isinstance(results, list):
        raise SchemaError(f"{client.source}: {what} answered no 'results' array")
    for i, item in enumerate(results):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise SchemaError(f"{client.source}: {what}: result {i} has no string 'id'")
    return results


def _next_after(client: SourceClient, what: str, body: dict[str, Any]) -> str | None:
    paging = body.get("paging")
    if paging is None:
        return None
    nxt = paging.get("next") if isinstance(paging, dict) else None
    if nxt is None:
        return None
    after = nxt.get("after") if isinstance(nxt, dict) else None
    if isinstance(after, int) and not isinstance(after, bool):
        after = str(after)
    if not isinstance(after, str) or not after:
        raise SchemaError(f"{client.source}: {what}: paging.next has no 'after'")
    return after


def _to_ms(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return int(when.timestamp() * 1000)


def _modified_ms(spec: StreamSpec, record: Mapping[str, Any]) -> int | None:
    props = record.get("properties")
    value = props.get(spec.modified_property) if isinstance(props, dict) else None
    ms = _to_ms(value)
    return ms if ms is not None else _to_ms(record.get("updatedAt"))


def _high_water(spec: StreamSpec, records: Iterable[Mapping[str, Any]]) -> int | None:
    """The largest :func:`_modified_ms` of ``records``, in epoch seconds.

    Converting an aware datetime to epoch milliseconds costs more than parsing it, and
    the conversion is monotonic, so ISO strings (what HubSpot sends) are compared as
    datetimes and only the latest is converted. Anything else takes
    :func:`_modified_ms`'s way. Same answer, a third of the time on a list page.
    """
    latest: datetime | None = None
    best: int | None = None
    for record in records:
        props = record.get("properties")
        value = props.get(spec.modified_property) if isinstance(props, dict) else None
        if type(value) is str:
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                if latest is None or when > latest:
                    latest = when
                continue
        ms = _modified_ms(spec, record)
        if ms is not None and (best is None or ms > best):
            best = ms
    if latest is not None:
        ms = int(latest.timestamp() * 1000)
        best = ms if best is None else max(best, ms)
    return best // 1000 if best is not None else None


# --------------------------------------------------------------------------- writing


def batch_upsert_contacts(
    client: SourceClient,
    contacts: Sequence[Mapping[str, Any]],
    *,
    id_property: str = "email",
) -> dict[str, Any]:
    """Create or update ``contacts`` (property dicts) keyed by ``id_property``.

    Each contact must carry a non-empty ``id_property`` value. Contacts with the same key
    (e-mails compared case-insensitively, as HubSpot does) are merged in order - later
    values win - because HubSpot rejects a batch that names one record twice. Sent in
    batches of :data:`MAX_BATCH_INPUTS`, each with an ``Idempotency-Key`` derived from
    its content, so a retried batch is recognisably the same request.

    Returns ``{"batches", "inputs", "created", "updated", "ids": {key: hubspot id},
    "errors": [...]}`` - ``errors`` holds HubSpot's per-record errors of a 207 answer
    (``status``, ``category``, ``message``, ``context``).
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, contact in enumerate(contacts):
        value = contact.get(id_property) if isinstance(contact, Mapping) else None
        if not isinstance(value, str) or not value.strip():
            raise SchemaError(
                f"hubspot contacts: input {i} has no {id_property!r} to upsert by"
            )
        key = value.strip().lower() if id_property == "email" else value
        merged.setdefault(key, {}).update(contact)

    path = "/crm/v3/objects/contacts/batch/upsert"
    summary: dict[str, Any] = {
        "batches": 0, "inputs": len(merged), "created": 0, "updated": 0, "ids": {},
        "errors": [],
    }
    keys = list(merged)
    for start in range(0, len(keys), MAX_BATCH_INPUTS):
        inputs = [
            {
                "idProperty": id_property,
                "id": str(merged[k][id_property]).strip(),
                "properties": {p: _as_property(v) for p, v in merged[k].items()},
            }
            for k in keys[start:start + MAX_BATCH_INPUTS]
        ]
        body = {"inputs": inputs}
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:32]
        answer = post_json(client, path, body, idempotency_key=f"hubspot-upsert-{digest}")
        summary["batches"] += 1
        for result in answer.get("results") or []:
            if not isinstance(result, dict):
                continue
            if result.get("new") is True:
                summary["created"] += 1
            else:
                summary["updated"] += 1
            value = (result.get("properties") or {}).get(id_property)
            if isinstance(value, str) and isinstance(result.get("id"), str):
                key = value.strip().lower() if id_property == "email" else value
                summary["ids"][key] = result["id"]
        for error in answer.get("errors") or []:
            if isinstance(error, dict):
                summary["errors"].append(
                    {k: error.get(k) for k in ("status", "category", "message", "context")}
                )
    return summary


def ensure_properties(
    client: SourceClient,
    definitions: Sequence[Mapping[str, Any]],
    *,
    object_type: str = "contacts",
) -> dict[str, list[str]]:
    """Create the custom properties in ``definitions`` that do not exist yet.

    ``POST /crm/v3/properties/{object_type}`` per definition (``name``, ``label``,
    ``type``, ``fieldType``, ``groupName``); HubSpot's 409 (a property of that name
    exists) counts as done, so repeating it is harmless. Needs the
    ``crm.schemas.<object>.write`` scope. Returns ``{"created": [...], "existing":
    [...]}`` (property names).
    """
    out: dict[str, list[str]] = {"created": [], "existing": []}
    path = f"/crm/v3/properties/{object_type}"
    for definition in definitions:
        name = str(definition["name"])
        try:
            # idempotent by construction (a repeat answers 409), so safe to retry
            post_json(client, path, dict(definition), idempotency_key=f"hubspot-property-{name}")
        except SourceHTTPError as exc:
            if exc.status_code != 409:
                raise
            out["existing"].append(name)
        else:
            out["created"].append(name)
    return out


def _as_property(value: Any) -> str | None:
    """HubSpot property values travel as strings (``None`` leaves the value unset)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- parsing


def parse_record(stream: str, raw: Any) -> HubSpotModel:
    """Validate one raw object of ``stream`` into its source-shaped model.

    Raises :class:`~interchange.errors.SchemaError` naming the record id, the fields and
    what is wrong with them - never the values. The structured list is on the
    exception's ``problems`` attribute.
    """
    spec = _spec(stream)
    return validate_record("hubspot", stream, raw, spec.model, record_id=_string_id)


def _string_id(raw: dict[str, Any]) -> str | None:
    return raw.get("id") if isinstance(raw.get("id"), str) else None


# --------------------------------------------------------------------------- drift


_json_type = drift.json_type
diff_fields = drift.diff_fields


def _properties(name: str, value: Any) -> Iterable[tuple[str, Any]]:
    if name == "properties" and isinstance(value, Mapping):
        return ((f"properties.{prop}", v) for prop, v in value.items())
    return ()


def fingerprint(records: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """The field set of ``records`` with JSON types, and its stable hash (see
    :mod:`interchange.drift`). Each property inside ``properties`` counts as
    ``properties.<name>``: that is where a portal's schema lives and drifts."""
    return drift.fingerprint(records, expand=_properties)


