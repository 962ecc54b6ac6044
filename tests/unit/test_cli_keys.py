"""``keys create | list | revoke`` through typer's CliRunner, on a SQLite file per test."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from experience_apis.cli import app
from experience_apis.http.keys import ApiKey, verify_key
from interchange.settings import reset_settings
from interchange.store import get_engine, session_scope

KEY_RE = re.compile(r"ick_[0-9a-f]{12}_[A-Za-z0-9]{40}")
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fresh' / 'hub.db'}"  # directory does not exist yet
    yield url
    get_engine(url).dispose()


def cli(*args: str, db: str | None = None):
    argv = ["keys", *args] + (["--database-url", db] if db else [])
    return runner.invoke(app, argv)


def keys_in(db: str) -> list[ApiKey]:
    with session_scope(db) as s:
        return list(s.exec(select(ApiKey).order_by(ApiKey.id)).all())


def test_create_prints_the_key_once_and_stores_only_its_hash(db: str) -> None:
    result = cli("create", "--name", "crm", "--scopes", "customers:read,payments:read", db=db)
    assert result.exit_code == 0, result.output
    keys = KEY_RE.findall(result.output)
    assert len(keys) == 1
    plaintext = keys[0]
    assert plaintext in result.stdout
    assert "shown only once" in result.output

    [row] = keys_in(db)
    assert row.name == "crm"
    assert row.scopes == ["customers:read", "payments:read"]
    assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.split("_")[1] == row.prefix
    secret = plaintext.rsplit("_", 1)[1]
    for value in (row.name, row.prefix, row.key_hash, *row.scopes):
        assert secret not in value
    # Nowhere in the database files either (WAL included).
    db_dir = Path(db.removeprefix("sqlite:///")).parent
    for f in db_dir.iterdir():
        assert secret.encode() not in f.read_bytes(), f

    with session_scope(db) as s:
        assert verify_key(s, plaintext) is not None


def test_create_json_for_scripts(db: str) -> None:
    result = cli("create", "--name", "etl", "--scopes", "payments:read", "--json", db=db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "etl" and data["scopes"] == ["payments:read"]
    assert KEY_RE.fullmatch(data["key"])
    with session_scope(db) as s:
        assert verify_key(s, data["key"]).name == "etl"


def test_list_shows_keys_but_never_the_secret(db: str) -> None:
    made = json.loads(
        cli("create", "--name", "crm", "--scopes", "customers:read", "--json", db=db).stdout
    )
    cli("create", "--name", "bi", "--scopes", "customers:read,payments:read", db=db)
    cli("revoke", "--name", "bi", db=db)

    table = cli("list", db=db)
    assert table.exit_code == 0, table.output
    assert "crm" in table.stdout and "bi" in table.stdout
    assert "revoked" in table.stdout and "active" in table.stdout
    secret = made["key"].rsplit("_", 1)[1]
    assert secret not in table.output and not KEY_RE.search(table.output)

    listed = json.loads(cli("list", "--json", db=db).stdout)
    assert [k["name"] for k in listed] == ["crm", "bi"]
    assert listed[0]["revoked_at"] is None and listed[1]["revoked_at"].endswith("Z")
    assert all("key" not in k and "key_hash" not in k for k in listed)

    active = json.loads(cli("list", "--active", "--json", db=db).stdout)
    assert [k["name"] for k in active] == ["crm"]


def test_list_empty_database(db: str) -> None:
    result = cli("list", db=db)
    assert result.exit_code == 0
    assert "No API keys" in result.stdout


def test_revoke_disables_the_key(db: str) -> None:
    key = json.loads(
        cli("create", "--name", "crm", "--scopes", "customers:read", "--json", db=db).stdout
    )["key"]
    result = cli("revoke", "--name", "crm", db=db)
    assert result.exit_code == 0, result.output
    assert "Revoked" in result.stdout
    with session_scope(db) as s:
        assert verify_key(s, key) is None
    [row] = keys_in(db)
    first = row.revoked_at
    assert first is not None
    # Revoking again is harmless and keeps the original time.
    assert cli("revoke", "--name", "crm", db=db).exit_code == 0
    assert keys_in(db)[0].revoked_at == first


def test_revoke_unknown_name_fails(db: str) -> None:
    result = cli("revoke", "--name", "ghost", db=db)
    assert result.exit_code == 1
    assert "no API key named 'ghost'" in result.stderr


@pytest.mark.parametrize("scopes", ["customers:write", "customers:read,admin", ",", ""])
def test_bad_scope_is_a_usage_error(db: str, scopes: str) -> None:
    result = cli("create", "--name", "x", "--scopes", scopes, db=db)
    assert result.exit_code == 2
    flat = " ".join(result.output.replace("│", " ").split())
    assert "--scopes" in flat
    assert "customers:read" in flat and "payments:read" in flat  # names the valid ones
    assert not Path(db.removeprefix("sqlite:///")).exists() or keys_in(db) == []


def test_duplicate_name_fails_clearly(db: str) -> None:
    assert cli("create", "--name", "crm", "--scopes", "customers:read", db=db).exit_code == 0
    result = cli("create", "--name", "crm", "--scopes", "payments:read", db=db)
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert len(keys_in(db)) == 1


def test_uses_configured_database_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTERCHANGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("INTERCHANGE_HOME", str(tmp_path / "home"))
    reset_settings()
    try:
        result = cli("create", "--name", "crm", "--scopes", "customers:read")
        assert result.exit_code == 0, result.output
        url = f"sqlite:///{(tmp_path / 'home' / 'hub.db').resolve()}"
        assert [k.name for k in keys_in(url)] == ["crm"]
        get_engine(url).dispose()
    finally:
        reset_settings()
