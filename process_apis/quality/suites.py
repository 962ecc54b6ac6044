"""Great Expectations suites for canonical entities, validated per batch.

The suites are built from :data:`process_apis.quality.expectations.EXPECTATIONS` (the
one place the checks are written down). One ephemeral GX context per process
(building one costs far more than a validation); one suite per entity, plus one per
nested collection (order lines). A validation call costs a fixed ~40 ms per
expectation plus the rows, so the pipeline validates a batch of mapped records at
once, then maps every unexpected row index back to its record: each failing record is
quarantined with the expectations it broke, and the batch passes or fails against
its threshold.

"Not in the future" compares epoch seconds with a suite parameter computed at
validation time (now + ``INTERCHANGE_CLOCK_SKEW_SECONDS``), so the cached suites
never go stale.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from process_apis.quality.expectations import (
    DOMAIN,
    E164,
    EMAIL,
    EXPECTATIONS,
    NOT_AFTER,
    PRESENT,
    Expectation,
)

log = logging.getLogger("interchange.quality")

__all__ = ["DOMAIN", "E164", "EMAIL", "BatchReport", "validate_batch"]

_lock = threading.Lock()


def _gx(exp: Expectation) -> Any:
    import great_expectations as gx

    from process_apis.quality.expectations import describe

    ex = gx.expectations
    meta = {"name": exp.name, "expected": describe(exp)}
    if exp.kind == "required":
        # GX map expectations skip nulls: _frame turns a null here into "" so one
        # regex catches missing and blank identifiers alike.
        return ex.ExpectColumnValuesToMatchRegex(column=exp.column, regex=PRESENT, meta=meta)
    if exp.kind == "unique":
        return ex.ExpectCompoundColumnsToBeUnique(column_list=list(exp.columns), meta=meta)
    if exp.kind == "regex":
        return ex.ExpectColumnValuesToMatchRegex(column=exp.column, regex=exp.arg, meta=meta)
    if exp.kind == "min":
        return ex.ExpectColumnValuesToBeBetween(column=exp.column, min_value=exp.arg, meta=meta)
    if exp.kind == "in_set":
        return ex.ExpectColumnValuesToBeInSet(column=exp.column, value_set=list(exp.arg),
                                              meta=meta)
    if exp.kind == "not_future":
        return ex.ExpectColumnValuesToBeBetween(column=exp.column,
                                                max_value={"$PARAMETER": NOT_AFTER}, meta=meta)
    raise ValueError(f"unknown expectation kind {exp.kind!r}")


def _suite_specs() -> dict[str, tuple[Expectation, ...]]:
    """Suite name -> expectations: one per entity, one per nested collection."""
    specs: dict[str, tuple[Expectation, ...]] = {}
    for entity, checks in EXPECTATIONS.items():
        specs[entity] = checks.gx
        for child, expectations in checks.children.items():
            specs[f"{entity}.{child}"] = expectations
    return specs


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
    for name, expectations in _suite_specs().items():
        asset = source.add_dataframe_asset(name.replace(".", "_"))
        batch_defs[name] = asset.add_batch_definition_whole_dataframe(f"{asset.name}_batch")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{asset.name}_suite"))
        for expectation in expectations:
            suite.add_expectation(_gx(expectation))
        suites[name] = suite
    return ctx, batch_defs, suites


@functools.cache
def _columns(suite: str) -> tuple[str, ...]:
    """Only the columns the suite looks at go into the DataFrame."""
    return tuple(dict.fromkeys(c for e in _suite_specs()[suite] for c in e.columns))


@functools.cache
def _time_columns(suite: str) -> frozenset[str]:
    return frozenset(e.column for e in _suite_specs()[suite] if e.kind == "not_future")


@functools.cache
def _required_columns(suite: str) -> frozenset[str]:
    return frozenset(e.column for e in _suite_specs()[suite] if e.kind == "required")


@dataclass
class BatchReport:
    entity: str
    checked: int
    failures: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def failed_ratio(self) -> float:
        return self.failed / self.checked if self.checked else 0.0


def clock_skew_seconds() -> float:
    from interchange.settings import get_settings

    return float(get_settings().clock_skew_seconds)


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, dt.datetime) else value


def _frame(suite: str, rows: list[Any]) -> Any:
    import pandas as pd

    times, required = _time_columns(suite), _required_columns(suite)
    data: dict[str, list[Any]] = {}
    for column in _columns(suite):
        values = [getattr(r, column) for r in rows]
        if column in times:  # epoch seconds: one float column, no tz-aware dtype surprises
            values = [_epoch(v) for v in values]
        elif column in required:
            values = ["" if v is None else v for v in values]
        data[column] = values
    return pd.DataFrame(data)


def _run_suite(suite: str, rows: list[Any], now: float) -> list[tuple[int, dict[str, Any]]]:
    """(row index, failure) for every unexpected value of the suite's expectations."""
    df = _frame(suite, rows)
    params = {NOT_AFTER: now + clock_skew_seconds()}
    with _lock:  # GX contexts are not thread-safe
        _, batch_defs, suites = _context()
        result = (
            batch_defs[suite]
            .get_batch(batch_parameters={"dataframe": df})
            .validate(suites[suite], result_format={"result_format": "COMPLETE"},
                      expectation_parameters=params)
        )
    out: list[tuple[int, dict[str, Any]]] = []
    for res in result.results:
        if res.success:
            continue
        cfg = res.expectation_config
        name = (cfg.meta or {}).get("name") or cfg.type
        columns = cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list") or ())
        indexes = (res.result or {}).get("unexpected_index_list")
        if indexes is None:  # an expectation that failed for the batch as a whole
            indexes = range(len(rows))
        for index in indexes:
            index = index["index"] if isinstance(index, dict) else index
            expected = (cfg.meta or {}).get("expected", "")
            out.append((int(index), {"rule": f"gx.{cfg.type}", "check": name,
                                     "column": columns,
                                     "message": f"{columns}: expected {expected}"}))
    return out


def validate_batch(entity: str, records: list[BaseModel], *,
                   now: float | None = None) -> BatchReport:
    """Validate mapped records of one entity; return the failures by record index.

    ``now`` (epoch seconds) is the reference for "not in the future" (default: the
    clock at validation time).
    """
    report = BatchReport(entity=entity, checked=len(records))
    if not records:
        return report
    started = time.perf_counter()
    now = time.time() if now is None else now
    if entity not in EXPECTATIONS:
        raise ValueError(f"no expectations for entity {entity!r}")
    for index, failure in _run_suite(entity, records, now):
        report.failures.setdefault(index, []).append(failure)
    for child in EXPECTATIONS[entity].children:
        owners: list[int] = []
        rows: list[Any] = []
        for index, record in enumerate(records):
            for row in getattr(record, child):
                owners.append(index)
                rows.append(row)
        if not rows:
            continue
        for row_index, failure in _run_suite(f"{entity}.{child}", rows, now):
            # A bad line quarantines its order (lines are replaced with the order).
            line = rows[row_index]
            failure = {**failure, "message": f"line {line.source_id}: {failure['message']}"}
            failures = report.failures.setdefault(owners[row_index], [])
            if failure not in failures:
                failures.append(failure)
    report.seconds = time.perf_counter() - started
    return report
