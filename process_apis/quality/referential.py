"""Referential checks, once per run, after every load of the run has committed.

Streams of a source are loaded concurrently and in any order, so "an order's customer
and products exist or arrive in the same run" can only be judged when the run's loads
are done: ``flows.engine.run_sync`` calls :func:`check_run` after its link sweep.

Semantics (chosen, and tested):

* **Checked**: the orders and payments this run wrote (inserted or changed, i.e.
  ``updated_at`` at or after the run's start) - an order's customer
  (``customer_source_id``, same source), each of its lines' products (``sku``, any
  source: the SKU is the cross-source product key), a payment's customer.
* **Orphans are landed and reported, not quarantined.** The order is a true fact of
  its source; the missing side is what is wrong (a customer in quarantine, an ERP item
  not synced yet). Holding orders back would hide revenue from reconciliation and stock
  planning, and re-quarantining landed rows would make a second copy of them. So an
  orphan stays in the hub, is counted and listed as ``(source_id, check)`` in the run's
  quality report, and stays visible in ``interchange quarantine stats`` (hub-wide
  counts, :func:`hub_orphans`) until its customer/product lands - then the end-of-run
  link sweep (``hub.link_orphans``) links it. Nothing is dropped, nothing is silent.
* Each orphan says why: ``customer quarantined`` (the customer is in the quarantine,
  fixable by a replay) or ``customer missing`` / ``product missing``.
* Lines without a SKU cannot be checked; they are counted as ``unchecked``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from process_apis.canonical.models import (
    Customer,
    Order,
    OrderLine,
    Payment,
    Product,
    QuarantineRecord,
    QuarantineStatus,
)

EXAMPLES = 10  # per check: (source_id, check) pairs shown in a report, no personal data

ORDER_CUSTOMER = "ref.order.customer"
LINE_PRODUCT = "ref.order_line.product"
PAYMENT_CUSTOMER = "ref.payment.customer"


@dataclass
class ReferentialReport:
    source: str
    checked: dict[str, int] = field(default_factory=dict)  # check -> records checked
    orphans: dict[str, int] = field(default_factory=dict)  # check -> orphans found
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> reason -> n
    examples: dict[str, list[str]] = field(default_factory=dict)  # check -> source ids
    unchecked_lines: int = 0  # order lines without a SKU
    hub_orphans: dict[str, int] = field(default_factory=dict)  # hub-wide, this source

    @property
    def total_orphans(self) -> int:
        return sum(self.orphans.values())

    def add(self, check: str, source_id: str, reason: str) -> None:
        self.orphans[check] = self.orphans.get(check, 0) + 1
        reasons = self.reasons.setdefault(check, {})
        reasons[reason] = reasons.get(reason, 0) + 1
        examples = self.examples.setdefault(check, [])
        if len(examples) < EXAMPLES and source_id not in examples:
            examples.append(source_id)

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "orphans": self.orphans, "reasons": self.reasons,
                "examples": self.examples, "unchecked_lines": self.unchecked_lines,
                "hub_orphans": self.hub_orphans}


def _customer_missing(table: sa.Table, source: str) -> Any:
    customers = Customer.__table__
    return sa.and_(
        table.c.source == source,
        table.c.customer_source_id.is_not(None),
        ~sa.exists().where(customers.c.source == source,
                           customers.c.source_id == table.c.customer_source_id),
    )


def _product_missing() -> Any:
    lines, products = OrderLine.__table__, Product.__table__
    return sa.and_(lines.c.sku.is_not(None),
                   ~sa.exists().where(products.c.sku == lines.c.sku))


def _quarantined_customers(session: Session, source: str, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    q = QuarantineRecord.__table__
    found: set[str] = set()
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        found.update(session.execute(
            sa.select(q.c.source_id).where(
                q.c.entity == "customer", q.c.source == source,
                q.c.status == QuarantineStatus.open, q.c.source_id.in_(ordered[i:i + 500]))
        ).scalars())
    return found


def _check_customers(session: Session, report: ReferentialReport, check: str,
                     table: sa.Table, source: str, written: Any) -> None:  # fmt: skip
    """``check``: the ``written`` rows of ``table`` whose customer is not in the hub."""
    report.checked[check] = session.execute(
        sa.select(sa.func.count()).select_from(table)
        .where(written, table.c.customer_source_id.is_not(None))).scalar_one()
    rows = session.execute(
        sa.select(table.c.source_id, table.c.customer_source_id)
        .where(written, _customer_missing(table, source))).all()
    quarantined = _quarantined_customers(session, source, {r.customer_source_id for r in rows})
    for row in rows:
        reason = ("customer quarantined" if row.customer_source_id in quarantined
                  else "customer missing")
        report.add(check, row.source_id, reason)


def check_run(session: Session, source: str, since: dt.datetime) -> ReferentialReport:
    """Referential checks over what this run of ``source`` wrote (``updated_at >= since``)."""
    report = ReferentialReport(source=source)
    orders, lines, payments = Order.__table__, OrderLine.__table__, Payment.__table__

    written = sa.and_(orders.c.source == source, orders.c.updated_at >= since)
    _check_customers(session, report, ORDER_CUSTOMER, orders, source, written)

    of_written = sa.and_(
        lines.c.source == source,
        lines.c.order_source_id.in_(sa.select(orders.c.source_id).where(written)))
    report.checked[LINE_PRODUCT] = session.execute(
        sa.select(sa.func.count()).select_from(lines)
        .where(of_written, lines.c.sku.is_not(None))).scalar_one()
    report.unchecked_lines = session.execute(
        sa.select(sa.func.count()).select_from(lines)
        .where(of_written, lines.c.sku.is_(None))).scalar_one()
    for row in session.execute(
        sa.select(lines.c.order_source_id).where(of_written, _product_missing())
    ):
        report.add(LINE_PRODUCT, row.order_source_id, "product missing")

    paid = sa.and_(payments.c.source == source, payments.c.updated_at >= since)
    _check_customers(session, report, PAYMENT_CUSTOMER, payments, source, paid)

    report.hub_orphans = hub_orphans(session, source).get(source, {})
    return report


def run_check(source: str, since: dt.datetime,
              database_url: str | None = None) -> ReferentialReport:
    """:func:`check_run` in its own session (the end-of-run pass of a sync)."""
    from interchange.store import session_scope

    with session_scope(database_url) as session:
        return check_run(session, source, since)


def hub_orphans(session: Session, source: str | None = None) -> dict[str, dict[str, int]]:
    """Orphans the hub holds now, by source and check (whatever run wrote them)."""
    orders, lines, payments = Order.__table__, OrderLine.__table__, Payment.__table__
    sources = [source] if source else sorted(set(session.execute(
        sa.select(orders.c.source).distinct()).scalars()) | set(session.execute(
        sa.select(payments.c.source).distinct()).scalars()))
    out: dict[str, dict[str, int]] = {}
    for name in sources:
        counts = {
            ORDER_CUSTOMER: session.execute(sa.select(sa.func.count()).select_from(orders)
                                            .where(_customer_missing(orders, name))).scalar_one(),
            LINE_PRODUCT: session.execute(
                sa.select(sa.func.count()).select_from(lines)
                .where(lines.c.source == name, _product_missing())).scalar_one(),
            PAYMENT_CUSTOMER: session.execute(
                sa.select(sa.func.count()).select_from(payments)
                .where(_customer_missing(payments, name))).scalar_one(),
        }
        counts = {k: v for k, v in counts.items() if v}
        if counts:
            out[name] = counts
    return out
