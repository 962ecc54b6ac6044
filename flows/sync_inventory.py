"""``sync-inventory``: push the ERP's stock to Shopify - only the differences.

The wiring only (the rules are in :mod:`process_apis.inventory`): read the shop's
locations and SKU -> inventory item index, plan from the hub, set the planned levels
through the Shopify system API in batches (unless it is a dry run), read them back,
report what changed in a ``sync-inventory-summary`` artifact, and emit one
``interchange.inventory.low`` event per ERP SKU below its reorder point.

The plan is as fresh as the hub: run it after ``sync-erp`` (stock) and
``sync-commerce`` (inventory levels). A dry run writes nothing to Shopify and emits no
events - it only reports what a real run would do.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field, field_validator

from interchange.runtime import retry_if_retryable
from interchange.settings import get_source
from interchange.store import migrate, session_scope
from process_apis import inventory
from process_apis.inventory import InventoryPlan, LowStock, StockChange

SOURCE = "shopify"
LOW_STOCK_EVENT = "interchange.inventory.low"
ARTIFACT_ROWS = 200  # changes and low-stock SKUs listed in the artifact (counts are exact)
__all__ = ["LOW_STOCK_EVENT", "SyncInventoryParams", "sync_inventory"]


class SyncInventoryParams(BaseModel):
    """How to sync stock. Rendered by the Prefect UI as the run form."""

    dry_run: bool = Field(
        True,
        description="Only plan and report what would change; write nothing to Shopify and "
        "emit no low-stock events. Untick to apply (the nightly schedule applies).",
    )
    reorder_point: int = Field(
        10, ge=0,
        description="An ERP SKU whose total stock (all warehouses) is below this emits "
        "interchange.inventory.low.",
    )
    reorder_points: dict[str, int] = Field(
        default_factory=dict,
        description="Per-SKU reorder points that override reorder_point, e.g. "
        '{"SKU-00042": 25}.',
    )
    skus: list[str] | None = Field(
        None,
        description="Sync only these SKUs (default: every SKU).",
    )
    locations: dict[str, str] | None = Field(
        None,
        description="ERP warehouse -> Shopify location id; '*' means every other "
        "warehouse. Default: options.inventory_locations of the shopify source, else every "
        "warehouse's stock summed at the shop's primary location.",
    )
    batch_size: int = Field(
        100, ge=1, le=1000, description="Levels set per Prefect task."
    )

    @field_validator("skus")
    @classmethod
    def _strip(cls, value: list[str] | None) -> list[str] | None:
        return [s.strip() for s in value if s.strip()] if value is not None else None


@task(name="read-shop-catalog", retries=3, retry_delay_seconds=[1, 5, 15],
      retry_condition_fn=retry_if_retryable, persist_result=False, cache_policy=NO_CACHE)
def read_catalog() -> inventory.ShopCatalog:
    return inventory.read_catalog(get_source(SOURCE))


@task(name="plan-inventory", persist_result=False, cache_policy=NO_CACHE)
def plan(catalog: inventory.ShopCatalog, locations: dict[str, int],
         skus: list[str] | None) -> InventoryPlan:
    with session_scope() as session:
        return inventory.plan_inventory(session, catalog.index, locations, skus=skus)


@task(name="find-low-stock", persist_result=False, cache_policy=NO_CACHE)
def find_low_stock(reorder_point: int, overrides: dict[str, int],
                   skus: list[str] | None) -> list[LowStock]:
    with session_scope() as session:
        return inventory.low_stock(session, reorder_point, overrides=overrides, skus=skus)


@task(name="apply-stock-changes", task_run_name="apply-stock-changes-{number}", retries=3,
      retry_delay_seconds=[1, 5, 15], retry_condition_fn=retry_if_retryable,
      persist_result=False, cache_policy=NO_CACHE)
def apply_batch(number: int, changes: list[StockChange]) -> inventory.Applied:
    # Setting absolute quantities: a retry of a half-applied batch ends the same way.
    return inventory.apply_changes(get_source(SOURCE), changes)


@task(name="verify-stock-changes", retries=2, retry_delay_seconds=[1, 5],
      retry_condition_fn=retry_if_retryable, persist_result=False, cache_policy=NO_CACHE)
def verify(changes: list[StockChange]) -> list[StockChange]:
    return inventory.verify_changes(get_source(SOURCE), changes)


def _locations(params: SyncInventoryParams, catalog: inventory.ShopCatalog) -> dict[str, int]:
    options = get_source(SOURCE).options
    return inventory.resolve_locations(
        params.locations or options.get("inventory_locations"), catalog.location_ids,
        primary_location_id=options.get("primary_location_id"),
    )


def _emit_low_stock(low: list[LowStock]) -> None:
    for item in low:
        emit_event(
            event=LOW_STOCK_EVENT,
            resource={"prefect.resource.id": f"interchange.product.{item.sku}",
                      "prefect.resource.name": item.sku},
            payload=item.payload(),
        )


def _cell(value: Any) -> str:
    return "–" if value is None else str(value).replace("|", "\\|")


def _artifact(params: SyncInventoryParams, result: dict[str, Any], plan_: InventoryPlan,
              low: list[LowStock]) -> None:
    verb = "would set" if params.dry_run else "set"
    named = sorted((w, loc) for w, loc in plan_.locations.items()
                   if w != inventory.ANY_WAREHOUSE)
    where = [f"{w} → {loc}" for w, loc in named]
    if inventory.ANY_WAREHOUSE in plan_.locations:
        rest = "every other warehouse" if named else "all warehouses (summed)"
        where.append(f"{rest} → {plan_.locations[inventory.ANY_WAREHOUSE]}")
    lines = [
        f"# Inventory sync{' — dry run, nothing written' if params.dry_run else ''}",
        "",
        f"ERP warehouses → Shopify locations: {'; '.join(where)}",
        "",
        "| levels to set | applied | in sync | matched SKUs | ERP SKUs not in Shopify | "
        "Shopify SKUs not in ERP | ambiguous SKUs | held back SKUs | low stock SKUs |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {result['changes']} | {result['applied']} | {result['in_sync']} | "
        f"{result['matched_skus']} | {result['unmatched_erp_skus']} | "
        f"{result['unmatched_shopify_skus']} | {result['ambiguous_skus']} | "
        f"{result['held_back_skus']} | {result['low_stock']} |",
        "",
    ]
    if plan_.changes:
        lines += [f"## Levels Interchange {verb}", "",
                  "| SKU | inventory item | location | Shopify had | ERP says |",
                  "|---|---|---|---|---|"]
        lines += [f"| {_cell(c.sku)} | {c.inventory_item_id} | {c.location_id} | "
                  f"{_cell(c.before)} | {c.after} |" for c in plan_.changes[:ARTIFACT_ROWS]]
        if len(plan_.changes) > ARTIFACT_ROWS:
            lines.append(f"\n… and {len(plan_.changes) - ARTIFACT_ROWS} more.")
        lines.append("")
    if result.get("mismatched"):
        lines += [f"**{result['mismatched']} levels did not read back as set** (a sale in "
                  "between, or a write the shop refused).", ""]
    for title, bucket in (("ERP SKUs not in Shopify", plan_.unmatched_erp),
                          ("Shopify SKUs not in the ERP", plan_.unmatched_shopify),
                          ("SKUs on several Shopify variants (left alone)", plan_.ambiguous),
                          ("SKUs held back (an ERP stock row is quarantined)",
                           plan_.held_back)):
        if bucket["count"]:
            more = bucket["count"] - len(bucket["sample"])
            lines += [f"## {title}: {bucket['count']}", "",
                      ", ".join(_cell(s) for s in bucket["sample"])
                      + (f" … and {more} more" if more else ""), ""]
    if low:
        lines += [f"## Below the reorder point: {len(low)}", "",
                  "| SKU | ERP stock | reorder point |", "|---|---|---|"]
        lines += [f"| {_cell(x.sku)} | {x.quantity} | {x.reorder_point} |"
                  for x in low[:ARTIFACT_ROWS]]
    create_markdown_artifact(
        key="sync-inventory-summary",
        markdown="\n".join(lines),
        description="Stock levels set (or to set) in Shopify from the ERP",
    )


# Counts only (no record data, no secrets): kept so `make up` and callers can read them.
@flow(name="sync-inventory", log_prints=False, persist_result=True)
def sync_inventory(params: SyncInventoryParams = SyncInventoryParams()) -> dict[str, Any]:
    """Set Shopify's stock to the ERP's where they differ; returns counts (no record
    data, no secrets)."""
    logger = get_run_logger()
    migrate()
    catalog = read_catalog()
    locations = _locations(params, catalog)
    plan_ = plan(quote(catalog), locations, params.skus)
    low = find_low_stock(params.reorder_point, params.reorder_points, params.skus)
    result: dict[str, Any] = {"dry_run": params.dry_run, **plan_.counts(), "applied": 0,
                              "mismatched": 0, "low_stock": len(low)}
    if not params.dry_run:
        size = params.batch_size
        batches = [plan_.changes[i : i + size] for i in range(0, len(plan_.changes), size)]
        for number, batch in enumerate(batches, 1):
            # One batch at a time: the shop's rate limit is the bottleneck anyway.
            result["applied"] += apply_batch(number, quote(batch)).applied
        if plan_.changes:
            result["mismatched"] = len(verify(quote(plan_.changes)))
        if result["mismatched"]:
            logger.warning("%d levels did not read back as set", result["mismatched"])
        _emit_low_stock(low)
    logger.info("inventory sync: %s", result)
    _artifact(params, result, plan_, low)
    return result


if __name__ == "__main__":
    sync_inventory()
