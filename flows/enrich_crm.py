"""``enrich-crm``: lifetime value, order count and last order date onto HubSpot contacts.

Runs after ``resolve-customers`` completes (golden customers are what it pushes), hourly,
and on demand from the UI. The metrics, the currency policy and the "only what changed"
state live in :mod:`process_apis.enrichment`; this walks the golden customers chunk by
chunk (one task each), stops at the first failed HubSpot call, and leaves a summary
artifact. A run with failures ends Failed (after the artifact), so alerts see it; what
failed was not recorded as pushed and goes out with the next run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field, field_validator

from interchange.errors import InterchangeError
from interchange.store import migrate
from process_apis.enrichment import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CURRENCY,
    PROPERTIES,
    enrich_chunk_task,
    ensure_properties_task,
    prune_state_task,
    total,
)

__all__ = ["EnrichCrmParams", "EnrichmentFailed", "enrich_crm"]


class EnrichmentFailed(InterchangeError):
    """Some contacts could not be pushed (they are sent again by the next run)."""


class EnrichCrmParams(BaseModel):
    """What to push to the CRM. The Prefect UI renders this as the run form."""

    dry_run: bool = Field(
        False, description="Compute and compare only: report what would be sent, send "
        "nothing to HubSpot and record nothing.",
    )
    limit: int | None = Field(
        None, ge=0,
        description="Push at most this many contacts in this run (e.g. a first backfill "
        "in slices); the others are sent by the next runs. Empty: no limit.",
    )
    reporting_currency: str = Field(
        DEFAULT_CURRENCY, min_length=3, max_length=3, pattern="^[A-Za-z]{3}$",
        description="ISO 4217 currency of the lifetime value. Customers with payments in "
        "another currency get an empty lifetime value (nothing is converted).",
    )
    create_properties: bool = Field(
        True, description="First create the three contact properties in HubSpot where "
        "missing (HubSpot refuses values of properties that do not exist; needs the "
        "crm.schemas.contacts.write scope). Off when they are managed elsewhere.",
    )
    chunk_size: int = Field(
        DEFAULT_CHUNK_SIZE, ge=100, le=10_000,
        description="Golden customers computed per task.",
    )

    @field_validator("reporting_currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


def _summary(params: EnrichCrmParams, counts: dict[str, Any]) -> str:
    mode = "dry run: nothing sent" if params.dry_run else "pushed to HubSpot"
    rows = "\n".join(f"| {k} | {counts[k]} |" for k in (
        "computed", "changed", "pushed", "unchanged", "skipped_no_email",
        "skipped_no_activity", "ltv_other_currency", "failed", "deferred", "batches",
        "created", "requests"))  # fmt: skip
    props = ", ".join(f"{k}: {v}" for k, v in counts["changed_properties"].items())
    errors = "; ".join(counts["errors"]) or "none"
    return (f"# CRM enrichment ({mode})\n\nProperties {', '.join(PROPERTIES)}; lifetime "
            f"value in {params.reporting_currency}.\n\n| | |\n|---|---|\n{rows}\n\n"
            f"Changed property values: {props or 'none'}\n\nErrors: {errors}\n")


@flow(name="enrich-crm")
def enrich_crm(params: EnrichCrmParams = EnrichCrmParams()) -> dict[str, Any]:
    """Push changed customer metrics to HubSpot; returns counts (no personal data)."""
    migrate()
    logger = get_run_logger()
    if params.create_properties and not params.dry_run:
        logger.info("hubspot properties: %s", ensure_properties_task())
    pruned = 0 if params.dry_run else prune_state_task()
    results: list[dict[str, Any]] = []
    after: str | None = None
    budget = params.limit
    while True:
        chunk = enrich_chunk_task(after, chunk_size=params.chunk_size,
                                  currency=params.reporting_currency,
                                  dry_run=params.dry_run, budget=budget)  # fmt: skip
        results.append(chunk)
        if budget is not None:
            # what this chunk sent (or, in a dry run, would send)
            budget = max(0, budget - (chunk["changed"] - chunk["deferred"]))
        after = chunk["next_after"]
        if after is None or chunk["aborted"]:
            break
    counts = total(results)
    counts["pruned"] = pruned
    counts["dry_run"] = params.dry_run
    logger.info("crm enrichment: %s", {k: v for k, v in counts.items()
                                       if k != "changed_properties"})  # fmt: skip
    create_markdown_artifact(key="crm-enrichment-summary", markdown=_summary(params, counts),
                             description="Customer metrics pushed to HubSpot")  # fmt: skip
    if counts["failed"]:
        raise EnrichmentFailed(f"{counts['failed']} contact(s) not pushed "
                               f"({'; '.join(counts['errors']) or 'per-record errors'}); "
                               "they are sent again by the next run")  # fmt: skip
    return counts


if __name__ == "__main__":
    enrich_crm()
