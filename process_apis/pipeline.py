"""Process and load one batch of source records: map -> validate -> quarantine -> upsert.

The flow hands this layer raw source records a batch at a time. ``process_batch`` is
pure computation (mapping rules + the entity's Great Expectations suite);
``load_batch`` is one hub transaction that writes the good records, the quarantine
rows and the stream checkpoint together.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from interchange.errors import ConfigError, DataQualityError
from interchange.settings import get_source
from interchange.store import session_scope
from process_apis import events, hub
from process_apis.canonical.views import CanonicalCustomer
from process_apis.events import DomainEvent
from process_apis.mapping import erp as erp_mapping
from process_apis.mapping import hubspot as hubspot_mapping
from process_apis.mapping import rest as rest_mapping
from process_apis.mapping import shopify as shopify_mapping
from process_apis.mapping import stripe as stripe_mapping
from process_apis.mapping.base import MapResult, Rejected
from process_apis.quality import validate_batch

MAPPERS = {"stripe": stripe_mapping, "hubspot": hubspot_mapping, "erp": erp_mapping,
           "shopify": shopify_mapping}

# One hub write per source at a time within a process: a payments load that looked
# up customers before a concurrent customers load committed would miss the link.
# Loads are short transactions; serialising them costs little next to mapping.
_load_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass
class Processed:
    source: str
    stream: str
    entity: str
    read: int
    records: list[Any] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def invalid_ratio(self) -> float:
        return len(self.rejected) / self.read if self.read else 0.0


@dataclass
class BatchOutcome:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    resolved: int = 0
    # Domain events of this load, sent by the caller after the commit (not counted).
    events: list[DomainEvent] = field(default_factory=list, repr=False, compare=False)

    def add(self, other: BatchOutcome) -> None:
        for key, value in other.as_dict().items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "events"}


def mapper_for(source: str) -> Any:
    """The source's mapping: its module, or, for a declarative ``kind: rest`` source, the
    mapping its sources.yaml entry describes."""
    module = MAPPERS.get(source)
    if module is not None:
        return module
    try:
        config = get_source(source)
    except ConfigError as exc:
        raise ValueError(f"no mapping for source {source!r}: {exc}") from exc
    if config.kind == "rest":
        return rest_mapping.for_source(config)
    raise ValueError(f"no mapping for source {source!r}")


def entity_of(source: str, stream: str) -> str:
    try:
        return mapper_for(source).ENTITY_OF_STREAM[stream]
    except KeyError as exc:
        raise ValueError(f"no mapping for {source}/{stream}") from exc


def process_batch(
    source: str, stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> Processed:
    """Map and validate one batch. Every record ends up in ``records`` or ``rejected``."""
    entity = entity_of(source, stream)
    # One source record once per batch (the last state wins): incremental reads can
    # name the same object in two pages of one batch.
    read = len(raws)
    mapper = mapper_for(source)
    key_for = getattr(mapper, "key_for", None)
    key = (key_for(stream) if key_for else getattr(mapper, "record_key", None)) or (
        lambda r: str(r.get("id")))
    raws = list({key(r): r for r in raws}.values()) if raws else raws
    mapped: MapResult = mapper.map_records(stream, raws, default_region=default_region)
    report = validate_batch(entity, mapped.records)
    out = Processed(source=source, stream=stream, entity=entity, read=read,
                    rejected=list(mapped.rejected))
    for index, record in enumerate(mapped.records):
        failures = report.failures.get(index)
        if failures:
            out.rejected.append(Rejected(record.source_id, mapped.raws[index], failures))
        else:
            out.records.append(record)
    return out


def load_batch(
    processed: Processed,
    *,
    mode: str,
    cursor: str | None,
    high_water: int | None,
    pages: int,
    max_invalid_ratio: float = 1.0,
    database_url: str | None = None,
) -> BatchOutcome:
    """Write one processed batch and advance the checkpoint, in one transaction.

    A batch whose invalid share exceeds ``max_invalid_ratio`` is not loaded: its bad
    records are quarantined (nothing is lost), the checkpoint stays where it was and
    :class:`DataQualityError` fails the run, so a fixed rule can reprocess the batch.
    """
    outcome = BatchOutcome(read=processed.read)
    too_bad = processed.read > 0 and processed.invalid_ratio > max_invalid_ratio
    with _load_locks[processed.source], session_scope(database_url) as session:
        outcome.quarantined = hub.quarantine(
            session, entity=processed.entity, source=processed.source,
            stream=processed.stream, rejected=processed.rejected,
        )
        if too_bad:
            session.commit()
            raise DataQualityError(
                f"{processed.source}/{processed.stream}: {len(processed.rejected)} of "
                f"{processed.read} records failed validation "
                f"({processed.invalid_ratio:.0%} > {max_invalid_ratio:.0%}); "
                "they are quarantined and the batch was not loaded"
            )
        counts = _upsert(session, processed.entity, processed.records)
        outcome.inserted, outcome.updated, outcome.unchanged = (
            counts.inserted, counts.updated, counts.unchanged)
        outcome.events = events.for_load(session, processed.entity, processed.source,
                                         counts.inserted_ids, counts.updated_ids,
                                         status_changed=counts.status_changed_ids)
        outcome.resolved = hub.resolve_quarantined(
            session, entity=processed.entity, source=processed.source,
            source_ids=[r.source_id for r in processed.records],
        )
        hub.advance_checkpoint(
            session, processed.source, processed.stream, mode, cursor=cursor,
            high_water=high_water, pages=pages, records=processed.read,
        )
    return outcome


UPSERTS = {
    "customer": hub.upsert_customers,
    "payment": hub.upsert_payments,
    "company": hub.upsert_companies,
    "product": hub.upsert_products,
    "order": hub.upsert_orders,
    "inventory_level": hub.upsert_inventory_levels,
}


def _upsert(session: Any, entity: str, records: list[Any]) -> hub.LoadCounts:
    try:
        upsert = UPSERTS[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}") from None
    return upsert(session, records)


def check_drift(source: str, stream: str, fields: dict[str, str],
                database_url: str | None = None) -> dict[str, list[str]] | None:
    """Compare a batch's field set with what the stream looked like before."""
    if not fields:
        return None
    with _load_locks[source], session_scope(database_url) as session:
        return hub.record_fingerprint(session, source, stream, fields)


def link_orphans(source: str, database_url: str | None = None) -> int:
    """Make every customer link that the loads of a run could make (see hub.link_orphans)."""
    with _load_locks[source], session_scope(database_url) as session:
        return hub.link_orphans(session, source)


def replay_records(
    source: str, stream: str, raws: list[dict[str, Any]], *, default_region: str = "US",
    database_url: str | None = None,
) -> dict[str, int]:
    """Re-run current rules on records (stored raw payloads or re-fetched from the source)
    and land those that now pass; the rest stay quarantined with fresh reasons."""
    processed = process_batch(source, stream, raws, default_region=default_region)
    from process_apis.canonical.models import QuarantineStatus

    with _load_locks[source], session_scope(database_url) as session:
        counts = _upsert(session, processed.entity, processed.records)
        replayed = hub.resolve_quarantined(
            session, entity=processed.entity, source=source,
            source_ids=[r.source_id for r in processed.records],
            status=QuarantineStatus.replayed,
        )
        still = hub.quarantine(session, entity=processed.entity, source=source, stream=stream,
                               rejected=processed.rejected)
    return {"replayed": replayed, "written": counts.written, "still_failing": still}


__all__ = [
    "BatchOutcome", "CanonicalCustomer", "Processed", "entity_of", "link_orphans", "load_batch",
    "process_batch", "replay_records",
]
