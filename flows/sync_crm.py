"""``sync-crm``: HubSpot contacts and companies into the canonical hub.

The wiring only: the sync engine (:mod:`flows.engine`) runs extract -> process ->
load per batch; the HubSpot adapter (:mod:`flows.adapters`) knows the system API.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from prefect import flow
from pydantic import Field

from flows.engine import SyncMode, SyncParamsBase, run_sync

SOURCE = "hubspot"
__all__ = ["CrmStream", "SyncCrmParams", "SyncMode", "sync_crm"]


class CrmStream(StrEnum):
    contacts = "contacts"
    companies = "companies"


class SyncCrmParams(SyncParamsBase):
    """What to sync from the CRM. Rendered by the Prefect UI as the run form."""

    streams: list[CrmStream] = Field(
        default_factory=lambda: list(CrmStream),
        description="Which HubSpot object types to sync (read concurrently).",
    )


@flow(name="sync-crm", log_prints=False)
def sync_crm(params: SyncCrmParams = SyncCrmParams()) -> dict[str, Any]:
    """Sync HubSpot into the hub; returns per-stream counts (no record data, no secrets)."""
    return run_sync(SOURCE, [s.value for s in CrmStream if s in params.streams], params)


if __name__ == "__main__":
    sync_crm()
