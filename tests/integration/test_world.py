"""One seeded world across the four sandboxes, synced and made sense of.

The same people, orders, payments and products are loaded into Stripe, HubSpot,
Shopify and the ERP, each in its own formats and with the disagreements of real
systems (stale CRM phones, guest checkouts without e-mail, charges without their
order reference, a charge that does not match its order, stock that drifted). After
the four syncs, identity resolution must find exactly the world's people, each person
in all four systems as one golden customer.
"""

from __future__ import annotations

import secrets
from collections import Counter

import pytest
from sqlmodel import select

from flows.sync_commerce import SyncCommerceParams, sync_commerce
from flows.sync_crm import SyncCrmParams, sync_crm
from flows.sync_erp import SyncErpParams, sync_erp
from flows.sync_stripe import SyncStripeParams, sync_stripe
from interchange import vaultdev
from interchange.store import session_scope
from process_apis import identity
from process_apis.canonical.models import Customer, CustomerLink, GoldenCustomer, Order, Payment
from process_apis.canonical.models import QuarantineRecord as Q
from sandboxes.world import World, seed_world
from tests.fixtures.databases import count_rows

PEOPLE = 40


@pytest.fixture
def world_hub(sync_hub, tmp_path, vault, monkeypatch, fresh_localstripe, fresh_hubspot_sandbox,
              fresh_shopify):  # fmt: skip
    world = World(PEOPLE, seed=11)
    stripe_key = "sk_test_" + secrets.token_hex(16)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    seeded = seed_world(world, stripe_url=fresh_localstripe.url, stripe_key=stripe_key,
                        hubspot_url=fresh_hubspot_sandbox.url, shopify_url=fresh_shopify.url,
                        erp_url=erp_url)  # fmt: skip
    suffix = secrets.token_hex(4)
    paths = {name: f"interchange/sources/{name}-{suffix}" for name in ("stripe", "hubspot",
                                                                       "shopify")}
    vaultdev.seed(vault.addr, vault.root_token, {
        paths["stripe"]: {"api_key": stripe_key},
        paths["hubspot"]: {"access_token": fresh_hubspot_sandbox.token},
        paths["shopify"]: {"access_token": fresh_shopify.token}})  # fmt: skip
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    fresh_shopify.config(leak_rate=1000)
    fast = "    rate_limit_per_second: 500\n    burst: 50\n"
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        f"  stripe:\n    base_url: {fresh_localstripe.url}\n    vault_path: {paths['stripe']}\n"
        f"{fast}"
        f"  hubspot:\n    base_url: {fresh_hubspot_sandbox.url}\n"
        f"    vault_path: {paths['hubspot']}\n{fast}"
        f"  shopify:\n    base_url: {fresh_shopify.url}\n    vault_path: {paths['shopify']}\n"
        f"{fast}    options: {{api_version: \"{fresh_shopify.version}\"}}\n"
        f"  erp:\n    base_url: {erp_url}\n    vault_path: unused\n")
    return world, seeded, sync_hub


def test_the_world_synced_from_four_systems_is_its_people(world_hub):
    world, seeded, hub = world_hub
    exp = world.expected
    assert seeded["hubspot"]["expected"]["contacts"] == exp["in_systems"]["hubspot"]
    summaries = {
        "stripe": sync_stripe(SyncStripeParams(mode="full")),
        "hubspot": sync_crm(SyncCrmParams(mode="full")),
        "shopify": sync_commerce(SyncCommerceParams(mode="full")),
        "erp": sync_erp(SyncErpParams(mode="full")),
    }
    # Every record lands, in each system's own formats, but the few the world broke on
    # purpose, which are quarantined with their reason.
    with session_scope(hub) as s:
        rules = Counter((q.source, f["rule"]) for q in s.exec(select(Q)).all()
                        for f in q.failed_rules)
        per_source = Counter(c.source for c in s.exec(select(Customer)).all())
    assert rules == {("hubspot", "email.valid"): exp["quarantined"]["hubspot"],
                     ("erp", "phone.e164"): exp["quarantined"]["erp"]}
    assert per_source == {s: n - exp["quarantined"].get(s, 0)
                          for s, n in exp["in_systems"].items()}
    assert count_rows(hub, Order) == exp["orders"]
    assert count_rows(hub, Payment) == exp["charges"]
    assert summaries["erp"]["stock"]["inserted"] == 2 * exp["items"]

    result = identity.resolve(database_url=hub)
    assert result.counts()["golden"] == exp["golden_customers"]
    assert exp["people"] - exp["golden_customers"] <= sum(exp["quarantined"].values())
    with session_scope(hub) as s:
        members = Counter(link.golden_id for link in s.exec(select(CustomerLink)).all())
        goldens = {g.id: g for g in s.exec(select(GoldenCustomer)).all()}
    # Everyone present in all four systems is one golden customer of four records,
    # whatever the phone formats and stale numbers.
    broken = {i for ids in world.broken.values() for i in ids}
    whole = sum(len(p.systems) == 4 and p.index not in broken for p in world.people)
    assert Counter(members.values())[4] == whole > 0
    assert sum(members.values()) == sum(per_source.values())
    # Survivorship: the CRM is first for names; phones are the most recent, so a
    # stale CRM phone loses to the shop's or the ERP's current one.
    stale = {p.email for p in world.people if p.old_phone and len(p.systems) > 1}
    current = {p.email: f"+{p.phone[0]}{p.phone[1]}" for p in world.people}
    assert stale
    for g in goldens.values():
        if g.email in stale and g.provenance["phone"]["source"] != "hubspot":
            assert g.phone == current[g.email]
    names = {p.email: f"{p.first} {p.last}" for p in world.people}
    assert all(g.name == names[g.email] for g in goldens.values() if g.email in names)

    # Order-to-cash over the same world: every charge matches its order - by the
    # reference in its metadata, or (where the reference is missing) by customer,
    # amount and time - but for the one charged 1.50 more than its order.
    from flows.reconcile_orders import ReconcileParams, reconcile_orders
    from flows.sync_inventory import SyncInventoryParams, sync_inventory

    recon = reconcile_orders(ReconcileParams())
    missing = len(exp["charges_without_order_ref"])
    assert recon["matched_by_customer"] == missing
    assert recon["amount_mismatch"] == 1
    assert recon["matched_by_reference"] == exp["charges"] - missing - 1
    assert (recon["unmatched_order"], recon["orphan_payment"]) == (0, 0)

    # Stock: the ERP is the truth; exactly the SKUs whose shop stock drifted differ.
    plan = sync_inventory(SyncInventoryParams(dry_run=True))
    assert plan["changes"] == len(exp["drifted_skus"]) > 0
    assert plan["in_sync"] == exp["items"] - len(exp["drifted_skus"])
    assert plan["applied"] == 0
