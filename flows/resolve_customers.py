"""``resolve-customers``: the customer 360 - match every source customer into golden ones.

Runs after the syncs (every 15 minutes, and whenever a sync-* run completes), and on
demand from the UI. Matching, stable ids and survivorship live in
:mod:`process_apis.identity`; this wires it into a deployment, an artifact and the
domain events ``interchange.customer.created/updated/merged``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from interchange.store import migrate
from process_apis.identity import resolve_task


# Counts only (no record data, no secrets): kept so `make up` and callers can read them.
@flow(name="resolve-customers", persist_result=True)
def resolve_customers() -> dict[str, Any]:
    """Resolve identities across sources; returns counts (ids and counts only)."""
    migrate()
    counts = resolve_task()
    get_run_logger().info("customer 360: %s", counts)
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items() if k != "by_match")
    matched = ", ".join(f"{k}: {v}" for k, v in sorted(counts["by_match"].items()))
    create_markdown_artifact(
        key="customer-360-summary",
        markdown=f"# Customer 360\n\n| | |\n|---|---|\n{rows}\n\nSource records matched "
                 f"by: {matched or 'none'}\n",
        description="Golden customers created, updated and merged",
    )
    return counts


if __name__ == "__main__":
    resolve_customers()
