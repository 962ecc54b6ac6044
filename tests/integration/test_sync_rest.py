"""Declarative REST sources end to end: YAML only -> sync-rest -> rules -> hub, on Prefect.

* The example shipped in the repository's sources.yaml (``storefront``: API key header,
  Link-header paging, incremental by ``updated_at``), read unchanged against the
  Shopify sandbox, lands exactly what the hand-written Shopify mapper would.
* A CRM described in a few lines of YAML (bearer token, JSON-cursor paging) against the
  HubSpot sandbox quarantines exactly the records the sandbox says are broken.
"""

from __future__ import annotations

import secrets
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from flows.sync_rest import SyncRestParams, sync_rest
from interchange import vaultdev
from interchange.errors import ConfigError
from interchange.store import session_scope
from process_apis import pipeline
from process_apis.canonical.models import Company, Customer
from process_apis.canonical.models import QuarantineRecord as Q
from sandboxes.shopify.seed import generate
from tests.fixtures.databases import count_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(sync_hub):
    return sync_hub


def quarantine(url: str, source: str) -> dict[str, list[str]]:
    with session_scope(url) as s:
        return {r.source_id: sorted(f["rule"] for f in r.failed_rules)
                for r in s.exec(select(Q).where(Q.source == source)).all()}


def written(summary: dict, stream: str) -> int:
    return summary[stream]["inserted"] + summary[stream]["updated"]


def test_shipped_example_syncs_the_shop_like_the_handwritten_mapper(
        hub, tmp_path, vault, monkeypatch, fresh_shopify):  # fmt: skip
    shop = fresh_shopify
    shutil.copy(REPO / "sources.yaml", tmp_path / "sources.yaml")  # the file as shipped
    monkeypatch.setenv("INTERCHANGE_SHOPIFY_URL", shop.url)
    vaultdev.seed(vault.addr, vault.root_token,
                  {"interchange/sources/shopify": {"access_token": shop.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    shop.config(leak_rate=1000)  # the example paces itself at 2 requests/s otherwise
    customers = [body for resource, body in generate(shop.records) if resource == "customers"]
    # The oracle: what the hand-written Shopify mapper rejects from the same records.
    oracle = pipeline.process_batch("shopify", "customers", customers)
    want = {r.source_id: sorted(f["rule"] for f in r.failed_rules) for r in oracle.rejected}
    assert want, "the seed should hold some broken customers"

    summary = sync_rest(SyncRestParams(source="storefront", mode="full"))
    got = summary["customers"]
    assert got["read"] == len(customers)
    assert got["inserted"] == count_rows(hub, Customer) == len(customers) - len(want)
    assert quarantine(hub, "storefront") == want
    with session_scope(hub) as s:
        landed = {c.source_id: c for c in s.exec(select(Customer)).all()}
    by_hand = {r.source_id: r for r in oracle.records}
    assert {k: (v.email, v.phone, v.country, v.name) for k, v in landed.items()} == {
        k: (v.email, v.phone, v.country, v.name) for k, v in by_hand.items()}

    again = sync_rest(SyncRestParams(source="storefront", mode="incremental"))
    assert written(again, "customers") == 0
    good = [c["id"] for c in customers if str(c["id"]) not in want][:2]
    assert shop.touch("customers", good, {"first_name": "Renamed"}) == 2
    third = sync_rest(SyncRestParams(source="storefront", mode="incremental"))
    assert third["customers"]["updated"] == 2 and third["customers"]["inserted"] == 0
    assert third["customers"]["read"] < len(customers)  # only what changed, by updated_at
    with session_scope(hub) as s:
        names = [c.name for c in s.exec(select(Customer).where(
            Customer.source_id.in_([str(i) for i in good]))).all()]
    assert len(names) == 2 and all(n.startswith("Renamed") for n in names)


CRM_YAML = """\
sources:
  crm_lite:
    kind: rest
    base_url: {url}
    vault_path: {path}
    auth: {{kind: bearer, key: access_token}}
    rate_limit_per_second: 200
    burst: 50
    streams:
      people:
        path: crm/v3/objects/contacts
        records: results
        params: {{properties: "email,firstname,lastname,phone,mobilephone,country"}}
        paginator: {{type: json_cursor, cursor_path: paging.next.after, param: after}}
        entity: customer
        fields:
          email: properties.email
          phone: [properties.phone, properties.mobilephone]
          first_name: properties.firstname
          last_name: properties.lastname
          country: properties.country
          created_at: createdAt
          deleted: archived
      accounts:
        path: crm/v3/objects/companies
        records: results
        params: {{properties: "name,domain,country,industry"}}
        paginator: {{type: json_cursor, cursor_path: paging.next.after, param: after}}
        entity: company
        required: [name]
        fields: {{name: properties.name, domain: properties.domain,
                  country: properties.country, industry: properties.industry,
                  updated_at: updatedAt}}
"""


def test_a_crm_described_in_yaml_quarantines_exactly_the_broken_contacts(
        hub, tmp_path, vault, monkeypatch, fresh_hubspot_sandbox):  # fmt: skip
    sandbox = fresh_hubspot_sandbox
    path = f"interchange/sources/crm-lite-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": sandbox.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    (tmp_path / "sources.yaml").write_text(CRM_YAML.format(url=sandbox.url, path=path))
    expected = sandbox.state()["expected"]

    summary = sync_rest(SyncRestParams(source="crm_lite", mode="full"))
    people, accounts = summary["people"], summary["accounts"]
    assert people["read"] == expected["contacts"]
    assert people["inserted"] + people["quarantined"] == expected["contacts"]
    assert count_rows(hub, Customer) == people["inserted"]
    assert accounts["read"] == expected["companies"]
    assert count_rows(hub, Company) + accounts["quarantined"] == expected["companies"]
    rules = Counter(rule for rs in quarantine(hub, "crm_lite").values() for rule in rs)
    assert rules["email.valid"] == expected["invalid_emails"]
    assert rules["phone.e164"] == expected["invalid_phones"]
    # No incremental block: an incremental run re-reads, and writes nothing new.
    again = sync_rest(SyncRestParams(source="crm_lite", mode="incremental",
                                     streams=["people"]))  # fmt: skip
    assert list(again) == ["people", "duration_seconds"]
    assert written(again, "people") == 0

    with pytest.raises(ConfigError, match="no stream"):
        sync_rest(SyncRestParams(source="crm_lite", streams=["deals"]))
    with pytest.raises(ConfigError, match="not configured"):
        sync_rest(SyncRestParams(source="nope"))
