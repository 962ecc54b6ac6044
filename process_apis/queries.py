"""Read-side queries over the canonical hub, for the experience layer.

The experience APIs never touch hub tables themselves (they may not import
``system_apis``, and the hub's shape is a process-layer concern); they call these
functions with a session they own. Every list function is keyset-paginated on the
primary key: ``after`` is the last id of the previous page, so a page costs one index
range scan however deep the consumer has walked, and rows inserted or updated while a
consumer pages never make it skip or repeat a row that was already there.

Callers pass ``limit + 1`` when they need to know whether another page exists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from process_apis import identity
from process_apis.canonical import rules
from process_apis.canonical.models import Customer, CustomerLink, Order, Payment


def normalize_email(email: str) -> str:
    """The form canonical rows store an e-mail address in (trimmed, lower-cased).

    Uses the canonical rule, so a filter value matches exactly what a mapper would
    have stored. A value the rule rejects cannot be in the hub: it is only trimmed
    and lower-cased, and simply matches nothing.
    """
    try:
        return rules.normalize_email(email) or ""
    except rules.RuleViolation:
        return email.strip().lower()


def list_customers(
    session: Session,
    *,
    after: str | None = None,
    limit: int = 50,
    email: str | None = None,
    updated_since: dt.datetime | None = None,
) -> list[Customer]:
    """Customers ordered by id, starting after ``after``, at most ``limit`` of them.

    ``email`` matches after normalisation (see :func:`normalize_email`);
    ``updated_since`` (an aware datetime) keeps rows with ``updated_at >= updated_since``.
    Soft-deleted customers are included (``deleted`` is true), so an incremental
    consumer also learns about deletions.
    """
    if updated_since is not None and updated_since.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    stmt = select(Customer)
    if after is not None:
        stmt = stmt.where(col(Customer.id) > after)
    if email is not None:
        stmt = stmt.where(col(Customer.email) == normalize_email(email))
    if updated_since is not None:
        stmt = stmt.where(col(Customer.updated_at) >= updated_since)
    stmt = stmt.order_by(col(Customer.id)).limit(limit)
    return list(session.exec(stmt).all())


def get_customer(session: Session, id: str) -> Customer | None:
    """The customer with hub id ``id``, or ``None``."""
    return session.get(Customer, id)


def list_customer_payments(
    session: Session,
    customer_id: str,
    *,
    after: str | None = None,
    limit: int = 50,
) -> list[Payment]:
    """Payments and refunds linked to a customer, ordered by id, keyset-paginated."""
    stmt = select(Payment).where(col(Payment.customer_id) == customer_id)
    if after is not None:
        stmt = stmt.where(col(Payment.id) > after)
    stmt = stmt.order_by(col(Payment.id)).limit(limit)
    return list(session.exec(stmt).all())


def count_customers(session: Session) -> int:
    """How many customer rows the hub holds (soft-deleted included)."""
    return int(session.exec(select(sa.func.count()).select_from(Customer)).one())


def golden_id_of(session: Session, customer_id: str) -> str | None:
    """The golden customer a source customer belongs to (None before resolution)."""
    link = session.get(CustomerLink, customer_id)
    return link.golden_id if link is not None else None


def get_customer_360(session: Session, golden_id: str, *, limit: int = 50
                     ) -> dict[str, Any] | None:  # fmt: skip
    """A golden customer with its source records and its most recent orders and
    payments (``limit`` each, newest first, with totals). A merged golden id answers
    the golden customer it was merged into. None when no golden customer has the id."""
    view = identity.golden_view(session, golden_id)
    if view is None:
        return None
    members = [m.id for m in view["members"]]
    orders = list(session.exec(
        select(Order).where(col(Order.customer_id).in_(members))
        .order_by(col(Order.placed_at).desc(), col(Order.id)).limit(limit)).all())
    payments = list(session.exec(
        select(Payment).where(col(Payment.customer_id).in_(members))
        .order_by(col(Payment.occurred_at).desc(), col(Payment.id)).limit(limit)).all())
    order_count = session.exec(select(sa.func.count()).select_from(Order).where(
        col(Order.customer_id).in_(members))).one()
    payment_count = session.exec(select(sa.func.count()).select_from(Payment).where(
        col(Payment.customer_id).in_(members))).one()
    return {"golden": view["golden"], "sources": view["members"], "orders": orders,
            "payments": payments, "order_count": int(order_count),
            "payment_count": int(payment_count)}  # fmt: skip


def golden_ids(session: Session, customer_ids: list[str]) -> dict[str, str]:
    """``{customer_id: golden_id}`` for the given source customers that are linked."""
    if not customer_ids:
        return {}
    rows = session.exec(select(CustomerLink.customer_id, CustomerLink.golden_id).where(
        col(CustomerLink.customer_id).in_(customer_ids))).all()
    return dict(rows)
