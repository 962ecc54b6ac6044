"""Stripe authentication: the secret key from Vault, per request, as a Bearer header.

:class:`StripeKeyAuth` reads ``api_key`` from the source's Vault path every time a
request is sent (the secrets client caches it for its TTL, so this is cheap), which is
how a rotated key is picked up without restarting anything. When Stripe answers 401 the
cached secret is dropped and the key read again from Vault; if Vault now holds a
different key the request is sent once more with it (a rotation that happened since the
cache was filled). If the key did not change, the 401 stands: retrying it would only
repeat the same failure.

The key only ever travels in the ``Authorization`` header: never in a URL, a log line,
an exception message or a ``repr``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from typing import Protocol

import httpx
from pydantic import SecretStr

__all__ = ["API_KEY_FIELD", "SecretsReader", "StripeKeyAuth"]

log = logging.getLogger("system_apis.stripe.auth")

API_KEY_FIELD = "api_key"


class SecretsReader(Protocol):
    """What the auth needs from :class:`interchange.secrets.VaultSecrets`."""

    def get(self, path: str, key: str) -> SecretStr: ...

    def invalidate(self, path: str | None = None) -> None: ...


class StripeKeyAuth(httpx.Auth):
    """``Authorization: Bearer <secret key>``, the key read from Vault at request time."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, *, secrets: SecretsReader, vault_path: str, key: str = API_KEY_FIELD):
        self._secrets = secrets
        self.vault_path = vault_path
        self.key = key
        self._lock = threading.Lock()
        self.rotations = 0  # times a 401 was cured by a fresh key (an event count, no value)

    def __repr__(self) -> str:
        return f"StripeKeyAuth(vault_path={self.vault_path!r}, key={self.key!r})"

    __str__ = __repr__

    def _current(self) -> SecretStr:
        return self._secrets.get(self.vault_path, self.key)

    def _refresh(self, rejected: SecretStr) -> SecretStr:
        """The key to retry with after ``rejected`` got a 401.

        Under a lock, so that concurrent 401s re-read Vault once: whoever comes second
        finds the cache already holding a different key and uses it.
        """
        with self._lock:
            current = self._current()
            if current.get_secret_value() == rejected.get_secret_value():
                self._secrets.invalidate(self.vault_path)
                current = self._current()
            return current

    @staticmethod
    def _authorize(request: httpx.Request, api_key: SecretStr) -> None:
        request.headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        api_key = self._current()
        self._authorize(request, api_key)
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._refresh(api_key)
        if fresh.get_secret_value() == api_key.get_secret_value():
            log.warning(
                "stripe answered 401 for %s %s and Vault %s holds the same key; not retrying",
                request.method,
                request.url.path,
                self.vault_path,
            )
            return
        log.info(
            "stripe answered 401 for %s %s; retrying once with the key re-read from Vault %s",
            request.method,
            request.url.path,
            self.vault_path,
        )
        self.rotations += 1
        self._authorize(request, fresh)
        yield request
