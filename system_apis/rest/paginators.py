"""Paginators of the declarative REST source: small objects, one paging idea each.

A paginator turns the first request of a stream into a :class:`PageRequest` (path and
query) and, given the answer to a request, says what the next request is - or ``None``
when the answer was the last page. A request is plain data, so it doubles as the
resume cursor: the stream reader stores the next request and starts from it again.

Every paginator stops on an empty page and never repeats the request it just made, so
an API that keeps pointing at the same or at empty pages cannot loop forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from interchange.errors import SchemaError
from system_apis.rest.spec import (
    JsonCursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    dig,
)

__all__ = ["PageRequest", "Paginator", "make_paginator"]


@dataclass(frozen=True)
class PageRequest:
    path: str  # relative to the client's base URL
    params: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "params": dict(self.params)}


class Paginator(Protocol):
    def first(self, path: str, params: Mapping[str, str], page_size: int) -> PageRequest: ...

    def next(
        self, request: PageRequest, response: httpx.Response, body: Any,
        records: list[Any], page_size: int,
    ) -> PageRequest | None: ...  # fmt: skip


def _with(params: Mapping[str, str], **extra: Any) -> dict[str, str]:
    out = dict(params)
    out.update({k: str(v) for k, v in extra.items() if k})
    return out


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class JsonCursor:
    """The next cursor is in the body (``paging.next.after``) and goes into ``param``."""

    spec: JsonCursorPaginator

    def first(self, path: str, params: Mapping[str, str], page_size: int) -> PageRequest:
        extra = {self.spec.limit_param: page_size} if self.spec.limit_param else {}
        return PageRequest(path, _with(params, **extra))

    def next(self, request: PageRequest, response: httpx.Response, body: Any,
             records: list[Any], page_size: int) -> PageRequest | None:  # fmt: skip
        cursor = dig(body, self.spec.cursor_path)
        if not records or cursor in (None, "", False) or isinstance(cursor, dict | list):
            return None
        if str(cursor) == request.params.get(self.spec.param):
            return None  # the same cursor again: a loop, not a next page
        return PageRequest(request.path, _with(request.params, **{self.spec.param: cursor}))


@dataclass(frozen=True)
class LinkHeader:
    """RFC 8288 ``Link: <url>; rel="next"``: the next request is that URL.

    The URL must stay under the client's base URL (same scheme, host, port and path
    prefix): the credentials are sent with it, so a link elsewhere is refused.
    """

    spec: LinkHeaderPaginator
    base_url: str

    def first(self, path: str, params: Mapping[str, str], page_size: int) -> PageRequest:
        extra = {self.spec.limit_param: page_size} if self.spec.limit_param else {}
        return PageRequest(path, _with(params, **extra))

    def next(self, request: PageRequest, response: httpx.Response, body: Any,
             records: list[Any], page_size: int) -> PageRequest | None:  # fmt: skip
        link = response.links.get(self.spec.rel)
        if not records or not link or not link.get("url"):
            return None
        target = urlsplit(urljoin(str(response.request.url), link["url"]))
        base = urlsplit(self.base_url if self.base_url.endswith("/") else self.base_url + "/")
        if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not (
            target.path.startswith(base.path)
        ):
            raise SchemaError(
                f"the {self.spec.rel!r} link leaves the source's base URL; not followed")
        following = PageRequest(target.path[len(base.path):],
                                dict(parse_qsl(target.query, keep_blank_values=True)))
        return None if following == request else following


@dataclass(frozen=True)
class Offset:
    """``offset``/``limit`` paging; ends on a short page or when ``total`` is reached."""

    spec: OffsetPaginator

    def first(self, path: str, params: Mapping[str, str], page_size: int) -> PageRequest:
        return PageRequest(path, _with(params, **{self.spec.offset_param: self.spec.start,
                                                  self.spec.limit_param: page_size}))

    def next(self, request: PageRequest, response: httpx.Response, body: Any,
             records: list[Any], page_size: int) -> PageRequest | None:  # fmt: skip
        if not records or (self.spec.stop_on_short_page and len(records) < page_size):
            return None
        offset = _count(request.params.get(self.spec.offset_param)) or 0
        following = offset + len(records)
        if self.spec.total_path:
            total = _count(dig(body, self.spec.total_path))
            if total is not None and following >= total:
                return None
        return PageRequest(request.path,
                           _with(request.params, **{self.spec.offset_param: following}))


@dataclass(frozen=True)
class PageNumber:
    """``page``/``per_page`` paging; ends on a short page or after the last page."""

    spec: PageNumberPaginator

    def first(self, path: str, params: Mapping[str, str], page_size: int) -> PageRequest:
        extra: dict[str, Any] = {self.spec.page_param: self.spec.start}
        if self.spec.size_param:
            extra[self.spec.size_param] = page_size
        return PageRequest(path, _with(params, **extra))

    def next(self, request: PageRequest, response: httpx.Response, body: Any,
             records: list[Any], page_size: int) -> PageRequest | None:  # fmt: skip
        if not records or (self.spec.stop_on_short_page and len(records) < page_size):
            return None
        page = _count(request.params.get(self.spec.page_param))
        page = self.spec.start if page is None else page
        if self.spec.total_pages_path:
            total = _count(dig(body, self.spec.total_pages_path))
            if total is not None and page + 1 - self.spec.start >= total:
                return None
        return PageRequest(request.path,
                           _with(request.params, **{self.spec.page_param: page + 1}))


def make_paginator(spec: Any, *, base_url: str) -> Paginator:
    if isinstance(spec, JsonCursorPaginator):
        return JsonCursor(spec)
    if isinstance(spec, LinkHeaderPaginator):
        return LinkHeader(spec, base_url)
    if isinstance(spec, OffsetPaginator):
        return Offset(spec)
    if isinstance(spec, PageNumberPaginator):
        return PageNumber(spec)
    raise TypeError(f"unknown paginator {type(spec).__name__}")
