"""Source authentication from Vault, as ``httpx.Auth`` flows any system API can use.

* :class:`VaultHeaderAuth` - a static credential (bearer token, API key) read from
  Vault at request time and sent in one header (``Authorization: Bearer <t>`` or
  ``X-Api-Key: <k>``). A 401 re-reads Vault once, under a lock, in case the credential
  was rotated since the cache was filled; concurrent 401s re-read once.
* :class:`OAuth2ClientCredentials` - the OAuth 2.0 client-credentials grant
  (RFC 6749 §4.4): ``client_id``/``client_secret`` from Vault, an access token from
  the token endpoint kept in memory only, fetched again ``margin`` seconds before it
  expires and after a 401 - once for any number of threads sharing the client.

Secrets only ever travel in a header or the token request's body: never in a URL, a
log line, an exception message or a ``repr``. The token request is a plain ``httpx``
call of its own (its errors are typed the way :mod:`interchange.errors` types them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Protocol

import httpx
import orjson
from pydantic import SecretStr

from interchange.errors import (
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceServerError,
    SourceTimeout,
)

__all__ = ["OAuth2ClientCredentials", "SecretsReader", "VaultHeaderAuth"]

log = logging.getLogger("interchange.auth")


class SecretsReader(Protocol):
    """What the auth flows need from :class:`interchange.secrets.VaultSecrets`."""

    def get(self, path: str, key: str) -> SecretStr: ...

    def invalidate(self, path: str | None = None) -> None: ...


class VaultHeaderAuth(httpx.Auth):
    """``<header>: <prefix><secret>``, the secret read from Vault (``key`` at ``vault_path``)."""

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        *,
        secrets: SecretsReader,
        vault_path: str,
        key: str,
        header: str = "Authorization",
        prefix: str = "Bearer ",
        source: str = "",
    ) -> None:
        self._secrets = secrets
        self.vault_path = vault_path
        self.key = key
        self.header = header
        self.prefix = prefix
        self.source = source
        self._lock = threading.Lock()
        self.rotations = 0  # 401s cured by a re-read secret (a count, never a value)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(header={self.header!r}, vault_path={self.vault_path!r}, "
                f"key={self.key!r})")  # fmt: skip

    __str__ = __repr__

    def _current(self) -> SecretStr:
        return self._secrets.get(self.vault_path, self.key)

    def _reread(self, rejected: SecretStr) -> SecretStr:
        with self._lock:  # concurrent 401s re-read Vault once
            current = self._current()
            if current.get_secret_value() == rejected.get_secret_value():
                self._secrets.invalidate(self.vault_path)
                current = self._current()
            return current

    def _set(self, request: httpx.Request, secret: SecretStr) -> None:
        request.headers[self.header] = f"{self.prefix}{secret.get_secret_value()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        secret = self._current()
        self._set(request, secret)
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._reread(secret)
        if fresh.get_secret_value() == secret.get_secret_value():
            log.warning("%s answered 401 for %s %s and Vault %s holds the same credential",
                        self.source or "source", request.method, request.url.path,
                        self.vault_path)  # fmt: skip
            return
        log.info("%s answered 401; retrying once with the credential re-read from Vault %s",
                 self.source or "source", self.vault_path)
        self.rotations += 1
        self._set(request, fresh)
        yield request


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth 2.0 client-credentials grant with in-memory access tokens.

    ``client_auth`` is ``basic`` (HTTP Basic with the client id and secret, RFC 6749's
    recommendation) or ``body`` (both as form fields). ``token_url`` is absolute.
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        *,
        secrets: SecretsReader,
        vault_path: str,
        token_url: str,
        client_id_key: str = "client_id",
        client_secret_key: str = "client_secret",  # noqa: S107 - a Vault key's name
        scope: str | None = None,
        audience: str | None = None,
        client_auth: str = "basic",
        margin: float = 60.0,
        timeout: float = 30.0,
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if client_auth not in ("basic", "body"):
            raise ValueError(f"client_auth must be 'basic' or 'body', not {client_auth!r}")
        self._secrets = secrets
        self.vault_path = vault_path
        self.token_url = token_url
        self.client_id_key = client_id_key
        self.client_secret_key = client_secret_key
        self.scope = scope
        self.audience = audience
        self.client_auth = client_auth
        self.margin = margin
        self.timeout = timeout
        self.source = source or "source"
        self._clock = clock
        self._transport = transport
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0
        self.fetches = 0  # token requests made (a count, never a value)

    def __repr__(self) -> str:
        return (f"OAuth2ClientCredentials(token_url={self.token_url!r}, "
                f"vault_path={self.vault_path!r})")  # fmt: skip

    __str__ = __repr__

    def _valid(self) -> SecretStr | None:
        # Refresh `margin` seconds early, but never more than half a token's life early:
        # a 60-second token with a 60-second margin would otherwise never be reused.
        early = min(self.margin, self._lifetime / 2)
        if self._token is not None and self._clock() < self._expires_at - early:
            return self._token
        return None

    def token(self, *, rejected: SecretStr | None = None) -> SecretStr:
        """A valid access token; a new one if none is cached, it is near expiry, or it is
        the token the source just rejected (unless another thread already replaced it)."""
        with self._lock:
            current = self._valid()
            if current is not None and (
                rejected is None or current.get_secret_value() != rejected.get_secret_value()
            ):
                return current
            self._token, lifetime = self._fetch(force_reread=rejected is not None)
            self._expires_at, self._lifetime = self._clock() + lifetime, lifetime
            return self._token

    def _fetch(self, *, force_reread: bool) -> tuple[SecretStr, float]:
        if force_reread:
            self._secrets.invalidate(self.vault_path)
        client_id = self._secrets.get(self.vault_path, self.client_id_key).get_secret_value()
        client_secret = self._secrets.get(
            self.vault_path, self.client_secret_key).get_secret_value()
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        auth: httpx.BasicAuth | None = None
        if self.client_auth == "basic":
            auth = httpx.BasicAuth(client_id, client_secret)
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        what = "POST token endpoint"
        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport,
                              follow_redirects=False) as http:  # fmt: skip
                response = http.post(self.token_url, data=form, auth=auth,
                                     headers={"Accept": "application/json"})  # fmt: skip
        except httpx.TimeoutException as exc:
            raise SourceTimeout(f"{self.source}: token request timed out",
                                source=self.source, request=what) from exc
        except httpx.HTTPError as exc:
            raise SourceConnectError(f"{self.source}: token request failed: "
                                     f"{type(exc).__name__}", source=self.source,
                                     request=what) from exc  # fmt: skip
        self.fetches += 1
        if response.status_code >= 500:
            raise SourceServerError(
                f"{self.source}: token endpoint answered {response.status_code}",
                source=self.source, request=what, status_code=response.status_code)
        if response.status_code >= 400:
            # RFC 6749 §5.2: {"error": "invalid_client", ...}; the code only, no echo.
            code = _error_code(response.content)
            raise SourceAuthError(
                f"{self.source}: token endpoint refused the client credentials at "
                f"{self.vault_path} ({response.status_code} {code})",
                source=self.source, request=what, status_code=response.status_code)
        try:
            body = orjson.loads(response.content)
            token = body["access_token"]
            if not isinstance(token, str) or not token:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise SourceError(f"{self.source}: token endpoint answered no access_token",
                              source=self.source, request=what) from None
        kind = str(body.get("token_type") or "bearer").lower()
        if kind != "bearer":
            raise SourceAuthError(f"{self.source}: token endpoint issued a {kind!r} token; "
                                  "only bearer tokens are supported", source=self.source,
                                  request=what)  # fmt: skip
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return SecretStr(token), lifetime

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self.token(rejected=token)
        request.headers["Authorization"] = f"Bearer {fresh.get_secret_value()}"
        yield request


def _error_code(content: bytes) -> str:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "no error code"
    code = body.get("error") if isinstance(body, dict) else None
    return str(code)[:64] if isinstance(code, str) else "no error code"
