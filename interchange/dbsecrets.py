"""Short-lived database logins from Vault/OpenBao's database secrets engine.

Owns one lease from ``<mount>/creds/<role>``: reading it (through a
:class:`~interchange.secrets.VaultSecrets`, reusing its token or AppRole login and its
re-login on 403, or through a plain :class:`hvac.Client`), building SQLAlchemy engines
that log in with it, renewing it while a long read is running, and revoking it when the
work is done::

    with DatabaseCredentials(url="postgresql+psycopg://db.internal:5432/erp",
                             path="database/creds/erp-reader") as creds:
        engine = creds.engine()          # disposed by the context manager
        with engine.connect() as conn:
            ...

Renewal: a daemon thread checks the lease and renews it (``sys/leases/renew``, asking
for the TTL it was issued with) once less than ``renew_fraction`` (a third) of that TTL
remains; a lease capped by its max TTL is left to expire, with a warning. Revocation
(``sys/leases/revoke``) happens on exit, after the engines built here are disposed; a
failed revocation is logged, never raised over the body's own exception.

Secrecy: the leased username and password are held as :class:`pydantic.SecretStr`, go
to the driver as ``connect_args`` (so ``engine.url`` carries none of them), and never
appear in a log line, an exception message or a ``repr``; :meth:`scrub` removes them
from driver error text. Log lines carry the Vault path and events only. Instances refuse
to be pickled, so they cannot become a Prefect task result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests
import sqlalchemy as sa
from pydantic import SecretStr

from interchange.errors import ConfigError, SecretNotFound, SecretsAuthError, SecretsError
from interchange.secrets import VaultSecrets

__all__ = ["DatabaseCredentials", "split_creds_path"]

log = logging.getLogger("interchange.dbsecrets")

T = TypeVar("T")

_AUTH_ERRORS = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)


def split_creds_path(path: str) -> tuple[str, str]:
    """``"database/creds/erp-reader"`` -> ``("database", "erp-reader")``."""
    mount, sep, role = path.strip().strip("/").rpartition("/creds/")
    if not sep or not mount or not role or "/" in role:
        raise ConfigError(f"not a database credentials path (<mount>/creds/<role>): {path!r}")
    return mount, role


class DatabaseCredentials:
    """One lease of database credentials: acquire, build engines, renew, revoke.

    ``url`` is the database URL *without* credentials (any in it are replaced).
    ``path`` is ``<mount>/creds/<role>``. Vault access goes through ``secrets`` (a
    :class:`VaultSecrets`: its login, renewal and re-login are reused) or ``client``
    (an authenticated :class:`hvac.Client`); with neither, the process-wide
    :func:`interchange.secrets.get_secrets`. Use as a context manager, or call
    :meth:`acquire` and :meth:`close` yourself. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        url: str | sa.URL,
        path: str,
        secrets: VaultSecrets | None = None,
        client: hvac.Client | None = None,
        renew_fraction: float = 1 / 3,
        auto_renew: bool = True,
        check_interval: float | None = None,
    ) -> None:
        if secrets is not None and client is not None:
            raise ConfigError("pass either a VaultSecrets or an hvac.Client, not both")
        if not 0 < renew_fraction < 1:
            raise ConfigError("renew_fraction must be in (0, 1)")
        self.mount, self.role = split_creds_path(path)
        self.path = f"{self.mount}/creds/{self.role}"
        base = sa.make_url(url) if isinstance(url, str) else url
        self.base_url: sa.URL = base.set(username=None, password=None)
        self.renew_fraction = float(renew_fraction)
        self.auto_renew = auto_renew
        self._check_interval = check_interval
        if secrets is None and client is None:
            from interchange.secrets import get_secrets

            secrets = get_secrets()
        self._secrets = secrets
        self._hvac = client

        self._lock = threading.RLock()
        self._username: SecretStr | None = None
        self._password: SecretStr | None = None
        self._lease_id: str | None = None
        self._ttl = 0.0  # the lease duration it was issued with
        self._expires_at: float | None = None  # monotonic
        self._renewable = False
        self._capped = False  # renewal hit the max TTL: let it expire
        self._engines: list[sa.Engine] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "new"  # new -> active -> revoked | expired | closed

        # Observability counters (events, never values).
        self.renewals = 0
        self.renewal_failures = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DatabaseCredentials:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def acquire(self) -> None:
        """Read a fresh lease from Vault and start the renewal thread."""
        with self._lock:
            if self.state == "active":
                return
            response = self._call(
                "read",
                lambda c: c.secrets.database.generate_credentials(
                    name=self.role, mount_point=self.mount
                ),
            )
            try:
                data = response["data"]
                username, password = data["username"], data["password"]
                lease_id = response["lease_id"]
                ttl = float(response.get("lease_duration") or 0)
            except (KeyError, TypeError) as exc:
                raise SecretsError(f"unexpected Vault answer reading {self.path!r}") from exc
            self._username, self._password = SecretStr(username), SecretStr(password)
            self._lease_id = lease_id or None
            self._ttl = ttl
            self._expires_at = time.monotonic() + ttl if ttl > 0 else None
            self._renewable = bool(response.get("renewable")) and ttl > 0
            self._capped = False
            self.state = "active"
            log.info("database credentials leased from %s (ttl=%ss)", self.path, int(ttl))
        if self.auto_renew and self._renewable:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._renew_loop, name=f"lease-renewer:{self.path}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Dispose the engines built here, stop renewing and revoke the lease."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._lock:
            for engine in self._engines:
                engine.dispose()
            self._engines.clear()
            if self.state == "active" and self._lease_id:
                try:
                    self.revoke()
                except SecretsError as exc:
                    # The lease still ends at its TTL; do not hide the body's own error.
                    log.warning("could not revoke database lease from %s: %s", self.path, exc)
            if self.state == "active":
                self.state = "closed"
            self._username = self._password = None

    def revoke(self) -> None:
        """Revoke the lease now: Vault drops the login and ends its sessions."""
        with self._lock:
            if self._lease_id is None:
                return
            lease_id = self._lease_id
            self._call("revoke", lambda c: c.sys.revoke_lease(lease_id=lease_id))
            self._lease_id = None
            self.state = "revoked"
            log.info("database lease from %s revoked", self.path)

    # ------------------------------------------------------------------ using it

    def engine(self, **kwargs: Any) -> sa.Engine:
        """A SQLAlchemy engine logging in with the leased credentials.

        The credentials go in ``connect_args`` (psycopg/libpq ``user`` and ``password``),
        never into ``engine.url``. The engine is disposed on :meth:`close`.
        """
        username, password = self._credentials()
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.update(user=username, password=password)
        kwargs.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(self.base_url, connect_args=connect_args, **kwargs)
        with self._lock:
            self._engines.append(engine)
        return engine

    @property
    def username(self) -> SecretStr:
        """The leased login name (a credential too: it names a live database role)."""
        return SecretStr(self._credentials()[0])

    @property
    def password(self) -> SecretStr:
        return SecretStr(self._credentials()[1])

    @property
    def lease_id(self) -> str | None:
        """The lease id (not a credential: acting on it needs a Vault token)."""
        return self._lease_id

    @property
    def ttl_remaining(self) -> float | None:
        """Seconds until the lease expires, if it expires."""
        expires = self._expires_at
        return None if expires is None else max(0.0, expires - time.monotonic())

    def scrub(self, text: str) -> str:
        """``text`` with the leased username and password replaced by ``***``."""
        for secret in (self._password, self._username):
            if secret is not None and secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "***")
        return text

    def renew_if_needed(self) -> bool:
        """Renew when less than ``renew_fraction`` of the TTL remains; True if renewed."""
        with self._lock:
            if self.state != "active" or not self._renewable or self._capped:
                return False
            remaining = self.ttl_remaining
            if remaining is None or remaining >= self.renew_fraction * self._ttl:
                return False
            self.renew()
            return True

    def renew(self) -> None:
        """Renew the lease for the TTL it was issued with (Vault may cap it)."""
        with self._lock:
            if self._lease_id is None:
                raise SecretsError(f"no active database lease from {self.path!r} to renew")
            lease_id, increment = self._lease_id, int(self._ttl) or None

            def renew_lease(client: hvac.Client) -> Any:
                try:
                    return client.sys.renew_lease(lease_id=lease_id, increment=increment)
                except hvac.exceptions.InvalidRequest:
                    return None  # 400: past its max TTL (or expired); renewal is over

            response = self._call("renew", renew_lease)
            if response is None:
                self._capped = True
                log.warning(
                    "database lease from %s reached its max TTL; it expires in %ss",
                    self.path,
                    int(self.ttl_remaining or 0),
                )
                return
            ttl = float(response.get("lease_duration") or 0)
            self._expires_at = time.monotonic() + ttl
            self.renewals += 1
            if ttl <= 0 or (increment is not None and ttl < increment):
                # Vault granted less than asked: the lease hit its max TTL and further
                # renewals would be refused. Let it run out (a new run gets a new lease).
                self._capped = True
                log.warning(
                    "database lease from %s reached its max TTL; it expires in %ss",
                    self.path,
                    int(ttl),
                )
            else:
                log.info("database lease from %s renewed (ttl=%ss)", self.path, int(ttl))

    def __repr__(self) -> str:
        return (
            f"DatabaseCredentials(path={self.path!r}, url={self.base_url!r}, "
            f"state={self.state!r}, renewals={self.renewals})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("DatabaseCredentials holds a live lease and cannot be pickled")

    # ------------------------------------------------------------------ internals

    def _credentials(self) -> tuple[str, str]:
        with self._lock:
            if self.state != "active" or self._username is None or self._password is None:
                raise SecretsError(
                    f"database credentials from {self.path!r} are not active ({self.state})"
                )
            return self._username.get_secret_value(), self._password.get_secret_value()

    def _check_every(self) -> float:
        if self._check_interval is not None:
            return self._check_interval
        return max(0.05, min(self._ttl / 10, 10.0))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._check_every()):
            try:
                self.renew_if_needed()
            except SecretsError as exc:
                self.renewal_failures += 1
                log.warning("database lease renewal for %s failed: %s", self.path, exc)
            with self._lock:
                if self.state == "active" and self.ttl_remaining == 0:
                    self.state = "expired"
                    log.warning("database lease from %s expired", self.path)
                if self.state != "active":
                    return

    def _call(self, op: str, fn: Callable[[hvac.Client], T]) -> T:
        """Run one Vault request; with VaultSecrets, re-login once on 403 (AppRole)."""
        if self._hvac is not None:
            try:
                return fn(self._hvac)
            except Exception as exc:
                raise self._translate(exc, op) from None
        secrets = self._secrets
        assert secrets is not None
        # VaultSecrets owns the token: reuse its login, renewal and re-login on 403.
        try:
            return secrets.with_client(fn)
        except Exception as exc:
            raise self._translate(exc, op) from None

    def _translate(self, exc: Exception, op: str) -> SecretsError:
        # Vault's own error text is not quoted: a plugin error may name the login.
        where = f"database credentials {self.path!r}"
        name = type(exc).__name__
        if isinstance(exc, SecretsError):
            return exc
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return SecretNotFound(f"Vault has no {where} ({op}: {name})")
        if isinstance(exc, _AUTH_ERRORS):
            return SecretsAuthError(f"Vault refused to {op} {where}: permission denied ({name})")
        if isinstance(exc, hvac.exceptions.VaultError):
            return SecretsError(f"Vault failed to {op} {where}: {name}")
        if isinstance(exc, requests.exceptions.RequestException):
            return SecretsError(f"Vault unreachable ({op} {where}): {name}")
        return SecretsError(f"unexpected error during Vault {op} of {where}: {name}")
