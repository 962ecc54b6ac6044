"""sync-crm and sync-erp end to end: sandbox -> system API -> rules -> hub, on Prefect."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest
from sqlmodel import select

from flows.sync_crm import SyncCrmParams, sync_crm
from flows.sync_erp import SyncErpParams, sync_erp
from interchange import vaultdev
from interchange.store import session_scope
from process_apis.canonical.models import Company, Customer, InventoryLevel, Product
from process_apis.canonical.models import QuarantineRecord as Q
from tests.fixtures.databases import count_rows


@pytest.fixture
def hub(sync_hub):
    return sync_hub


count = count_rows


def rules_of(url, source):
    with session_scope(url) as s:
        rows = s.exec(select(Q).where(Q.source == source)).all()
        return Counter(f["rule"] for r in rows for f in r.failed_rules), len(rows)


def test_sync_crm_lands_every_contact_or_quarantines_it(hub, tmp_path, vault, monkeypatch,
                                                        fresh_hubspot_sandbox):
    sandbox = fresh_hubspot_sandbox
    path = f"interchange/sources/hubspot-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": sandbox.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  hubspot:\n    base_url: {sandbox.url}\n    vault_path: {path}\n"
        "    rate_limit_per_second: 200\n    burst: 50\n    page_size: 100\n")
    state = sandbox.state()
    expected = state["expected"]

    summary = sync_crm(SyncCrmParams(mode="full"))
    contacts, companies = summary["contacts"], summary["companies"]
    assert contacts["read"] == expected["contacts"]
    assert contacts["inserted"] + contacts["quarantined"] == expected["contacts"]
    assert count(hub, Customer) == contacts["inserted"]
    assert count(hub, Company) + companies["quarantined"] == expected["companies"]
    rules, rows = rules_of(hub, "hubspot")
    assert rows == contacts["quarantined"] + companies["quarantined"]
    assert rules["email.valid"] == expected["invalid_emails"]
    assert rules["phone.e164"] == expected["invalid_phones"]

    again = sync_crm(SyncCrmParams(mode="incremental"))
    assert again["contacts"]["inserted"] == again["contacts"]["updated"] == 0
    assert count(hub, Customer) == contacts["inserted"]


def test_sync_erp_embedded_sqlite_counts_exactly(hub, tmp_path):
    from sandboxes.erp.seed import create_and_seed

    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    expected = create_and_seed(erp_url, 120)
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  erp:\n    base_url: {erp_url}\n    vault_path: unused\n"
        "    page_size: 50\n")
    summary = sync_erp(SyncErpParams(mode="full"))
    invalid = expected["invalid"]
    assert summary["customers"]["read"] == expected["CUST_MASTER"]
    assert count(hub, Customer) == expected["CUST_MASTER"] - len(invalid["CUST_MASTER"])
    assert count(hub, Product) == expected["ITEM_MASTER"] - len(invalid["ITEM_MASTER"])
    assert count(hub, InventoryLevel) == expected["STOCK"] - len(invalid["STOCK"])
    with session_scope(hub) as s:
        got = {(r.entity, r.source_id): sorted(f["rule"] for f in r.failed_rules)
               for r in s.exec(select(Q)).all()}
    want = {(entity, key): sorted(rules)
            for entity, table in (("customer", "CUST_MASTER"), ("product", "ITEM_MASTER"),
                                  ("inventory_level", "STOCK"))
            for key, rules in invalid[table].items()}
    assert got == want
    again = sync_erp(SyncErpParams(mode="incremental"))
    assert all(again[s]["inserted"] == again[s]["updated"] == 0
               for s in ("customers", "items", "stock"))
