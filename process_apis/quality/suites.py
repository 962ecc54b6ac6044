"""Great Expectations suites for canonical entities, validated per batch.

One ephemeral GX context per process (building one costs far more than a
validation); one suite per entity. A validation call costs about 45 ms plus the
rows, so the pipeline validates a batch of mapped records at once, then maps every
unexpected row index back to its record: each failing record is quarantined with the
expectations it broke, and the batch passes or fails against its threshold.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

log = logging.getLogger("interchange.quality")

E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOMAIN = r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+$"

_lock = threading.Lock()


def _suites() -> dict[str, list[Any]]:
    import great_expectations as gx

    from process_apis.canonical.models import PaymentKind

    ex = gx.expectations
    # Presence and types are already guaranteed by the canonical pydantic views and
    # code lists by the rules (pycountry); the suites check the output's shape: unique
    # within the batch, formats, ranges. Code lists as GX value sets were measured at
    # ~40% of a sync's CPU (GX re-serialises the set on every call), so formats here.
    return {
        "customer": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL),
            ex.ExpectColumnValuesToMatchRegex(column="phone", regex=E164),
            ex.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$"),
        ],
        "payment": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToBeBetween(column="amount_minor", min_value=0),
            ex.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
            ex.ExpectColumnValuesToBeInSet(column="kind", value_set=[k.value for k in PaymentKind]),
        ],
        "company": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToMatchRegex(column="domain", regex=DOMAIN),
            ex.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$"),
        ],
        "product": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToBeBetween(column="price_minor", min_value=0),
            ex.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
        ],
        "order": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToBeBetween(column="total_minor", min_value=0),
            ex.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
            ex.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL),
        ],
        "inventory_level": [
            ex.ExpectColumnValuesToBeUnique(column="source_id"),
            ex.ExpectColumnValuesToNotBeNull(column="location"),
        ],
    }


@functools.cache
def _context() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # no per-run chatter
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("interchange_batches")
    batch_defs: dict[str, Any] = {}
    suites: dict[str, Any] = {}
    for entity, expectations in _suites().items():
        asset = source.add_dataframe_asset(entity)
        batch_defs[entity] = asset.add_batch_definition_whole_dataframe(f"{entity}_batch")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{entity}_suite"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        suites[entity] = suite
    return ctx, batch_defs, suites


@functools.cache
def _columns(entity: str) -> tuple[str, ...]:
    """Only the columns the entity's suite looks at go into the DataFrame."""
    return tuple(dict.fromkeys(e.column for e in _suites()[entity]))


@dataclass
class BatchReport:
    entity: str
    checked: int
    failures: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def failed_ratio(self) -> float:
        return self.failed / self.checked if self.checked else 0.0


def validate_batch(entity: str, records: list[BaseModel]) -> BatchReport:
    """Validate mapped records of one entity; return the failures by record index."""
    report = BatchReport(entity=entity, checked=len(records))
    if not records:
        return report
    import pandas as pd

    columns = _columns(entity)
    df = pd.DataFrame({c: [getattr(r, c) for r in records] for c in columns})
    with _lock:  # GX contexts are not thread-safe
        _, batch_defs, suites = _context()
        result = (
            batch_defs[entity]
            .get_batch(batch_parameters={"dataframe": df})
            .validate(suites[entity], result_format={"result_format": "COMPLETE"})
        )
    for res in result.results:
        if res.success:
            continue
        cfg = res.expectation_config
        column = cfg.kwargs.get("column")
        indexes = (res.result or {}).get("unexpected_index_list")
        if indexes is None:  # an expectation that failed for the batch as a whole
            indexes = range(len(records))
        for index in indexes:
            report.failures.setdefault(int(index), []).append(
                {"rule": f"gx.{cfg.type}", "column": column,
                 "message": f"{column} failed {cfg.type}"}
            )
    return report
