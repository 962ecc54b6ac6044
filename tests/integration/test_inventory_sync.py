"""sync-inventory end to end: ERP sandbox + Shopify sandbox -> hub -> plan -> Shopify.

The two seeds share no SKU (ERP ``SKU-00001``, Shopify ``SKU-000001-S``), so the test
writes legacy ``ITEM_MASTER``/``STOCK`` rows for some of the shop's SKUs into the ERP
database (a SQLite file, as the embedded demo has it) before syncing both sources with
their own flows. Expected numbers come from the two seeds themselves.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from flows.sync_commerce import SyncCommerceParams, sync_commerce
from flows.sync_erp import SyncErpParams, sync_erp
from flows.sync_inventory import LOW_STOCK_EVENT, SyncInventoryParams, sync_inventory
from interchange import vaultdev
from interchange.store import session_scope
from process_apis.canonical.models import InventoryLevel
from sandboxes.erp.schema import ITEM_MASTER, STOCK
from sandboxes.erp.seed import build_dataset, create_and_seed
from sandboxes.shopify.seed import LOCATION_ID0, LOCATIONS, generate
from tests.fixtures.common import wait_until

ERP_RECORDS = 20  # 10 ERP items SKU-00001..SKU-00010, stocked in WH1 and WH2
REORDER_POINT = 5
PRIMARY = LOCATION_ID0 + 1  # the shop's oldest location: where the ERP total goes


@pytest.fixture
def hub(sync_hub):
    return sync_hub


def shop_levels(shop) -> dict[tuple[int, int], int | None]:
    """Every level the Shopify sandbox holds, read through its API."""
    out = {}
    with shop.client(timeout=30) as client:
        for k in range(LOCATIONS):
            r = client.get("inventory_levels.json",
                           params={"location_ids": LOCATION_ID0 + k + 1, "limit": 250})
            r.raise_for_status()
            assert 'rel="next"' not in r.headers.get("Link", "")
            for level in r.json()["inventory_levels"]:
                out[(level["inventory_item_id"], level["location_id"])] = level["available"]
    return out


def low_events(api_url: str, since: str) -> list[dict]:
    body = {"filter": {"event": {"name": [LOW_STOCK_EVENT]}, "occurred": {"since": since}},
            "limit": 50}
    response = httpx.post(f"{api_url}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return response.json()["events"]


def latest_artifact(api_url: str) -> str:
    body = {"artifacts": {"key": {"any_": ["sync-inventory-summary"]}}, "sort": "CREATED_DESC",
            "limit": 1}
    response = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=10)
    response.raise_for_status()
    return response.json()[0]["data"]


def test_inventory_sync_dry_run_then_apply_then_nothing(hub, tmp_path, vault, monkeypatch,
                                                        fresh_shopify, prefect_server):
    from prefect.events.worker import EventsWorker

    started = dt.datetime.now(dt.UTC).isoformat()
    shop = fresh_shopify
    path = f"interchange/sources/shopify-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": shop.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_and_seed(erp_url, ERP_RECORDS)
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  shopify:\n    base_url: {shop.url}\n    vault_path: {path}\n"
        "    rate_limit_per_second: 50\n    burst: 20\n    page_size: 250\n"
        f"    options: {{api_version: \"{shop.version}\"}}\n"
        f"  erp:\n    base_url: {erp_url}\n    vault_path: unused\n    page_size: 100\n")

    # ---- the shop's seed, and ERP rows for eleven of its SKUs
    data: dict[str, list] = {}
    for resource, body in generate(shop.records):
        data.setdefault(resource, []).append(body)
    variants = [v for p in data["products"] for v in p["variants"]]
    seeded = {(lv["inventory_item_id"], lv["location_id"]): lv["available"]
              for lv in data["inventory_levels"]}
    item_of = {v["sku"]: v["inventory_item_id"] for v in variants if v["sku"]}
    assert len(item_of) == sum(1 for v in variants if v["sku"])  # SKUs are unique

    def at_primary(sku):  # what the hub holds: untracked or oversold levels are quarantined
        qty = seeded[(item_of[sku], PRIMARY)]
        return qty if qty is not None and qty >= 0 else None

    tracked = [s for s in item_of if at_primary(s) is not None]
    untracked = [s for s in item_of if at_primary(s) is None]
    assert len(tracked) >= 10 and untracked
    erp_stock: dict[str, tuple[int, int]] = {}  # sku -> (WH1, WH2)
    for sku in tracked[:3]:  # in sync already
        erp_stock[sku] = (at_primary(sku) - at_primary(sku) // 2, at_primary(sku) // 2)
    for k, sku in enumerate(tracked[3:8]):  # drifted (or equal by chance: the oracle says)
        erp_stock[sku] = (30 + k, 7)
    low_sku = tracked[8]
    erp_stock[low_sku] = (2, 0)  # below the reorder point
    erp_stock[untracked[0]] = (11, 4)  # no usable level at the shop: set from unknown
    held = tracked[9]
    erp_stock[held] = (-3, 5)  # WH1 is quarantined: the total is unknown, held back
    now = dt.datetime(2026, 6, 1, 12, 0, 0)
    engine = sa.create_engine(erp_url)
    with engine.begin() as conn:
        conn.execute(ITEM_MASTER.insert(), [
            {"ITEM_NO": sku, "DESCR": "shop item", "PRICE": Decimal("9.99"), "CURRENCY": "USD",
             "LAST_MOD": now} for sku in erp_stock])
        conn.execute(STOCK.insert(), [
            {"ITEM_NO": sku, "WAREHOUSE": wh, "QTY_ON_HAND": qty, "LAST_MOD": now}
            for sku, pair in erp_stock.items() for wh, qty in zip(("WH1", "WH2"), pair,
                                                                  strict=True)])
    engine.dispose()

    # ---- the oracle
    targets = {sku: sum(pair) for sku, pair in erp_stock.items() if sku != held}
    want_changes = {(item_of[s], PRIMARY): t for s, t in targets.items() if at_primary(s) != t}
    want_in_sync = len(targets) - len(want_changes)
    assert want_in_sync >= 3 and len(want_changes) >= 6
    erp_totals = {}
    for row in build_dataset(ERP_RECORDS)["STOCK"]:
        erp_totals[row["ITEM_NO"]] = erp_totals.get(row["ITEM_NO"], 0) + row["QTY_ON_HAND"]
    erp_totals.update(targets)
    want_low = {s: q for s, q in erp_totals.items() if q < REORDER_POINT}
    assert low_sku in want_low
    want_counts = {
        "changes": len(want_changes),
        "in_sync": want_in_sync,
        "matched_skus": len(erp_stock),
        "unmatched_erp_skus": ERP_RECORDS // 2,
        "unmatched_shopify_skus": len(item_of) - len(erp_stock),
        "ambiguous_skus": 0,
        "held_back_skus": 1,
        "variants_without_sku": len(variants) - len(item_of),
        "low_stock": len(want_low),
    }

    # ---- both sources into the hub, with their own flows
    erp = sync_erp(SyncErpParams(mode="full", streams=["items", "stock"]))
    assert erp["stock"]["quarantined"] == 1
    commerce = sync_commerce(SyncCommerceParams(mode="full",
                                                streams=["products", "inventory_levels"]))
    assert commerce["inventory_levels"]["read"] == len(seeded)
    before = shop_levels(shop)
    assert before == seeded

    # ---- a dry run: the plan, and nothing written
    dry = sync_inventory(SyncInventoryParams(reorder_point=REORDER_POINT))
    assert dry == {"dry_run": True, **want_counts, "applied": 0, "mismatched": 0}
    assert shop_levels(shop) == before
    assert "dry run" in latest_artifact(prefect_server.api_url)

    # ---- for real: exactly the planned levels change, to the ERP's totals
    real = sync_inventory(SyncInventoryParams(dry_run=False, reorder_point=REORDER_POINT))
    assert real == {"dry_run": False, **want_counts, "applied": len(want_changes),
                    "mismatched": 0}
    assert shop_levels(shop) == {**before, **want_changes}
    with session_scope(hub) as s:  # the hub saw the shop's answers
        rows = s.exec(select(InventoryLevel).where(InventoryLevel.source == "shopify")).all()
        in_hub = {r.source_id: r.available for r in rows}
    assert all(in_hub[f"{loc}:{item}"] == qty for (item, loc), qty in want_changes.items())
    artifact = latest_artifact(prefect_server.api_url)
    assert "dry run" not in artifact and f"| {low_sku} | 2 | {REORDER_POINT} |" in artifact

    # Low-stock events from the real run only: product ids and quantities, nothing else.
    EventsWorker.drain_all(timeout=10)
    wait_until(lambda: len(low_events(prefect_server.api_url, started)) >= len(want_low),
               timeout=20)
    events = low_events(prefect_server.api_url, started)
    assert sorted(e["resource"]["prefect.resource.id"] for e in events) == sorted(
        f"interchange.product.{s}" for s in want_low)
    assert {e["payload"]["sku"]: e["payload"] for e in events} == {
        s: {"sku": s, "quantity": q, "reorder_point": REORDER_POINT} for s, q in want_low.items()}

    # ---- again: nothing left to do
    again = sync_inventory(SyncInventoryParams(dry_run=False, reorder_point=REORDER_POINT))
    assert again == {"dry_run": False, **want_counts, "changes": 0,
                     "in_sync": len(targets), "applied": 0, "mismatched": 0}
    assert shop_levels(shop) == {**before, **want_changes}
    # A commerce sync afterwards agrees with what the write-through put in the hub.
    later = sync_commerce(SyncCommerceParams(mode="full", streams=["inventory_levels"]))
    assert later["inventory_levels"]["updated"] == later["inventory_levels"]["inserted"] == 0
