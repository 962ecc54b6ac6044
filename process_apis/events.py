"""Domain events the hub announces after a load: ids and amounts, never personal data.

* ``interchange.order.placed`` - an order the hub had not seen (resource
  ``interchange.order.<hub id>``, related to its customer record).
* ``interchange.payment.succeeded`` / ``interchange.payment.failed`` - a payment the hub
  had not seen, or a known one whose status changed (pending -> succeeded), by its
  status. (Other updates of a known payment are not new facts.)
* ``interchange.inventory.changed`` - stock levels moved, resource
  ``interchange.inventory.<source>``, payload the SKUs that moved: what the inventory
  sync subscribes to (prefect.yaml triggers on the ERP's). Built per batch, sent once
  per stream run (:func:`merge_stock`): a SKU's warehouses may load in different
  batches, and a push of half its stock would be wrong.
* ``interchange.customer.created/updated/merged`` come from identity resolution
  (:mod:`process_apis.identity`), where golden customers are made.

:func:`for_load` builds them inside the load's transaction (the rows it reads are the
ones just written); :func:`emit` sends them once it has committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from process_apis.canonical.models import InventoryLevel, Order, Payment

__all__ = ["DomainEvent", "emit", "for_load"]

ORDER_PLACED = "interchange.order.placed"
PAYMENT_SUCCEEDED = "interchange.payment.succeeded"
PAYMENT_FAILED = "interchange.payment.failed"
INVENTORY_CHANGED = "interchange.inventory.changed"
SUCCEEDED = {"succeeded", "paid"}
FAILED = {"failed"}
MAX_SKUS = 1000  # per event; the event says how many moved in total


@dataclass(frozen=True)
class DomainEvent:
    event: str
    resource: dict[str, str]
    payload: dict[str, Any]
    related: list[dict[str, str]] = field(default_factory=list)


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def for_load(session: Session, entity: str, source: str, inserted: list[str],
             updated: list[str], *, status_changed: list[str] | None = None
             ) -> list[DomainEvent]:  # fmt: skip
    """The domain events of one load (rows ``inserted``/``updated`` by hub id; payments
    whose status changed in an update are announced like new ones)."""
    out: list[DomainEvent] = []
    if entity == "order" and inserted:
        t = Order.__table__
        for chunk in _chunks(inserted):
            for row in session.execute(sa.select(
                    t.c.id, t.c.source, t.c.source_id, t.c.total_minor, t.c.currency,
                    t.c.customer_id).where(t.c.id.in_(chunk))):  # fmt: skip
                customer = f"interchange.customer-record.{row.customer_id}"
                related = ([{"prefect.resource.id": customer, "prefect.resource.role":
                             "customer"}] if row.customer_id else [])  # fmt: skip
                out.append(DomainEvent(
                    ORDER_PLACED,
                    {"prefect.resource.id": f"interchange.order.{row.id}",
                     "interchange.source": row.source},
                    {"order_id": row.id, "source": row.source, "source_id": row.source_id,
                     "total_minor": row.total_minor, "currency": row.currency},
                    related))  # fmt: skip
    elif entity == "payment" and (inserted or status_changed):
        t = Payment.__table__
        for chunk in _chunks(inserted + list(status_changed or ())):
            for row in session.execute(sa.select(
                    t.c.id, t.c.source, t.c.kind, t.c.status, t.c.amount_minor, t.c.currency,
                    t.c.order_ref).where(t.c.id.in_(chunk))):  # fmt: skip
                status = row.status.lower()
                if row.kind != "payment" or status not in SUCCEEDED | FAILED:
                    continue
                out.append(DomainEvent(
                    PAYMENT_SUCCEEDED if status in SUCCEEDED else PAYMENT_FAILED,
                    {"prefect.resource.id": f"interchange.payment.{row.id}",
                     "interchange.source": row.source},
                    {"payment_id": row.id, "source": row.source,
                     "amount_minor": row.amount_minor, "currency": row.currency,
                     "order_ref": row.order_ref}))  # fmt: skip
    elif entity == "inventory_level" and (inserted or updated):
        t = InventoryLevel.__table__
        skus: set[str] = set()
        for chunk in _chunks(inserted + updated):
            skus.update(s for (s,) in session.execute(
                sa.select(t.c.sku).where(t.c.id.in_(chunk))) if s)
        ordered = sorted(skus)
        out.append(DomainEvent(
            INVENTORY_CHANGED,
            {"prefect.resource.id": f"interchange.inventory.{source}",
             "interchange.source": source},
            {"source": source, "levels": len(inserted) + len(updated),
             "sku_count": len(ordered), "skus": ordered[:MAX_SKUS]}))  # fmt: skip
    return out


def immediate(events: list[DomainEvent]) -> list[DomainEvent]:
    """The events to send as soon as their batch is committed: all but stock moves,
    which are only true once every warehouse of a SKU has loaded (:func:`merge_stock`)."""
    return [e for e in events if e.event != INVENTORY_CHANGED]


def merge_stock(events: list[DomainEvent]) -> list[DomainEvent]:
    """One ``inventory.changed`` per source for a whole stream run (its batches' SKUs):
    what the inventory sync subscribes to, so it sees complete stock, once per run."""
    by_source: dict[str, tuple[set[str], int, int]] = {}
    for e in events:
        if e.event != INVENTORY_CHANGED:
            continue
        skus, levels, count = by_source.get(e.payload["source"], (set(), 0, 0))
        skus.update(e.payload["skus"])
        by_source[e.payload["source"]] = (skus, levels + e.payload["levels"],
                                          count + e.payload["sku_count"])
    out = []
    for source, (skus, levels, count) in sorted(by_source.items()):
        ordered = sorted(skus)
        out.append(DomainEvent(
            INVENTORY_CHANGED,
            {"prefect.resource.id": f"interchange.inventory.{source}",
             "interchange.source": source},
            {"source": source, "levels": levels, "sku_count": max(count, len(ordered)),
             "skus": ordered[:MAX_SKUS]}))  # fmt: skip
    return out


def emit(events: list[DomainEvent]) -> int:
    """Send ``events`` as Prefect events; returns how many were sent."""
    if not events:
        return 0
    from prefect.events import emit_event

    for e in events:
        emit_event(event=e.event, resource=e.resource, payload=e.payload,
                   related=e.related or None)  # fmt: skip
    return len(events)
