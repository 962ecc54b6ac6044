"""sync-stripe end to end on the real stack: OpenBao, localstripe, Prefect server, hub.

Every test seeds a fresh sandbox with the demo data set and checks exact counts: what
the data set says a careful pipeline must load, quarantine and skip.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import hvac
import pytest
from sqlmodel import func, select

from flows.replay_quarantine import ReplayParams, replay_quarantine
from flows.sync_stripe import SyncStripeParams, sync_stripe
from interchange import vaultdev
from interchange.secrets import get_secrets, reset_secrets
from interchange.settings import reset_settings
from interchange.store import dispose_engines, session_scope
from process_apis.canonical.models import Customer, Payment, QuarantineRecord
from sandboxes.stripe_seed import demo_dataset, seed
from tests.fixtures.common import wait_until
from tests.support.chaos import Fault

ROOT = Path(__file__).resolve().parents[2]
VAULT_PATH = "interchange/sources/stripe"
SMALL = dict(mode="full", page_size=10, pages_per_batch=2)


def write_sources(path: Path, base_url: str, **overrides) -> None:
    options = {"rate_limit_per_second": 500, "burst": 50, "max_retries": 6,
               "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5,
               "retry_after_cap_seconds": 2, **overrides}
    body = "\n".join(f"    {k}: {v}" for k, v in options.items())
    path.write_text(f"sources:\n  stripe:\n    base_url: {base_url}\n"
                    f"    vault_path: {VAULT_PATH}\n{body}\n")


@pytest.fixture
def stack(vault, prefect_server, fresh_localstripe, tmp_path, monkeypatch, request):
    """Environment for one sync: Vault (AppRole), a seeded sandbox, a fresh hub."""
    key = "sk_test_" + secrets.token_hex(16)
    vaultdev.seed(vault.addr, vault.root_token, {VAULT_PATH: {"api_key": key}})
    role_id, secret_id = vaultdev.setup_approle(
        vault.addr, vault.root_token, role_name=f"sync-{secrets.token_hex(4)}",
        read_paths=["interchange/*"],
    )
    dataset = demo_dataset(customers=60, seed=5)
    seeded = seed(fresh_localstripe.url, key, dataset)
    sources = tmp_path / "sources.yaml"
    write_sources(sources, fresh_localstripe.url)
    db_url = getattr(request, "param", None) or f"sqlite:///{tmp_path / 'hub.db'}"
    if db_url == "postgres":
        db_url = request.getfixturevalue("postgres_url")
    env = {
        "INTERCHANGE_VAULT_ADDR": vault.addr,
        "INTERCHANGE_VAULT_ROLE_ID": role_id,
        "INTERCHANGE_VAULT_SECRET_ID": secret_id,
        "INTERCHANGE_SOURCES_FILE": str(sources),
        "INTERCHANGE_DATABASE_URL": db_url,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("INTERCHANGE_VAULT_TOKEN", raising=False)
    reset_settings()
    reset_secrets()
    yield SimpleNamespace(key=key, url=fresh_localstripe.url, sources=sources, db_url=db_url,
                          dataset=dataset, seeded=seeded, env=env, role_id=role_id,
                          secret_id=secret_id, expected=dataset["expected"])
    reset_settings()
    reset_secrets()
    dispose_engines()


def expected_counts(s) -> dict[str, int]:
    exp = s.expected
    return {
        "customers": exp["customers"] - len(exp["invalid_customers"]),
        "quarantined": len(exp["invalid_customers"]),
        "charges": s.seeded["counts"]["charges"],
        "refunds": exp["refunds"],
    }


def hub_counts(db_url: str) -> dict[str, int]:
    with session_scope(db_url) as session:
        def count(model, *where):
            return session.exec(select(func.count()).select_from(model).where(*where)).one()

        return {
            "customers": count(Customer),
            "quarantined": count(QuarantineRecord, QuarantineRecord.status == "open"),
            "charges": count(Payment, Payment.kind == "payment"),
            "refunds": count(Payment, Payment.kind == "refund"),
        }


def test_full_then_incremental_sync_counts_exactly(stack):
    want = expected_counts(stack)
    summary = sync_stripe(SyncStripeParams(**SMALL))
    assert hub_counts(stack.db_url) == want
    assert summary["customers"]["read"] == stack.expected["customers"]
    assert summary["customers"]["quarantined"] == want["quarantined"]
    assert summary["payments"]["inserted"] == want["charges"]
    assert summary["refunds"]["inserted"] == want["refunds"]

    # Every invalid customer is quarantined with the rules the data set says it breaks.
    refs = {v: k for k, v in stack.seeded["customers"].items()}
    with session_scope(stack.db_url) as session:
        rows = session.exec(select(QuarantineRecord)).all()
        got = {refs[r.source_id]: sorted(f["rule"] for f in r.failed_rules) for r in rows}
        assert all(r.raw["id"] == r.source_id for r in rows)
        payments = session.exec(select(Payment).where(Payment.kind == "payment")).all()
        linked = sum(1 for p in payments if p.customer_id)
    assert got == {ref: sorted(rules) for ref, rules in stack.expected["invalid_customers"].items()}
    invalid_ids = {stack.seeded["customers"][ref] for ref in got}
    assert linked == sum(1 for p in payments if p.customer_source_id not in invalid_ids)

    # Nothing changed: an incremental run writes nothing and duplicates nothing.
    again = sync_stripe(SyncStripeParams(mode="incremental"))
    assert all(again[s]["inserted"] == 0 and again[s]["updated"] == 0
               for s in ("customers", "payments", "refunds"))
    assert again["customers"]["mode"] == "incremental"
    assert hub_counts(stack.db_url) == want

    # A changed and a new customer: the incremental run picks up exactly those.
    headers = {"Authorization": f"Bearer {stack.key}"}
    some_id = next(i for i in stack.seeded["customers"].values() if i not in invalid_ids)
    httpx.post(f"{stack.url}/v1/customers/{some_id}", headers=headers,
               data={"email": " New.Address@Example.ORG "}).raise_for_status()
    httpx.post(f"{stack.url}/v1/customers", headers=headers,
               data={"email": "fresh@example.com", "name": "Fresh"}).raise_for_status()
    delta = sync_stripe(SyncStripeParams(mode="incremental"))
    assert (delta["customers"]["inserted"], delta["customers"]["updated"]) == (1, 1)
    with session_scope(stack.db_url) as session:
        changed = session.exec(select(Customer).where(Customer.source_id == some_id)).one()
    assert changed.email == "new.address@example.org"


def test_run_summary_artifact(stack, prefect_server):
    sync_stripe(SyncStripeParams(**SMALL))
    response = httpx.post(f"{prefect_server.api_url}/artifacts/filter",
                          json={"artifacts": {"key": {"any_": ["sync-stripe-summary"]}},
                                "sort": "CREATED_DESC", "limit": 1})
    response.raise_for_status()
    markdown = response.json()[0]["data"]
    assert "| customers | full | 60 |" in markdown and "quarantined" in markdown


def test_faults_from_the_source_still_give_exact_counts(stack, chaos_proxy):
    proxy = chaos_proxy(stack.url)
    write_sources(stack.sources, proxy.url, max_retries=8)
    reset_settings()
    # Seven faults in a row on the first request: every one absorbed by HTTP retries.
    proxy.plan([Fault.status(429, retry_after=1), Fault.status(500), Fault.drop(),
                Fault.status(502), Fault.status(503), Fault.drop(), Fault.status(429)])
    summary = sync_stripe(SyncStripeParams(**SMALL))
    assert hub_counts(stack.db_url) == expected_counts(stack)
    retries = sum(s["http"]["retries"] for s in summary.values() if isinstance(s, dict))
    assert retries == 7
    assert proxy.faults_injected == {"status:429": 2, "status:500": 1, "status:502": 1,
                                     "status:503": 1, "drop": 2}


def test_faults_beyond_http_retries_are_retried_by_the_task(stack, chaos_proxy):
    proxy = chaos_proxy(stack.url)
    write_sources(stack.sources, proxy.url, max_retries=1)
    reset_settings()
    proxy.plan([Fault.status(503), Fault.drop(), Fault.status(500)])  # 3 > 1 + 1 attempts
    sync_stripe(SyncStripeParams(**SMALL))
    assert hub_counts(stack.db_url) == expected_counts(stack)


def test_vault_token_revoked_mid_run_logs_in_again(stack, vault, chaos_proxy, monkeypatch):
    monkeypatch.setenv("INTERCHANGE_VAULT_CACHE_TTL", "0")  # read Vault on every request
    reset_settings()
    reset_secrets()
    proxy = chaos_proxy(stack.url)
    write_sources(stack.sources, proxy.url)
    root = hvac.Client(url=vault.addr, token=vault.root_token)
    revoked = []

    def revoke() -> None:
        accessor = get_secrets().token_accessor
        root.auth.token.revoke_accessor(accessor)
        revoked.append(accessor)

    proxy.on_request(4, revoke)
    sync_stripe(SyncStripeParams(**SMALL))
    assert revoked and get_secrets().token_accessor != revoked[0]
    assert get_secrets().logins >= 2
    assert hub_counts(stack.db_url) == expected_counts(stack)


def test_killed_run_resumes_without_duplicates_or_loss(stack, prefect_server, tmp_path):
    # A slow source (5 requests/s) so the run is still going when it is killed.
    write_sources(stack.sources, stack.url, rate_limit_per_second=5, burst=1)
    env = {**os.environ, **stack.env, "PREFECT_API_URL": prefect_server.api_url}
    code = ("from flows.sync_stripe import SyncStripeParams, sync_stripe; "
            "sync_stripe(SyncStripeParams(mode='full', page_size=5, pages_per_batch=1))")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def checkpoint_pages() -> int:
        import sqlite3

        db = stack.db_url.removeprefix("sqlite:///")
        if not Path(db).exists():
            return 0
        conn = sqlite3.connect(db)
        try:
            row = conn.execute("select pages from checkpoints where stream='customers'").fetchone()
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()
        return row[0] if row else 0

    try:
        wait_until(lambda: checkpoint_pages() >= 3, timeout=60, interval=0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    loaded_before = hub_counts(stack.db_url)["customers"]
    assert 0 < loaded_before < expected_counts(stack)["customers"]

    write_sources(stack.sources, stack.url)
    reset_settings()
    summary = sync_stripe(SyncStripeParams(mode="full", page_size=5, pages_per_batch=4))
    assert summary["customers"]["resumed"] is True
    assert summary["customers"]["read"] < stack.expected["customers"]  # only the rest
    assert hub_counts(stack.db_url) == expected_counts(stack)


def test_schema_drift_is_reported_and_emitted_as_an_event(stack, prefect_server):
    from process_apis.canonical.models import SchemaFingerprint

    sync_stripe(SyncStripeParams(**SMALL))
    # Pretend the source used to send a field it no longer sends and lacked one it sends.
    with session_scope(stack.db_url) as session:
        row = session.get(SchemaFingerprint, ("stripe", "customers"))
        fields = dict(row.fields)
        fields.pop("email")
        fields["fax"] = "string"
        row.fields, row.fingerprint = fields, "old"
        session.add(row)
    summary = sync_stripe(SyncStripeParams(**SMALL))
    assert summary["customers"]["drift"] == {"added": ["email"], "missing": ["fax"],
                                             "retyped": []}
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)

    def drift_events():
        body = {"filter": {"event": {"name": ["interchange.schema.drift"]}}, "limit": 10}
        return httpx.post(f"{prefect_server.api_url}/events/filter", json=body).json()["events"]

    wait_until(lambda: drift_events(), timeout=20)
    event = drift_events()[0]
    assert event["resource"]["prefect.resource.id"] == "interchange.source.stripe.customers"
    assert event["payload"]["missing"] == ["fax"]


def test_a_dead_checkpoint_cursor_restarts_the_stream(stack):
    from interchange.store import migrate
    from process_apis import hub

    migrate(stack.db_url)
    with session_scope(stack.db_url) as session:
        hub.advance_checkpoint(session, "stripe", "customers", "full", cursor="not-a-cursor",
                               high_water=None, pages=3, records=30)
    summary = sync_stripe(SyncStripeParams(**SMALL))
    assert summary["customers"]["resumed"] is True
    assert summary["customers"]["read"] == stack.expected["customers"]  # read from the start
    assert hub_counts(stack.db_url) == expected_counts(stack)


def test_quarantined_record_fixed_at_source_is_replayed(stack):
    sync_stripe(SyncStripeParams(**SMALL))
    with session_scope(stack.db_url) as session:
        row = session.exec(select(QuarantineRecord)).first()
    headers = {"Authorization": f"Bearer {stack.key}"}
    httpx.post(f"{stack.url}/v1/customers/{row.source_id}", headers=headers,
               data={"email": "fixed@example.com", "phone": "+14155550100"}).raise_for_status()
    result = replay_quarantine(ReplayParams(ids=[row.id]))
    assert result["replayed"] == 1 and result["still_failing"] == 0
    with session_scope(stack.db_url) as session:
        assert session.get(QuarantineRecord, row.id).status == "replayed"
        landed = session.exec(select(Customer).where(Customer.source_id == row.source_id)).one()
    assert landed.email == "fixed@example.com"
    assert hub_counts(stack.db_url)["customers"] == expected_counts(stack)["customers"] + 1


@pytest.mark.postgres
@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_sync_into_postgres(stack):
    sync_stripe(SyncStripeParams(**SMALL))
    sync_stripe(SyncStripeParams(**SMALL))  # idempotent on PostgreSQL too
    assert hub_counts(stack.db_url) == expected_counts(stack)


def test_no_secret_value_is_stored_anywhere(stack, prefect_server, caplog):
    caplog.set_level("DEBUG")
    sync_stripe(SyncStripeParams(**SMALL))
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    needles = [stack.key, stack.secret_id]
    places: list[Path] = [p for p in Path(prefect_server.home).rglob("*") if p.is_file()]
    local_home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    places += [p for p in local_home.rglob("*") if p.is_file() and "storage" in p.parts]
    hub_db = Path(stack.db_url.removeprefix("sqlite:///"))
    places += [p for p in hub_db.parent.glob(hub_db.name + "*")]
    assert places, "nothing to scan"
    for path in places:
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"secret found in {path}"
    for needle in needles:
        assert needle not in caplog.text
    api = prefect_server.api_url
    for endpoint in ("flow_runs/filter", "artifacts/filter", "logs/filter", "task_runs/filter"):
        body = httpx.post(f"{api}/{endpoint}", json={}).text
        for needle in needles:
            assert needle not in body, f"secret in {endpoint}"
