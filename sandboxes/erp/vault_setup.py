"""Dev-only: make an OpenBao/Vault dev server issue short-lived logins for an ERP database.

:func:`setup_database_role` enables the database secrets engine (once per mount),
points a connection at one PostgreSQL database with OpenBao's built-in
``postgresql-database-plugin`` (as the admin user the local PostgreSQL trusts), and
creates a role whose creation statements make a login role with ``SELECT`` on the ERP
tables only, valid until the lease expires. Readers then call
``GET database/creds/<role>`` (see :class:`interchange.dbsecrets.DatabaseCredentials`).

:func:`setup_reader_approle` creates an AppRole whose policy allows exactly that: read
the role's credentials and renew / revoke leases.

Never used by production code: in production an operator configures the engine.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import hvac

from interchange import vaultdev
from sandboxes.erp.schema import TABLES

__all__ = [
    "PLUGIN_NAME",
    "reader_policy",
    "setup_database_role",
    "setup_reader_approle",
]

PLUGIN_NAME = "postgresql-database-plugin"

_CREATION = (
    "CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' "
    "VALID UNTIL '{{{{expiration}}}}';\n"
    'GRANT SELECT ON {tables} TO "{{{{name}}}}";'
)
_REVOCATION = (
    'REVOKE ALL PRIVILEGES ON {tables} FROM "{{{{name}}}}";\n'
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE usename = '{{{{name}}}}';\n"
    'DROP ROLE IF EXISTS "{{{{name}}}}";'
)


def _plugin_url(admin_url: str) -> str:
    """``postgresql://{{username}}:{{password}}@host:port/db`` from an admin URL."""
    parts = urlsplit(admin_url.replace("postgresql+psycopg://", "postgresql://", 1))
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "postgres"
    return (
        f"postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{port}/{database}?sslmode=disable"
    )


def setup_database_role(
    addr: str,
    root_token: str,
    *,
    admin_url: str,
    role: str,
    connection: str | None = None,
    admin_user: str = "postgres",
    admin_password: str = "postgres",  # noqa: S107 - the dev server's trusted admin
    default_ttl: str = "5m",
    max_ttl: str = "1h",
    mount: str = "database",
    tables: list[str] | None = None,
) -> str:
    """Configure ``mount`` to issue logins for the database at ``admin_url``; returns the
    credentials path (``<mount>/creds/<role>``).

    ``admin_url`` is a SQLAlchemy/libpq URL of the ERP database (credentials in it are
    ignored: the plugin logs in as ``admin_user``). ``connection`` names the connection
    (default: the role name). The role gets ``SELECT`` on ``tables`` (default: the ERP
    tables) and its leases last ``default_ttl`` (renewable up to ``max_ttl``); revoking
    a lease ends the role's sessions and drops it.
    """
    connection = connection or role
    quoted = ", ".join(f'"{t}"' for t in (tables or list(TABLES)))
    client = hvac.Client(url=addr, token=root_token, timeout=10)
    try:
        if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine(backend_type="database", path=mount)
        client.secrets.database.configure(
            name=connection,
            plugin_name=PLUGIN_NAME,
            connection_url=_plugin_url(admin_url),
            username=admin_user,
            password=admin_password,
            allowed_roles=[role],
            verify_connection=True,
            mount_point=mount,
        )
        client.secrets.database.create_role(
            name=role,
            db_name=connection,
            creation_statements=[_CREATION.format(tables=quoted)],
            revocation_statements=[_REVOCATION.format(tables=quoted)],
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            mount_point=mount,
        )
    finally:
        client.adapter.close()
    return f"{mount}/creds/{role}"


def reader_policy(creds_path: str) -> str:
    """A policy to read ``creds_path`` and renew / revoke the leases it hands out."""
    return (
        f'path "{creds_path.strip("/")}" {{\n  capabilities = ["read"]\n}}\n\n'
        'path "sys/leases/renew" {\n  capabilities = ["update"]\n}\n\n'
        'path "sys/leases/revoke" {\n  capabilities = ["update"]\n}\n'
    )


def setup_reader_approle(
    addr: str,
    root_token: str,
    *,
    creds_path: str,
    role_name: str,
    token_ttl: str = "1h",  # noqa: S107 - a duration, not a password
    mount: str = "approle",
) -> tuple[str, str]:
    """An AppRole allowed to use ``creds_path`` only; returns ``(role_id, secret_id)``."""
    role_id, _ = vaultdev.setup_approle(
        addr, root_token, role_name=role_name, read_paths=[], token_ttl=token_ttl, mount=mount
    )
    client = hvac.Client(url=addr, token=root_token, timeout=10)
    try:
        policy = f"{mount}-{role_name}-db"
        client.sys.create_or_update_policy(name=policy, policy=reader_policy(creds_path))
        client.auth.approle.create_or_update_approle(
            role_name=role_name,
            token_policies=[f"{mount}-{role_name}", policy],
            token_ttl=token_ttl,
            mount_point=mount,
        )
        # A secret_id issued after the policy change, so the first login sees it.
        secret_id = client.auth.approle.generate_secret_id(role_name=role_name, mount_point=mount)
        return role_id, secret_id["data"]["secret_id"]
    finally:
        client.adapter.close()
