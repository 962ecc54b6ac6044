"""``sync-erp``: the legacy ERP's customers, items and stock into the canonical hub.

The wiring only: the sync engine (:mod:`flows.engine`) runs extract -> process ->
load per batch; the ERP adapter (:mod:`flows.adapters`) opens the database with
short-lived credentials from Vault's database engine (SQLite needs none).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow
from pydantic import Field

from flows.engine import SyncMode, SyncParamsBase, run_sync

SOURCE = "erp"
__all__ = ["ErpStream", "SyncErpParams", "SyncMode", "sync_erp"]


class ErpStream(StrEnum):
    customers = "customers"
    items = "items"
    stock = "stock"


class SyncErpParams(SyncParamsBase):
    """What to sync from the ERP. Rendered by the Prefect UI as the run form."""

    streams: list[ErpStream] = Field(
        default_factory=lambda: list(ErpStream),
        description="Which ERP tables to sync (customers, items, stock; read concurrently).",
    )


@flow(name="sync-erp", log_prints=False)
def sync_erp(params: SyncErpParams = SyncErpParams()) -> dict[str, Any]:
    """Sync the ERP into the hub; returns per-stream counts (no record data, no secrets)."""
    return run_sync(SOURCE, [s.value for s in ErpStream if s in params.streams], params)


if __name__ == "__main__":
    sync_erp()
