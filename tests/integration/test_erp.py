"""The ERP system API against real components: PostgreSQL with short-lived logins from
OpenBao's database secrets engine (``postgresql-database-plugin``), and SQLite for the
embedded demo.

Run with ``-p tests.fixtures.erp``.
"""

from __future__ import annotations

import logging
import pickle
import time
import traceback
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from interchange.dbsecrets import DatabaseCredentials
from interchange.errors import SourceConnectError
from interchange.settings import SourceConfig
from sandboxes.erp.schema import CUST_MASTER
from system_apis.erp.client import erp_engine
from system_apis.erp.streams import (
    STREAMS,
    InvalidCursor,
    diff_fields,
    fingerprint,
    parse_record,
    read_stream,
)

pytestmark = pytest.mark.postgres

TABLE_OF = {name: spec.table for name, spec in STREAMS.items()}


def _key(stream: str, record: dict) -> str:
    return "/".join(record[k] for k in STREAMS[stream].key)


def _config(db, role) -> SourceConfig:
    return SourceConfig(name="erp", base_url=db.url, vault_path=role.path)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _touch(admin: sa.Engine, cust_nos: list[str], email: str) -> None:
    with admin.begin() as conn:
        conn.execute(
            CUST_MASTER.update()
            .where(CUST_MASTER.c.CUST_NO.in_(cust_nos))
            .values(EMAIL=email, LAST_MOD=_now())
        )


def _role_exists(db, username: str) -> bool:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db.name}") as conn:
        row = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (username,))
        return row.fetchone()[0] == 1


def test_full_read_returns_every_row_exactly_once(erp_pg, erp_vault_role):
    role = erp_vault_role()
    with erp_engine(_config(erp_pg, role), secrets=role.secrets()) as engine:
        for stream, table in TABLE_OF.items():
            pages = list(read_stream(engine, stream, page_size=128))
            records = [r for p in pages for r in p.records]
            keys = [_key(stream, r) for r in records]
            assert len(keys) == len(set(keys)) == erp_pg.expected[table]
            assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
            # source-shaped: even the rows the canonical rules reject parse as they are
            models = [parse_record(stream, r) for r in records]
            assert pages[-1].high_water == max(m.LAST_MOD for m in models).replace(tzinfo=UTC)
            invalid = erp_pg.expected["invalid"][table]
            assert invalid and set(invalid) <= set(keys)
    assert models[0].source_id == "SKU-00001/WH1"


def test_resume_from_a_mid_way_cursor(erp_pg, erp_vault_role):
    role = erp_vault_role()
    with erp_engine(_config(erp_pg, role), secrets=role.secrets()) as engine:
        first = []
        reader = read_stream(engine, "stock", page_size=100)
        for _ in range(2):
            page = next(reader)
            first += [_key("stock", r) for r in page.records]
        reader.close()  # the "crash"
        rest = [
            _key("stock", r)
            for p in read_stream(engine, "stock", cursor=page.cursor, page_size=100)
            for r in p.records
        ]
        with pytest.raises(InvalidCursor):
            next(read_stream(engine, "customers", cursor=page.cursor))
    assert len(first) == 200
    assert not set(first) & set(rest)
    assert len(first) + len(rest) == erp_pg.expected["STOCK"]


def test_incremental_read_after_an_update(erp_pg, erp_vault_role):
    role = erp_vault_role()
    admin = sa.create_engine(erp_pg.admin_url)
    try:
        with erp_engine(_config(erp_pg, role), secrets=role.secrets()) as engine:
            pages = list(read_stream(engine, "customers", page_size=500))
            watermark = pages[-1].high_water
            _touch(admin, ["C000002", "C000300"], "changed@example.com")
            with admin.begin() as conn:
                conn.execute(
                    CUST_MASTER.insert().values(
                        CUST_NO="C900001",
                        NAME="New Person",
                        CREATED_DT="11/30/2026",
                        LAST_MOD=_now(),
                    )
                )
            lookback = timedelta(seconds=1)
            changed = [
                r
                for p in read_stream(
                    engine, "customers", mode="incremental", since=watermark - lookback
                )
                for r in p.records
            ]
    finally:
        admin.dispose()
    keys = {r["CUST_NO"] for r in changed}
    assert {"C000002", "C000300", "C900001"} <= keys
    assert len(changed) < 10  # the lookback window's few seeded rows, not the table
    assert {r["EMAIL"] for r in changed if r["CUST_NO"] in ("C000002", "C000300")} == {
        "changed@example.com"
    }


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_rows_updated_while_paging_are_not_lost(backend, request):
    if backend == "postgres":
        db = request.getfixturevalue("erp_pg")
        role = request.getfixturevalue("erp_vault_role")()
        config, secrets = _config(db, role), role.secrets()
    else:
        db = request.getfixturevalue("erp_sqlite")
        config, secrets = SourceConfig(base_url=db.url, vault_path="unused"), None
    admin = sa.create_engine(db.admin_url)
    seen: dict[str, str | None] = {}
    try:
        with erp_engine(config, secrets=secrets) as engine:
            for n, page in enumerate(read_stream(engine, "customers", page_size=50)):
                for r in page.records:
                    seen[r["CUST_NO"]] = r["EMAIL"]
                if n == 1:
                    # one already read, two not yet read (one of them far ahead)
                    _touch(admin, ["C000010", "C000150", "C000590"], "moved@example.com")
                    with admin.begin() as conn:  # and a row deleted behind the reader
                        conn.execute(CUST_MASTER.delete().where(CUST_MASTER.c.CUST_NO == "C000020"))
    finally:
        admin.dispose()
    assert len(seen) == db.expected["CUST_MASTER"]  # nothing lost (C000020 read before)
    assert seen["C000150"] == seen["C000590"] == seen["C000010"] == "moved@example.com"


def test_lease_is_renewed_during_a_long_read(erp_pg, erp_vault_role):
    role = erp_vault_role(default_ttl="2s", max_ttl="1m")
    secrets = role.secrets()
    started = time.monotonic()
    # A control lease that nobody renews: OpenBao revokes it at its 2 s TTL.
    control = DatabaseCredentials(url=erp_pg.url, path=role.path, secrets=secrets, auto_renew=False)
    control.acquire()
    with DatabaseCredentials(url=erp_pg.url, path=role.path, secrets=secrets) as creds:
        username = creds.username.get_secret_value()
        engine = creds.engine()
        count = 0
        for page in read_stream(engine, "customers", page_size=50):
            count += len(page.records)
            time.sleep(0.3)  # a slow consumer: ~3.6 s in all, well past the 2 s TTL
        assert count == erp_pg.expected["CUST_MASTER"]
        assert time.monotonic() - started > 3
        assert creds.renewals >= 2
        assert creds.state == "active"
        # Without renewal OpenBao revokes the 2 s lease and drops the login, as it did
        # for the control lease.
        assert not _role_exists(erp_pg, control.username.get_secret_value())
        assert _role_exists(erp_pg, username)
        control.close()  # revoking an expired lease only logs a warning
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == username
    assert creds.state == "revoked"
    assert not _role_exists(erp_pg, username)


def test_lease_is_revoked_at_the_end(erp_pg, erp_vault_role):
    role = erp_vault_role()
    with DatabaseCredentials(url=erp_pg.url, path=role.path, secrets=role.secrets()) as creds:
        username = creds.username.get_secret_value()
        password = creds.password.get_secret_value()
        with psycopg.connect(
            f"postgresql://127.0.0.1:5432/{erp_pg.name}", user=username, password=password
        ) as conn:
            assert conn.execute('SELECT count(*) FROM "STOCK"').fetchone()[0] == 600
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute('DELETE FROM "STOCK"')  # SELECT only
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"postgresql://127.0.0.1:5432/{erp_pg.name}", user=username, password=password
        )
    assert not _role_exists(erp_pg, username)


def test_credentials_never_in_logs_reprs_or_exceptions(erp_pg, erp_vault_role, caplog):
    caplog.set_level(logging.DEBUG)
    role = erp_vault_role()
    secrets = role.secrets()
    texts: list[str] = []
    with DatabaseCredentials(url=erp_pg.url, path=role.path, secrets=secrets) as creds:
        leaked = [creds.username.get_secret_value(), creds.password.get_secret_value()]
        engine = creds.engine()
        pages = list(read_stream(engine, "items", page_size=200))
        texts += [repr(creds), str(creds), repr(engine), str(engine.url), repr(pages[0])]
        texts += [repr(creds.username), repr(creds.password)]
        with pytest.raises(TypeError):
            pickle.dumps(creds)
        creds.revoke()  # the login is dropped under a running reader
        with pytest.raises(SourceConnectError) as info:
            list(read_stream(engine, "items"))
        texts += [str(info.value), "".join(traceback.format_exception(info.value))]
    texts.append(caplog.text)
    texts += [str(r.args) for r in caplog.records]
    assert "database/creds" in caplog.text  # paths and events are logged
    for text in texts:
        for secret in leaked:
            assert secret not in text


def test_sqlite_embedded_demo(erp_sqlite):
    config = SourceConfig(name="erp", base_url=erp_sqlite.url, vault_path="unused")
    with erp_engine(config) as engine:  # no Vault at all
        for stream, table in TABLE_OF.items():
            keys = [
                _key(stream, r)
                for p in read_stream(engine, stream, page_size=77)
                for r in p.records
            ]
            assert len(keys) == len(set(keys)) == erp_sqlite.expected[table]
        with engine.connect() as conn:  # a caller's connection works as well as an engine
            item = parse_record("items", next(read_stream(conn, "items")).records[0])
        assert str(item.PRICE).count(".") == 1 and len(item.CURRENCY) == 3

        before = fingerprint(next(read_stream(engine, "customers", page_size=50)).records)
        with engine.begin() as conn:
            conn.execute(sa.text('ALTER TABLE "CUST_MASTER" ADD COLUMN "LOYALTY_TIER" TEXT'))
            conn.execute(
                sa.text(
                    'UPDATE "CUST_MASTER" SET "LOYALTY_TIER" = \'gold\', "LAST_MOD" = :now '
                    "WHERE \"CUST_NO\" = 'C000001'"
                ),
                {"now": _now()},
            )
        changed = [
            r
            for p in read_stream(
                engine,
                "customers",
                mode="incremental",
                since=datetime.now(UTC) - timedelta(minutes=5),
            )
            for r in p.records
        ]
        assert [r["CUST_NO"] for r in changed] == ["C000001"]
        after = fingerprint(changed)
        assert after[0] != before[0]
        assert diff_fields(before[1], after[1])["added"] == {"LOYALTY_TIER": "string"}
        assert parse_record("customers", changed[0]).LOYALTY_TIER == "gold"  # kept, not lost


def test_lease_capped_by_max_ttl_expires_with_a_warning(erp_pg, erp_vault_role, caplog):
    caplog.set_level(logging.INFO, logger="interchange.dbsecrets")
    role = erp_vault_role(default_ttl="2s", max_ttl="2s")
    with DatabaseCredentials(url=erp_pg.url, path=role.path, secrets=role.secrets()) as creds:
        deadline = time.monotonic() + 5
        while creds.state == "active" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert creds.state == "expired"
    assert "reached its max TTL" in caplog.text
    assert "expired" in caplog.text


def test_plain_hvac_client_and_unknown_role(erp_pg, erp_vault_role, vault):
    import hvac

    from interchange.errors import ConfigError, SecretNotFound, SecretsError

    role = erp_vault_role()
    client = hvac.Client(url=vault.addr, token=vault.root_token, timeout=10)
    try:
        with DatabaseCredentials(url=erp_pg.url, path=role.path, client=client) as creds:
            with creds.engine().connect() as conn:
                assert conn.execute(sa.text('SELECT count(*) FROM "ITEM_MASTER"')).scalar() == 300
        with pytest.raises(SecretsError):
            creds.engine()  # no longer active
        with pytest.raises((SecretNotFound, SecretsError)) as info:
            DatabaseCredentials(url=erp_pg.url, path="database/creds/nope", client=client).acquire()
        assert "database/creds/nope" in str(info.value)
        with pytest.raises(ConfigError):
            DatabaseCredentials(url=erp_pg.url, path="secret/data/erp", client=client)
    finally:
        client.adapter.close()
