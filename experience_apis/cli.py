"""Operator commands for the experience API: ``keys create | list | revoke``.

``app`` holds a ``keys`` group (``interchange keys ...`` once mounted by the
platform CLI); ``keys_app`` is the group itself, for mounting under another name.
Every command works on the configured hub database (``INTERCHANGE_DATABASE_URL``,
default SQLite under ``INTERCHANGE_HOME``) or ``--database-url``, and migrates it
first, so it works on a fresh database.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from experience_apis.http.keys import (
    ApiKey,
    ApiKeyError,
    Scope,
    UnknownScope,
    create_key,
    list_keys,
    parse_scopes,
    revoke_key,
)
from interchange.errors import InterchangeError
from interchange.store import migrate, session_scope

app = typer.Typer(help="Experience API administration.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Issue, list and revoke API keys for the experience API.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

_SCOPES_HELP = f"Comma-separated scopes: {', '.join(s.value for s in Scope)}."

DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Hub database URL (default: INTERCHANGE_DATABASE_URL or SQLite under "
        "INTERCHANGE_HOME).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _database(url: str | None) -> str:
    try:
        if url is None:
            from interchange.settings import get_settings

            url = get_settings().resolved_database_url()
        migrate(url)
    except InterchangeError as exc:
        raise _fail(str(exc)) from exc
    return url


def _check_scopes(value: str) -> list[str]:
    # An option callback: a bad scope is a usage error (exit 2) naming --scopes.
    try:
        return parse_scopes(value)
    except UnknownScope as exc:
        raise typer.BadParameter(str(exc)) from exc


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _as_dict(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "created_at": _when(key.created_at),
        "last_used_at": _when(key.last_used_at),
        "revoked_at": _when(key.revoked_at),
    }


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Unique name, e.g. the consumer's.")],
    scopes: Annotated[str, typer.Option("--scopes", help=_SCOPES_HELP, callback=_check_scopes)],
    as_json: JsonOpt = False,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Issue a key and print it. The key is shown only this once."""
    url = _database(database_url)
    try:
        with session_scope(url) as session:
            key, plaintext = create_key(session, name=name, scopes=scopes)
            info = _as_dict(key)
    except ApiKeyError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps({"name": info["name"], "key": plaintext, "scopes": info["scopes"]}))
        return
    typer.echo(
        f"Created API key {name!r} (prefix {info['prefix']}, scopes {', '.join(info['scopes'])}):"  # type: ignore[arg-type]
    )
    typer.echo(f"\n    {plaintext}\n")
    typer.secho(
        "Copy it now: it is shown only once and cannot be recovered "
        "(only its hash is stored). If it is lost, revoke it and create a new one.",
        fg=typer.colors.YELLOW,
        err=True,
    )


@keys_app.command("list")
def list_(
    include_revoked: Annotated[
        bool, typer.Option("--all/--active", help="Include revoked keys.")
    ] = True,
    as_json: JsonOpt = False,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """List keys (names, prefixes, scopes, last use). Never shows the keys themselves."""
    url = _database(database_url)
    with session_scope(url) as session:
        keys = list_keys(session, include_revoked=include_revoked)
    if as_json:
        typer.echo(json.dumps([_as_dict(k) for k in keys], indent=2))
        return
    if not keys:
        typer.echo("No API keys. Create one with: keys create --name NAME --scopes SCOPES")
        return

    def minute(value: dt.datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "never"

    table = Table("name", "prefix", "scopes", "created (UTC)", "last used", "status")
    for k in keys:
        table.add_row(
            k.name,
            k.prefix,
            "\n".join(k.scopes),
            minute(k.created_at),
            minute(k.last_used_at),
            "revoked" if k.revoked_at else "active",
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Option("--name", help="Name of the key to revoke.")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on. Cannot be undone."""
    url = _database(database_url)
    try:
        with session_scope(url) as session:
            key = revoke_key(session, name=name)
            info = _as_dict(key)
    except ApiKeyError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Revoked API key {name!r} (prefix {info['prefix']}) at {info['revoked_at']}.")
