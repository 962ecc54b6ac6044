"""The sync engine every ``sync-*`` flow runs: extract -> process -> load per batch.

extract (a source's system API, a batch of pages) -> process (map + Great
Expectations) -> load (hub upsert + quarantine + checkpoint), one Prefect task each
per batch of pages. Streams of a source are extracted concurrently, one batch in
flight each; processing runs on the flow thread; loads run in the background, in
order and serialised per source. A source plugs in through a :class:`SourceAdapter`.

Secrets never pass through here: the extract task opens the source's client, which
reads its credentials from Vault itself, and no task that touches a secret persists
its result.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prefect import get_run_logger, task
from prefect import settings as prefect_settings
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import as_completed
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field, field_validator

from interchange.errors import (
    ConfigError,
    DataQualityError,
    SourceClientError,
    SourceNotFound,
    StoreError,
)
from interchange.runtime import retry_if_retryable
from interchange.settings import get_settings, get_source
from interchange.store import migrate, session_scope
from process_apis import events, hub, pipeline
from process_apis.quality import RunQuality, referential

# What a dead resume cursor looks like: undecodable (ConfigError) or refused.
UNRESUMABLE = (ConfigError, SourceNotFound, SourceClientError)


class SyncMode(StrEnum):
    incremental = "incremental"
    full = "full"


class SyncParamsBase(BaseModel):
    """What to sync. Each flow adds its ``streams`` list; the UI renders the form."""

    mode: SyncMode = Field(
        SyncMode.incremental,
        description="incremental: only what changed since the last run (falls back to full "
        "on the first run); full: re-read every object.",
    )
    page_size: int | None = Field(
        None, ge=1, le=250,
        description="Objects per page (default: page_size in sources.yaml); the source's "
        "own maximum applies (Stripe and HubSpot 100, Shopify 250).",
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
    name="extract-batch",
    task_run_name="extract-{source}-{stream}",
    retries=3,
    retry_delay_seconds=[1, 5, 15],
    retry_condition_fn=retry_if_retryable,
    persist_result=False,  # this task holds a client with a secret: never persist
    cache_policy=NO_CACHE,
)
def extract_batch(
    source: str, stream: str, mode: str, cursor: str | None, since: int | None,
    page_size: int, max_pages: int,
) -> Extracted:
    from flows.adapters import adapter_for

    adapter = adapter_for(source)
    config = get_source(source)
    out = Extracted(cursor=cursor)
    with adapter.open_client(config) as client:
        pages = adapter.read_stream(
            client, stream, mode=mode, cursor=cursor,
            since=adapter.since_arg(since) if since is not None else None,
            page_size=page_size, **adapter.read_kwargs(config, stream),
        )
        for page in pages:
            out.records.extend(page.records)
            out.cursor, out.has_more = page.cursor, page.has_more
            mark = adapter.high_water_epoch(page.high_water)
            if mark is not None:
                out.high_water = max(out.high_water or 0, mark)
            out.pages += 1
            if out.pages >= max_pages or not page.has_more:
                break
        out.http = adapter.stats(client)
    if out.records:
        _, out.fields = adapter.fingerprint(out.records)
    return out


@task(name="process-batch", task_run_name="process-{source}-{stream}",
      persist_result=False, cache_policy=NO_CACHE)
def process_batch(
    source: str, stream: str, records: list[dict[str, Any]], region: str
) -> pipeline.Processed:
    return pipeline.process_batch(source, stream, records, default_region=region)


@task(
    name="load-batch",
    task_run_name="load-{processed.source}-{processed.stream}",
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=retry_if_retryable,
    persist_result=False,
    cache_policy=NO_CACHE,
)
def load_batch(
    processed: pipeline.Processed, mode: str, batch: Extracted, max_invalid_ratio: float
) -> pipeline.BatchOutcome:
    outcome = pipeline.load_batch(
        processed, mode=mode, cursor=batch.cursor, high_water=batch.high_water,
        pages=batch.pages, max_invalid_ratio=max_invalid_ratio,
    )
    events.emit(events.immediate(outcome.events))  # committed: the hub can announce it
    return outcome


def _plan(
    source: str, stream: str, mode: str, lookback: int, *, restart: bool = False
) -> tuple[str, str | None, int | None, bool]:
    """(effective mode, resume cursor, since, resumed?) from watermark and checkpoint."""
    with session_scope() as session:
        watermark = hub.get_watermark(session, source, stream)
        effective = mode if (mode == SyncMode.full or watermark) else SyncMode.full
        if restart:
            hub.finish_checkpoint(session, source, stream, effective)
            session.flush()
        checkpoint = hub.get_checkpoint(session, source, stream, effective)
        resumed = checkpoint is not None
        if checkpoint is None:
            checkpoint = hub.start_checkpoint(session, source, stream, effective)
        since = max(0, int(watermark) - lookback) if effective == SyncMode.incremental else None
        return effective, checkpoint.cursor, since, resumed


def _finish(source: str, stream: str, mode: str) -> None:
    with session_scope() as session:
        checkpoint = hub.finish_checkpoint(session, source, stream, mode)
        previous = int(hub.get_watermark(session, source, stream) or 0)
        mark = 0
        if checkpoint is not None:
            # A completed read has seen everything created (full) or changed
            # (incremental) before it started; the lookback covers clock skew and
            # objects written while it ran. Without this a quiet stream's watermark
            # would stay in the past until the source's event retention ran out.
            mark = max(int(checkpoint.high_water or 0), hub.epoch(checkpoint.started_at))
        hub.set_watermark(session, source, stream, str(max(previous, mark)))


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
    stock_events: list[Any] = field(default_factory=list)  # sent once the stream is done
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


def _collect_loads(run: _StreamRun, *, keep: int, quality: RunQuality | None = None) -> None:
    """Wait for this stream's oldest loads until at most ``keep`` are unfinished.

    Loads finish in order, so the first error raised is the batch that failed. A batch
    over its quality threshold fails the run; its quality report is published first.
    """
    while len(run.loads) > keep:
        try:
            outcome = run.loads.pop(0).result()
            run.totals.add(outcome)
            run.stock_events.extend(e for e in outcome.events
                                    if e.event == events.INVENTORY_CHANGED)
        except DataQualityError as exc:
            if quality is not None:
                quality.gate_failures.append(str(exc))
                _publish_quality(quality)
            raise


def run_sync(source: str, streams: list[str], params: SyncParamsBase) -> dict[str, Any]:
    """Sync ``streams`` of ``source`` into the hub (call inside a flow); returns counts.

    Streams are extracted concurrently - each keeps one batch in flight while earlier
    batches are processed and loaded - so source latency overlaps our CPU work.
    Batches of one stream are loaded strictly in order, so its checkpoint only moves
    forward; records that arrive before what they refer to are linked at the end.
    """
    logger = get_run_logger()
    region = params.default_region or get_settings().default_region
    config = get_source(source)
    migrate()
    started = time.monotonic()
    quality = RunQuality(source)  # started_at: what the referential pass checks from

    page_size = params.page_size or config.page_size

    def extract_next(run: _StreamRun, cursor: str | None) -> Any:
        return extract_batch.submit(source, run.stream, run.mode, cursor, run.since,
                                    page_size, params.pages_per_batch)

    runs: list[_StreamRun] = []
    for stream in streams:
        mode, cursor, since, resumed = _plan(source, stream, params.mode.value,
                                             config.lookback_seconds, restart=params.restart)
        if resumed:
            logger.info("%s: resuming an interrupted %s sync from its checkpoint", stream, mode)
        run = _StreamRun(stream=stream, mode=mode, since=since, resumed=resumed)
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
            _plan(source, run.stream, run.mode, config.lookback_seconds, restart=True)
            run.restarted = True
            run.pending = extract_next(run, None)
            continue
        run.seconds["waiting_for_source"] += time.perf_counter() - mark
        run.pending = extract_next(run, batch.cursor) if batch.has_more else None
        # quote(): Prefect would otherwise walk every record of a batch looking for
        # futures (measured: ~75% of a 13k-record run went into that walk).
        mark = time.perf_counter()
        processed = process_batch(source, run.stream, quote(batch.records), region)
        run.seconds["process"] += time.perf_counter() - mark
        quality.add(processed)
        # Loads run in the background, one at a time per stream and in batch order
        # (each waits for the previous), while the next batch is being processed.
        # At most two are queued per stream, so a slow hub slows the run down
        # instead of piling batches up in memory.
        _collect_loads(run, keep=1, quality=quality)
        run.load = load_batch.submit(quote(processed), run.mode, quote(batch),
                                     params.max_invalid_ratio,
                                     wait_for=[run.load] if run.load else None)
        run.loads.append(run.load)
        run.batches += 1
        _add_http(run.http, batch.http)
        try:
            found = pipeline.check_drift(source, run.stream, batch.fields)
        except StoreError as exc:  # drift is advice: never fail a healthy run over it
            logger.warning("%s: drift check skipped: %s", run.stream, exc)
            found = None
        if found:
            logger.warning("%s: schema drift at the source: %s", run.stream, found)
            emit_event(
                event="interchange.schema.drift",
                resource={"prefect.resource.id": f"interchange.source.{source}.{run.stream}",
                          "prefect.resource.name": f"{source}/{run.stream}"},
                payload={"source": source, "stream": run.stream, **found},
            )
            for key, names in found.items():
                known = run.drift.setdefault(key, [])
                known.extend(n for n in names if n not in known)
        if run.pending is None:
            mark = time.perf_counter()
            _collect_loads(run, keep=0, quality=quality)
            run.seconds["waiting_for_loads"] = time.perf_counter() - mark
            _finish(source, run.stream, run.mode)
            events.emit(events.merge_stock(run.stock_events))  # complete stock: once
            active.remove(run)
            logger.info("%s: %s", run.stream, run.summary())

    linked = pipeline.link_orphans(source)
    if linked:
        logger.info("linked %d records to customers that landed after them", linked)
    # Referential checks need every load of the run committed (streams land in any order).
    quality.referential = referential.run_check(source, quality.started_at)
    if quality.referential.total_orphans:
        logger.warning("referential checks: %s orphans (landed, listed in the quality "
                       "report)", quality.referential.orphans)
    link = _publish_quality(quality)
    summary: dict[str, Any] = {run.stream: run.summary() for run in runs}
    summary["duration_seconds"] = round(time.monotonic() - started, 2)
    _artifact(source, summary, quality, quality_link=link)
    return summary


def _publish_quality(quality: RunQuality) -> str:
    """The run's quality report as a Prefect artifact (and a file); returns its UI link."""
    markdown = quality.markdown()
    artifact_id = create_markdown_artifact(
        key=quality.key, markdown=markdown,
        description="Records validated, passed and failed per check; referential orphans")
    try:
        quality.write(get_settings().home)
    except OSError as exc:  # the artifact is the report; the file is a convenience
        get_run_logger().warning("quality report file not written: %s", exc)
    ui = prefect_settings.get_current_settings().ui_url
    return f"{ui}/artifacts/artifact/{artifact_id}" if ui else ""


def _artifact(source: str, summary: dict[str, Any], quality: RunQuality | None = None,
              quality_link: str = "") -> None:
    rows = [
        f"| {name} | {s['mode']} | {s['read']} | {s['inserted'] + s['updated']} | "
        f"{s['unchanged']} | {s['quarantined']} | {s['http']['requests']} | "
        f"{s['http']['retries']} | {s['http']['mean_latency_ms']} |"
        for name, s in summary.items() if isinstance(s, dict)
    ]
    totals = quality.totals if quality else {}
    orphans = quality.referential.total_orphans if quality and quality.referential else 0
    create_markdown_artifact(
        # Artifact keys take lowercase letters, digits and dashes only.
        key=re.sub(r"[^a-z0-9-]+", "-", f"sync-{source}-summary".lower()),
        markdown="\n".join([
            f"# {source} sync",
            "",
            "| stream | mode | read | written | unchanged | quarantined | requests | retries "
            "| mean latency ms |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Duration: {summary['duration_seconds']} s",
            "",
            f"Data quality: {totals.get('validated', 0)} validated, "
            f"{totals.get('failed', 0)} failed a check, {orphans} referential orphans; "
            f"report: artifact `{quality.key if quality else ''}`"
            + (f" ([open]({quality_link}))" if quality_link else ""),
        ]),
        description="Records read, written and quarantined per stream",
    )

