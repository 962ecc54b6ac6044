"""The HubSpot HTTP client: :func:`hubspot_client` and HubSpot's limits and errors.

The client is :func:`interchange.http.build_client` (pooling, timeouts, outbound rate
limit, retries with backoff and ``Retry-After``, typed errors) configured from the
source's :class:`~interchange.settings.SourceConfig`, with

* auth from :func:`~system_apis.hubspot.auth.hubspot_auth` - OAuth refresh-token grant or
  a private-app token, chosen by the keys at ``config.vault_path``;
* HubSpot's request limits: the general limit is per 10 seconds (``options.
  requests_per_10_seconds``, else ``config.rate_limit_per_second`` x 10) and the CRM
  search endpoints have their own, slower limit per token (``options.
  search_requests_per_second``, default :data:`DEFAULT_SEARCH_RATE` - HubSpot documents
  5/s). A 429 without ``Retry-After`` gets one derived from HubSpot's
  ``X-HubSpot-RateLimit-Interval-Milliseconds`` when ``X-HubSpot-RateLimit-Remaining`` is
  0, so the retry waits for the window instead of guessing. The last rate-limit headers
  seen are on :attr:`HubSpotClient.rate_limit`;
* HubSpot's error body (``status``, ``message``, ``correlationId``, ``category``) folded
  into the :mod:`interchange.errors` exception: message, ``category`` and
  ``correlation_id`` attributes, any token scrubbed.

POSTs that only read (search) or that are idempotent by construction (upsert by
``idProperty``) carry an ``Idempotency-Key`` header: that is what tells the shared
resilient transport it may retry them on 429/5xx. HubSpot ignores the header.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from interchange.errors import SchemaError, SourceHTTPError
from interchange.http import RetryPolicy, SourceClient, TokenBucket, build_client, limiter_for
from interchange.settings import SourceConfig
from system_apis.hubspot.auth import (
    TOKEN_PATH,
    HubSpotOAuth,
    HubSpotPrivateAppAuth,
    SecretsStore,
    hubspot_auth,
)

__all__ = [
    "DEFAULT_SEARCH_RATE",
    "HubSpotClient",
    "RateLimitHintTransport",
    "hubspot_client",
    "post_json",
    "get_json",
]

DEFAULT_SEARCH_RATE = 4.0  # HubSpot: 5 search requests per second per token; keep a margin
USER_AGENT = "interchange-system-api/0.1 (+hubspot)"
RATE_HEADERS = {
    "x-hubspot-ratelimit-max": "max",
    "x-hubspot-ratelimit-remaining": "remaining",
    "x-hubspot-ratelimit-interval-milliseconds": "interval_ms",
    "x-hubspot-ratelimit-secondly": "secondly",
    "x-hubspot-ratelimit-secondly-remaining": "secondly_remaining",
    "x-hubspot-ratelimit-daily": "daily",
    "x-hubspot-ratelimit-daily-remaining": "daily_remaining",
}


class RateLimitHintTransport(httpx.BaseTransport):
    """Inside the resilient transport: HubSpot's search limit and rate-limit headers.

    Runs once per attempt (retries included), so every request that reaches HubSpot
    waits on the search bucket when it is a search.
    """

    def __init__(
        self, inner: httpx.BaseTransport, *, search_limiter: TokenBucket | None = None
    ) -> None:
        self.inner = inner
        self.search_limiter = search_limiter
        self.last: dict[str, int] = {}
        self.throttled_429 = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.search_limiter is not None and request.url.path.endswith("/search"):
            self.search_limiter.acquire()
        response = self.inner.handle_request(request)
        seen = {}
        for header, name in RATE_HEADERS.items():
            value = response.headers.get(header)
            if value is not None and value.strip().isdigit():
                seen[name] = int(value)
        if seen:
            with self._lock:
                self.last = seen
        if response.status_code == 429:
            self.throttled_429 += 1
            if "retry-after" not in response.headers and seen.get("remaining") == 0:
                interval = seen.get("interval_ms")
                if interval:
                    response.headers["Retry-After"] = f"{interval / 1000:.3f}"
        return response

    def close(self) -> None:
        self.inner.close()


class HubSpotClient(SourceClient):
    """A :class:`SourceClient` that reads HubSpot's error bodies into its errors."""

    def __init__(
        self,
        *,
        base: SourceClient,
        auth: HubSpotOAuth | HubSpotPrivateAppAuth,
        hints: RateLimitHintTransport,
    ) -> None:
        super().__init__(source=base.source, client=base.http, stats=base.stats)
        self.auth = auth
        self._hints = hints

    @property
    def rate_limit(self) -> dict[str, int]:
        """The last ``X-HubSpot-RateLimit-*`` values seen (``max``, ``remaining``, ...)."""
        return dict(self._hints.last)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return super().request(method, path, **kwargs)
        except SourceHTTPError as exc:
            self._explain(exc)
            raise

    def _explain(self, exc: SourceHTTPError) -> SourceHTTPError:
        """Fold HubSpot's error body into ``exc`` (message, category, correlation id)."""
        try:
            body = orjson.loads(exc.body) if exc.body else None
        except orjson.JSONDecodeError:
            body = None
        exc.body = self.auth.redact(exc.body)
        if not isinstance(body, dict):
            exc.category = exc.correlation_id = None  # type: ignore[attr-defined]
            return exc
        category = body.get("category") if isinstance(body.get("category"), str) else None
        cid = body.get("correlationId") if isinstance(body.get("correlationId"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else ""
        exc.category = category  # type: ignore[attr-defined]
        exc.correlation_id = cid  # type: ignore[attr-defined]
        exc.hubspot_message = self.auth.redact(message)[:300]  # type: ignore[attr-defined]
        parts = [p for p in (category, exc.hubspot_message) if p]  # type: ignore[attr-defined]
        text = str(exc.args[0]) if exc.args else f"{self.source}: {exc.request}"
        if parts:
            text += ": " + " - ".join(parts)
        if cid:
            text += f" (correlationId {cid})"
        exc.args = (self.auth.redact(text),)
        return exc


def hubspot_client(
    config: SourceConfig,
    *,
    secrets: SecretsStore | None = None,
    transport: httpx.BaseTransport | None = None,
) -> HubSpotClient:
    """A :class:`HubSpotClient` for HubSpot (or the sandbox) at ``config.base_url``.

    ``secrets`` defaults to the process-wide :func:`interchange.secrets.get_secrets`; the
    secret at ``config.vault_path`` is read once now to pick the auth kind. ``transport``
    replaces the network (``httpx.MockTransport`` in unit tests), the token endpoint's
    included. ``options``: ``token_url`` (default ``base_url`` + ``/oauth/v1/token``),
    ``token_margin_seconds`` (60), ``requests_per_10_seconds``,
    ``search_requests_per_second`` (4).
    """
    if secrets is None:
        from interchange.secrets import get_secrets

        secrets = get_secrets()
    source = config.name or "hubspot"
    opts = config.options
    token_url = str(opts.get("token_url") or config.base_url.rstrip("/") + TOKEN_PATH)
    auth = hubspot_auth(
        secrets=secrets,
        vault_path=config.vault_path,
        token_url=token_url,
        margin=float(opts.get("token_margin_seconds", 60.0)),
        timeout=config.timeout_seconds,
        transport=transport,
    )
    rate = config.rate_limit_per_second
    if opts.get("requests_per_10_seconds"):
        rate = float(opts["requests_per_10_seconds"]) / 10.0
    search_rate = float(opts.get("search_requests_per_second", DEFAULT_SEARCH_RATE))
    search_limiter = (
        limiter_for(f"{source}:search", rate=search_rate, burst=1) if search_rate > 0 else None
    )
    inner = transport or httpx.HTTPTransport(
        retries=0, limits=httpx.Limits(max_connections=10, max_keepalive_connections=10)
    )
    hints = RateLimitHintTransport(inner, search_limiter=search_limiter)
    base = build_client(
        source=source,
        base_url=config.base_url,
        auth=auth,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        timeout=config.timeout_seconds,
        rate_limit_per_second=rate,
        burst=config.burst,
        policy=RetryPolicy.for_source(config),
        transport=hints,
    )
    return HubSpotClient(base=base, auth=auth, hints=hints)


def _decode(client: SourceClient, what: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise SchemaError(f"{client.source}: {what} did not answer a JSON object")
    return body


def get_json(
    client: SourceClient, path: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``GET path`` with ``params`` (``None`` values left out); the decoded JSON object."""
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return _decode(client, f"GET {path}", client.request("GET", path, params=clean))


def post_json(
    client: SourceClient, path: str, body: Any, *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """``POST path`` with a JSON body; ``idempotency_key`` marks it safe to retry."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    response = client.request("POST", path, json=body, headers=headers)
    return _decode(client, f"POST {path}", response)
