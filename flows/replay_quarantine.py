"""``replay-quarantine``: land quarantined records after a fix at the source or in a rule."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from interchange.store import migrate
from process_apis.replay import replay_quarantine as replay


class ReplayParams(BaseModel):
    """Which quarantined records to replay. Rendered as the run form in the Prefect UI."""

    source: str | None = Field(
        "stripe", description="Source whose quarantine to replay (empty: every source).")
    entity: str | None = Field(
        None, description="Only this canonical entity (customer, payment, company, product, "
        "order, inventory_level); empty: all.")
    refetch: bool = Field(
        True,
        description="Re-read each record from the source first (the record was fixed "
        "there; sources that cannot re-read replay the stored payload). Off: re-run the "
        "stored payload through the current rules.",
    )
    ids: list[int] = Field(default_factory=list,
                           description="Only these quarantine ids (empty: all open ones).")


@flow(name="replay-quarantine")
def replay_quarantine(params: ReplayParams = ReplayParams()) -> dict[str, Any]:
    migrate()
    result = replay(params.source or None, refetch=params.refetch, ids=params.ids or None,
                    entity=params.entity or None)
    get_run_logger().info("replay: %s", {k: v for k, v in result.items() if k != "by_source"})
    return result
