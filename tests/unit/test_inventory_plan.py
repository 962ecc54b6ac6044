"""The stock sync planner on a small hand-made hub (a temporary SQLite file).

Shop: locations 10, 20, 30; variants SKU-A (item 1), SKU-B (2), SKU-C (3), SKU-D on
two variants (4, 5), SKU-F (7), SKU-S (6, not in the ERP) and one variant without a
SKU. ERP: warehouses WH1 and WH2.
"""

from __future__ import annotations

import pytest

from interchange.errors import ConfigError
from interchange.store import dispose_engines, migrate, session_scope
from process_apis.canonical.models import InventoryLevel, QuarantineRecord
from process_apis.inventory import (
    ItemIndex,
    LowStock,
    StockChange,
    low_stock,
    plan_inventory,
    resolve_locations,
)

SHOP_LOCATIONS = [20, 10, 30]


def erp(sku, warehouse, qty):
    return InventoryLevel(source="erp", source_id=f"{sku}/{warehouse}", sku=sku,
                          location=warehouse, available=qty)


def shop(location, item, qty):
    return InventoryLevel(source="shopify", source_id=f"{location}:{item}", location=str(location),
                          available=qty)


@pytest.fixture
def hub(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    with session_scope(url) as s:
        s.add_all([
            erp("SKU-A", "WH1", 5), erp("SKU-A", "WH2", 7), shop(10, 1, 12), shop(20, 1, 3),
            erp("SKU-B", "WH1", 3), erp("SKU-B", "WH2", 0), shop(10, 2, 8),
            erp("SKU-C", "WH1", -4),  # no level at the shop yet
            erp("SKU-D", "WH1", 9),
            erp("SKU-E", "WH1", 2), erp("SKU-E", "WH2", 1),
            erp("SKU-F", "WH1", 4), shop(10, 7, 1),
            shop(10, 6, 50),
        ])
        s.add(QuarantineRecord(entity="inventory_level", source="erp", source_id="SKU-F/WH2",
                               stream="stock", raw={"ITEM_NO": "SKU-F", "WAREHOUSE": "WH2",
                                                    "QTY_ON_HAND": -3},
                               failed_rules=[{"rule": "quantity.non_negative"}]))
        # A fixed (landed) quarantine row holds nothing back.
        s.add(QuarantineRecord(entity="inventory_level", source="erp", source_id="SKU-A/WH2",
                               stream="stock", raw={"ITEM_NO": "SKU-A", "WAREHOUSE": "WH2"},
                               failed_rules=[], status="resolved"))
    yield url
    dispose_engines()


@pytest.fixture
def index():
    idx = ItemIndex()
    idx.add_products([
        {"id": 1, "variants": [{"sku": "SKU-A", "inventory_item_id": 1},
                               {"sku": " SKU-B ", "inventory_item_id": 2}]},
        {"id": 2, "variants": [{"sku": "SKU-C", "inventory_item_id": 3},
                               {"sku": "SKU-D", "inventory_item_id": 4},
                               {"sku": "SKU-D", "inventory_item_id": 5}]},
        {"id": 3, "variants": [{"sku": "SKU-S", "inventory_item_id": 6},
                               {"sku": "SKU-F", "inventory_item_id": 7},
                               {"sku": "", "inventory_item_id": 8}]},
        {"id": 4, "variants": [{"sku": "SKU-A", "inventory_item_id": 1}]},  # re-read page
    ])
    return idx


def test_item_index_keeps_sku_to_items(index):
    assert index.items == {"SKU-A": {1}, "SKU-B": {2}, "SKU-C": {3}, "SKU-D": {4, 5},
                           "SKU-S": {6}, "SKU-F": {7}}
    assert index.variants_without_sku == 1


def test_resolve_locations_default_primary_and_mapping():
    assert resolve_locations(None, SHOP_LOCATIONS) == {"*": 10}  # the oldest location
    assert resolve_locations({}, SHOP_LOCATIONS, primary_location_id="30") == {"*": 30}
    assert resolve_locations({"WH1": "10", "WH2": 20}, SHOP_LOCATIONS,
                             primary_location_id=30) == {"WH1": 10, "WH2": 20}
    with pytest.raises(ConfigError, match="no location 99"):
        resolve_locations({"WH1": "99"}, SHOP_LOCATIONS)
    with pytest.raises(ConfigError, match="not a Shopify location id"):
        resolve_locations(None, SHOP_LOCATIONS, primary_location_id="main")
    with pytest.raises(ConfigError, match="no locations"):
        resolve_locations(None, [])


def test_default_plan_sums_warehouses_at_the_primary_location(hub, index):
    with session_scope(hub) as s:
        plan = plan_inventory(s, index, resolve_locations(None, SHOP_LOCATIONS))
    assert plan.changes == [
        StockChange("SKU-B", 2, 10, before=8, after=3),
        StockChange("SKU-C", 3, 10, before=None, after=0),  # negative ERP stock -> 0
    ]
    assert plan.counts() == {
        "changes": 2, "in_sync": 1,  # SKU-A: 5 + 7 == 12 at location 10
        "matched_skus": 4,  # A, B, C, F
        "unmatched_erp_skus": 1, "unmatched_shopify_skus": 1, "ambiguous_skus": 1,
        "held_back_skus": 1, "variants_without_sku": 1,
    }
    assert plan.unmatched_erp["sample"] == ["SKU-E"]
    assert plan.unmatched_shopify["sample"] == ["SKU-S"]
    assert plan.ambiguous["sample"] == ["SKU-D"]
    assert plan.held_back["sample"] == ["SKU-F"]  # WH2 quarantined: the total is unknown


def test_warehouse_mapping_per_location(hub, index):
    locations = resolve_locations({"WH1": 10, "WH2": 20}, SHOP_LOCATIONS)
    with session_scope(hub) as s:
        plan = plan_inventory(s, index, locations)
    assert plan.changes == [
        StockChange("SKU-A", 1, 10, before=12, after=5),
        StockChange("SKU-A", 1, 20, before=3, after=7),
        StockChange("SKU-B", 2, 10, before=8, after=3),
        StockChange("SKU-B", 2, 20, before=None, after=0),
        StockChange("SKU-C", 3, 10, before=None, after=0),
    ]
    assert plan.in_sync == 0 and plan.held_back["count"] == 1


def test_a_warehouse_mapped_nowhere_does_not_feed_the_shop(hub, index):
    with session_scope(hub) as s:
        plan = plan_inventory(s, index, {"WH1": 10})
    # SKU-F's quarantined row is in WH2, which does not feed the shop: not held back.
    assert plan.changes == [
        StockChange("SKU-A", 1, 10, before=12, after=5),
        StockChange("SKU-B", 2, 10, before=8, after=3),
        StockChange("SKU-C", 3, 10, before=None, after=0),
        StockChange("SKU-F", 7, 10, before=1, after=4),
    ]
    assert plan.held_back["count"] == 0


def test_sku_filter_limits_both_sides(hub, index):
    with session_scope(hub) as s:
        plan = plan_inventory(s, index, {"*": 10}, skus=["SKU-B", "SKU-S", "SKU-E"])
    assert plan.changes == [StockChange("SKU-B", 2, 10, before=8, after=3)]
    counts = plan.counts()
    assert (counts["in_sync"], counts["matched_skus"], counts["unmatched_erp_skus"],
            counts["unmatched_shopify_skus"]) == (0, 1, 1, 1)


def test_plan_after_applying_is_empty(hub, index):
    with session_scope(hub) as s:
        plan = plan_inventory(s, index, {"*": 10})
        for c in plan.changes:  # what landing the shop's answers does
            row = s.exec(InventoryLevel.__table__.select().where(
                InventoryLevel.source_id == f"{c.location_id}:{c.inventory_item_id}")).first()
            if row is None:
                s.add(shop(c.location_id, c.inventory_item_id, c.after))
            else:
                s.execute(InventoryLevel.__table__.update().where(
                    InventoryLevel.id == row.id).values(available=c.after))
    with session_scope(hub) as s:
        again = plan_inventory(s, index, {"*": 10})
    assert again.changes == [] and again.in_sync == 3


def test_low_stock_per_sku_total_with_overrides(hub):
    with session_scope(hub) as s:
        low = low_stock(s, 5)
        assert low == [LowStock("SKU-B", 3, 5), LowStock("SKU-C", -4, 5),
                       LowStock("SKU-E", 3, 5)]  # SKU-F: quarantined row, total unknown
        assert low_stock(s, 5, overrides={"SKU-A": 13, "SKU-B": 3}) == [
            LowStock("SKU-A", 12, 13), LowStock("SKU-C", -4, 5), LowStock("SKU-E", 3, 5)]
        assert low_stock(s, 0) == [LowStock("SKU-C", -4, 0)]
        assert low_stock(s, 5, skus=["SKU-E"]) == [LowStock("SKU-E", 3, 5)]
    assert LowStock("SKU-E", 3, 5).payload() == {"sku": "SKU-E", "quantity": 3,
                                                 "reorder_point": 5}
