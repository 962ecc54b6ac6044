"""Secrets: the one place Interchange talks to Vault (or OpenBao).

Owns logging in (a static token, or AppRole), keeping the token alive (renewal before
expiry, a fresh AppRole login when the token was revoked or expired), reading and writing
KV v2 secrets, a short thread-safe TTL cache, and translating hvac/requests errors into
:mod:`interchange.errors` types.

Secret values leave this module only as :class:`pydantic.SecretStr`. Tokens, AppRole
credentials and values never appear in a log line, an exception message or a ``repr``;
logs carry Vault paths and events ("re-login after 403") only.

Use :func:`get_secrets` for the process-wide instance built from settings on first use::

    api_key = get_secrets().get("interchange/stripe", "api_key").get_secret_value()
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from interchange.errors import ConfigError, SecretNotFound, SecretsAuthError, SecretsError

__all__ = ["VaultSecrets", "get_secrets", "reset_secrets"]

log = logging.getLogger("interchange.secrets")

T = TypeVar("T")

_AUTH_ERRORS = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if isinstance(value, SecretStr):
        return value if value.get_secret_value() else None
    return SecretStr(value) if value else None


def _as_secret_value(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    # KV v2 stores JSON; non-string values (numbers, nested objects) keep their JSON form.
    return SecretStr(json.dumps(value))


def _plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class VaultSecrets:
    """KV v2 secrets from one Vault/OpenBao server, cached for ``cache_ttl`` seconds.

    Authentication: when ``role_id`` and ``secret_id`` are given, log in with AppRole
    (and log in again whenever the token is rejected); otherwise ``token`` is used as is.
    Renewable tokens are renewed once less than ``renew_margin`` of their TTL remains.
    Safe to share between threads.
    """

    def __init__(
        self,
        *,
        addr: str,
        token: SecretStr | str | None = None,
        role_id: SecretStr | str | None = None,
        secret_id: SecretStr | str | None = None,
        approle_mount: str = "approle",
        kv_mount: str = "secret",
        cache_ttl: float = 30.0,
        timeout: float = 10.0,
        renew_margin: float = 0.2,
    ) -> None:
        self.addr = addr.rstrip("/")
        self._token = _secret(token)
        self._role_id = _secret(role_id)
        self._secret_id = _secret(secret_id)
        if bool(self._role_id) != bool(self._secret_id):
            raise ConfigError("Vault AppRole login needs both role_id and secret_id")
        if not self._token and not self._role_id:
            raise ConfigError(
                "no Vault credentials: set INTERCHANGE_VAULT_TOKEN, or "
                "INTERCHANGE_VAULT_ROLE_ID and INTERCHANGE_VAULT_SECRET_ID"
            )
        if cache_ttl < 0:
            raise ConfigError("cache_ttl must be >= 0")
        if not 0 <= renew_margin < 1:
            raise ConfigError("renew_margin must be in [0, 1)")
        self.approle_mount = approle_mount.strip("/")
        self.kv_mount = kv_mount.strip("/")
        self.cache_ttl = float(cache_ttl)
        self.timeout = float(timeout)
        self.renew_margin = float(renew_margin)

        # token="" (not None) stops hvac from falling back to VAULT_TOKEN / ~/.vault-token.
        self._client = hvac.Client(url=self.addr, token="", timeout=self.timeout)

        self._auth_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, SecretStr]]] = {}

        # Token state, guarded by _auth_lock.
        self._authenticated = False
        self._generation = 0  # bumped on every login, so concurrent 403s re-login once
        self._renewable = False
        self._token_ttl = 0.0  # the TTL the token was issued (or last renewed) with
        self._expires_at: float | None = None  # monotonic; None = no expiry / unknown
        self._accessor: str | None = None

        # Observability counters (events, never values).
        self.logins = 0
        self.renewals = 0

    # ------------------------------------------------------------------ public API

    @property
    def auth_method(self) -> str:
        return "approle" if self._role_id else "token"

    @property
    def token_accessor(self) -> str | None:
        """Accessor of the current token (not a credential; lets an operator revoke it)."""
        return self._accessor

    def read(self, path: str) -> dict[str, SecretStr]:
        """All keys of the KV v2 secret at ``path`` (relative to the KV mount).

        Served from the cache while it is younger than ``cache_ttl``.
        """
        path = self._norm(path)
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(path)
            if hit is not None and hit[0] > now:
                log.debug("secret cache hit: %s", path)
                return dict(hit[1])
        log.debug("reading secret from Vault: %s", path)
        response = self._call(
            "read",
            path,
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.kv_mount, raise_on_deleted_version=True
            ),
        )
        try:
            raw = response["data"]["data"] or {}
        except (KeyError, TypeError) as exc:
            raise SecretsError(f"unexpected Vault answer reading secret {path!r}") from exc
        values = {str(k): _as_secret_value(v) for k, v in raw.items()}
        self._store(path, values)
        return dict(values)

    def get(self, path: str, key: str) -> SecretStr:
        """One key of the secret at ``path``; :class:`SecretNotFound` if path or key is missing."""
        values = self.read(path)
        try:
            return values[key]
        except KeyError:
            raise SecretNotFound(
                f"no key {key!r} in Vault secret {self._norm(path)!r} (mount {self.kv_mount!r})"
            ) from None

    def write(self, path: str, values: Mapping[str, str | SecretStr]) -> None:
        """Create or replace the KV v2 secret at ``path`` (a new version with exactly ``values``).

        The cache is updated, so a following :meth:`read` returns what was written. To
        change one key, pass the whole secret: ``{**current, "refresh_token": new}``.
        """
        path = self._norm(path)
        plain = {str(k): _plain(v) for k, v in values.items()}
        log.info("writing secret to Vault: %s (%d keys)", path, len(plain))
        self._call(
            "write",
            path,
            lambda: self._client.secrets.kv.v2.create_or_update_secret(
                path=path, secret=plain, mount_point=self.kv_mount
            ),
        )
        self._store(path, {k: SecretStr(v) for k, v in plain.items()})

    def invalidate(self, path: str | None = None) -> None:
        """Drop ``path`` from the cache, or everything when ``path`` is None."""
        with self._cache_lock:
            if path is None:
                self._cache.clear()
            else:
                self._cache.pop(self._norm(path), None)

    def close(self) -> None:
        """Close the HTTP session (the token is not revoked: other processes may share it)."""
        self._client.adapter.close()

    def __repr__(self) -> str:
        return (
            f"VaultSecrets(addr={self.addr!r}, auth={self.auth_method!r}, "
            f"kv_mount={self.kv_mount!r}, cache_ttl={self.cache_ttl})"
        )

    __str__ = __repr__

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _norm(path: str) -> str:
        path = path.strip().strip("/")
        if not path:
            raise SecretNotFound("empty Vault secret path")
        return path

    def _store(self, path: str, values: dict[str, SecretStr]) -> None:
        if self.cache_ttl <= 0:
            return
        with self._cache_lock:
            self._cache[path] = (time.monotonic() + self.cache_ttl, dict(values))

    def with_client(self, fn: Callable[[hvac.Client], T]) -> T:
        """Run ``fn(client)`` with a live token; on 403 log in again (AppRole), retry once.

        For other Vault engines that share this login (database credentials, ...).
        Exceptions from ``fn`` propagate as they are: the caller translates them, and
        must not quote Vault's error text where it may carry credentials.
        """
        generation = self._ensure_token()
        try:
            return fn(self._client)
        except _AUTH_ERRORS:
            if not self._role_id:
                raise
            log.warning("re-login after 403 (shared client)")
            self._relogin(generation)
        return fn(self._client)

    def _call(self, op: str, path: str, fn: Callable[[], T]) -> T:
        """Run one KV request with a live token; on 403 re-login (AppRole) and retry once."""
        generation = self._ensure_token()
        try:
            return fn()
        except _AUTH_ERRORS as exc:
            if not self._role_id:
                raise SecretsAuthError(
                    f"Vault refused to {op} secret {path!r}: token invalid, expired or "
                    f"lacking permission ({type(exc).__name__})"
                ) from exc
            log.warning("re-login after 403 on %s of %s", op, path)
            self._relogin(generation)
        except Exception as exc:
            raise self._translate(exc, op, path) from exc
        try:
            return fn()
        except Exception as exc:
            raise self._translate(exc, op, path) from exc

    def _translate(self, exc: Exception, op: str, path: str) -> SecretsError:
        where = f"secret {path!r} (mount {self.kv_mount!r})"
        if isinstance(exc, SecretsError):
            return exc
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return SecretNotFound(f"no Vault {where}")
        if isinstance(exc, _AUTH_ERRORS):
            return SecretsError(
                f"Vault refused to {op} {where}: permission denied even after a fresh login"
            )
        if isinstance(exc, hvac.exceptions.VaultError):
            return SecretsError(
                f"Vault failed to {op} {where}: {type(exc).__name__}{self._errors(exc)}"
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return SecretsError(f"Vault at {self.addr} timed out ({op} {where})")
        if isinstance(exc, requests.exceptions.RequestException):
            return SecretsError(
                f"Vault at {self.addr} unreachable ({op} {where}): {type(exc).__name__}"
            )
        return SecretsError(f"unexpected error during Vault {op} of {where}: {type(exc).__name__}")

    def _errors(self, exc: hvac.exceptions.VaultError) -> str:
        """Vault's own error strings, with any credential we know scrubbed out."""
        errors = [str(e) for e in (exc.errors or [])][:3]
        if not errors:
            return ""
        text = "; ".join(errors)[:300]
        for secret in (self._token, self._role_id, self._secret_id):
            if secret is not None and secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "***")
        if self._client.token:
            text = text.replace(self._client.token, "***")
        return f": {text}"

    # -- token lifecycle

    def _ensure_token(self) -> int:
        """Log in if needed and renew a token close to expiry; returns the login generation."""
        with self._auth_lock:
            if not self._authenticated:
                self._login()
            elif self._needs_renewal():
                self._renew()
            return self._generation

    def _relogin(self, seen_generation: int) -> None:
        with self._auth_lock:
            if self._generation == seen_generation:  # nobody else logged in meanwhile
                self._authenticated = False
                self._login()

    def _login(self) -> None:
        if self._role_id and self._secret_id:
            log.info("logging in to Vault with AppRole (mount %s)", self.approle_mount)
            try:
                self._client.auth.approle.login(
                    role_id=self._role_id.get_secret_value(),
                    secret_id=self._secret_id.get_secret_value(),
                    mount_point=self.approle_mount,
                    use_token=True,
                )
            except hvac.exceptions.VaultError as exc:
                raise SecretsError(
                    f"Vault AppRole login failed (mount {self.approle_mount!r}): "
                    f"{type(exc).__name__}{self._errors(exc)}"
                ) from exc
            except requests.exceptions.RequestException as exc:
                raise SecretsError(
                    f"Vault at {self.addr} unreachable for AppRole login: {type(exc).__name__}"
                ) from exc
        else:
            assert self._token is not None
            self._client.token = self._token.get_secret_value()
        self.logins += 1
        self._generation += 1
        self._authenticated = True
        self._lookup_self()

    def _lookup_self(self) -> None:
        """Learn the token's TTL and renewability (best effort: a static token may lack it)."""
        try:
            data = self._client.auth.token.lookup_self()["data"]
        except _AUTH_ERRORS as exc:
            if self._role_id:
                raise SecretsError(
                    "Vault rejected the token it just issued on lookup-self"
                ) from exc
            # A static token may be denied lookup-self; use it without renewal.
            log.debug("token lookup-self denied; not managing token renewal")
            self._renewable, self._expires_at, self._accessor = False, None, None
            return
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise SecretsError(
                f"Vault at {self.addr} failed token lookup: {type(exc).__name__}"
            ) from exc
        ttl = float(data.get("ttl") or 0)
        self._accessor = data.get("accessor") or None
        self._renewable = bool(data.get("renewable")) and ttl > 0
        self._token_ttl = float(data.get("creation_ttl") or ttl)
        self._expires_at = time.monotonic() + ttl if ttl > 0 else None
        log.debug("vault token ttl=%ss renewable=%s", int(ttl), self._renewable)

    def _needs_renewal(self) -> bool:
        if self._expires_at is None or self._token_ttl <= 0:
            return False
        remaining = self._expires_at - time.monotonic()
        return remaining < self.renew_margin * self._token_ttl

    def _renew(self) -> None:
        if not self._renewable:
            if self._role_id:
                log.info("vault token near expiry and not renewable; logging in again")
                self._authenticated = False
                self._login()
            return
        try:
            auth = self._client.auth.token.renew_self()["auth"]
        except _AUTH_ERRORS as exc:
            if not self._role_id:
                raise SecretsAuthError(
                    "Vault refused to renew the token (revoked or expired)"
                ) from exc
            log.warning("re-login after 403 on token renewal")
            self._authenticated = False
            self._login()
            return
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            # The token may still be valid for a while: log and carry on with it.
            log.warning("vault token renewal failed (%s); will retry", type(exc).__name__)
            return
        ttl = float(auth.get("lease_duration") or 0)
        self.renewals += 1
        self._renewable = bool(auth.get("renewable", self._renewable))
        # A renewable token renewed to 0 s has hit its max TTL: it expires now, not never.
        self._expires_at = time.monotonic() + ttl
        if not self._role_id and 0 < ttl < self._token_ttl:
            # Capped by max TTL and no way to log in again: renew at the margin of what is left.
            self._token_ttl = ttl
        log.info("vault token renewed (ttl=%ss)", int(ttl))
        if self._role_id and self._needs_renewal():
            # Renewal was capped by the token's max TTL: a fresh login gives a new token.
            log.info("vault token reached its max TTL; logging in again")
            self._authenticated = False
            self._login()


_instance: VaultSecrets | None = None
_instance_lock = threading.Lock()


def get_secrets() -> VaultSecrets:
    """The process-wide :class:`VaultSecrets`, built from settings on first use."""
    global _instance
    with _instance_lock:
        if _instance is None:
            from interchange.settings import get_settings

            s = get_settings()
            _instance = VaultSecrets(
                addr=s.vault_addr,
                token=s.vault_token,
                role_id=s.vault_role_id,
                secret_id=s.vault_secret_id,
                approle_mount=s.vault_approle_mount,
                kv_mount=s.vault_kv_mount,
                cache_ttl=s.vault_cache_ttl,
            )
        return _instance


def reset_secrets() -> None:
    """Forget the process-wide instance (tests, or after changing settings)."""
    global _instance
    with _instance_lock:
        if _instance is not None:
            _instance.close()
        _instance = None
