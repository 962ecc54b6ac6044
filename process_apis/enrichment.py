"""CRM enrichment: lifetime value, order count and last order date pushed to HubSpot.

Per live golden customer (``golden_customers`` not merged into another) the hub knows
what the person bought across every source; this writes three HubSpot contact
properties through the batch upsert by e-mail, sending only what changed since the
last push.

Metrics
-------
``interchange_order_count``
    Orders of every source (``orders``) whose customer record is linked to the golden
    customer (``customer_links``), except ``cancelled`` and ``voided`` ones
    (:data:`EXCLUDED_ORDER_STATUSES`). Refunded orders still count: they were placed.
``interchange_last_order_date``
    The UTC day (``YYYY-MM-DD``, one of HubSpot's accepted date formats) of the latest
    ``placed_at`` among those orders; empty when there is none.
``interchange_lifetime_value``
    Net money received: succeeded payments minus succeeded refunds (``payments`` rows of
    the linked customer records with ``status = succeeded``; failed, pending and
    cancelled ones do not count), as a decimal in major units of the *reporting
    currency* (``"123.45"``).

Currency policy
---------------
A contact property holds one number, and the hub has no exchange rates, so nothing is
converted. The lifetime value is written in one configured reporting currency
(:data:`DEFAULT_CURRENCY` unless the run says otherwise). A customer with any succeeded
payment or refund in another currency has *no* lifetime value: the property is sent
empty (which clears it in HubSpot), so a stale or misleading number never stays, and
the run counts them as ``ltv_other_currency``. A customer without succeeded payments
has a lifetime value of ``0`` (orders paid outside the payment sources do not add to
it).

Which customers
---------------
Golden customers without an e-mail cannot be keyed in HubSpot: skipped and counted
(``skipped_no_email``). Golden customers with no order and no succeeded payment or
refund are not pushed unless they were pushed before (``skipped_no_activity``): the
upsert would otherwise create an empty contact for every customer record of every
source.

Only what changed
-----------------
``enrichment_pushes`` keeps, per golden customer, the e-mail and the property values
HubSpot accepted, their hash and when. A run sends a contact only when its values (or
its e-mail) differ from that, and only the properties that differ (all three when the
e-mail changed). The state is written per batch, after HubSpot answered, and only for
the contacts HubSpot returned: a failed call records nothing, so the next run sends
the same values again. Pushing is therefore idempotent: a second run sends nothing.

Scale
-----
Golden customers are read in keyset chunks (:data:`DEFAULT_CHUNK_SIZE` ids in id order);
per chunk three aggregate queries (orders, payments, last push) restricted to the
chunk's id range through the ``customer_links.golden_id`` index. Memory is one chunk.

Limitations
-----------
Orders or payments not linked to a hub customer (guest checkouts with only an e-mail)
are not attributed. When a golden customer's e-mail changes, the values go to the
contact with the new e-mail; the old contact keeps its last values. Real HubSpot needs
the three properties defined on contacts first (:data:`PROPERTY_DEFINITIONS`):
:func:`ensure_contact_properties` creates the missing ones (the sandbox accepts any
property and has no properties API, so it is off unless the run asks for it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from interchange.errors import InterchangeError
from interchange.http import SourceClient
from interchange.settings import get_source
from interchange.store import get_engine, utcnow
from process_apis.canonical import rules
from process_apis.canonical.models import (
    CustomerLink,
    EnrichmentPush,
    GoldenCustomer,
    Order,
    Payment,
)
from system_apis.hubspot.client import hubspot_client
from system_apis.hubspot.streams import (
    MAX_BATCH_INPUTS,
    batch_upsert_contacts,
    ensure_properties,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CURRENCY",
    "EXCLUDED_ORDER_STATUSES",
    "PROPERTIES",
    "PROPERTY_DEFINITIONS",
    "ChunkResult",
    "Metrics",
    "changes",
    "compute_chunk",
    "contact_properties",
    "enrich_chunk",
    "enrich_chunk_task",
    "ensure_contact_properties",
    "ensure_properties_task",
    "format_money",
    "prune_state",
    "prune_state_task",
]

LTV = "interchange_lifetime_value"
ORDER_COUNT = "interchange_order_count"
LAST_ORDER_DATE = "interchange_last_order_date"
PROPERTIES = (LTV, ORDER_COUNT, LAST_ORDER_DATE)

# What real HubSpot needs to exist on contacts before the upsert may write them
# (POST /crm/v3/properties/contacts, one per property).
PROPERTY_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"name": LTV, "label": "Lifetime value (Interchange)", "type": "number",
     "fieldType": "number", "groupName": "contactinformation"},
    {"name": ORDER_COUNT, "label": "Order count (Interchange)", "type": "number",
     "fieldType": "number", "groupName": "contactinformation"},
    {"name": LAST_ORDER_DATE, "label": "Last order date (Interchange)", "type": "date",
     "fieldType": "date", "groupName": "contactinformation"},
)  # fmt: skip

DEFAULT_CURRENCY = "USD"
DEFAULT_CHUNK_SIZE = 1000
SETTLED = "succeeded"
EXCLUDED_ORDER_STATUSES = frozenset({"cancelled", "voided"})


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Metrics:
    """What the hub knows about one golden customer's buying (no personal data but
    the e-mail, which is the HubSpot key)."""

    golden_id: str
    email: str | None
    order_count: int = 0
    last_order_at: dt.datetime | None = None
    net_minor: int = 0  # succeeded payments - succeeded refunds, reporting currency
    other_currency: int = 0  # succeeded payments/refunds in other currencies
    payments: int = 0  # succeeded payments/refunds in any currency

    @property
    def active(self) -> bool:
        return self.order_count > 0 or self.payments > 0


def format_money(minor: int, currency: str) -> str:
    """Minor units as a decimal in major units: ``12345 USD -> "123.45"``, ``500 JPY -> "500"``."""
    exponent = rules.currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def contact_properties(metrics: Metrics, currency: str) -> dict[str, str]:
    """The HubSpot property values (strings; ``""`` clears a property) for ``metrics``."""
    ltv = "" if metrics.other_currency else format_money(metrics.net_minor, currency)
    last = metrics.last_order_at
    day = last.astimezone(dt.UTC).date().isoformat() if last is not None else ""
    return {LTV: ltv, ORDER_COUNT: str(metrics.order_count), LAST_ORDER_DATE: day}


@dataclass(frozen=True)
class LastPush:
    email: str
    properties: Mapping[str, Any]


def changes(email: str, desired: Mapping[str, str], last: LastPush | None
            ) -> dict[str, str]:  # fmt: skip
    """The properties to send: all of them for a contact never pushed (or whose e-mail
    changed), else those whose value differs from the last push; ``{}`` for none."""
    if last is None or last.email != email:
        return dict(desired)
    return {k: v for k, v in desired.items() if last.properties.get(k) != v}


def content_hash(email: str, properties: Mapping[str, str]) -> str:
    body = json.dumps([email, dict(properties)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------- the hub


def compute_chunk(conn: sa.Connection, *, after: str | None, size: int,
                  currency: str) -> list[Metrics]:  # fmt: skip
    """Metrics of the next ``size`` live golden customers after id ``after`` (id order).

    Four queries whatever the chunk holds: the golden ids, then orders and payments
    aggregated per golden id over the chunk's id range.
    """
    goldens, links = GoldenCustomer.__table__, CustomerLink.__table__
    orders, payments = Order.__table__, Payment.__table__
    stmt = sa.select(goldens.c.id, goldens.c.email).where(goldens.c.merged_into.is_(None))
    if after is not None:
        stmt = stmt.where(goldens.c.id > after)
    people = conn.execute(stmt.order_by(goldens.c.id).limit(size)).all()
    if not people:
        return []
    lo, hi = people[0][0], people[-1][0]
    in_range = links.c.golden_id.between(lo, hi)

    order_rows = conn.execute(
        sa.select(links.c.golden_id, sa.func.count(orders.c.id), sa.func.max(orders.c.placed_at))
        .select_from(orders.join(links, links.c.customer_id == orders.c.customer_id))
        .where(in_range, orders.c.status.not_in(sorted(EXCLUDED_ORDER_STATUSES)))
        .group_by(links.c.golden_id)
    ).all()  # fmt: skip
    signed = sa.case((payments.c.kind == "refund", -payments.c.amount_minor),
                     else_=payments.c.amount_minor)  # fmt: skip
    payment_rows = conn.execute(
        sa.select(links.c.golden_id, payments.c.currency, sa.func.sum(signed),
                  sa.func.count(payments.c.id))
        .select_from(payments.join(links, links.c.customer_id == payments.c.customer_id))
        .where(in_range, payments.c.status == SETTLED)
        .group_by(links.c.golden_id, payments.c.currency)
    ).all()  # fmt: skip

    by_orders = {gid: (int(n), last) for gid, n, last in order_rows}
    money: dict[str, list[int]] = {}
    for gid, code, total, n in payment_rows:
        entry = money.setdefault(gid, [0, 0, 0])  # net, other-currency rows, rows
        if str(code).upper() == currency:
            entry[0] += int(total or 0)
        else:
            entry[1] += int(n)
        entry[2] += int(n)
    out = []
    for gid, email in people:
        n, last = by_orders.get(gid, (0, None))
        net, other, rows = money.get(gid, (0, 0, 0))
        out.append(Metrics(gid, email, n, last, net, other, rows))
    return out


def _last_pushes(conn: sa.Connection, ids: Sequence[str]) -> dict[str, LastPush]:
    state = EnrichmentPush.__table__
    rows = conn.execute(sa.select(state.c.golden_id, state.c.email, state.c.properties)
                        .where(state.c.golden_id.in_(list(ids)))).all()  # fmt: skip
    return {gid: LastPush(email, props or {}) for gid, email, props in rows}


def _record(database_url: str | None, pushed: Sequence[tuple[str, str, dict[str, str],
                                                             str | None]]) -> None:  # fmt: skip
    """Write the state of contacts HubSpot accepted (golden id, e-mail, values, HubSpot id)."""
    if not pushed:
        return
    state = EnrichmentPush.__table__
    now = utcnow()
    rows = [{"golden_id": gid, "email": email, "properties": props,
             "content_hash": content_hash(email, props), "hubspot_id": hid, "pushed_at": now}
            for gid, email, props, hid in pushed]  # fmt: skip
    with get_engine(database_url).begin() as conn:
        conn.execute(state.delete().where(state.c.golden_id.in_([r["golden_id"] for r in rows])))
        conn.execute(state.insert(), rows)


def prune_state(*, database_url: str | None = None) -> int:
    """Forget pushes of golden customers that are gone or merged; returns how many."""
    state, goldens = EnrichmentPush.__table__, GoldenCustomer.__table__
    live = sa.select(goldens.c.id).where(goldens.c.merged_into.is_(None))
    with get_engine(database_url).begin() as conn:
        return conn.execute(state.delete().where(state.c.golden_id.not_in(live))).rowcount or 0


def ensure_contact_properties(source: str = "hubspot") -> dict[str, list[str]]:
    """Create the enrichment's contact properties in HubSpot where missing (idempotent)."""
    with hubspot_client(get_source(source)) as client:
        return ensure_properties(client, PROPERTY_DEFINITIONS)


# --------------------------------------------------------------------------- a chunk


@dataclass
class ChunkResult:
    """Counts of one chunk (ids and counts only); ``next_after`` is ``None`` at the end."""

    computed: int = 0
    changed: int = 0
    pushed: int = 0
    unchanged: int = 0
    skipped_no_email: int = 0
    skipped_no_activity: int = 0
    skipped_shared_email: int = 0  # two live golden customers, one contact: not guessed
    ltv_other_currency: int = 0
    failed: int = 0
    deferred: int = 0  # changed but over the run's limit or after a failed call
    batches: int = 0
    created: int = 0
    requests: int = 0  # HTTP requests made to HubSpot (retries included)
    changed_properties: Counter[str] = field(default_factory=Counter)
    error: str | None = None  # what failed (exception type and status, error categories)
    aborted: bool = False  # a HubSpot call failed: the run should stop
    next_after: str | None = None

    COUNTS = ("computed", "changed", "pushed", "unchanged", "skipped_no_email",
              "skipped_no_activity", "skipped_shared_email", "ltv_other_currency", "failed",
              "deferred",
              "batches", "created", "requests")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in self.COUNTS}
        out["changed_properties"] = dict(sorted(self.changed_properties.items()))
        out["error"] = self.error
        out["aborted"] = self.aborted
        out["next_after"] = self.next_after
        return out


def enrich_chunk(
    after: str | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    currency: str = DEFAULT_CURRENCY,
    dry_run: bool = False,
    budget: int | None = None,
    source: str = "hubspot",
    database_url: str | None = None,
    client: SourceClient | None = None,
) -> ChunkResult:
    """Compute, diff and push one chunk of golden customers.

    ``budget`` caps how many contacts this chunk may push (the rest are ``deferred`` to
    the next run); ``dry_run`` computes and diffs but sends and records nothing. A
    failed HubSpot call stops the chunk: its contacts count as ``failed``, the ones
    after it as ``deferred``, and ``error`` says what failed. ``client`` replaces the
    HubSpot client built from the ``source`` config (tests).
    """
    currency = rules.normalize_currency(currency)
    result = ChunkResult()
    todo: list[tuple[str, str, dict[str, str], dict[str, str]]] = []  # gid, email, send, all
    with get_engine(database_url).connect() as conn:
        metrics = compute_chunk(conn, after=after, size=chunk_size, currency=currency)
        if not metrics:
            return result
        last = _last_pushes(conn, [m.golden_id for m in metrics])
        shared = _shared_emails(conn, [m.email for m in metrics if m.email])
    result.computed = len(metrics)
    result.next_after = metrics[-1].golden_id
    for m in metrics:
        if not m.email:
            result.skipped_no_email += 1
            continue
        if m.email.strip().lower() in shared:
            # A split (undone merge) can leave two golden customers on one e-mail; both
            # would upsert the same contact, the last one winning. Counted, not pushed.
            result.skipped_shared_email += 1
            continue
        before = last.get(m.golden_id)
        if before is None and not m.active:
            result.skipped_no_activity += 1
            continue
        if m.other_currency:
            result.ltv_other_currency += 1
        desired = contact_properties(m, currency)
        send = changes(m.email, desired, before)
        if not send:
            result.unchanged += 1
            continue
        result.changed += 1
        result.changed_properties.update(send.keys())
        todo.append((m.golden_id, m.email, send, desired))
    if budget is not None and len(todo) > budget:
        result.deferred += len(todo) - max(budget, 0)
        todo = todo[:max(budget, 0)]
    if dry_run or not todo:
        return result
    if client is not None:
        _push(client, todo, result, database_url=database_url)
    else:
        with hubspot_client(get_source(source)) as own:
            _push(own, todo, result, database_url=database_url)
    return result


def _shared_emails(conn: sa.Connection, emails: list[str]) -> set[str]:
    """Those of ``emails`` that more than one live golden customer has (lower-cased)."""
    if not emails:
        return set()
    goldens = GoldenCustomer.__table__
    email = sa.func.lower(goldens.c.email)
    wanted = sorted({e.strip().lower() for e in emails})
    out: set[str] = set()
    for start in range(0, len(wanted), 500):
        out.update(row[0] for row in conn.execute(
            sa.select(email).where(goldens.c.merged_into.is_(None),
                                   email.in_(wanted[start:start + 500]))
            .group_by(email).having(sa.func.count() > 1)))  # fmt: skip
    return out


def _push(client: SourceClient, todo: Sequence[tuple[str, str, dict[str, str], dict[str, str]]],
          result: ChunkResult, *, database_url: str | None) -> None:  # fmt: skip
    requests_before = client.stats.requests
    try:
        for start in range(0, len(todo), MAX_BATCH_INPUTS):
            batch = todo[start:start + MAX_BATCH_INPUTS]
            try:
                answer = batch_upsert_contacts(
                    client, [{"email": email, **send} for _, email, send, _ in batch])
            except InterchangeError as exc:
                status = getattr(exc, "status_code", None)
                result.error = type(exc).__name__ + (f" ({status})" if status else "")
                result.aborted = True
                result.failed += len(batch)
                result.deferred += len(todo) - start - len(batch)
                return
            result.batches += answer["batches"]
            result.created += answer["created"]
            ids: dict[str, str] = answer["ids"]
            accepted = []
            for gid, email, _, desired in batch:
                key = email.strip().lower()
                if key in ids:
                    accepted.append((gid, email, desired, ids[key]))
                else:  # a per-record error of a 207 answer: not recorded, sent again
                    result.failed += 1
            errors = answer["errors"]
            if errors:  # categories only: HubSpot's messages may quote e-mails
                kinds = sorted({str(e.get("category") or e.get("status")) for e in errors})
                result.error = f"HubSpot rejected {len(errors)} input(s): {', '.join(kinds)}"
            _record(database_url, accepted)
            result.pushed += len(accepted)
    finally:
        result.requests = client.stats.requests - requests_before


def total(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts of a run: the chunks' counts added up."""
    out: dict[str, Any] = dict.fromkeys(ChunkResult.COUNTS, 0)
    props: Counter[str] = Counter()
    errors = []
    for r in results:
        for name in ChunkResult.COUNTS:
            out[name] += r.get(name, 0)
        props.update(r.get("changed_properties") or {})
        if r.get("error"):
            errors.append(r["error"])
    out["changed_properties"] = dict(sorted(props.items()))
    out["errors"] = errors
    return out


# --------------------------------------------------------------------------- Prefect


def enrich_chunk_fn(after: str | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                    currency: str = DEFAULT_CURRENCY, dry_run: bool = False,
                    budget: int | None = None, source: str = "hubspot",
                    database_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    return enrich_chunk(after, chunk_size=chunk_size, currency=currency, dry_run=dry_run,
                        budget=budget, source=source, database_url=database_url).as_dict()


def _tasks() -> tuple[Any, Any, Any]:
    from prefect import task

    # No task retries: the HubSpot client already retries 429/5xx/timeouts with backoff,
    # and a failed batch is reported in the counts (and sent again by the next run).
    chunk = task(name="enrich-crm-chunk", persist_result=False,
                 task_run_name="enrich-crm-chunk-after-{after}")(enrich_chunk_fn)  # fmt: skip
    prune = task(name="enrich-crm-prune", retries=2, retry_delay_seconds=[1, 5],
                 persist_result=False)(prune_state)  # fmt: skip
    ensure = task(name="enrich-crm-properties", persist_result=False)(
        ensure_contact_properties)
    return chunk, prune, ensure


enrich_chunk_task, prune_state_task, ensure_properties_task = _tasks()
