"""``reconcile-orders``: order-to-cash - Shopify orders against Stripe payments.

Runs nightly and after the commerce and Stripe syncs complete, and on demand from the
UI. Matching, categories and the mismatch rate live in
:mod:`process_apis.reconciliation`; this wires it into a deployment with a form, a
table artifact of the problems (capped; the full list is the CSV export), a markdown
summary, and - through the task - the ``interchange.reconciliation.mismatch`` event
that the alert automation reacts to.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, Field, model_validator

from interchange.store import migrate
from process_apis.reconciliation import CATEGORIES, reconcile_task


class ReconcileParams(BaseModel):
    """What to reconcile. The Prefect UI renders this as the run form."""

    window_hours: int = Field(
        72, ge=1, le=24 * 31,
        description="A payment without an order reference matches an order of the same "
        "customer, amount and currency placed at most this many hours before or after it.",
    )
    mismatch_threshold: float = Field(
        0.05, ge=0, le=1,
        description="Alert (event interchange.reconciliation.mismatch) when problems / "
        "orders considered is above this (0.05 = 5 %).",
    )
    since: dt.date | None = Field(
        None, description="Only orders placed and payments made on or after this day (UTC). "
        "Empty: from the beginning.",
    )
    until: dt.date | None = Field(
        None, description="Only orders placed and payments made on or before this day (UTC). "
        "Empty: up to now.",
    )
    artifact_rows: int = Field(
        200, ge=10, le=1000,
        description="Problems listed in the table artifact; the CSV export has them all.",
    )

    @model_validator(mode="after")
    def _range(self) -> ReconcileParams:
        if self.since and self.until and self.until < self.since:
            raise ValueError("until must be on or after since")
        return self

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``[since 00:00 UTC, the day after until 00:00 UTC)``."""
        def midnight(day: dt.date) -> dt.datetime:
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

        return (midnight(self.since) if self.since else None,
                midnight(self.until) + dt.timedelta(days=1) if self.until else None)


def _summary(params: ReconcileParams, out: dict[str, Any]) -> str:
    c = out["counts"]
    period = f"{params.since or 'the beginning'} to {params.until or 'now'}"
    lines = [
        "# Order-to-cash reconciliation",
        "",
        f"Orders placed and payments made from {period}; time window "
        f"{params.window_hours} h.",
        "",
        f"**Mismatch rate {c['mismatch_rate']:.2%}** ({c['problems']} problems / "
        f"{c['orders_considered']} orders considered; threshold "
        f"{out['threshold']:.2%}){' — alert raised' if out['alerted'] else ''}.",
        "",
        "| category | count |",
        "|---|---|",
        *(f"| {name} | {c.get(name, 0)} |" for name in CATEGORIES),
        "",
        "| | |",
        "|---|---|",
        f"| orders | {c['orders']} |",
        f"| orders without payment, none due (pending, cancelled …) | {c['orders_not_due']} |",
        f"| payments | {c['payments']} |",
        f"| payments not settled (failed, pending …) | {c['payments_not_settled']} |",
        f"| refunds | {c['refunds']} |",
        f"| refunds of matched orders | {c['refunds_matched']} |",
        f"| refunds not judged (charge outside the range) | {c['refunds_unjudged']} |",
        "",
        f"Every finding: `{out['export']}`",
    ]
    return "\n".join(lines)


# Counts only (no record data, no secrets): kept so `make up` and callers can read them.
@flow(name="reconcile-orders", log_prints=False, persist_result=True)
def reconcile_orders(params: ReconcileParams = ReconcileParams()) -> dict[str, Any]:
    """Match orders to payments; returns counts, the rate and the CSV path (no record
    data beyond ids and amounts)."""
    migrate()
    since, until = params.bounds()
    out = reconcile_task(window_hours=params.window_hours, threshold=params.mismatch_threshold,
                         since=since, until=until, sample=params.artifact_rows)  # fmt: skip
    counts = out["counts"]
    get_run_logger().info("order-to-cash: rate %.4f, %s", counts["mismatch_rate"], counts)
    rows = out["sample"]
    shown = f"{len(rows)} of {counts['problems']}" if counts["problems"] > len(rows) else "all"
    create_table_artifact(
        key="reconciliation-findings",
        table=rows or [{"category": "none", "detail": "no problems found"}],
        description=f"Order-to-cash problems ({shown}); every finding is in {out['export']}",
    )
    create_markdown_artifact(
        key="reconciliation-summary",
        markdown=_summary(params, out),
        description="Order-to-cash: counts per category and the mismatch rate",
    )
    return {**counts, "threshold": out["threshold"], "alerted": out["alerted"],
            "export": out["export"]}  # fmt: skip


if __name__ == "__main__":
    reconcile_orders()
