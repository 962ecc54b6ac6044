"""Customer 360: identity resolution of hub customers into golden customers.

Every live source customer (a ``customers`` row: HubSpot, Stripe, Shopify, ERP, any
declarative source) belongs to exactly one golden customer (``golden_customers``,
through ``customer_links``).

Matching
    1. the same normalised e-mail (the canonical rules already lower-cased and
       validated it);
    2. else the same E.164 phone *and* a name check: both records have a name and the
       surnames agree (last word, or the part before a comma in ``Lee, Ann``; accents,
       case and punctuation ignored). A shared phone alone never merges: families and
       offices share lines.
    Matches are transitive (union-find). A *pinned* link - set by :func:`split` to undo
    a wrong merge - is never matched automatically.

Stable ids
    Each cluster keeps the golden id that most of its members had before; when two
    clusters claim one id, the one with no other claim wins, then the older golden.
    A golden customer whose members all moved to another one is *merged into* it (its
    row stays, with ``merged_into``, so old ids still lead to the person). So a source
    record that changes its e-mail moves to the right golden customer, and the others
    keep theirs.

Survivorship
    Field values come from the rules in ``process_apis/survivorship.yaml`` (or
    ``INTERCHANGE_SURVIVORSHIP_FILE``): ``source_priority`` or ``most_recent``, per field.
    ``provenance`` records, per field, the source record the value came from.

:func:`resolve` is one transaction and returns the golden ids created, updated and
merged (for domain events: ids only, no personal data).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from sqlalchemy import Connection, bindparam, delete, select, update
from sqlmodel import Session

from interchange.errors import ConfigError
from interchange.settings import get_settings
from interchange.store import session_scope
from process_apis.canonical.models import Customer, CustomerLink, GoldenCustomer, new_id, utcnow

__all__ = ["FIELDS", "ResolveResult", "Rule", "load_rules", "resolve", "split", "surname"]

FIELDS = ("email", "name", "phone", "country")
DEFAULT_RULES_FILE = Path(__file__).with_name("survivorship.yaml")


@dataclass(frozen=True)
class Rule:
    rule: str  # source_priority | most_recent
    order: tuple[str, ...] = ()


def load_rules(path: Path | None = None) -> dict[str, Rule]:
    """The customer survivorship rules, checked: every field, known rule names."""
    path = path or get_settings().survivorship_file or DEFAULT_RULES_FILE
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"survivorship rules {path}: {exc}") from exc
    body = raw.get("customer") if isinstance(raw, dict) else None
    if not isinstance(body, dict):
        raise ConfigError(f"survivorship rules {path}: expected a 'customer:' mapping")
    rules: dict[str, Rule] = {}
    for name in FIELDS:
        spec = body.get(name) or {"rule": "most_recent"}
        kind = spec.get("rule") if isinstance(spec, dict) else None
        order = spec.get("order", []) if isinstance(spec, dict) else None
        if kind not in ("source_priority", "most_recent") or not isinstance(order, list):
            raise ConfigError(f"survivorship rules {path}: customer.{name} needs rule "
                              "source_priority (with an order list) or most_recent")
        if kind == "source_priority" and not order:
            raise ConfigError(f"survivorship rules {path}: customer.{name} has no order")
        rules[name] = Rule(kind, tuple(str(s) for s in order))
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ConfigError(f"survivorship rules {path}: unknown customer field(s) {unknown}")
    return rules


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def surname(name: str | None) -> str | None:
    """The surname used by the name check: ``Lee`` of ``Ann Lee`` and of ``Lee, Ann``."""
    if not name or not name.strip():
        return None
    folded = _fold(name)
    part = folded.split(",", 1)[0] if "," in folded else folded
    words = re.findall(r"[^\W\d_]+(?:['-][^\W\d_]+)*", part)
    if not words:
        return None
    return words[0] if "," in folded else words[-1]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class ResolveResult:
    customers: int = 0
    golden: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (absorbed, into)
    unchanged: int = 0
    by_match: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        return {"customers": self.customers, "golden": self.golden,
                "created": len(self.created), "updated": len(self.updated),
                "merged": len(self.merged), "unchanged": self.unchanged,
                "by_match": dict(self.by_match)}  # fmt: skip


class _Member(NamedTuple):
    """A live source customer as matching and survivorship see it (a plain tuple: 100,000
    of them cost a fraction of as many ORM objects)."""

    id: str
    source: str
    source_id: str
    email: str | None
    name: str | None
    phone: str | None
    country: str | None
    updated_at: dt.datetime


def _clusters(customers: list[_Member], pinned: dict[str, str]) -> list[list[_Member]]:
    uf = _UnionFind()
    by_email: dict[str, str] = {}
    by_phone: dict[tuple[str, str], str] = {}
    for c in customers:
        uf.find(c.id)
        if c.id in pinned:
            continue
        if c.email:
            first = by_email.setdefault(c.email, c.id)
            uf.union(first, c.id)
        last = surname(c.name)
        if c.phone and last:
            first = by_phone.setdefault((c.phone, last), c.id)
            uf.union(first, c.id)
    groups: dict[str, list[_Member]] = defaultdict(list)
    for c in customers:
        groups[uf.find(c.id)].append(c)
    # Pinned customers stay with the golden customer they were pinned to.
    pinned_groups: dict[str, list[_Member]] = defaultdict(list)
    out: list[list[_Member]] = []
    for members in groups.values():
        if len(members) == 1 and members[0].id in pinned:
            pinned_groups[pinned[members[0].id]].append(members[0])
        else:
            out.append(members)
    return out + list(pinned_groups.values())


def _matched_by(c: _Member, members: list[_Member], pinned: dict[str, str]) -> str:
    if c.id in pinned:
        return "pinned"
    if len(members) == 1:
        return "alone"
    if c.email and any(m.email == c.email for m in members if m is not c):
        return "email"
    return "phone+name"


@functools.lru_cache(maxsize=64)
def _rank(order: tuple[str, ...]) -> dict[str, int]:
    return {s: i for i, s in enumerate(order)}


def _survive(members: list[_Member], rules: dict[str, Rule]) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    values: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    recent = sorted(members, key=lambda m: (m.updated_at, m.source, m.source_id), reverse=True)
    for name, rule in rules.items():
        candidates = [m for m in recent if getattr(m, name)]
        if rule.rule == "source_priority":
            rank = _rank(rule.order)
            candidates.sort(key=lambda m: rank.get(m.source, len(rank)))  # stable: recency
        if candidates:
            best = candidates[0]
            values[name] = getattr(best, name)
            provenance[name] = {"source": best.source, "source_id": best.source_id,
                                "customer_id": best.id}  # fmt: skip
        else:
            values[name] = None
    return values, provenance


def _hash(values: dict[str, Any], provenance: dict[str, Any], members: int) -> str:
    body = json.dumps([values, provenance, members], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


# Rows are read and written this many at a time: Core rows and executemany, no ORM
# objects, so memory is the matching input itself (see resolve).
CHUNK_ROWS = 5_000


def _stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    result = conn.execute(stmt.execution_options(yield_per=CHUNK_ROWS))
    for partition in result.partitions():
        yield from partition


class _Batch:
    """Parameter sets for one statement, executed ``CHUNK_ROWS`` at a time."""

    def __init__(self, conn: Connection, stmt: Any) -> None:
        self.conn, self.stmt = conn, stmt
        self.rows: list[dict[str, Any]] = []

    def add(self, **params: Any) -> None:
        self.rows.append(params)
        if len(self.rows) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.execute(self.stmt, self.rows)
            self.rows = []


def resolve(*, database_url: str | None = None, rules: dict[str, Rule] | None = None
            ) -> ResolveResult:  # fmt: skip
    """Match every live hub customer into golden customers (one transaction).

    Customers, links and live golden customers are read as Core rows in chunks (only
    the columns matching needs) and the changes written with executemany in chunks, so
    time and memory grow with the number of customers and no more: the customers (as
    tuples), their links and the live golden ids are held once each, as union-find
    needs them all.
    """
    rules = rules or load_rules()
    result = ResolveResult()
    cust, lnk, gold = Customer.__table__, CustomerLink.__table__, GoldenCustomer.__table__
    with session_scope(database_url) as session:
        conn = session.connection()
        # Values repeated across rows (source, country, matched_by, a run's timestamp)
        # are kept as one object each rather than one per row.
        share: dict[Any, Any] = {}
        one = share.setdefault
        customers = [
            _Member(cid, one(source, source), sid, email, name, phone, one(country, country),
                    updated)
            for cid, source, sid, email, name, phone, country, updated in _stream(
                conn, select(cust.c.id, cust.c.source, cust.c.source_id, cust.c.email,
                             cust.c.name, cust.c.phone, cust.c.country, cust.c.updated_at)
                .where(cust.c.deleted.is_(False)))
        ]  # fmt: skip
        before: dict[str, str] = {}  # customer id -> golden id (every link)
        how_before: dict[str, str] = {}
        pinned: dict[str, str] = {}
        for cid, gid, how, pin in _stream(conn, select(
                lnk.c.customer_id, lnk.c.golden_id, lnk.c.matched_by, lnk.c.pinned)):
            before[cid] = gid
            how_before[cid] = one(how, how)
            if pin:
                pinned[cid] = gid
        # Live golden customers: id -> (created_at, content_hash), in the table's order.
        goldens = {gid: (one(created, created), digest) for gid, created, digest in _stream(
            conn, select(gold.c.id, gold.c.created_at, gold.c.content_hash).where(
                gold.c.merged_into.is_(None)))}
        share.clear()
        clusters = _clusters(customers, pinned)
        result.customers = len(customers)
        assignment = _assign(clusters, before, goldens)
        now = utcnow()
        new_golden = _Batch(conn, gold.insert())
        changed_golden = _Batch(conn, update(gold).where(gold.c.id == bindparam("b_id")))
        new_link = _Batch(conn, lnk.insert())
        moved_link = _Batch(conn, update(lnk).where(lnk.c.customer_id == bindparam("b_id")))
        claimed: set[str] = set()
        final: list[str] = []
        matches: Counter[str] = Counter()
        for index, members in enumerate(clusters):
            gid = assignment.get(index)
            values, provenance = _survive(members, rules)
            digest = _hash(values, provenance, len(members))
            if gid is None or gid not in goldens:
                gid = gid or new_id("gld")
                new_golden.add(id=gid, provenance=provenance, members=len(members),
                               merged_into=None, content_hash=digest, created_at=now,
                               updated_at=now, **values)  # fmt: skip
                result.created.append(gid)
            elif goldens[gid][1] != digest:
                changed_golden.add(b_id=gid, provenance=provenance, members=len(members),
                                   content_hash=digest, updated_at=now, **values)
                result.updated.append(gid)
            else:
                result.unchanged += 1
            claimed.add(gid)
            final.append(gid)
            for c in members:
                how = _matched_by(c, members, pinned)
                matches[how] += 1
                old = before.get(c.id)
                if old is None:
                    new_link.add(customer_id=c.id, golden_id=gid, matched_by=how,
                                 pinned=False, updated_at=now)  # fmt: skip
                elif (old, how_before[c.id]) != (gid, how):
                    moved_link.add(b_id=c.id, golden_id=gid, matched_by=how, updated_at=now)
        for batch in (new_golden, changed_golden, new_link, moved_link):
            batch.flush()
        # Golden customers left without members: absorbed by the cluster that took most
        # of their members (merged), or gone with their source records (deleted).
        moved: dict[str, Counter[str]] = defaultdict(Counter)
        for index, members in enumerate(clusters):
            for c in members:
                old = before.get(c.id)
                if old is not None and old not in claimed:
                    moved[old][final[index]] += 1
        merge = _Batch(conn, update(gold).where(gold.c.id == bindparam("b_id")))
        gone: list[str] = []
        for gid in goldens:
            if gid in claimed:
                continue
            into = moved.get(gid)
            target = into.most_common(1)[0][0] if into else ""
            if target:
                # Only the pointer stays: the absorbed record's personal data goes (the
                # golden customer it joined holds the current values).
                merge.add(b_id=gid, merged_into=target, members=0, updated_at=now,
                          email=None, name=None, phone=None, country=None, provenance={},
                          content_hash="")  # fmt: skip
                result.merged.append((gid, target))
            else:
                gone.append(gid)
        merge.flush()
        for start in range(0, len(gone), CHUNK_ROWS):
            chunk = gone[start:start + CHUNK_ROWS]
            # Pointers to a deleted golden customer lead nowhere: they go with it.
            conn.execute(delete(gold).where(gold.c.id.in_(chunk) | gold.c.merged_into.in_(chunk)))
        live = {c.id for c in customers}
        stale = [cid for cid in before if cid not in live]
        for start in range(0, len(stale), CHUNK_ROWS):
            chunk = stale[start:start + CHUNK_ROWS]
            conn.execute(delete(lnk).where(lnk.c.customer_id.in_(chunk)))
        # A merged golden's own merged-into pointers follow it (no chains to walk).
        chains = _Batch(conn, update(gold).where(gold.c.merged_into == bindparam("b_absorbed"))
                        .values(merged_into=bindparam("b_into")))
        for absorbed, into in result.merged:
            chains.add(b_absorbed=absorbed, b_into=into)
        chains.flush()
        result.golden = len(clusters)
        result.by_match = dict(matches)
    return result


def _assign(clusters: list[list[_Member]], before: dict[str, str],
            goldens: dict[str, tuple[dt.datetime, str]]) -> dict[int, str]:  # fmt: skip
    """Cluster index -> the golden id it keeps (see the module docstring)."""
    overlap: list[tuple[int, int, str, int]] = []
    for index, members in enumerate(clusters):
        previous = Counter(before[c.id] for c in members if c.id in before)
        for gid, count in previous.items():
            overlap.append((count, len(previous), gid, index))
    created = {gid: (created_at, gid) for gid, (created_at, _) in goldens.items()}
    overlap.sort(key=lambda t: (-t[0], t[1], created.get(t[2], (utcnow(), t[2]))))
    taken: set[str] = set()
    out: dict[int, str] = {}
    for _, _, gid, index in overlap:
        if gid in taken or index in out:
            continue
        taken.add(gid)
        out[index] = gid
    return out


def split(customer_id: str, *, database_url: str | None = None) -> str:
    """Undo a wrong merge: give the source customer its own golden customer, pinned so
    automatic matching leaves it there. Returns the new golden id."""
    with session_scope(database_url) as session:
        link = session.get(CustomerLink, customer_id)
        if link is None:
            raise ConfigError(f"customer {customer_id!r} is not linked to a golden customer "
                              "(run resolve-customers first)")  # fmt: skip
        gid = new_id("gld")
        now = utcnow()
        session.add(GoldenCustomer(id=gid, provenance={}, members=0, created_at=now,
                                   updated_at=now))  # fmt: skip
        link.golden_id, link.matched_by, link.pinned, link.updated_at = gid, "pinned", True, now
        session.add(link)
    resolve(database_url=database_url)
    return gid


def unpin(customer_id: str, *, database_url: str | None = None) -> None:
    """Hand a pinned source customer back to automatic matching."""
    with session_scope(database_url) as session:
        link = session.get(CustomerLink, customer_id)
        if link is None or not link.pinned:
            raise ConfigError(f"customer {customer_id!r} is not pinned")
        link.pinned = False
        session.add(link)
    resolve(database_url=database_url)


def golden_view(session: Session, golden_id: str) -> dict[str, Any] | None:
    """A golden customer with its linked source records; a merged id leads to the
    golden customer it was merged into."""
    golden = session.get(GoldenCustomer, golden_id)
    if golden is None:
        return None
    if golden.merged_into:
        golden = session.get(GoldenCustomer, golden.merged_into)
        if golden is None:
            return None
    members = session.exec(select(Customer).join(  # type: ignore[call-overload]
        CustomerLink, CustomerLink.customer_id == Customer.id).where(
        CustomerLink.golden_id == golden.id)).scalars().all()
    return {"golden": golden, "members": list(members)}


# --------------------------------------------------------------------------- Prefect

# Domain events carry resource ids and counts, never personal data.
EVENT_CREATED = "interchange.customer.created"
EVENT_UPDATED = "interchange.customer.updated"
EVENT_MERGED = "interchange.customer.merged"


def _resource(gid: str) -> dict[str, str]:
    return {"prefect.resource.id": f"interchange.customer.{gid}",
            "prefect.resource.role": "golden-customer"}  # fmt: skip


def emit_events(result: ResolveResult) -> int:
    """One event per golden customer created, updated or merged; returns how many."""
    from prefect.events import emit_event

    sent = 0
    for kind, gids in ((EVENT_CREATED, result.created), (EVENT_UPDATED, result.updated)):
        for gid in gids:
            emit_event(event=kind, resource=_resource(gid), payload={"golden_id": gid})
            sent += 1
    for absorbed, into in result.merged:
        emit_event(event=EVENT_MERGED, resource=_resource(into),
                   related=[{"prefect.resource.id": f"interchange.customer.{absorbed}",
                             "prefect.resource.role": "absorbed"}],
                   payload={"golden_id": into, "absorbed_id": absorbed})  # fmt: skip
        sent += 1
    return sent


def resolve_task_fn(database_url: str | None = None) -> dict[str, Any]:
    result = resolve(database_url=database_url)
    counts = result.counts()
    counts["events"] = emit_events(result)
    return counts


def _task() -> Any:
    from prefect import task

    return task(name="resolve-customers", retries=2, retry_delay_seconds=[1, 5],
                persist_result=False)(resolve_task_fn)  # fmt: skip


resolve_task = _task()
