"""The hub store: idempotent upserts, quarantine, watermarks, checkpoints, drift.

Every write is keyed by ``(source, source_id)`` and compares a content hash, so
loading the same batch twice changes nothing and reports it as ``unchanged``. One
batch is one transaction: records, quarantine rows and the stream checkpoint commit
together, so a run killed between batches resumes exactly where its last commit
left it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from interchange.store import utcnow
from process_apis.canonical.models import (
    Checkpoint,
    Company,
    Customer,
    InventoryLevel,
    Order,
    OrderLine,
    Payment,
    Product,
    QuarantineRecord,
    QuarantineStatus,
    SchemaFingerprint,
    Watermark,
    new_id,
)
from process_apis.canonical.views import CanonicalCustomer, CanonicalPayment
from process_apis.mapping.base import Rejected

_CHUNK = 500  # keep IN (...) lists well below every database's parameter limit


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Hub ids of the rows written, for domain events (ids, never data).
    inserted_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)
    status_changed_ids: list[str] = field(default_factory=list)  # updates with a new status

    def __iadd__(self, other: LoadCounts) -> LoadCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.inserted_ids += other.inserted_ids
        self.updated_ids += other.updated_ids
        self.status_changed_ids += other.status_changed_ids
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def content_hash(record: Any) -> str:
    payload = json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _dedupe(records: Sequence[Any]) -> list[Any]:
    """Last one wins when a batch carries the same source record twice."""
    return list({r.source_id: r for r in records}.values())


def _rows(session: Session, table: sa.Table, source: str, ids: Sequence[str],
          columns: Sequence[str], key: str = "source_id") -> dict[str, Any]:
    """Selected columns of existing rows by key, through Core (no ORM objects)."""
    found: dict[str, Any] = {}
    cols = [table.c[name] for name in {key, *columns}]
    for chunk in _chunks(list(ids)):
        result = session.execute(
            sa.select(*cols).where(table.c.source == source, table.c[key].in_(chunk))
        )
        found.update({row._mapping[key]: row for row in result})
    return found


def _write(session: Session, table: sa.Table, inserts: list[dict], updates: list[dict]) -> None:
    """Bulk INSERT new rows and bulk UPDATE changed ones by primary key (executemany)."""
    if inserts:
        session.execute(sa.insert(table), inserts)
    if updates:
        keys = [k for k in updates[0] if k != "id"]
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(f"b_{k}") for k in keys})
        )
        session.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in updates])


def upsert_customers(session: Session, records: Sequence[CanonicalCustomer]) -> LoadCounts:
    counts = upsert_simple(session, Customer.__table__, "cus", records)
    by_source: dict[str, list[str]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r.source_id)
    for source, ids in by_source.items():
        _link_payments(session, source, ids)
    return counts


def _link_payments(session: Session, source: str, customer_source_ids: Sequence[str]) -> None:
    """Attach payments that arrived before their customer."""
    customers, payments = Customer.__table__, Payment.__table__
    for chunk in _chunks(list(customer_source_ids)):
        ids = sa.select(customers.c.id).where(
            customers.c.source == source,
            customers.c.source_id == payments.c.customer_source_id,
        ).scalar_subquery()
        session.execute(
            sa.update(payments)
            .where(payments.c.source == source, payments.c.customer_id.is_(None),
                   payments.c.customer_source_id.in_(chunk))
            .values(customer_id=ids)
        )


def upsert_payments(session: Session, records: Sequence[CanonicalPayment]) -> LoadCounts:
    counts = LoadCounts()
    records = _dedupe(records)
    table = Payment.__table__
    by_source: dict[str, list[CanonicalPayment]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    now = utcnow()
    for source, items in by_source.items():
        existing = _rows(session, table, source, [r.source_id for r in items],
                         ["id", "content_hash", "customer_id", "status"])
        # A refund names its charge, not always its customer: inherit the charge's.
        # The hash is taken before that, so it only changes when the source does.
        digests = {r.source_id: content_hash(r) for r in items}
        related = _rows(session, table, source, sorted(
            {r.related_source_id for r in items if r.related_source_id and not r.customer_source_id}
        ), ["customer_source_id"])
        items = [
            r.model_copy(update={"customer_source_id": related[r.related_source_id]
                                 .customer_source_id})
            if not r.customer_source_id and r.related_source_id in related else r
            for r in items
        ]
        wanted = sorted({r.customer_source_id for r in items if r.customer_source_id})
        customer_ids = {
            k: row.id
            for k, row in _rows(session, Customer.__table__, source, wanted, ["id"]).items()
        }
        inserts: list[dict] = []
        updates: list[dict] = []
        for record in items:
            digest = digests[record.source_id]
            row = existing.get(record.source_id)
            customer_id = customer_ids.get(record.customer_source_id or "")
            if row is None:
                inserts.append({**record.model_dump(), "id": new_id("pay"),
                                "customer_id": customer_id, "content_hash": digest,
                                "created_at": now, "updated_at": now})
                counts.inserted += 1
                counts.inserted_ids.append(inserts[-1]["id"])
            elif row.content_hash != digest or (customer_id and row.customer_id != customer_id):
                updates.append({"id": row.id, **record.model_dump(exclude={"source"}),
                                "customer_id": customer_id or row.customer_id,
                                "content_hash": digest, "updated_at": now})
                counts.updated += 1
                counts.updated_ids.append(row.id)
                if row.status != record.status:  # e.g. pending -> succeeded: a new fact
                    counts.status_changed_ids.append(row.id)
            else:
                counts.unchanged += 1
        _write(session, table, inserts, updates)
        _link_refunds(session, source, [r.source_id for r in items if r.kind == "payment"])
    return counts


def _link_refunds(session: Session, source: str, charge_source_ids: Sequence[str]) -> None:
    """Give refunds that arrived before their charge the charge's customer."""
    payments = Payment.__table__
    charge = payments.alias("charge")
    for chunk in _chunks(list(charge_source_ids)):
        def of_charge(column: str) -> Any:
            return sa.select(charge.c[column]).where(
                charge.c.source == source,
                charge.c.source_id == payments.c.related_source_id,
            ).scalar_subquery()

        session.execute(
            sa.update(payments)
            .where(payments.c.source == source, payments.c.kind == "refund",
                   payments.c.customer_source_id.is_(None),
                   payments.c.related_source_id.in_(chunk))
            .values(customer_source_id=of_charge("customer_source_id"),
                    customer_id=of_charge("customer_id"))
        )


def link_orphans(session: Session, source: str) -> int:
    """Attach every payment and order whose customer (or refunded charge) is in the hub.

    A sweep at the end of a sync, so that no ordering of concurrent stream loads can
    leave a link unmade.
    """
    customers, payments = Customer.__table__, Payment.__table__
    charge = payments.alias("charge")
    inherit = sa.select(charge.c.customer_source_id).where(
        charge.c.source == source, charge.c.source_id == payments.c.related_source_id
    ).scalar_subquery()
    session.execute(
        sa.update(payments)
        .where(payments.c.source == source, payments.c.kind == "refund",
               payments.c.customer_source_id.is_(None),
               payments.c.related_source_id.is_not(None))
        .values(customer_source_id=inherit)
    )
    linked = 0
    for table in (payments, Order.__table__):
        customer_id = sa.select(customers.c.id).where(
            customers.c.source == source, customers.c.source_id == table.c.customer_source_id
        ).scalar_subquery()
        result = session.execute(
            sa.update(table)
            .where(table.c.source == source, table.c.customer_id.is_(None),
                   table.c.customer_source_id.is_not(None), sa.exists(customer_id))
            .values(customer_id=customer_id)
        )
        linked += result.rowcount or 0
    return linked


def upsert_simple(
    session: Session, table: sa.Table, id_prefix: str, records: Sequence[Any]
) -> LoadCounts:
    """Idempotent upsert of flat canonical records (customers, companies, products, stock
    levels). A tombstone (``deleted``) flags the row and keeps its last known values."""
    counts = LoadCounts()
    records = _dedupe(records)
    has_deleted = "deleted" in table.c
    by_source: dict[str, list[Any]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    now = utcnow()
    for source, items in by_source.items():
        columns = ["id", "content_hash"] + (["deleted"] if has_deleted else [])
        existing = _rows(session, table, source, [r.source_id for r in items], columns)
        inserts: list[dict] = []
        updates: list[dict] = []
        tombstones: list[dict] = []
        for record in items:
            row = existing.get(record.source_id)
            digest = content_hash(record)
            if row is None:
                inserts.append({**record.model_dump(), "id": new_id(id_prefix),
                                "content_hash": digest, "created_at": now, "updated_at": now})
                counts.inserted += 1
                counts.inserted_ids.append(inserts[-1]["id"])
            elif has_deleted and record.deleted:
                # A tombstone carries no data: keep the last known values, flag the row.
                if row.deleted:
                    counts.unchanged += 1
                else:
                    tombstones.append({"id": row.id, "deleted": True, "updated_at": now})
                    counts.updated += 1
                    counts.updated_ids.append(row.id)
            elif row.content_hash != digest:
                updates.append({"id": row.id, **record.model_dump(exclude={"source"}),
                                "content_hash": digest, "updated_at": now})
                counts.updated += 1
                counts.updated_ids.append(row.id)
            else:
                counts.unchanged += 1
        _write(session, table, inserts, updates)
        _write(session, table, [], tombstones)
    return counts


def upsert_companies(session: Session, records: Sequence[Any]) -> LoadCounts:
    return upsert_simple(session, Company.__table__, "com", records)


def upsert_products(session: Session, records: Sequence[Any]) -> LoadCounts:
    return upsert_simple(session, Product.__table__, "prd", records)


def upsert_inventory_levels(session: Session, records: Sequence[Any]) -> LoadCounts:
    return upsert_simple(session, InventoryLevel.__table__, "inv", records)


def upsert_orders(session: Session, records: Sequence[Any]) -> LoadCounts:
    """Orders and their lines: a changed order's lines are replaced as a whole."""
    counts = LoadCounts()
    records = _dedupe(records)
    orders, lines = Order.__table__, OrderLine.__table__
    by_source: dict[str, list[Any]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    now = utcnow()
    for source, items in by_source.items():
        existing = _rows(session, orders, source, [r.source_id for r in items],
                         ["id", "content_hash"])
        wanted = sorted({r.customer_source_id for r in items if r.customer_source_id})
        customer_ids = {
            k: row.id
            for k, row in _rows(session, Customer.__table__, source, wanted, ["id"]).items()
        }
        inserts: list[dict] = []
        updates: list[dict] = []
        changed: list[Any] = []
        for record in items:
            row = existing.get(record.source_id)
            digest = content_hash(record)
            fields = {**record.model_dump(exclude={"lines"}),
                      "customer_id": customer_ids.get(record.customer_source_id or "")}
            if row is None:
                inserts.append({**fields, "id": new_id("ord"), "content_hash": digest,
                                "created_at": now, "updated_at": now})
                counts.inserted += 1
                counts.inserted_ids.append(inserts[-1]["id"])
                changed.append(record)
            elif row.content_hash != digest:
                fields.pop("source")
                updates.append({"id": row.id, **fields, "content_hash": digest,
                                "updated_at": now})
                counts.updated += 1
                counts.updated_ids.append(row.id)
                changed.append(record)
            else:
                counts.unchanged += 1
        _write(session, orders, inserts, updates)
        for chunk in _chunks([r.source_id for r in changed]):
            session.execute(sa.delete(lines).where(lines.c.source == source,
                                                   lines.c.order_source_id.in_(chunk)))
        new_lines = [{**line.model_dump(), "id": new_id("oln")}
                     for r in changed for line in r.lines]
        if new_lines:
            session.execute(sa.insert(lines), new_lines)
    return counts


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw payload as JSON can store it: timestamps ISO 8601, decimals as strings."""

    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()
        return str(value)

    return json.loads(json.dumps(raw, default=default))


# --- quarantine -------------------------------------------------------------------


def quarantine(
    session: Session, *, entity: str, source: str, stream: str, rejected: Sequence[Rejected]
) -> int:
    """Record (or refresh) each rejected record with its raw payload and reasons."""
    if not rejected:
        return 0
    rejected = list({r.source_id: r for r in rejected}.values())
    now = utcnow()
    existing: dict[str, QuarantineRecord] = {}
    for chunk in _chunks([r.source_id for r in rejected]):
        for row in session.exec(
            select(QuarantineRecord).where(
                QuarantineRecord.entity == entity,
                QuarantineRecord.source == source,
                col(QuarantineRecord.source_id).in_(chunk),
            )
        ):
            existing[row.source_id] = row
    for item in rejected:
        row = existing.get(item.source_id)
        if row is None:
            session.add(QuarantineRecord(
                entity=entity, source=source, source_id=item.source_id, stream=stream,
                raw=_jsonable(item.raw), failed_rules=item.failed_rules, first_seen_at=now,
                last_seen_at=now,
            ))
        else:
            row.raw, row.failed_rules = _jsonable(item.raw), item.failed_rules
            row.last_seen_at = now
            row.occurrences += 1
            row.status, row.replayed_at = QuarantineStatus.open, None
            session.add(row)
    session.flush()
    return len(rejected)


def resolve_quarantined(
    session: Session, *, entity: str, source: str, source_ids: Sequence[str],
    status: QuarantineStatus = QuarantineStatus.resolved,
) -> int:
    """Mark open quarantine rows as landed (a later sync or a replay loaded them)."""
    n = 0
    now = utcnow()
    for chunk in _chunks(list(source_ids)):
        for row in session.exec(
            select(QuarantineRecord).where(
                QuarantineRecord.entity == entity,
                QuarantineRecord.source == source,
                QuarantineRecord.status == QuarantineStatus.open,
                col(QuarantineRecord.source_id).in_(chunk),
            )
        ):
            row.status, row.replayed_at = status, now
            session.add(row)
            n += 1
    return n


def open_quarantine(
    session: Session, *, source: str | None = None, entity: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[QuarantineRecord]:
    """Open quarantine rows (of one source, or all sources when ``source`` is None)."""
    return list_quarantine(session, source=source, entity=entity, ids=ids,
                           status=QuarantineStatus.open)


def list_quarantine(
    session: Session, *, source: str | None = None, entity: str | None = None,
    status: str | None = None, ids: Sequence[int] | None = None,
) -> list[QuarantineRecord]:
    """Quarantine rows, oldest first, filtered by source, entity, status and ids."""
    query = select(QuarantineRecord)
    if source:
        query = query.where(QuarantineRecord.source == source)
    if status:
        query = query.where(QuarantineRecord.status == status)
    if entity:
        query = query.where(QuarantineRecord.entity == entity)
    if ids:
        query = query.where(col(QuarantineRecord.id).in_(list(ids)))
    return list(session.exec(query.order_by(QuarantineRecord.id)).all())


def quarantine_stats(session: Session, *, status: str | None = None) -> dict[str, Any]:
    """Counts of quarantine rows by (source, entity, status) and by failed rule.

    A row that broke several rules counts once per rule under ``by_rule``.
    """
    q = QuarantineRecord.__table__
    by_status: list[dict[str, Any]] = []
    query = sa.select(q.c.source, q.c.entity, q.c.status, sa.func.count()).group_by(
        q.c.source, q.c.entity, q.c.status).order_by(q.c.source, q.c.entity, q.c.status)
    if status:
        query = query.where(q.c.status == status)
    for source, entity, state, n in session.execute(query):
        by_status.append({"source": source, "entity": entity, "status": state, "count": n})
    rules: dict[tuple[str, str, str], int] = {}
    query = sa.select(q.c.source, q.c.entity, q.c.failed_rules)
    if status:
        query = query.where(q.c.status == status)
    for source, entity, failed in session.execute(query):
        names = dict.fromkeys(str(f.get("check") or f.get("rule")) for f in failed or [])
        for name in names:
            rules[(source, entity, name)] = rules.get((source, entity, name), 0) + 1
    by_rule = [{"source": s, "entity": e, "rule": r, "count": n}
               for (s, e, r), n in sorted(rules.items())]
    return {"by_status": by_status, "by_rule": by_rule}


# --- watermarks and checkpoints ---------------------------------------------------


def get_watermark(session: Session, source: str, stream: str) -> str | None:
    row = session.get(Watermark, (source, stream))
    return row.value if row else None


def set_watermark(session: Session, source: str, stream: str, value: str) -> None:
    row = session.get(Watermark, (source, stream)) or Watermark(source=source, stream=stream,
                                                               value=value)
    row.value, row.updated_at = value, utcnow()
    session.add(row)


def get_checkpoint(session: Session, source: str, stream: str, mode: str) -> Checkpoint | None:
    return session.get(Checkpoint, (source, stream, mode))


def start_checkpoint(session: Session, source: str, stream: str, mode: str) -> Checkpoint:
    row = session.get(Checkpoint, (source, stream, mode))
    if row is None:
        row = Checkpoint(source=source, stream=stream, mode=mode)
        session.add(row)
        session.flush()
    return row


def advance_checkpoint(
    session: Session, source: str, stream: str, mode: str, *, cursor: str | None,
    high_water: int | None, pages: int, records: int,
) -> None:
    row = start_checkpoint(session, source, stream, mode)
    row.cursor = cursor
    if high_water is not None:
        row.high_water = str(max(int(row.high_water or 0), high_water))
    row.pages += pages
    row.records += records
    row.updated_at = utcnow()
    session.add(row)


def finish_checkpoint(session: Session, source: str, stream: str, mode: str) -> Checkpoint | None:
    row = session.get(Checkpoint, (source, stream, mode))
    if row is not None:
        session.delete(row)
    return row


# --- schema drift -------------------------------------------------------------------


def record_fingerprint(
    session: Session, source: str, stream: str, fields: dict[str, str]
) -> dict[str, Any] | None:
    """Merge a page's field set (``{field: json type}``) into the stream's known set.

    Returns the drift - fields added, missing or retyped - or None. A field seen only
    as ``null`` says nothing about its type, so null never counts as a retype.
    """
    import hashlib as _hashlib

    row = session.get(SchemaFingerprint, (source, stream))
    known = dict(row.fields) if row else {}
    merged = dict(known)
    for name, kind in fields.items():
        if kind != "null" or name not in merged:
            merged[name] = kind
    digest = _hashlib.sha256(json.dumps(merged, sort_keys=True).encode()).hexdigest()[:16]
    if row is None:
        session.add(SchemaFingerprint(source=source, stream=stream, fingerprint=digest,
                                      fields=merged))
        return None
    drift = {
        "added": sorted(set(fields) - set(known)),
        "missing": sorted(set(known) - set(fields)),
        "retyped": sorted(
            k for k in set(known) & set(fields)
            if "null" not in (known[k], fields[k]) and known[k] != fields[k]
        ),
    }
    if drift["missing"]:  # report once, then accept the new shape
        merged = {k: v for k, v in merged.items() if k in fields}
        digest = _hashlib.sha256(json.dumps(merged, sort_keys=True).encode()).hexdigest()[:16]
    if row.fingerprint != digest:
        row.fingerprint, row.fields, row.updated_at = digest, merged, utcnow()
        session.add(row)
    return drift if any(drift.values()) else None


def epoch(value: dt.datetime) -> int:
    return int(value.timestamp())
