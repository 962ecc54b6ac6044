"""Stock sync planning: the ERP is the truth for stock, Shopify gets the differences.

The plan compares the ERP's stock in the hub (``inventory_levels`` rows of source
``erp``: one row per item number and warehouse) with Shopify's inventory levels in the
hub (source ``shopify``, keyed ``"<location_id>:<inventory_item_id>"``) and lists the
levels to set - nothing else. Applying a plan sets absolute quantities, so applying it
twice, or after a crash half-way, ends in the same state; a run right after a complete
one plans nothing.

Matching
--------
By SKU: the ERP's ``ITEM_NO`` is the SKU; in Shopify a SKU sits on a product *variant*,
which names its ``inventory_item_id``. Shopify's inventory levels carry the item id but
no SKU, and the hub does not keep the variant's item id, so the SKU -> item index
(:class:`ItemIndex`) is read from Shopify's products (:func:`read_catalog`) - one id and
one SKU per variant, which is all this keeps in memory besides the changes themselves.
SKUs are compared exactly after trimming blanks. A SKU on more than one Shopify variant
is *ambiguous* and left alone (setting both would sell the stock twice).

Locations
---------
ERP warehouses map to Shopify locations through ``{warehouse: location_id}``; the key
``"*"`` stands for every warehouse not named. Several warehouses mapped to one
location add up; a warehouse that maps nowhere does not feed Shopify at all (e.g. a
B2B-only warehouse). The default, when nothing is configured, is what a merchant with
one online stock figure expects: **the SKU's total over all ERP warehouses is what
Shopify may sell, at the shop's primary location** (``options.primary_location_id`` of
the ``shopify`` source; without it the shop's oldest location, i.e. the lowest id,
which is Shopify's primary unless the merchant moved it). Shopify locations no
warehouse maps to (a pop-up store counting its own stock) are never touched.

Edge cases
----------
* A matched SKU without a level at its target location in the hub (never stocked
  there, or the level is quarantined: untracked or oversold) is planned as a change
  *from unknown* (``before=None``): setting it connects or corrects the level.
* ERP quantities are summed as the hub holds them; a negative sum is pushed as 0
  (Shopify is not asked to sell less than nothing).
* A SKU with an *open quarantined* ERP stock row in a warehouse that feeds Shopify is
  *held back*: its true total is unknown, and pushing the partial sum would be wrong.
  It is synced again once the row is fixed and lands.

Low stock
---------
:func:`low_stock` lists ERP SKUs whose total over all warehouses is below their reorder
point (the legacy ERP has no reorder-point column, so the point is a parameter, with
optional per-SKU overrides). SKUs with a quarantined stock row are skipped (unknown
total). The flow turns each into an ``interchange.inventory.low`` event whose payload
holds the SKU, the quantity and the reorder point - product data, no personal data.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from interchange.errors import ConfigError
from interchange.settings import SourceConfig
from interchange.store import session_scope
from process_apis import hub, pipeline
from process_apis.canonical.models import InventoryLevel, QuarantineRecord, QuarantineStatus
from process_apis.mapping.common import clean
from system_apis.shopify.client import shopify_client
from system_apis.shopify.streams import (
    MAX_PAGE_SIZE,
    list_location_ids,
    read_inventory_levels,
    read_stream,
    set_inventory_levels,
)

__all__ = [
    "ANY_WAREHOUSE",
    "Applied",
    "InventoryPlan",
    "ItemIndex",
    "LowStock",
    "ShopCatalog",
    "StockChange",
    "apply_changes",
    "low_stock",
    "plan_inventory",
    "read_catalog",
    "resolve_locations",
    "verify_changes",
]

ERP = "erp"
SHOPIFY = "shopify"
ANY_WAREHOUSE = "*"
SAMPLE = 50  # SKUs kept per category for the report; the counts are exact
_CHUNK = 500  # SKUs per hub look-up (IN lists stay well below parameter limits)
_IDS_PER_READ = 50  # inventory item ids per verification request


# --------------------------------------------------------------------------- the shop side


@dataclass
class ItemIndex:
    """SKU -> the Shopify inventory item ids of the variants carrying it."""

    items: dict[str, set[int]] = field(default_factory=dict)
    variants_without_sku: int = 0

    def add(self, sku: Any, inventory_item_id: Any) -> None:
        key = clean(sku)
        if key is None or type(inventory_item_id) is not int:
            self.variants_without_sku += 1
            return
        self.items.setdefault(key, set()).add(inventory_item_id)

    def add_products(self, products: Iterable[Mapping[str, Any]]) -> None:
        """Index the variants of raw Shopify ``product`` objects."""
        for product in products:
            for variant in product.get("variants") or []:
                if isinstance(variant, Mapping):
                    self.add(variant.get("sku"), variant.get("inventory_item_id"))

    def lookup(self, sku: str) -> set[int]:
        return self.items.get(sku, set())


@dataclass
class ShopCatalog:
    """What the plan needs from the shop itself: its locations and the item index."""

    location_ids: list[int]
    index: ItemIndex


def read_catalog(config: SourceConfig, *, page_size: int = MAX_PAGE_SIZE) -> ShopCatalog:
    """Read the shop's locations and every variant's SKU and inventory item id."""
    index = ItemIndex()
    with shopify_client(config) as client:
        locations = list_location_ids(client)
        for page in read_stream(client, "products", mode="full", page_size=page_size):
            index.add_products(page.records)
    return ShopCatalog(location_ids=locations, index=index)


def resolve_locations(
    mapping: Mapping[str, Any] | None,
    shop_locations: Sequence[int],
    *,
    primary_location_id: Any = None,
) -> dict[str, int]:
    """The effective ``{warehouse: location_id}`` (see the module docstring).

    Raises :class:`ConfigError` for a location the shop does not have, so a typo fails
    the run before anything is written.
    """
    known = set(shop_locations)
    if not known:
        raise ConfigError("the shop has no locations to sync stock to")

    def location(value: Any, what: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{what}: {value!r} is not a Shopify location id") from None
        if number not in known:
            raise ConfigError(f"{what}: the shop has no location {number}")
        return number

    if mapping:
        return {str(warehouse).strip(): location(loc, f"location of warehouse {warehouse!r}")
                for warehouse, loc in mapping.items()}
    if primary_location_id not in (None, ""):
        return {ANY_WAREHOUSE: location(primary_location_id, "primary_location_id")}
    return {ANY_WAREHOUSE: min(known)}


def _target(locations: Mapping[str, int], warehouse: str) -> int | None:
    found = locations.get(warehouse)
    return found if found is not None else locations.get(ANY_WAREHOUSE)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class StockChange:
    """Set ``inventory_item_id`` at ``location_id`` from ``before`` (None: no level known)
    to ``after``, the ERP's quantity."""

    sku: str
    inventory_item_id: int
    location_id: int
    before: int | None
    after: int

    def body(self) -> dict[str, int]:
        return {"inventory_item_id": self.inventory_item_id, "location_id": self.location_id,
                "available": self.after}


def _count_and_sample() -> dict[str, Any]:
    return {"count": 0, "sample": []}


@dataclass
class InventoryPlan:
    """The differences to apply and how every SKU was classified.

    ``in_sync`` and ``changes`` count levels (SKU x location); the other categories
    count SKUs, each with a sample of up to :data:`SAMPLE` of them.
    """

    locations: dict[str, int]
    changes: list[StockChange] = field(default_factory=list)
    in_sync: int = 0
    matched_skus: int = 0
    unmatched_erp: dict[str, Any] = field(default_factory=_count_and_sample)
    unmatched_shopify: dict[str, Any] = field(default_factory=_count_and_sample)
    ambiguous: dict[str, Any] = field(default_factory=_count_and_sample)
    held_back: dict[str, Any] = field(default_factory=_count_and_sample)
    variants_without_sku: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "changes": len(self.changes),
            "in_sync": self.in_sync,
            "matched_skus": self.matched_skus,
            "unmatched_erp_skus": self.unmatched_erp["count"],
            "unmatched_shopify_skus": self.unmatched_shopify["count"],
            "ambiguous_skus": self.ambiguous["count"],
            "held_back_skus": self.held_back["count"],
            "variants_without_sku": self.variants_without_sku,
        }


def _note(bucket: dict[str, Any], sku: str) -> None:
    bucket["count"] += 1
    if len(bucket["sample"]) < SAMPLE:
        bucket["sample"].append(sku)


def _erp_stock(
    session: Session, skus: Collection[str] | None
) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``(sku, [(warehouse, quantity), ...])`` per ERP SKU, in SKU order, streamed."""
    sku_col, loc_col = col(InventoryLevel.sku), col(InventoryLevel.location)
    stmt = (
        sa.select(sku_col, loc_col, sa.func.sum(InventoryLevel.available))
        .where(InventoryLevel.source == ERP, sku_col.is_not(None))
        .group_by(sku_col, loc_col)
        .order_by(sku_col, loc_col)
    )
    wanted = {s.strip() for s in skus} if skus is not None else None
    rows = session.execute(stmt.execution_options(yield_per=1000))
    grouped = itertools.groupby(rows, key=lambda r: str(r[0]).strip())
    for sku, group in grouped:
        if wanted is not None and sku not in wanted:
            continue
        yield sku, [(str(r[1]), int(r[2] or 0)) for r in group]


def _quarantined_stock(session: Session) -> dict[str, set[str]]:
    """SKU -> warehouses whose ERP stock row is quarantined and not landed yet."""
    out: dict[str, set[str]] = {}
    rows = session.exec(
        select(QuarantineRecord.source_id, QuarantineRecord.raw).where(
            QuarantineRecord.entity == "inventory_level", QuarantineRecord.source == ERP,
            QuarantineRecord.status == QuarantineStatus.open)
    )
    for source_id, raw in rows:
        raw = raw if isinstance(raw, dict) else {}
        # The ERP stock key is "<ITEM_NO>/<WAREHOUSE>" (process_apis.mapping.erp).
        item, _, warehouse = str(source_id).rpartition("/")
        sku = clean(raw.get("ITEM_NO")) or clean(item)
        if sku:
            out.setdefault(sku, set()).add(clean(raw.get("WAREHOUSE")) or warehouse)
    return out


def _shopify_levels(session: Session, source_ids: Collection[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ids = sorted(source_ids)
    for i in range(0, len(ids), _CHUNK):
        rows = session.execute(
            sa.select(col(InventoryLevel.source_id), col(InventoryLevel.available)).where(
                InventoryLevel.source == SHOPIFY,
                col(InventoryLevel.source_id).in_(ids[i : i + _CHUNK]))
        )
        found.update({str(sid): int(qty) for sid, qty in rows})
    return found


def plan_inventory(
    session: Session,
    index: ItemIndex,
    locations: Mapping[str, int],
    *,
    skus: Collection[str] | None = None,
) -> InventoryPlan:
    """Compare ERP stock with Shopify's levels in the hub; the levels to set.

    ``locations`` is the effective warehouse mapping (:func:`resolve_locations`);
    ``skus`` limits the plan to those SKUs (both sides).
    """
    plan = InventoryPlan(locations=dict(locations),
                         variants_without_sku=index.variants_without_sku)
    quarantined = _quarantined_stock(session)
    seen: set[str] = set()
    # (sku, item, {location: target}) waiting for one hub look-up per chunk
    pending: list[tuple[str, int, dict[int, int]]] = []

    def flush() -> None:
        wanted = {f"{loc}:{item}" for _, item, targets in pending for loc in targets}
        current = _shopify_levels(session, wanted)
        for sku, item, targets in pending:
            for loc, qty in sorted(targets.items()):
                before = current.get(f"{loc}:{item}")
                if before == qty:
                    plan.in_sync += 1
                else:
                    plan.changes.append(StockChange(sku, item, loc, before, qty))
        pending.clear()

    for sku, rows in _erp_stock(session, skus):
        seen.add(sku)
        items = index.lookup(sku)
        if not items:
            _note(plan.unmatched_erp, sku)
            continue
        if len(items) > 1:
            _note(plan.ambiguous, sku)
            continue
        plan.matched_skus += 1
        if any(_target(locations, wh) is not None for wh in quarantined.get(sku, ())):
            _note(plan.held_back, sku)
            continue
        targets: dict[int, int] = {}
        for warehouse, qty in rows:
            loc = _target(locations, warehouse)
            if loc is not None:
                targets[loc] = targets.get(loc, 0) + qty
        if not targets:
            continue  # stocked only in warehouses that do not feed the shop
        (item,) = items
        pending.append((sku, item, {loc: max(0, qty) for loc, qty in targets.items()}))
        if len(pending) >= _CHUNK:
            flush()
    flush()

    wanted = {s.strip() for s in skus} if skus is not None else None
    for sku in sorted(index.items):
        if sku not in seen and (wanted is None or sku in wanted):
            _note(plan.unmatched_shopify, sku)
    plan.changes.sort(key=lambda c: (c.sku, c.location_id))
    return plan


# --------------------------------------------------------------------------- low stock


@dataclass(frozen=True)
class LowStock:
    sku: str
    quantity: int
    reorder_point: int

    def payload(self) -> dict[str, Any]:
        """The event payload: product data only (no personal data)."""
        return {"sku": self.sku, "quantity": self.quantity, "reorder_point": self.reorder_point}


def low_stock(
    session: Session,
    reorder_point: int,
    *,
    overrides: Mapping[str, int] | None = None,
    skus: Collection[str] | None = None,
) -> list[LowStock]:
    """ERP SKUs whose total over all warehouses is below their reorder point
    (``overrides[sku]``, else ``reorder_point``), in SKU order."""
    overrides = {k.strip(): v for k, v in (overrides or {}).items()}
    quarantined = _quarantined_stock(session)
    out: list[LowStock] = []
    for sku, rows in _erp_stock(session, skus):
        if sku in quarantined:
            continue
        point = overrides.get(sku, reorder_point)
        total = sum(qty for _, qty in rows)
        if total < point:
            out.append(LowStock(sku, total, point))
    return out


# --------------------------------------------------------------------------- applying


@dataclass
class Applied:
    """One applied batch: levels set at the shop and what landing them in the hub did."""

    applied: int = 0
    hub_written: int = 0
    quarantined: int = 0


def apply_changes(
    config: SourceConfig, changes: Sequence[StockChange], *, database_url: str | None = None
) -> Applied:
    """Set each change's level at the shop, then land Shopify's answers in the hub.

    Landing the answers (through the same mapping and checks as a sync) keeps the
    hub's view of the shop current, so the next plan does not repeat these changes.
    """
    if not changes:
        return Applied()
    with shopify_client(config) as client:
        answers = set_inventory_levels(client, [c.body() for c in changes])
    processed = pipeline.process_batch(SHOPIFY, "inventory_levels", answers)
    with session_scope(database_url) as session:
        counts = hub.upsert_inventory_levels(session, processed.records)
        hub.resolve_quarantined(session, entity=processed.entity, source=SHOPIFY,
                                source_ids=[r.source_id for r in processed.records])
        quarantined = hub.quarantine(session, entity=processed.entity, source=SHOPIFY,
                                     stream="inventory_levels", rejected=processed.rejected)
    return Applied(applied=len(answers), hub_written=counts.written, quarantined=quarantined)


def verify_changes(config: SourceConfig, changes: Sequence[StockChange]) -> list[StockChange]:
    """Read the changed levels back from the shop; the changes it does not report
    (a concurrent sale can also move a level between the write and this read)."""
    if not changes:
        return []
    want = {(c.inventory_item_id, c.location_id): c for c in changes}
    with shopify_client(config) as client:
        got = read_inventory_levels(client, (c.inventory_item_id for c in changes),
                                    (c.location_id for c in changes),
                                    per_request=_IDS_PER_READ)  # fmt: skip
    return [c for key, c in want.items() if got.get(key) != c.after]
