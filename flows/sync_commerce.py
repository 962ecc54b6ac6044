"""``sync-commerce``: Shopify customers, products, orders and inventory into the hub.

The wiring only: the sync engine (:mod:`flows.engine`) runs extract -> process ->
load per batch; the Shopify adapter (:mod:`flows.adapters`) knows the system API.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow
from pydantic import Field

from flows.engine import SyncMode, SyncParamsBase, run_sync

SOURCE = "shopify"
__all__ = ["CommerceStream", "SyncCommerceParams", "SyncMode", "sync_commerce"]


class CommerceStream(StrEnum):
    customers = "customers"
    products = "products"
    orders = "orders"
    inventory_levels = "inventory_levels"


class SyncCommerceParams(SyncParamsBase):
    """What to sync from the shop. Rendered by the Prefect UI as the run form."""

    streams: list[CommerceStream] = Field(
        default_factory=lambda: list(CommerceStream),
        description="Which Shopify resources to sync (customers, products (one row per "
        "variant), orders with their lines, inventory levels; read concurrently).",
    )


@flow(name="sync-commerce", log_prints=False)
def sync_commerce(params: SyncCommerceParams = SyncCommerceParams()) -> dict[str, Any]:
    """Sync Shopify into the hub; returns per-stream counts (no record data, no secrets)."""
    return run_sync(SOURCE, [s.value for s in CommerceStream if s in params.streams], params)


if __name__ == "__main__":
    sync_commerce()
