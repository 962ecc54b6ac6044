"""sync-commerce end to end: Shopify sandbox -> system API -> rules -> hub, on Prefect."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest
from sqlmodel import func, select

from flows.sync_commerce import SyncCommerceParams, sync_commerce
from interchange import vaultdev
from interchange.store import session_scope
from process_apis.canonical.models import Customer, InventoryLevel, Order, OrderLine, Product
from process_apis.canonical.models import QuarantineRecord as Q
from sandboxes.shopify.seed import expected_counts, generate
from tests.fixtures.databases import count_rows

STREAMS = ("customers", "products", "orders", "inventory_levels")


@pytest.fixture
def hub(sync_hub):
    return sync_hub


count = count_rows


def quarantined(url):
    with session_scope(url) as s:
        return {(r.entity, r.source_id): sorted(f["rule"] for f in r.failed_rules)
                for r in s.exec(select(Q).where(Q.source == "shopify")).all()}


def seeded(records):
    out: dict[str, list] = {}
    for resource, body in generate(records):
        out.setdefault(resource, []).append(body)
    return out


def written(summary, stream):
    return summary[stream]["inserted"] + summary[stream]["updated"]


def test_sync_commerce_lands_or_quarantines_everything(hub, tmp_path, vault, monkeypatch,
                                                       fresh_shopify):
    shop = fresh_shopify
    path = f"interchange/sources/shopify-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": shop.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  shopify:\n    base_url: {shop.url}\n    vault_path: {path}\n"
        "    rate_limit_per_second: 50\n    burst: 20\n    page_size: 100\n"
        f"    options: {{api_version: \"{shop.version}\"}}\n")
    expected = expected_counts(shop.records)
    served = shop.expected  # what the sandbox holds (table counts)
    assert {k: served[k] for k in ("customers", "products", "orders", "inventory_levels")} == {
        k: expected[k] for k in ("customers", "products", "orders", "inventory_levels")}
    data = seeded(shop.records)
    assert len(data["customers"]) == expected["customers"]

    summary = sync_commerce(SyncCommerceParams(mode="full"))

    # Independent oracle for what must be quarantined, from the seed itself.
    want_levels = {}
    for level in data["inventory_levels"]:
        key = f"{level['location_id']}:{level['inventory_item_id']}"
        if level["available"] is None:
            want_levels[("inventory_level", key)] = ["quantity.tracked"]
        elif level["available"] < 0:
            want_levels[("inventory_level", key)] = ["quantity.non_negative"]
    got = quarantined(hub)
    rules = Counter(rule for rs in got.values() for rule in rs)
    assert {k: v for k, v in got.items() if k[0] == "inventory_level"} == want_levels
    assert {k[0] for k in got} <= {"customer", "inventory_level"}
    assert set(rules) <= {"phone.e164", "quantity.tracked", "quantity.non_negative"}

    with session_scope(hub) as s:  # every order whose customer landed is linked to it
        unlinked = s.exec(select(func.count()).select_from(Order).where(
            Order.customer_id.is_(None),
            Order.customer_source_id.in_(select(Customer.source_id)))).one()
    assert unlinked == 0

    customers = summary["customers"]
    assert customers["read"] == expected["customers"]
    assert customers["quarantined"] == rules["phone.e164"] > 0
    assert count(hub, Customer) == customers["inserted"] == (
        expected["customers"] - customers["quarantined"])

    assert summary["products"]["read"] == expected["products"]
    assert count(hub, Product) == summary["products"]["inserted"] == expected["variants"]
    assert count(hub, Product, Product.sku.is_(None)) == sum(
        1 for p in data["products"] for v in p["variants"] if not v["sku"])

    assert summary["orders"]["read"] == expected["orders"]
    assert count(hub, Order) == summary["orders"]["inserted"] == expected["orders"]
    lines = sum(len(o["line_items"]) for o in data["orders"])
    assert count(hub, OrderLine) == lines
    # Every order names its buyer by Shopify id. (customer_id, the hub link, depends on
    # whether customers loaded first: hub.link_orphans sweeps payments only.)
    assert count(hub, Order, Order.customer_source_id.is_not(None)) == expected["orders"]

    levels = summary["inventory_levels"]
    assert levels["read"] == expected["inventory_levels"]
    assert count(hub, InventoryLevel) == levels["inserted"] == (
        expected["inventory_levels"] - len(want_levels))
    assert levels["quarantined"] == len(want_levels)

    # Nothing changed at the source: an incremental run writes nothing.
    again = sync_commerce(SyncCommerceParams(mode="incremental"))
    assert all(written(again, s) == 0 for s in STREAMS), again
    assert count(hub, OrderLine) == lines

    # An order edited in the shop: updated in place, its lines replaced.
    order = data["orders"][0]
    new_line = {**order["line_items"][0], "id": 99_000_000_000_001, "quantity": 7}
    assert shop.touch("orders", [order["id"]],
                      {"line_items": [new_line], "total_price": "123.45",
                       "financial_status": "refunded"}) == 1
    third = sync_commerce(SyncCommerceParams(mode="incremental"))
    assert third["orders"]["read"] == 1
    assert third["orders"]["updated"] == 1 and third["orders"]["inserted"] == 0
    assert all(written(third, s) == 0 for s in STREAMS if s != "orders"), third
    assert count(hub, Order) == expected["orders"]
    assert count(hub, OrderLine) == lines - len(order["line_items"]) + 1
    with session_scope(hub) as s:
        row = s.exec(select(Order).where(Order.source_id == str(order["id"]))).one()
        assert (row.total_minor, row.status) == (12345, "refunded")
        got_lines = s.exec(select(OrderLine).where(
            OrderLine.order_source_id == str(order["id"]))).all()
        assert [(ln.source_id, ln.quantity) for ln in got_lines] == [(str(new_line["id"]), 7)]
