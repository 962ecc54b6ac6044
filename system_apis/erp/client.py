"""The ERP database client: :func:`erp_engine` and database error translation.

Configuration comes from the source's :class:`~interchange.settings.SourceConfig`:

``base_url``
    The database URL *without* credentials. ``sqlite:///...`` is the embedded demo: no
    Vault, the file is opened as is. Anything else (``postgresql+psycopg://host/db``)
    logs in with short-lived credentials from Vault's database secrets engine.
``vault_path``
    Where those credentials come from: ``<mount>/creds/<role>`` (``database/creds/erp``),
    or just the mount (``database``) with the role in ``options.role``.
``options``
    ``role`` (see above), ``renew_fraction`` (renew the lease when less than this share
    of its TTL remains, default 1/3), ``pool_size``.

:func:`translate_db_error` maps SQLAlchemy/driver errors to :mod:`interchange.errors`
types with messages that carry the error class and never the driver's text (it may
quote the login).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc

from interchange.dbsecrets import DatabaseCredentials
from interchange.errors import (
    ConfigError,
    InterchangeError,
    SchemaError,
    SourceConnectError,
    SourceError,
)
from interchange.secrets import VaultSecrets

__all__ = ["creds_path", "erp_engine", "is_embedded", "translate_db_error"]

# Driver errors that mean the table or a column is not what we expect (schema drift).
_SCHEMA_ERRORS = frozenset({"UndefinedTable", "UndefinedColumn"})


def is_embedded(config_url: str) -> bool:
    """True for the embedded SQLite demo (no Vault involved)."""
    return sa.make_url(config_url).get_backend_name() == "sqlite"


def creds_path(vault_path: str, options: dict[str, Any]) -> str:
    """``<mount>/creds/<role>`` from ``vault_path`` and ``options.role``."""
    path = vault_path.strip().strip("/")
    if "/creds/" in f"/{path}":
        return path
    role = str(options.get("role") or "").strip()
    if not path or not role:
        raise ConfigError(
            "ERP source: vault_path must be '<mount>/creds/<role>', or a mount with "
            "options.role set"
        )
    return f"{path}/creds/{role}"


@contextmanager
def erp_engine(
    config: Any,
    *,
    secrets: VaultSecrets | None = None,
    **engine_kwargs: Any,
) -> Iterator[sa.Engine]:
    """An engine for the ERP database of ``config`` (a ``SourceConfig``), for one run.

    SQLite URLs open directly. Otherwise credentials are leased from Vault
    (``secrets`` defaults to :func:`interchange.secrets.get_secrets`) for the duration
    of the ``with`` block, renewed while it runs and revoked when it ends.
    """
    url = sa.make_url(config.base_url)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(config.base_url, **engine_kwargs)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if url.username or url.password:
        raise ConfigError("ERP source: base_url must not carry credentials (they come from Vault)")
    options = dict(config.options or {})
    if "pool_size" in options:
        engine_kwargs.setdefault("pool_size", int(options["pool_size"]))
    with DatabaseCredentials(
        url=config.base_url,
        path=creds_path(config.vault_path, options),
        secrets=secrets,
        renew_fraction=float(options.get("renew_fraction", 1 / 3)),
    ) as creds:
        yield creds.engine(**engine_kwargs)


def translate_db_error(exc: BaseException, *, source: str, what: str) -> InterchangeError:
    """The most specific :mod:`interchange.errors` type for a database error."""
    if isinstance(exc, InterchangeError):
        return exc
    name = type(getattr(exc, "orig", None) or exc).__name__
    msg = f"{source}: {what} failed ({name})"
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        # Connection refused/reset, login revoked, server shutting down: worth a retry.
        return SourceConnectError(msg, source=source, request=what)
    if isinstance(exc, sqlalchemy.exc.NoSuchTableError) or name in _SCHEMA_ERRORS:
        return SchemaError(msg)
    return SourceError(msg, source=source, request=what)
