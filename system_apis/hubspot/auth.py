"""HubSpot authentication: OAuth 2.0 refresh-token grant, or a private-app token.

Which one a source uses is decided by the keys stored at its Vault path
(:func:`hubspot_auth`):

* ``client_id`` + ``client_secret`` + ``refresh_token`` -> :class:`HubSpotOAuth`.
  Access tokens come from ``POST /oauth/v1/token`` (form ``grant_type=refresh_token``)
  and live in memory only. A token is refreshed ``margin`` seconds before it expires and
  whenever HubSpot answers 401, under a lock, so any number of threads sharing the
  client refresh once. When HubSpot answers with a different (rotated) refresh token it
  is written back to Vault as a new version of the whole secret
  (``{**current, "refresh_token": new}``), so the next process starts from it; should
  that write fail, the new token is kept in memory, used for the next refresh and
  written again then (HubSpot has already retired the old one). If the refresh token is
  refused, Vault is re-read once: another process may have rotated it.
  The token call is a plain ``httpx`` request of its own, never this auth flow again.
* ``access_token`` -> :class:`HubSpotPrivateAppAuth`: the private app's static bearer
  token, re-read from Vault after a 401 (a rotation since the cache was filled).

Tokens only ever travel in the ``Authorization`` header or the token request's form body:
never in a URL, a log line, an exception message or a ``repr``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Protocol

import httpx
import orjson
from pydantic import SecretStr

from interchange.auth import VaultHeaderAuth
from interchange.errors import (
    ConfigError,
    SecretsError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceServerError,
    SourceTimeout,
)

__all__ = [
    "ACCESS_TOKEN_FIELD",
    "OAUTH_FIELDS",
    "TOKEN_PATH",
    "HubSpotOAuth",
    "HubSpotPrivateAppAuth",
    "SecretsStore",
    "auth_kind",
    "hubspot_auth",
]

log = logging.getLogger("system_apis.hubspot.auth")

TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 (an endpoint path, not a secret)
ACCESS_TOKEN_FIELD = "access_token"  # noqa: S105 (a key name, not a secret)
OAUTH_FIELDS = ("client_id", "client_secret", "refresh_token")
DEFAULT_MARGIN_SECONDS = 60.0
REDACTED = "[redacted]"


class SecretsStore(Protocol):
    """What the auth needs from :class:`interchange.secrets.VaultSecrets`."""

    def read(self, path: str) -> dict[str, SecretStr]: ...

    def get(self, path: str, key: str) -> SecretStr: ...

    def write(self, path: str, values: Mapping[str, str | SecretStr]) -> None: ...

    def invalidate(self, path: str | None = None) -> None: ...


def _plain(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def auth_kind(keys: Mapping[str, object]) -> str:
    """``"oauth"`` or ``"private_app"`` from the key names at a Vault path.

    OAuth wins when both sets are present (an ``access_token`` next to a refresh token
    is a stale cache, not a private-app token).
    """
    if all(k in keys for k in OAUTH_FIELDS):
        return "oauth"
    if ACCESS_TOKEN_FIELD in keys:
        return "private_app"
    raise ConfigError(
        "HubSpot Vault secret has neither client_id + client_secret + refresh_token "
        f"(OAuth) nor access_token (private app); keys present: {sorted(keys)}"
    )


class _Redactor:
    """Knows the secret values an auth holds, to scrub them from text."""

    def _secret_values(self) -> list[str]:  # pragma: no cover - overridden
        return []

    def redact(self, text: str) -> str:
        for value in self._secret_values():
            if value and len(value) >= 4:
                text = text.replace(value, REDACTED)
        return text


class _Borrowed(httpx.BaseTransport):
    """A transport lent to the token request: closing that client must not close it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass  # the owner (the API client) closes it


class HubSpotPrivateAppAuth(_Redactor, VaultHeaderAuth):
    """``Authorization: Bearer <private app token>``, read from Vault at request time
    (a 401 re-reads Vault once: the token may have been rotated)."""

    def __init__(self, *, secrets: SecretsStore, vault_path: str, key: str = ACCESS_TOKEN_FIELD):
        super().__init__(secrets=secrets, vault_path=vault_path, key=key, source="hubspot")
        self._last: SecretStr | None = None

    def __repr__(self) -> str:
        return f"HubSpotPrivateAppAuth(vault_path={self.vault_path!r}, key={self.key!r})"

    __str__ = __repr__

    def _secret_values(self) -> list[str]:
        return [_plain(self._last)]

    def _current(self) -> SecretStr:
        token = super()._current()
        self._last = token
        return token


class HubSpotOAuth(_Redactor, httpx.Auth):
    """OAuth 2.0 refresh-token grant against HubSpot's ``/oauth/v1/token``.

    ``token_url`` is the absolute token endpoint; ``transport`` replaces the network for
    the token request (tests); ``margin`` is how many seconds before ``expires_in`` runs
    out a token is refreshed; ``clock`` is a monotonic clock in seconds.
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        *,
        secrets: SecretsStore,
        vault_path: str,
        token_url: str,
        margin: float = DEFAULT_MARGIN_SECONDS,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets
        self.vault_path = vault_path
        self.token_url = token_url
        self.margin = float(margin)
        self._timeout = timeout
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._access: SecretStr | None = None
        self._expires_at: float | None = None  # clock() value; None = no token yet
        self._generation = 0  # bumped on every refresh, so concurrent 401s refresh once
        self._seen: set[str] = set()  # secret values, for redaction only
        self._unsaved: SecretStr | None = None  # a rotated refresh token Vault refused
        # Observability counters (events, never values).
        self.refreshes = 0
        self.rotations = 0

    def __repr__(self) -> str:
        return f"HubSpotOAuth(vault_path={self.vault_path!r}, token_url={self.token_url!r})"

    __str__ = __repr__

    def _secret_values(self) -> list[str]:
        return [_plain(self._access), *sorted(self._seen, key=len, reverse=True)]

    # ------------------------------------------------------------------ flow

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token, generation = self._token()
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        response = yield request
        if response.status_code != 401:
            return
        log.info("hubspot answered 401 for %s %s; refreshing the access token",
                 request.method, request.url.path)
        token = self._refresh_after_401(generation)
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        yield request  # a second 401 stands: the caller gets SourceAuthError

    def _valid(self) -> bool:
        return (
            self._access is not None
            and self._expires_at is not None
            and self._clock() < self._expires_at - self.margin
        )

    def _token(self) -> tuple[SecretStr, int]:
        if self._valid():
            assert self._access is not None
            return self._access, self._generation
        with self._lock:
            if not self._valid():  # whoever came first may have refreshed already
                self._refresh()
            assert self._access is not None
            return self._access, self._generation

    def _refresh_after_401(self, generation: int) -> SecretStr:
        with self._lock:
            if self._generation == generation:
                self._refresh()
            assert self._access is not None
            return self._access

    # ------------------------------------------------------------------ token endpoint

    def _refresh(self) -> None:
        """Exchange the refresh token for an access token (caller holds the lock)."""
        current = dict(self._secrets.read(self.vault_path))
        kind = auth_kind(current)
        if kind != "oauth":
            raise ConfigError(f"Vault secret {self.vault_path!r} holds no OAuth refresh token")
        stored = _plain(current.get("refresh_token"))
        if self._unsaved is not None:  # rotated earlier, but Vault did not take it
            current["refresh_token"] = self._unsaved
        try:
            body = self._grant(current)
        except SourceAuthError:
            # Another process may have rotated the refresh token since our cache was
            # filled: re-read Vault once and try again if it now holds a different one.
            self._secrets.invalidate(self.vault_path)
            fresh = self._secrets.read(self.vault_path)
            if _plain(fresh.get("refresh_token")) == _plain(current.get("refresh_token")):
                raise
            log.info("refresh token refused; retrying with the one re-read from Vault %s",
                     self.vault_path)
            current, stored, self._unsaved = dict(fresh), _plain(fresh.get("refresh_token")), None
            body = self._grant(current)
        access = body["access_token"]
        expires_in = float(body["expires_in"])
        self._access = SecretStr(access)
        self._expires_at = self._clock() + expires_in
        self._generation += 1
        self.refreshes += 1
        new_refresh = body.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            self._seen.add(new_refresh)
            if new_refresh != _plain(current.get("refresh_token")):
                self.rotations += 1
            if new_refresh != stored:
                self._save(current, new_refresh)
        log.info("hubspot access token refreshed (expires in %ds)", int(expires_in))

    def _save(self, current: Mapping[str, SecretStr | str], refresh_token: str) -> None:
        """Write the rotated refresh token to Vault (the whole secret, as a new version).

        HubSpot has already retired the old token, so a failed write must not lose the
        new one: it is kept in memory, used for the next refresh and written again then.
        """
        try:
            self._secrets.write(self.vault_path, {**current, "refresh_token": refresh_token})
        except SecretsError as exc:
            self._unsaved = SecretStr(refresh_token)
            log.error(
                "could not write the rotated HubSpot refresh token to Vault %s (%s); keeping "
                "it in memory and writing it again at the next refresh",
                self.vault_path, type(exc).__name__,
            )
            return
        self._unsaved = None
        log.info("hubspot rotated the refresh token; new one written to Vault %s",
                 self.vault_path)

    def _grant(self, current: Mapping[str, SecretStr | str]) -> dict:
        form = {
            "grant_type": "refresh_token",
            "client_id": _plain(current.get("client_id")),
            "client_secret": _plain(current.get("client_secret")),
            "refresh_token": _plain(current.get("refresh_token")),
        }
        self._seen.update(v for k, v in form.items() if k != "grant_type" and v)
        what = f"POST {httpx.URL(self.token_url).path}"
        try:
            borrowed = _Borrowed(self._transport) if self._transport is not None else None
            with httpx.Client(
                transport=borrowed, timeout=self._timeout, follow_redirects=False
            ) as http:
                response = http.post(
                    self.token_url, data=form, headers={"Accept": "application/json"}
                )
        except httpx.TimeoutException as exc:
            raise SourceTimeout(f"hubspot: {what} timed out", source="hubspot",
                                request=what) from exc
        except httpx.HTTPError as exc:
            raise SourceConnectError(f"hubspot: {what} failed: {type(exc).__name__}",
                                     source="hubspot", request=what) from exc
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            detail = ""
            if isinstance(body, dict):
                parts = [str(body.get(k)) for k in ("status", "message") if body.get(k)]
                if body.get("correlationId"):
                    parts.append(f"correlationId {body['correlationId']}")
                detail = self.redact(": " + "; ".join(parts)) if parts else ""
            msg = f"hubspot: {what} answered {response.status_code}{detail}"
            kw = dict(source="hubspot", request=what, status_code=response.status_code,
                      body=self.redact(response.text))
            if response.status_code >= 500 or response.status_code == 429:
                raise SourceServerError(msg, **kw)
            if response.status_code < 400:
                raise SourceError(f"hubspot: {what} answered no JSON object",
                                  source="hubspot", request=what)
            raise SourceAuthError(msg, **kw)
        if not isinstance(body.get("access_token"), str) or not isinstance(
            body.get("expires_in"), int | float
        ):
            raise SourceError(
                f"hubspot: {what} answered without access_token/expires_in",
                source="hubspot", request=what,
            )
        return body


def hubspot_auth(
    *,
    secrets: SecretsStore,
    vault_path: str,
    token_url: str,
    margin: float = DEFAULT_MARGIN_SECONDS,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> HubSpotOAuth | HubSpotPrivateAppAuth:
    """The auth for the keys stored at ``vault_path`` (read once, now)."""
    kind = auth_kind(secrets.read(vault_path))
    if kind == "oauth":
        return HubSpotOAuth(
            secrets=secrets, vault_path=vault_path, token_url=token_url, margin=margin,
            timeout=timeout, transport=transport,
        )
    return HubSpotPrivateAppAuth(secrets=secrets, vault_path=vault_path)
