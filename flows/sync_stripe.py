"""``sync-stripe``: Stripe customers, payments and refunds into the canonical hub.

extract (system API, a batch of pages) -> process (map + Great Expectations) ->
load (hub upsert + quarantine + checkpoint), one task each per batch of pages.
Secrets never pass through here: the extract task builds its Stripe client, which
reads the key from Vault itself, and no task that touches a secret persists results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import as_completed
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field, field_validator

from interchange.errors import ConfigError, SourceClientError, SourceNotFound, StoreError
from interchange.runtime import retry_if_retryable
from interchange.settings import get_settings, get_source
from interchange.store import migrate, session_scope
from process_apis import hub, pipeline
from system_apis.stripe import streams as stripe_streams
from system_apis.stripe.client import stripe_client

SOURCE = "stripe"
# What a dead resume cursor looks like: undecodable (ConfigError) or refused.
UNRESUMABLE = (ConfigError, SourceNotFound, SourceClientError)


class StripeStream(StrEnum):
    customers = "customers"
    payments = "payments"
    refunds = "refunds"


class SyncMode(StrEnum):
    incremental = "incremental"
    full = "full"


class SyncStripeParams(BaseModel):
    """What to sync. Rendered by the Prefect UI as the run form."""

    mode: SyncMode = Field(
        SyncMode.incremental,
        description="incremental: only what changed since the last run (falls back to full "
        "on the first run); full: re-read every object.",
    )
    streams: list[StripeStream] = Field(
        default_factory=lambda: list(StripeStream),
        description="Which Stripe streams to sync (read concurrently; payments link to "
        "their customers whichever lands first).",
    )
    page_size: int | None = Field(
        None, ge=1, le=100,
        description="Objects per Stripe list page (default: page_size in sources.yaml).",
    )
    restart: bool = Field(
        False,
        description="Ignore the checkpoint of an interrupted run and read from the start.",
    )
    pages_per_batch: int = Field(
        20, ge=1, le=50, description="Pages per Prefect task (one checkpoint per batch)."
    )
    max_invalid_ratio: float = Field(
        0.25, ge=0, le=1,
        description="Fail the run when a batch has a larger share of invalid records "
        "(they are quarantined either way).",
    )
    default_region: str | None = Field(
        None, min_length=2, max_length=2,
        description="ISO 3166 region for phone numbers without a +country code "
        "(default: INTERCHANGE_DEFAULT_REGION).",
    )

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value


@dataclass
class Extracted:
    records: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    high_water: int | None = None
    has_more: bool = False
    pages: int = 0
    http: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # field set, for drift detection


@task(
    name="extract-stripe-batch",
    retries=3,
    retry_delay_seconds=[1, 5, 15],
    retry_condition_fn=retry_if_retryable,
    persist_result=False,  # this task holds a client with a secret: never persist
    cache_policy=NO_CACHE,
)
def extract_batch(
    stream: str, mode: str, cursor: str | None, since: int | None, page_size: int, max_pages: int
) -> Extracted:
    config = get_source(SOURCE)
    out = Extracted(cursor=cursor)
    with stripe_client(config) as client:
        strategies = config.options.get("incremental") or {}
        pages = stripe_streams.read_stream(
            client, stream, mode=mode, cursor=cursor, since=since, page_size=page_size,
            strategy=strategies.get(stream),
        )
        for page in pages:
            out.records.extend(page.records)
            out.cursor, out.has_more = page.cursor, page.has_more
            if page.high_water is not None:
                out.high_water = max(out.high_water or 0, page.high_water)
            out.pages += 1
            if out.pages >= max_pages or not page.has_more:
                break
        out.http = client.stats.as_dict()
    if out.records:
        _, out.fields = stripe_streams.fingerprint(out.records)
    return out


@task(name="process-batch", persist_result=False, cache_policy=NO_CACHE)
def process_batch(stream: str, records: list[dict[str, Any]], region: str) -> pipeline.Processed:
    return pipeline.process_batch(SOURCE, stream, records, default_region=region)


@task(
    name="load-batch",
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=retry_if_retryable,
    persist_result=False,
    cache_policy=NO_CACHE,
)
def load_batch(
    processed: pipeline.Processed, mode: str, batch: Extracted, max_invalid_ratio: float
) -> pipeline.BatchOutcome:
    return pipeline.load_batch(
        processed, mode=mode, cursor=batch.cursor, high_water=batch.high_water,
        pages=batch.pages, max_invalid_ratio=max_invalid_ratio,
    )


def _plan(
    stream: str, mode: str, lookback: int, *, restart: bool = False
) -> tuple[str, str | None, int | None, bool]:
    """(effective mode, resume cursor, since, resumed?) from watermark and checkpoint."""
    with session_scope() as session:
        watermark = hub.get_watermark(session, SOURCE, stream)
        effective = mode if (mode == SyncMode.full or watermark) else SyncMode.full
        if restart:
            hub.finish_checkpoint(session, SOURCE, stream, effective)
            session.flush()
        checkpoint = hub.get_checkpoint(session, SOURCE, stream, effective)
        resumed = checkpoint is not None
        if checkpoint is None:
            checkpoint = hub.start_checkpoint(session, SOURCE, stream, effective)
        since = max(0, int(watermark) - lookback) if effective == SyncMode.incremental else None
        return effective, checkpoint.cursor, since, resumed


def _finish(stream: str, mode: str) -> None:
    with session_scope() as session:
        checkpoint = hub.finish_checkpoint(session, SOURCE, stream, mode)
        previous = int(hub.get_watermark(session, SOURCE, stream) or 0)
        mark = 0
        if checkpoint is not None:
            # A completed read has seen everything created (full) or changed
            # (incremental) before it started; the lookback covers clock skew and
            # objects written while it ran. Without this a quiet stream's watermark
            # would stay in the past until the source's event retention ran out.
            mark = max(int(checkpoint.high_water or 0), hub.epoch(checkpoint.started_at))
        hub.set_watermark(session, SOURCE, stream, str(max(previous, mark)))


@dataclass
class _StreamRun:
    """One stream's progress inside a run."""

    stream: str
    mode: str
    since: int | None
    resumed: bool
    restarted: bool = False
    pending: Any = None  # the in-flight extract of this stream's next batch
    load: Any = None  # the latest load of this stream
    loads: list[Any] = field(default_factory=list)
    totals: pipeline.BatchOutcome = field(default_factory=pipeline.BatchOutcome)
    batches: int = 0
    http: dict[str, Any] = field(default_factory=lambda: {
        "requests": 0, "retries": 0, "mean_latency_ms": 0.0, "statuses": {}})
    drift: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"waiting_for_source": 0.0, "process": 0.0}
    )

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "resumed": self.resumed, "batches": self.batches,
                **self.totals.as_dict(), "http": self.http, "drift": self.drift,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def _add_http(total: dict[str, Any], batch: dict[str, Any]) -> None:
    """Fold one extract's request stats (count, retries, latency, statuses) into the run's."""
    n_before, n = total["requests"], batch.get("requests", 0)
    if n:
        total["mean_latency_ms"] = round(
            (total["mean_latency_ms"] * n_before + batch.get("mean_latency_ms", 0.0) * n)
            / (n_before + n), 2)
    total["requests"] += n
    total["retries"] += batch.get("retries", 0)
    for status, count in batch.get("statuses", {}).items():
        total["statuses"][status] = total["statuses"].get(status, 0) + count


def _collect_loads(run: _StreamRun, *, keep: int) -> None:
    """Wait for this stream's oldest loads until at most ``keep`` are unfinished.

    Loads finish in order, so the first error raised is the batch that failed.
    """
    while len(run.loads) > keep:
        run.totals.add(run.loads.pop(0).result())


@flow(name="sync-stripe", log_prints=False)
def sync_stripe(params: SyncStripeParams = SyncStripeParams()) -> dict[str, Any]:
    """Sync Stripe into the hub; returns per-stream counts (no record data, no secrets).

    Streams are extracted concurrently - each keeps one batch in flight while earlier
    batches are processed and loaded - so source latency overlaps our CPU work.
    Batches of one stream are loaded strictly in order, so its checkpoint only moves
    forward; payments that arrive before their customer are linked when it lands.
    """
    logger = get_run_logger()
    region = params.default_region or get_settings().default_region
    config = get_source(SOURCE)
    migrate()
    started = time.monotonic()

    page_size = params.page_size or config.page_size

    def extract_next(run: _StreamRun, cursor: str | None) -> Any:
        return extract_batch.submit(run.stream, run.mode, cursor, run.since,
                                    page_size, params.pages_per_batch)

    runs: list[_StreamRun] = []
    for stream in (s for s in StripeStream if s in params.streams):
        mode, cursor, since, resumed = _plan(stream.value, params.mode.value,
                                             config.lookback_seconds, restart=params.restart)
        if resumed:
            logger.info("%s: resuming an interrupted %s sync from its checkpoint", stream, mode)
        run = _StreamRun(stream=stream.value, mode=mode, since=since, resumed=resumed)
        run.pending = extract_next(run, cursor)
        runs.append(run)

    active = list(runs)
    while active:
        mark = time.perf_counter()
        ready = next(as_completed([r.pending for r in active]))
        run = next(r for r in active if r.pending is ready)
        try:
            batch = ready.result()
        except UNRESUMABLE as exc:
            if not (run.resumed and run.batches == 0 and not run.restarted):
                raise
            # The checkpoint's cursor no longer works (the object it points at is
            # gone, or the cursor format changed): start this stream over rather
            # than failing every run from now on. Upserts make the re-read harmless.
            logger.warning("%s: cannot resume from the checkpoint (%s); reading from "
                           "the start", run.stream, type(exc).__name__)
            _plan(run.stream, run.mode, config.lookback_seconds, restart=True)
            run.restarted = True
            run.pending = extract_next(run, None)
            continue
        run.seconds["waiting_for_source"] += time.perf_counter() - mark
        run.pending = extract_next(run, batch.cursor) if batch.has_more else None
        # quote(): Prefect would otherwise walk every record of a batch looking for
        # futures (measured: ~75% of a 13k-record run went into that walk).
        mark = time.perf_counter()
        processed = process_batch(run.stream, quote(batch.records), region)
        run.seconds["process"] += time.perf_counter() - mark
        # Loads run in the background, one at a time per stream and in batch order
        # (each waits for the previous), while the next batch is being processed.
        # At most two are queued per stream, so a slow hub slows the run down
        # instead of piling batches up in memory.
        _collect_loads(run, keep=1)
        run.load = load_batch.submit(quote(processed), run.mode, quote(batch),
                                     params.max_invalid_ratio,
                                     wait_for=[run.load] if run.load else None)
        run.loads.append(run.load)
        run.batches += 1
        _add_http(run.http, batch.http)
        try:
            found = pipeline.check_drift(SOURCE, run.stream, batch.fields)
        except StoreError as exc:  # drift is advice: never fail a healthy run over it
            logger.warning("%s: drift check skipped: %s", run.stream, exc)
            found = None
        if found:
            logger.warning("%s: schema drift at the source: %s", run.stream, found)
            emit_event(
                event="interchange.schema.drift",
                resource={"prefect.resource.id": f"interchange.source.{SOURCE}.{run.stream}",
                          "prefect.resource.name": f"{SOURCE}/{run.stream}"},
                payload={"source": SOURCE, "stream": run.stream, **found},
            )
            for key, names in found.items():
                known = run.drift.setdefault(key, [])
                known.extend(n for n in names if n not in known)
        if run.pending is None:
            mark = time.perf_counter()
            _collect_loads(run, keep=0)
            run.seconds["waiting_for_loads"] = time.perf_counter() - mark
            _finish(run.stream, run.mode)
            active.remove(run)
            logger.info("%s: %s", run.stream, run.summary())

    linked = pipeline.link_orphans(SOURCE)
    if linked:
        logger.info("linked %d payments to customers that landed after them", linked)
    summary: dict[str, Any] = {run.stream: run.summary() for run in runs}
    summary["duration_seconds"] = round(time.monotonic() - started, 2)
    _artifact(summary)
    return summary


def _artifact(summary: dict[str, Any]) -> None:
    rows = [
        f"| {name} | {s['mode']} | {s['read']} | {s['inserted'] + s['updated']} | "
        f"{s['unchanged']} | {s['quarantined']} | {s['http']['requests']} | "
        f"{s['http']['retries']} | {s['http']['mean_latency_ms']} |"
        for name, s in summary.items() if isinstance(s, dict)
    ]
    create_markdown_artifact(
        key="sync-stripe-summary",
        markdown="\n".join([
            "# Stripe sync",
            "",
            "| stream | mode | read | written | unchanged | quarantined | requests | retries "
            "| mean latency ms |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Duration: {summary['duration_seconds']} s",
        ]),
        description="Records read, written and quarantined per stream",
    )


if __name__ == "__main__":
    sync_stripe()
