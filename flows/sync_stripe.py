"""``sync-stripe``: Stripe customers, payments and refunds into the canonical hub.

The wiring only: the sync engine (:mod:`flows.engine`) runs extract -> process ->
load per batch; the Stripe adapter (:mod:`flows.adapters`) knows the system API.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow
from pydantic import Field

from flows.engine import SyncMode, SyncParamsBase, run_sync

SOURCE = "stripe"
__all__ = ["StripeStream", "SyncMode", "SyncStripeParams", "sync_stripe"]


class StripeStream(StrEnum):
    customers = "customers"
    payments = "payments"
    refunds = "refunds"


class SyncStripeParams(SyncParamsBase):
    """What to sync from Stripe. Rendered by the Prefect UI as the run form."""

    streams: list[StripeStream] = Field(
        default_factory=lambda: list(StripeStream),
        description="Which Stripe streams to sync (read concurrently; payments link to "
        "their customers whichever lands first).",
    )


@flow(name="sync-stripe", log_prints=False)
def sync_stripe(params: SyncStripeParams = SyncStripeParams()) -> dict[str, Any]:
    """Sync Stripe into the hub; returns per-stream counts (no record data, no secrets)."""
    return run_sync(SOURCE, [s.value for s in StripeStream if s in params.streams], params)


if __name__ == "__main__":
    sync_stripe()
