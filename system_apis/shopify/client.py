"""The Shopify Admin REST client: :func:`shopify_client`.

The client is :func:`interchange.http.build_client` (pooling, timeouts, outbound rate
limit, retries with backoff and ``Retry-After`` on 429, typed errors) configured from
the source's :class:`~interchange.settings.SourceConfig`, with

* :class:`ShopifyTokenAuth` - the Admin API access token read from Vault
  (``access_token`` at ``config.vault_path``) per request, sent only in the
  ``X-Shopify-Access-Token`` header; a 401 re-reads Vault once in case the token was
  rotated;
* a pinned API version: the base URL becomes ``{base_url}/admin/api/{version}/`` with
  ``options.api_version`` (else :data:`DEFAULT_API_VERSION`), so stream paths are just
  ``orders.json``;
* :class:`CallLimitTransport` - leaky-bucket awareness. Shopify answers every request
  with ``X-Shopify-Shop-Api-Call-Limit: used/size`` and leaks ``options.leak_rate``
  requests per second (2 on standard plans). The transport remembers the last reading,
  estimates the bucket now, and sleeps before a request that would bring it within
  ``options.bucket_headroom`` (default a tenth of the size) of full, so a long read
  settles at the leak rate instead of bouncing off 429s. It sits under the retry layer,
  so it sees (and paces) every attempt, retries included.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

import httpx

from interchange.auth import SecretsReader, VaultHeaderAuth
from interchange.http import RetryPolicy, SourceClient, build_client
from interchange.settings import SourceConfig

__all__ = [
    "ACCESS_TOKEN_FIELD",
    "CALL_LIMIT_HEADER",
    "DEFAULT_API_VERSION",
    "CallLimitTransport",
    "SecretsReader",
    "ShopifyTokenAuth",
    "shopify_client",
]

log = logging.getLogger("system_apis.shopify.client")

DEFAULT_API_VERSION = "2025-01"
ACCESS_TOKEN_FIELD = "access_token"  # noqa: S105 - the Vault key's name, not a secret
TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 - a header name
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
USER_AGENT = "interchange-system-api/0.1 (+shopify)"
_VERSION_RE = re.compile(r"^\d{4}-(01|04|07|10)$|^unstable$")
_CALL_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShopifyTokenAuth(VaultHeaderAuth):
    """``X-Shopify-Access-Token: <token>``, the token read from Vault at request time
    (a 401 re-reads Vault once: the token may have been rotated)."""

    def __init__(
        self, *, secrets: SecretsReader, vault_path: str, key: str = ACCESS_TOKEN_FIELD
    ) -> None:
        super().__init__(secrets=secrets, vault_path=vault_path, key=key, header=TOKEN_HEADER,
                         prefix="", source="shopify")  # fmt: skip

    def __repr__(self) -> str:
        return f"ShopifyTokenAuth(vault_path={self.vault_path!r}, key={self.key!r})"

    __str__ = __repr__


class CallLimitTransport(httpx.BaseTransport):
    """Paces requests by Shopify's leaky bucket, read from each answer's call limit."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        leak_rate: float = 2.0,
        headroom: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.leak_rate = leak_rate
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.used: float = 0.0
        self.size: int | None = None
        self._seen_at = clock()
        self.waited_seconds = 0.0
        self.waits = 0
        self.last_header: str | None = None

    def _delay(self) -> float:
        with self._lock:
            if self.size is None:
                return 0.0
            now = self._clock()
            used = max(0.0, self.used - (now - self._seen_at) * self.leak_rate)
            headroom = self.headroom if self.headroom is not None else max(1, self.size // 10)
            allowed = max(1, self.size - headroom)
            if used + 1 <= allowed:
                return 0.0
            return (used + 1 - allowed) / self.leak_rate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        delay = self._delay()
        if delay > 0:
            self.waits += 1
            self.waited_seconds += delay
            self._sleep(delay)
        response = self.inner.handle_request(request)
        header = response.headers.get(CALL_LIMIT_HEADER)
        match = _CALL_LIMIT_RE.match(header) if header else None
        if match:
            with self._lock:
                self.last_header = header
                self.used, self.size = float(match.group(1)), int(match.group(2))
                self._seen_at = self._clock()
        return response

    def close(self) -> None:
        self.inner.close()


def shopify_client(
    config: SourceConfig,
    *,
    secrets: SecretsReader | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SourceClient:
    """A :class:`SourceClient` for the shop at ``config.base_url`` (or the sandbox).

    ``options``: ``api_version`` (``YYYY-MM``), ``leak_rate`` (requests/s, default 2),
    ``bucket_headroom`` (calls kept free). ``secrets`` defaults to the process-wide
    :func:`interchange.secrets.get_secrets`; nothing is read from Vault until the first
    request. ``transport`` replaces the network (``httpx.MockTransport`` in unit tests).
    The call-limit pacer is ``client.call_limit``.
    """
    if secrets is None:
        from interchange.secrets import get_secrets

        secrets = get_secrets()
    version = str(config.options.get("api_version") or DEFAULT_API_VERSION)
    if not _VERSION_RE.match(version):
        from interchange.errors import ConfigError

        raise ConfigError(f"shopify api_version must look like 2025-01, got {version!r}")
    inner = transport or httpx.HTTPTransport(
        retries=0, limits=httpx.Limits(max_connections=10, max_keepalive_connections=10)
    )
    headroom = config.options.get("bucket_headroom")
    pacer = CallLimitTransport(
        inner,
        leak_rate=float(config.options.get("leak_rate") or 2.0),
        headroom=int(headroom) if headroom is not None else None,
    )
    client = build_client(
        source=config.name or "shopify",
        base_url=f"{config.base_url.rstrip('/')}/admin/api/{version}/",
        auth=ShopifyTokenAuth(secrets=secrets, vault_path=config.vault_path),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        timeout=config.timeout_seconds,
        rate_limit_per_second=config.rate_limit_per_second,
        burst=config.burst,
        policy=RetryPolicy.for_source(config),
        transport=pacer,
    )
    client.call_limit = pacer  # type: ignore[attr-defined]
    client.api_version = version  # type: ignore[attr-defined]
    return client
