"""Reading a declarative REST stream: pages with resume cursors, keys, fingerprints.

:func:`read_stream` yields :class:`Page` objects - one response's records (found at
the stream's ``records`` path), an opaque cursor to resume right after that page, the
page's high-water modification time (epoch seconds, from ``incremental.cursor_field``)
and whether more follows - one request at a time, so memory stays flat.

Modes: ``full`` reads everything. ``incremental`` adds ``incremental.param`` (the lower
bound ``since``, written in ``incremental.format``) to the first request; a stream
without an ``incremental`` block is read in full either way.

The cursor is the next request itself (path and query) plus the stream, mode and
``since``, as compact JSON; the cursor of the last page is *done* and resuming from it
yields one empty, final page. Duplicates across pages (a record that moved while the
source was paged) are removed by the stream's ``primary_key`` (:func:`record_key`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import orjson

from interchange import drift
from interchange.errors import ConfigError, SchemaError
from interchange.http import SourceClient
from interchange.streams import InvalidCursor, Page
from system_apis.rest.paginators import PageRequest, make_paginator
from system_apis.rest.spec import RestSource, RestStream, dig

__all__ = ["InvalidCursor", "Page", "fingerprint", "read_stream", "record_key"]

Mode = Literal["full", "incremental"]
_CURSOR_VERSION = 1






def _encode(stream: str, mode: str, since: int | None, request: PageRequest | None) -> str:
    return json.dumps(
        {"v": _CURSOR_VERSION, "stream": stream, "mode": mode, "since": since,
         "next": request.as_dict() if request else None, "done": request is None},
        separators=(",", ":"), sort_keys=True,
    )  # fmt: skip


def _decode(text: str, stream: str, mode: str) -> tuple[int | None, PageRequest | None]:
    try:
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        since, following = body.get("since"), body.get("next")
        if since is not None and type(since) is not int:
            raise ValueError("since is not an integer")
        request = None
        if not body.get("done"):
            if not isinstance(following, dict) or not isinstance(following.get("path"), str):
                raise ValueError("no next request")
            params = following.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError("params is not an object")
            path = following["path"]
            if "://" in path or path.startswith("/"):
                raise ValueError("the next request leaves the base URL")
            request = PageRequest(path, {str(k): str(v) for k, v in
                                         params.items()})  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise InvalidCursor(f"not a REST stream cursor ({exc})") from None
    if body.get("stream") != stream:
        raise InvalidCursor(f"cursor belongs to stream {body.get('stream')!r}, not {stream!r}")
    if body.get("mode") != mode:
        raise InvalidCursor(f"cursor belongs to a {body.get('mode')!r} read, not a {mode!r} one")
    return since, request


def _bound(since: int, fmt: str) -> str:
    when = dt.datetime.fromtimestamp(since, dt.UTC)
    if fmt == "epoch":
        return str(since)
    if fmt == "epoch_ms":
        return str(since * 1000)
    if fmt == "date":
        return when.date().isoformat()
    return when.isoformat().replace("+00:00", "Z")


def to_epoch(value: Any) -> int | None:
    """A record's modification time as epoch seconds: numbers (s or ms), ISO 8601
    strings (offset or ``Z``; naive means UTC) or dates. None when it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value / 1000 if value > 100_000_000_000 else value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lstrip("-").isdigit():
            return to_epoch(int(text))
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp())
    return None


def _spec(source: RestSource, stream: str) -> RestStream:
    try:
        return source.streams[stream]
    except KeyError:
        raise ConfigError(f"source {source.name!r} has no stream {stream!r} "
                          f"(have: {', '.join(sorted(source.streams))})") from None  # fmt: skip


def read_stream(
    client: SourceClient,
    source: RestSource,
    stream: str,
    *,
    mode: Mode = "full",
    cursor: str | None = None,
    since: int | None = None,
    page_size: int | None = None,
) -> Iterator[Page]:
    """Yield the pages of ``stream``; arguments are checked now, requests start on
    iteration. ``cursor`` (from a :class:`Page` of the same stream and mode) resumes
    right after that page and its ``since`` wins over the argument."""
    spec = _spec(source, stream)
    if mode not in ("full", "incremental"):
        raise ConfigError(f"unknown read mode {mode!r} (expected 'full' or 'incremental')")
    size = spec.page_size or page_size or spec.max_page_size
    if not 1 <= size <= spec.max_page_size:
        raise ConfigError(f"{source.name}/{stream}: page_size must be between 1 and "
                          f"{spec.max_page_size}, got {size}")  # fmt: skip
    if since is not None and type(since) is not int:
        raise ConfigError("since must be epoch seconds as an int")
    paginator = make_paginator(spec.paginator, base_url=str(client.http.base_url))
    if cursor is not None:
        since, request = _decode(cursor, stream, mode)
    else:
        since = since if mode == "incremental" and spec.incremental else None
        params = {k: _param(v) for k, v in spec.params.items()}
        if since is not None and spec.incremental:
            params[spec.incremental.param] = _bound(since, spec.incremental.format)
        request = paginator.first(spec.path, params, size)
    return _read(client, source, stream, spec, paginator, mode, since, request, size)


def _param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _read(client: SourceClient, source: RestSource, stream: str, spec: RestStream,
          paginator: Any, mode: str, since: int | None, request: PageRequest | None,
          size: int) -> Iterator[Page]:  # fmt: skip
    if request is None:
        yield Page([], _encode(stream, mode, since, None), None, False)
        return
    previous: str | None = None
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    while request is not None:
        key = (request.path, tuple(sorted(request.params.items())))
        if key in seen:  # a cursor that cycles (A -> B -> A)
            raise SchemaError(f"{source.name}/{stream}: the paginator came back to a page "
                              "it already read; check its settings")  # fmt: skip
        seen.add(key)
        response = client.request("GET", request.path, params=request.params)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SchemaError(f"{source.name}: GET {request.path} did not answer JSON") from None
        records = dig(body, spec.records, None)
        if not isinstance(records, list):
            where = f"at {spec.records!r}" if spec.records else "as its body"
            raise SchemaError(f"{source.name}: GET {request.path} has no record list {where}")
        for i, item in enumerate(records):
            if not isinstance(item, dict):
                raise SchemaError(f"{source.name}: GET {request.path}: record {i} is not "
                                  "an object")  # fmt: skip
        # An API that ignores the paging parameter (a misspelt offset, say) answers the
        # same page again and again: stop with a clear error instead of looping forever.
        fingerprint_ = _page_digest(spec, records)
        if records and fingerprint_ == previous:
            raise SchemaError(f"{source.name}/{stream}: GET {request.path} answered the same "
                              "page twice; does the API take the paginator's parameters?")
        previous = fingerprint_
        following = paginator.next(request, response, body, records, size)
        yield Page(records, _encode(stream, mode, since, following),
                   _high_water(spec, records), following is not None)  # fmt: skip
        request = following


def _page_digest(spec: RestStream, records: list[dict[str, Any]]) -> str:
    keys = [record_key(spec, r) for r in records]
    if not all(keys):
        keys = [json.dumps(r, sort_keys=True, default=str) for r in records]
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def _high_water(spec: RestStream, records: list[dict[str, Any]]) -> int | None:
    if spec.incremental is None:
        return None
    marks = [m for m in (to_epoch(dig(r, spec.incremental.cursor_field)) for r in records)
             if m is not None]  # fmt: skip
    return max(marks) if marks else None


def record_key(spec: RestStream, record: Mapping[str, Any]) -> str:
    """The record's primary key as a string (a JSON list for a compound key); '' if absent."""
    parts = [dig(record, name) for name in spec.key_fields]
    if any(p is None or p == "" for p in parts):
        return ""
    if len(parts) == 1:
        return str(parts[0])
    # JSON, not "a:b": ("a:b", "c") and ("a", "b:c") must stay two records.
    return json.dumps([str(p) for p in parts], separators=(",", ":"))


def _expand(name: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):  # one level of nesting: {"properties": {"email": ...}}
        return ((f"{name}.{k}", v) for k, v in value.items())
    return ()


def fingerprint(records: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """Field set (top level and one level into objects) with JSON types, and its hash."""
    return drift.fingerprint(records, expand=_expand)
