"""Order-to-cash reconciliation: Shopify orders against Stripe payments in the hub.

:func:`reconcile` is pure (plain rows in, a :class:`Reconciliation` out, no I/O), so
every rule below is unit-tested without a database; :func:`load_rows` streams the rows
out of the hub; :func:`reconcile_task_fn` (the ``reconcile-orders`` Prefect task) ties
them together, writes the CSV export and emits the mismatch event.

Matching
    1. **By reference.** A settled charge (``kind="payment"``, ``status="succeeded"``)
       whose ``order_ref`` (from Stripe charge metadata) resolves to an order pays that
       order. An order may take several charges (split payments). A reference resolves,
       first match wins:

       a. equal to the order's ``source_id`` (Shopify's order id) or hub ``id``;
       b. equal to the order's ``number`` in *name form*: trimmed, case-folded, one
          leading ``#`` dropped (``"#1001"``, ``"1001"`` and ``" #1001 "`` are one key);
       c. equal in *digits form*: an optional alphabetic prefix of at most 12 letters,
          optional separators (space ``# : _ - /``) and digits, compared as an integer
          (``"ORD-1042"``, ``"order#1042"``, ``"SO_001042"`` -> ``1042``; an order
          number ``"#1042"`` or ``"SHOP-1042"`` has digits form ``1042``).

       A key shared by several orders is *ambiguous* and resolves to nothing (the charge
       goes to the second pass) rather than to a guess.
    2. **By customer, amount, currency and time.** Settled charges without a usable
       reference pair with orders that no charge referenced, when: same customer (both
       hub customers link to the same golden customer; or, where either side has no
       golden link, the same normalised e-mail), same currency, equal amount, and the
       charge's ``occurred_at`` within ``window`` of the order's ``placed_at`` (either
       side). One charge pays at most one order and vice versa: all candidate pairs are
       taken greedily by closest time, ties broken by order ``source_id`` then charge
       ``source_id``, so the result does not depend on input order.

Categories (one :class:`Finding` per order, per unmatched charge, per unmatched refund)
    ``matched_by_reference``, ``matched_by_customer`` — fine.
    ``amount_mismatch`` — matched by reference, same currency, but the charges' sum is
    not the order total (a ``partially_paid`` order accepts ``0 < sum <= total``).
    ``currency_mismatch`` — matched by reference, a charge in another currency.
    ``unmatched_order`` — no charge, and the order's status says it was paid
    (:data:`EXPECTS_PAYMENT`: ``paid``, ``partially_paid``, ``partially_refunded``,
    ``refunded``, ``authorized``). ``pending``, ``voided``, ``cancelled`` … orders
    without a charge are not problems (counted as ``orders_not_due``).
    ``orphan_payment`` — a settled charge that paired with no order.
    ``refund_without_order`` — a live refund (not ``failed``/``canceled``) whose charge
    is an orphan, not settled, or not in the hub at all, and whose own ``order_ref``
    (if any) resolves to no order.
    Charges that did not succeed (``failed``, ``pending`` …) are not matched; they are
    counted in ``payments_not_settled`` and produce no finding.

Mismatch rate
    ``problems / orders_considered``, where ``problems`` = unmatched orders + amount
    mismatches + currency mismatches + orphan payments + refunds without an order, and
    ``orders_considered`` = orders that expect a payment plus any other order a charge
    was matched to. Orphans count against it, so the rate can exceed 1; with no order
    considered it is 0 when there is no problem and 1 otherwise.

Date range
    With ``report_from`` / ``report_until``, only orders placed and charges/refunds
    made in ``[report_from, report_until)`` are reported and counted; rows just outside
    (the loader reads ``window`` more on each side) may still match, so an order on the
    boundary does not make its charge an orphan. A refund whose charge is not among the
    rows read is then not judged (``refunds_unjudged``).

Findings carry hub ids, source ids, order numbers, statuses, amounts and currencies —
never names or e-mail addresses — and so do the CSV export and the domain event.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from interchange.settings import get_settings
from interchange.store import get_engine
from process_apis.canonical.models import Customer, CustomerLink, Order, Payment

__all__ = [
    "CATEGORIES",
    "EXPECTS_PAYMENT",
    "MISMATCH_EVENT",
    "PROBLEMS",
    "Finding",
    "OrderRow",
    "PaymentRow",
    "Reconciliation",
    "digits_form",
    "load_rows",
    "name_form",
    "reconcile",
    "write_csv",
]

MISMATCH_EVENT = "interchange.reconciliation.mismatch"
RESOURCE_ID = "interchange.reconciliation.order-to-cash"

EXPECTS_PAYMENT = frozenset({"paid", "partially_paid", "partially_refunded", "refunded",
                             "authorized"})  # fmt: skip
SETTLED = "succeeded"
DEAD_REFUND = frozenset({"failed", "canceled", "cancelled"})

MATCHED_REF = "matched_by_reference"
MATCHED_CUSTOMER = "matched_by_customer"
AMOUNT_MISMATCH = "amount_mismatch"
CURRENCY_MISMATCH = "currency_mismatch"
UNMATCHED_ORDER = "unmatched_order"
ORPHAN_PAYMENT = "orphan_payment"
REFUND_WITHOUT_ORDER = "refund_without_order"
PROBLEMS = (UNMATCHED_ORDER, AMOUNT_MISMATCH, CURRENCY_MISMATCH, ORPHAN_PAYMENT,
            REFUND_WITHOUT_ORDER)  # fmt: skip
CATEGORIES = (MATCHED_REF, MATCHED_CUSTOMER, *PROBLEMS)


class OrderRow(NamedTuple):
    """An order as reconciliation sees it (``golden_id``/``email`` only for matching)."""

    id: str
    source_id: str
    number: str | None
    status: str
    total_minor: int
    currency: str
    placed_at: dt.datetime | None
    golden_id: str | None = None
    email: str | None = None


class PaymentRow(NamedTuple):
    """A charge or refund as reconciliation sees it."""

    id: str
    source_id: str
    kind: str  # payment | refund
    status: str
    amount_minor: int
    currency: str
    occurred_at: dt.datetime | None
    order_ref: str | None = None
    related_source_id: str | None = None  # a refund's charge
    golden_id: str | None = None
    email: str | None = None


class Finding(NamedTuple):
    """One reconciliation line: ids, statuses and amounts only (it goes to the CSV)."""

    category: str
    order_id: str = ""
    order_source_id: str = ""
    order_number: str = ""
    order_status: str = ""
    order_total_minor: int | None = None
    order_currency: str = ""
    payment_source_ids: str = ""  # space-separated when an order took several charges
    payment_kind: str = ""
    payment_amount_minor: int | None = None
    payment_currency: str = ""
    detail: str = ""

    def row(self) -> dict[str, Any]:
        return self._asdict()


CSV_COLUMNS = Finding._fields


@dataclass
class Reconciliation:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return sum(self.counts.get(c, 0) for c in PROBLEMS)

    @property
    def mismatch_rate(self) -> float:
        considered = self.counts.get("orders_considered", 0)
        if not considered:
            return 1.0 if self.problems else 0.0
        return round(self.problems / considered, 6)

    def problem_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.category in PROBLEMS]

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "problems": self.problems, "mismatch_rate": self.mismatch_rate}


# --------------------------------------------------------------- order references

_DIGITS = re.compile(r"[^\W\d_]{0,12}[\s#:_\-/]*(\d{1,30})")


def name_form(value: str | None) -> str | None:
    """``"#1001"`` -> ``"1001"``, ``" Shop-7 "`` -> ``"shop-7"``; ``None`` for blank."""
    if value is None:
        return None
    text = value.strip().casefold()
    if text.startswith("#"):
        text = text[1:].strip()
    return text or None


def digits_form(value: str | None) -> str | None:
    """``"ORD-001042"`` -> ``"1042"``; ``None`` when it is not prefix + digits."""
    text = name_form(value)
    if text is None:
        return None
    match = _DIGITS.fullmatch(text)
    return str(int(match.group(1))) if match else None


_AMBIGUOUS = object()


def _index(pairs: Iterable[tuple[str | None, OrderRow]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, order in pairs:
        if key is None:
            continue
        seen = out.get(key)
        if seen is None:
            out[key] = order
        elif seen is not _AMBIGUOUS and seen.id != order.id:
            out[key] = _AMBIGUOUS
    return out


class _References:
    """Resolves an ``order_ref`` to one order (see the module docstring)."""

    def __init__(self, orders: Sequence[OrderRow]) -> None:
        self.by_id = _index([(o.source_id, o) for o in orders] + [(o.id, o) for o in orders])
        self.by_name = _index((name_form(o.number), o) for o in orders)
        self.by_digits = _index((digits_form(o.number), o) for o in orders)

    def resolve(self, ref: str | None) -> OrderRow | None:
        if not ref or not ref.strip():
            return None
        for index, key in ((self.by_id, ref.strip()), (self.by_name, name_form(ref)),
                           (self.by_digits, digits_form(ref))):  # fmt: skip
            hit = index.get(key) if key is not None else None
            if hit is _AMBIGUOUS:
                return None  # a less specific form would be at least as ambiguous
            if hit is not None:
                return hit
        return None


# --------------------------------------------------------------------- matching


def _customer_keys(golden_id: str | None, email: str | None) -> list[tuple[str, str]]:
    keys = []
    if golden_id:
        keys.append(("g", golden_id))
    if email:
        keys.append(("e", email.strip().casefold()))
    return keys


def _same_customer(order: OrderRow, payment: PaymentRow) -> bool:
    if order.golden_id and payment.golden_id:
        return order.golden_id == payment.golden_id
    return bool(order.email and payment.email
                and order.email.strip().casefold() == payment.email.strip().casefold())


def _in_range(when: dt.datetime | None, start: dt.datetime | None,
              end: dt.datetime | None) -> bool:  # fmt: skip
    if start is None and end is None:
        return True
    if when is None:
        return False
    return (start is None or when >= start) and (end is None or when < end)


def _order_cells(o: OrderRow) -> dict[str, Any]:
    return {"order_id": o.id, "order_source_id": o.source_id, "order_number": o.number or "",
            "order_status": o.status, "order_total_minor": o.total_minor,
            "order_currency": o.currency}  # fmt: skip


def _payment_cells(ps: Sequence[PaymentRow]) -> dict[str, Any]:
    if len(ps) == 1:
        p = ps[0]
        return {"payment_source_ids": p.source_id, "payment_kind": p.kind,
                "payment_amount_minor": p.amount_minor, "payment_currency": p.currency}
    currencies = sorted({p.currency for p in ps})
    return {"payment_source_ids": " ".join(p.source_id for p in ps),
            "payment_kind": ps[0].kind,
            "payment_amount_minor": sum(p.amount_minor for p in ps),
            "payment_currency": "/".join(currencies)}  # fmt: skip


def reconcile(
    orders: Iterable[OrderRow],
    payments: Iterable[PaymentRow],
    *,
    window: dt.timedelta = dt.timedelta(hours=72),
    report_from: dt.datetime | None = None,
    report_until: dt.datetime | None = None,
) -> Reconciliation:
    """Match ``orders`` to ``payments`` (see the module docstring); pure and deterministic.

    Rows are de-duplicated by ``source_id`` and processed in ``source_id`` order, so the
    same rows in any order give the same result.
    """
    order_list = sorted({o.source_id: o for o in orders}.values(), key=lambda o: o.source_id)
    pay_list = sorted({p.source_id: p for p in payments}.values(), key=lambda p: p.source_id)
    counts: Counter[str] = Counter({c: 0 for c in CATEGORIES})
    refs = _References(order_list)

    charges = [p for p in pay_list if p.kind != "refund"]
    refunds = [p for p in pay_list if p.kind == "refund"]
    settled = [p for p in charges if p.status == SETTLED]

    # 1. by reference
    by_ref: dict[str, list[PaymentRow]] = defaultdict(list)
    unresolved: list[PaymentRow] = []
    for p in settled:
        order = refs.resolve(p.order_ref)
        if order is None:
            unresolved.append(p)
        else:
            by_ref[order.id].append(p)

    # 2. by customer + currency + amount, closest in time first
    index: dict[tuple[tuple[str, str], str, int], list[OrderRow]] = defaultdict(list)
    for o in order_list:
        if o.id in by_ref or o.placed_at is None:
            continue
        for key in _customer_keys(o.golden_id, o.email):
            index[(key, o.currency, o.total_minor)].append(o)
    # (gap, order source_id, payment source_id) orders the candidates completely.
    candidates: set[tuple[float, str, str]] = set()
    order_of: dict[str, OrderRow] = {}
    limit = window.total_seconds()
    for p in unresolved:
        if p.occurred_at is None:
            continue
        for key in _customer_keys(p.golden_id, p.email):
            for o in index.get((key, p.currency, p.amount_minor), ()):
                gap = abs((p.occurred_at - o.placed_at).total_seconds())  # type: ignore[operator]
                if gap <= limit and _same_customer(o, p):
                    candidates.add((gap, o.source_id, p.source_id))
                    order_of[o.source_id] = o
    payment_of = {p.source_id: p for p in unresolved}
    by_customer: dict[str, PaymentRow] = {}  # order id -> the charge that pays it
    used: set[str] = set()
    for _, osid, psid in sorted(candidates):
        oid = order_of[osid].id
        if oid in by_customer or psid in used:
            continue
        by_customer[oid] = payment_of[psid]
        used.add(psid)

    findings: list[Finding] = []
    matched_charges: set[str] = set()
    for o in order_list:
        paid_by = by_ref.get(o.id) or ([by_customer[o.id]] if o.id in by_customer else [])
        matched_charges.update(p.source_id for p in paid_by)
        if not _in_range(o.placed_at, report_from, report_until):
            continue
        if not paid_by:
            if o.status in EXPECTS_PAYMENT:
                counts["orders_considered"] += 1
                counts[UNMATCHED_ORDER] += 1
                findings.append(Finding(UNMATCHED_ORDER, **_order_cells(o),
                                        detail=f"status {o.status}, no payment found"))
            else:
                counts["orders_not_due"] += 1
            continue
        counts["orders_considered"] += 1
        total = sum(p.amount_minor for p in paid_by)
        if o.id in by_customer:
            category, detail = MATCHED_CUSTOMER, "customer, amount, currency and time"
        elif any(p.currency != o.currency for p in paid_by):
            category, detail = CURRENCY_MISMATCH, f"order in {o.currency}, paid in " + \
                "/".join(sorted({p.currency for p in paid_by}))
        elif total == o.total_minor or (o.status == "partially_paid"
                                        and 0 < total <= o.total_minor):
            category, detail = MATCHED_REF, "order reference"
        else:
            category = AMOUNT_MISMATCH
            detail = f"order total {o.total_minor}, paid {total} ({total - o.total_minor:+d})"
        counts[category] += 1
        findings.append(Finding(category, **_order_cells(o), **_payment_cells(paid_by),
                                detail=detail))

    for p in settled:
        if p.source_id in matched_charges or not _in_range(p.occurred_at, report_from,
                                                             report_until):
            continue
        counts[ORPHAN_PAYMENT] += 1
        detail = (f"order reference {p.order_ref!r} matches no single order" if p.order_ref
                  else "no order reference and no order of the same customer, amount and "
                       "currency in the window")  # fmt: skip
        findings.append(Finding(ORPHAN_PAYMENT, **_payment_cells([p]), detail=detail))

    complete = report_from is None and report_until is None
    by_charge = {p.source_id: p for p in charges}
    for r in refunds:
        if r.status in DEAD_REFUND or not _in_range(r.occurred_at, report_from, report_until):
            continue
        charge = by_charge.get(r.related_source_id or "")
        if (charge is not None and charge.source_id in matched_charges) or refs.resolve(
                r.order_ref) is not None:
            counts["refunds_matched"] += 1
            continue
        if charge is None and not complete:
            counts["refunds_unjudged"] += 1
            continue
        if charge is None:
            detail = f"refunded charge {r.related_source_id or '(none)'} is not in the hub"
        elif charge.status != SETTLED:
            detail = f"refunded charge {charge.source_id} has status {charge.status}"
        else:
            detail = f"refunded charge {charge.source_id} matches no order"
        counts[REFUND_WITHOUT_ORDER] += 1
        findings.append(Finding(REFUND_WITHOUT_ORDER, **_payment_cells([r]), detail=detail))

    counts["orders"] = sum(1 for o in order_list
                           if _in_range(o.placed_at, report_from, report_until))
    counts["payments"] = sum(1 for p in charges
                             if _in_range(p.occurred_at, report_from, report_until))
    counts["refunds"] = sum(1 for p in refunds
                            if _in_range(p.occurred_at, report_from, report_until))
    counts["payments_not_settled"] = sum(
        1 for p in charges
        if p.status != SETTLED and _in_range(p.occurred_at, report_from, report_until))
    for key in ("orders_not_due", "refunds_matched", "refunds_unjudged", "orders_considered"):
        counts.setdefault(key, 0)
    order_of_category = {c: i for i, c in enumerate(CATEGORIES)}
    findings.sort(key=lambda f: (order_of_category[f.category], f.order_source_id,
                                 f.payment_source_ids))  # fmt: skip
    return Reconciliation(findings=findings, counts=dict(counts))


# ------------------------------------------------------------------------ the hub

CHUNK_ROWS = 5000


def load_rows(
    *,
    database_url: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    margin: dt.timedelta = dt.timedelta(0),
    order_source: str = "shopify",
    payment_source: str = "stripe",
) -> tuple[list[OrderRow], list[PaymentRow]]:
    """Orders and payments (with golden id and customer e-mail) in two streamed queries.

    Reads ``[since - margin, until + margin)`` when a range is given. Core rows streamed
    in chunks of :data:`CHUNK_ROWS`, no ORM objects: memory is the rows themselves.
    """
    orders, payments = Order.__table__, Payment.__table__
    links, customers = CustomerLink.__table__, Customer.__table__

    def ranged(column: Any) -> list[Any]:
        where = []
        if since is not None:
            where.append(column >= since - margin)
        if until is not None:
            where.append(column < until + margin)
        return where

    order_stmt = (
        sa.select(orders.c.id, orders.c.source_id, orders.c.number, orders.c.status,
                  orders.c.total_minor, orders.c.currency, orders.c.placed_at,
                  links.c.golden_id, sa.func.coalesce(orders.c.email, customers.c.email))
        .select_from(orders.outerjoin(links, links.c.customer_id == orders.c.customer_id)
                     .outerjoin(customers, customers.c.id == orders.c.customer_id))
        .where(orders.c.source == order_source, *ranged(orders.c.placed_at))
    )  # fmt: skip
    payment_stmt = (
        sa.select(payments.c.id, payments.c.source_id, payments.c.kind, payments.c.status,
                  payments.c.amount_minor, payments.c.currency, payments.c.occurred_at,
                  payments.c.order_ref, payments.c.related_source_id, links.c.golden_id,
                  customers.c.email)
        .select_from(payments.outerjoin(links, links.c.customer_id == payments.c.customer_id)
                     .outerjoin(customers, customers.c.id == payments.c.customer_id))
        .where(payments.c.source == payment_source, *ranged(payments.c.occurred_at))
    )  # fmt: skip
    with get_engine(database_url).connect() as conn:
        order_rows = _stream(conn, order_stmt, OrderRow)
        payment_rows = _stream(conn, payment_stmt, PaymentRow)
    return order_rows, payment_rows


def _stream(conn: sa.Connection, stmt: Any, row_type: Any) -> list[Any]:
    out: list[Any] = []
    result = conn.execution_options(yield_per=CHUNK_ROWS).execute(stmt)
    for partition in result.partitions():
        out.extend(row_type._make(row) for row in partition)
    return out


# ------------------------------------------------------------------------- export


def exports_dir() -> Path:
    return get_settings().home / "exports"


def write_csv(result: Reconciliation, directory: Path | None = None,
              *, now: dt.datetime | None = None) -> Path:  # fmt: skip
    """Every finding as ``reconciliation-<UTC timestamp>.csv`` (ids and amounts only).

    Written to a temporary name and renamed, so a reader never sees half a file; a
    second export in the same second gets a ``-2``, ``-3`` … suffix.
    """
    directory = directory or exports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    tmp = directory / f".reconciliation-{stamp}-{os.getpid()}.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(result.findings)  # tuples, in CSV_COLUMNS order
    n = 1
    while True:
        path = directory / (f"reconciliation-{stamp}.csv" if n == 1
                            else f"reconciliation-{stamp}-{n}.csv")  # fmt: skip
        try:
            os.link(tmp, path)  # atomic, and fails instead of overwriting
        except FileExistsError:
            n += 1
            continue
        tmp.unlink()
        return path


# --------------------------------------------------------------------------- Prefect


def emit_mismatch(result: Reconciliation, threshold: float, export: Path | None) -> None:
    """``interchange.reconciliation.mismatch``: rate, threshold and counts, no record data."""
    from prefect.events import emit_event

    emit_event(
        event=MISMATCH_EVENT,
        resource={"prefect.resource.id": RESOURCE_ID,
                  "prefect.resource.name": "order-to-cash",
                  "prefect.resource.role": "reconciliation"},
        payload={"rate": result.mismatch_rate, "threshold": threshold,
                 "problems": result.problems, "counts": result.counts,
                 "export": export.name if export else None},
    )  # fmt: skip


def reconcile_task_fn(
    window_hours: float = 72,
    threshold: float = 0.05,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    sample: int = 200,
    database_url: str | None = None,
    export_dir: str | None = None,
) -> dict[str, Any]:
    """Load, match, export, and announce a mismatch rate above ``threshold``.

    Returns the counts, the rate, the CSV path and up to ``sample`` problem findings
    (as dicts, for the flow's table artifact).
    """
    window = dt.timedelta(hours=window_hours)
    orders, payments = load_rows(database_url=database_url, since=since, until=until,
                                 margin=window)  # fmt: skip
    result = reconcile(orders, payments, window=window, report_from=since, report_until=until)
    export = write_csv(result, Path(export_dir) if export_dir else None)
    alerted = result.mismatch_rate > threshold
    if alerted:
        emit_mismatch(result, threshold, export)
    return {"counts": result.summary(), "threshold": threshold, "alerted": alerted,
            "export": str(export),
            "sample": [f.row() for f in result.problem_findings()[:sample]]}  # fmt: skip


def _task() -> Any:
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    from interchange.runtime import retry_if_retryable

    return task(name="reconcile-orders", retries=2, retry_delay_seconds=[1, 5],
                retry_condition_fn=retry_if_retryable, persist_result=False,
                cache_policy=NO_CACHE)(reconcile_task_fn)  # fmt: skip


reconcile_task = _task()
