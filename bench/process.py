"""Process benchmarks: identity resolution and order-to-cash reconciliation at scale.

Run by ``make bench`` (``python -m bench.run --only identity,reconciliation
[--customers N]`` for these alone, or ``--only process``). For each size (N/4 and N,
default N = 100,000 customers) a synthetic hub is written to a temporary SQLite file,
migrated with ``interchange.store.migrate``, by bulk inserts (``executemany`` of 5,000
rows, not the sync flows):

* N ``customers`` across stripe, hubspot, shopify and erp: one person is in 1-4 of
  them (about 1.9 on average), linked by the same e-mail or, where a record has no
  e-mail or another one (ERP records often have none, some records carry a work
  address), by the same phone and surname (``Ann Lee`` / ``Lee, Ann``); some families
  share a phone under different surnames (must not merge);
* 2N Shopify ``orders`` of the Shopify customers, and Stripe ``payments`` for them:
  most charges carry an ``order_ref`` (order id, ``#1001`` or ``ORD-1001``), some carry
  none and are matched by customer + amount + time, split payments, refunds, and a few
  mismatches (wrong amount, no charge for a paid order, orphan charges).

Then, each step in its own process (so peak RSS is its own, ``VmHWM``), timed after
imports:

* **identity_first** - ``identity.resolve`` on the fresh hub (every golden new);
* **identity_again** - ``identity.resolve`` again with nothing changed (the steady
  state of the 15-minute schedule);
* **reconciliation** - ``reconciliation.load_rows`` + ``reconcile`` + ``write_csv``
  (after identity, so charges without a reference can match through golden ids).

Each size's hub is copied fresh for every round (``rounds``, default 2); per step and
size the best wall and CPU seconds count, with the highest peak RSS and the RSS after
imports (interpreter, libraries, Prefect: the part that does not grow). The growth
entries give CPU time N / CPU time N/4 (``ratio``; linear = 4.0; target <=
:data:`TIME_TARGET`: the steps are single-threaded and CPU-bound, so CPU time is their
wall time minus the noise of whatever else shares a two-core machine; the wall ratio is
reported beside it) and peak RSS N / peak RSS N/4 (flat = 1.0), plus the growth of the
memory above the imports.

Memory is reported, not judged: both steps hold their whole input by design (union-find
needs every live customer; reconciliation matches across all rows of its range), so the
memory above the imports grows with N and the peak is flat only in so far as the
imports dominate it. What would flatten it: identity resolution computing the connected
components in SQL (or re-resolving only the clusters of customers changed since the
last run) and streaming members cluster by cluster; reconciliation run per date range
(``since``/``until``, the loader reads only that range plus the window).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.sources import _cpu_seconds, _peak_mb
from interchange.store import UTCDateTime

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("identity", "reconciliation")
DEFAULT_CUSTOMERS = 100_000
TIME_TARGET = 5.0  # CPU time at N / at N/4; linear is 4.0
DEFAULT_ROUNDS = 2  # each step runs this often per size on a fresh copy; the best counts
CHUNK = 5_000
SOURCES = ("stripe", "hubspot", "shopify", "erp")
FIRST = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jude", "Kai",
         "Lena", "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sam", "Tess", "Uma", "Vik",
         "Wren", "Xavi", "Yara", "Zoe", "Ana", "Bjorn", "Chloé", "Dário")
LAST = ("Lee", "Smith", "García", "Nguyen", "O'Brien", "Müller", "Rossi", "Kowalski",
        "Silva", "Tanaka", "Dubois", "Novak", "Jensen", "Okafor", "Haddad", "Ivanova",
        "Byrne", "Costa", "Fischer", "Larsen", "Moreau", "Patel", "Quispe", "Ramos",
        "Schmidt", "Torres", "Virtanen", "Walsh", "Yilmaz", "Zhang", "Martin-Smith")
COUNTRY_CURRENCY = (("US", "USD"), ("GB", "GBP"), ("DE", "EUR"), ("FR", "EUR"),
                    ("IE", "EUR"), ("CA", "CAD"))
ORDER_STATUSES = (("paid", 0.84), ("pending", 0.04), ("partially_paid", 0.02),
                  ("refunded", 0.03), ("cancelled", 0.03), ("authorized", 0.02),
                  ("voided", 0.02))


# --------------------------------------------------------------------------- the hub


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _sqlite_time(value: dt.datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it on SQLite (what ``UTCDateTime`` reads)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _Buffer:
    """Rows for one table, inserted ``CHUNK`` at a time with one DB-API executemany.

    The values are bound as SQLite stores them (datetimes as text, as ``UTCDateTime``
    writes them): SQLAlchemy's per-value bind processing would take most of the time.
    """

    def __init__(self, conn: Any, table: Any) -> None:
        self.conn, self.columns = conn, [c.name for c in table.columns]
        self.times = {c.name for c in table.columns
                      if isinstance(c.type, sa.DateTime | UTCDateTime)}
        self.sql = (f'INSERT INTO "{table.name}" ({", ".join(self.columns)}) '  # noqa: S608
                    f'VALUES ({", ".join("?" * len(self.columns))})')
        self.rows: list[tuple[Any, ...]] = []
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(tuple(
            _sqlite_time(row[c]) if c in self.times and row[c] is not None else row.get(c)
            for c in self.columns))
        if len(self.rows) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.exec_driver_sql(self.sql, self.rows)
            self.count += len(self.rows)
            self.rows = []


def _people(rng: random.Random, n: int, now: dt.datetime) -> Iterator[list[dict[str, Any]]]:
    """Source customer records, one person (1-4 sources) at a time, ``n`` in all."""
    made, person = 0, 0
    family_phone: str | None = None
    while made < n:
        person += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
        email = f"{local.decode().lower().replace(chr(39), '')}.{person}@example.com"
        phone = f"+4479{person:08d}"
        # ~3% share the previous person's phone under another surname: a family line.
        if family_phone and rng.random() < 0.03:
            phone = family_phone
        family_phone = phone
        country, _ = rng.choice(COUNTRY_CURRENCY)
        k = rng.choices((1, 2, 3, 4), weights=(40, 33, 17, 10))[0]
        records = []
        for source in rng.sample(SOURCES, min(k, n - made)):
            rec_email: str | None = email
            roll = rng.random()
            if source == "erp" and roll < 0.35:
                rec_email = None  # the ERP often has no e-mail: phone + surname
            elif roll < 0.05:
                rec_email = f"{first.lower()}{person}@work.example.org"  # another address
            name = (f"{last}, {first}" if source == "erp" and rng.random() < 0.5
                    else f"{first} {last}")
            if source == "stripe" and rng.random() < 0.1:
                name = None
            updated = now - dt.timedelta(minutes=rng.randrange(1, 525_600))
            sid = {"stripe": f"cus_{rng.getrandbits(56):014x}",
                   "hubspot": str(100_000 + person * 4 + len(records)),
                   "shopify": str(7_000_000_000 + person),
                   "erp": f"C{person:08d}"}[source]
            records.append({
                "id": f"cus_{_hex(rng)}", "source": source, "source_id": sid,
                "email": rec_email, "name": name,
                "phone": phone if rng.random() < 0.85 else None,
                "country": country if rng.random() < 0.9 else None, "deleted": False,
                "source_created_at": updated, "created_at": updated, "updated_at": updated,
                "content_hash": "",
            })
        made += len(records)
        yield records


def generate(url: str, n: int, *, seed: int = 7) -> dict[str, int]:
    """A hub with ``n`` customers, 2n Shopify orders and their Stripe payments."""
    from interchange.store import get_engine, migrate
    from process_apis.canonical.models import Customer, Order, Payment

    if not url.startswith("sqlite"):
        raise ValueError("the process bench writes its hub to a SQLite file")
    migrate(url)
    rng = random.Random(seed)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    shoppers: list[tuple[dict[str, Any], dict[str, Any] | None]] = []  # shopify, stripe
    stats = {"persons": 0, "orphan_payments": 0, "unpaid_orders": 0,
             "amount_mismatches": 0, "payments_without_ref": 0}
    with get_engine(url).begin() as conn:
        customers = _Buffer(conn, Customer.__table__)
        for records in _people(rng, n, now):
            stats["persons"] += 1
            for rec in records:
                customers.add(rec)
            by_source = {r["source"]: r for r in records}
            if "shopify" in by_source:
                shoppers.append((by_source["shopify"], by_source.get("stripe")))
        customers.flush()

        orders = _Buffer(conn, Order.__table__)
        payments = _Buffer(conn, Payment.__table__)
        statuses, weights = zip(*ORDER_STATUSES, strict=True)
        charge_no = 0

        def pay(**values: Any) -> str:
            nonlocal charge_no
            charge_no += 1
            sid = f"ch_{charge_no:012d}"
            payments.add({"id": f"pay_{_hex(rng)}", "source": "stripe", "source_id": sid,
                          "kind": "payment", "status": "succeeded", "order_ref": None,
                          "related_source_id": None, "created_at": now, "updated_at": now,
                          "content_hash": "", **values})
            return sid

        for i in range(2 * n):
            shop, stripe = shoppers[rng.randrange(len(shoppers))]
            currency = dict(COUNTRY_CURRENCY).get(shop["country"] or "US", "USD")
            total = rng.randrange(500, 50_000)
            placed = now - dt.timedelta(minutes=rng.randrange(60, 525_600))
            status = rng.choices(statuses, weights=weights)[0]
            number, source_id = f"#{1001 + i}", str(5_000_000_000 + i)
            orders.add({"id": f"ord_{_hex(rng)}", "source": "shopify", "source_id": source_id,
                        "number": number, "customer_id": shop["id"],
                        "customer_source_id": shop["source_id"], "email": shop["email"],
                        "status": status, "total_minor": total, "currency": currency,
                        "placed_at": placed, "source_updated_at": placed, "created_at": now,
                        "updated_at": now, "content_hash": ""})
            if status in ("pending", "cancelled", "voided"):
                continue
            who = ({"customer_id": stripe["id"], "customer_source_id": stripe["source_id"]}
                   if stripe else {"customer_id": None, "customer_source_id": None})
            at = placed + dt.timedelta(minutes=rng.randrange(0, 30))
            roll = rng.random()
            ref = rng.choice((source_id, number, f"ORD-{1001 + i}"))
            if roll < 0.01:
                stats["unpaid_orders"] += 1  # paid at the shop, no charge in Stripe
                continue
            if roll < 0.02:
                stats["amount_mismatches"] += 1
                pay(amount_minor=total - 100, currency=currency, occurred_at=at,
                    order_ref=ref, **who)
                continue
            if stripe and roll < 0.14:
                stats["payments_without_ref"] += 1  # matched by customer, amount, time
                sid = pay(amount_minor=total, currency=currency, occurred_at=at, **who)
            elif status == "partially_paid":
                sid = pay(amount_minor=total // 2, currency=currency, occurred_at=at,
                          order_ref=ref, **who)
            else:
                sid = pay(amount_minor=total, currency=currency, occurred_at=at,
                          order_ref=ref, **who)
            if status == "refunded":
                charge_no += 1
                payments.add({"id": f"pay_{_hex(rng)}", "source": "stripe",
                              "source_id": f"re_{charge_no:012d}", "kind": "refund",
                              "status": "succeeded", "amount_minor": total,
                              "currency": currency, "order_ref": None,
                              "related_source_id": sid,
                              "occurred_at": at + dt.timedelta(days=3), "created_at": now,
                              "updated_at": now, "content_hash": "", **who})
        for _ in range(max(1, n // 200)):  # charges no order explains
            stats["orphan_payments"] += 1
            pay(amount_minor=rng.randrange(100, 999), currency="USD",
                occurred_at=now - dt.timedelta(minutes=rng.randrange(60, 525_600)),
                order_ref=f"ORD-{10_000_000 + rng.randrange(1_000_000)}",
                customer_id=None, customer_source_id=None)
        orders.flush()
        payments.flush()
    return {"customers": customers.count, "orders": orders.count,
            "payments": payments.count, "shopify_customers": len(shoppers), **stats}


# --------------------------------------------------------------------------- workers
# Each runs in a process of its own: ``python -m bench.process --worker NAME --url URL``.
# Imports happen before the clock starts.


def _timed(work: Any) -> dict[str, Any]:
    import gc

    gc.collect()
    base_mb = _current_mb()
    started = time.perf_counter()
    cpu = _cpu_seconds()
    out = work()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": _cpu_seconds() - cpu,
            "peak_mb": _peak_mb(), "base_mb": base_mb, **out}


def _current_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker_identity(url: str) -> dict[str, Any]:
    from interchange.store import get_engine
    from process_apis import identity

    rules = identity.load_rules()
    get_engine(url)
    return _timed(lambda: {"counts": identity.resolve(database_url=url, rules=rules)
                           .counts()})


def worker_reconciliation(url: str) -> dict[str, Any]:
    from interchange.store import get_engine
    from process_apis import reconciliation

    get_engine(url)
    out_dir = Path(tempfile.mkdtemp(prefix="interchange-bench-recon-"))

    def work() -> dict[str, Any]:
        started = time.perf_counter()
        orders, payments = reconciliation.load_rows(database_url=url)
        loaded = time.perf_counter()
        result = reconciliation.reconcile(orders, payments, window=dt.timedelta(hours=72))
        matched = time.perf_counter()
        export = reconciliation.write_csv(result, out_dir)
        return {"counts": result.summary(), "rows": len(orders) + len(payments),
                "export_bytes": export.stat().st_size, "phases": {
                    "load_seconds": round(loaded - started, 3),
                    "reconcile_seconds": round(matched - loaded, 3),
                    "csv_seconds": round(time.perf_counter() - matched, 3)}}

    try:
        return _timed(work)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


WORKERS = {"identity": worker_identity, "reconciliation": worker_reconciliation}


# --------------------------------------------------------------------------- driver


def _run_worker(name: str, url: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.process", "--worker", name,
                          "--url", url], env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {name} failed:\n{out.stdout[-3000:]}\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _copy(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite hub (its WAL included): each round starts fresh."""
    import sqlite3

    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    source.close()
    target.close()


def _entry(step: str, size: int, hub: dict[str, int], seed_s: float,
           runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["cpu_seconds"])
    entry = {
        "name": f"{step}_n{size}", "step": step, "n_customers": size, "hub": hub,
        "seconds": round(min(r["seconds"] for r in runs), 2),
        "cpu_seconds": round(best["cpu_seconds"], 2),
        "peak_mb": round(max(r["peak_mb"] for r in runs), 1),
        "after_imports_mb": round(best["base_mb"], 1),
        "all_seconds": [round(r["seconds"], 2) for r in runs],
        "all_cpu_seconds": [round(r["cpu_seconds"], 2) for r in runs],
        "counts": best["counts"], "seed_seconds": round(seed_s, 2),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "phases" in best:
        entry["phases"] = best["phases"]
    print(f"{entry['name']}: {entry['seconds']} s wall {entry['all_seconds']}, "
          f"{entry['cpu_seconds']} s CPU {entry['all_cpu_seconds']}, peak "
          f"{entry['peak_mb']} MB ({entry['after_imports_mb']} MB after imports) | "
          f"{json.dumps(best['counts'])}", flush=True)
    return entry


def _growth(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    cpu_ratio = big["cpu_seconds"] / small["cpu_seconds"]
    above = ((big["peak_mb"] - big["after_imports_mb"])
             / max(small["peak_mb"] - small["after_imports_mb"], 1.0))
    linear = big["n_customers"] / small["n_customers"]
    growth = {
        "name": f"{big['step']}_growth", "step": big["step"],
        "n_small": small["n_customers"], "n_big": big["n_customers"],
        "ratio": round(cpu_ratio, 3), "target": TIME_TARGET,
        "met": bool(cpu_ratio <= TIME_TARGET),
        "wall_ratio": round(big["seconds"] / small["seconds"], 3),
        "memory_ratio": round(big["peak_mb"] / small["peak_mb"], 3),
        "memory_above_imports_ratio": round(above, 3),
        "meaning": (f"ratio: CPU seconds at n_big / at n_small, best round each (linear = "
                    f"{linear:.1f}, target <= {TIME_TARGET}; the steps are single-threaded "
                    "and CPU-bound, so CPU time is their wall time without the noise of "
                    "other processes); wall_ratio: the same in wall seconds; "
                    "memory_ratio: peak RSS n_big / n_small (flat = 1.0); "
                    "memory_above_imports_ratio: the same for peak RSS minus RSS after "
                    f"imports, the data held in memory (linear = {linear:.1f})"),
    }
    print(f"{growth['name']}: CPU time x{growth['ratio']} (target <= {TIME_TARGET}: "
          f"{'met' if growth['met'] else 'MISSED'}), wall x{growth['wall_ratio']}, "
          f"peak memory x{growth['memory_ratio']} (above imports "
          f"x{growth['memory_above_imports_ratio']})", flush=True)
    return growth


def run(selected: list[str], n: int = DEFAULT_CUSTOMERS, *, work: Path,
        rounds: int = DEFAULT_ROUNDS) -> list[dict[str, Any]]:
    """Each selected benchmark's steps at n/4 and n customers, best of ``rounds``, then
    their growth; result entries for ``bench/results.json``."""
    from interchange.store import get_engine

    # Reconciliation always follows a first identity run: charges without a reference
    # match their orders through golden ids.
    steps = [("identity_first", "identity")]
    if "identity" in selected:
        steps.append(("identity_again", "identity"))
    if "reconciliation" in selected:
        steps.append(("reconciliation", "reconciliation"))
    kept = [step for step, _ in steps if step != "identity_first" or "identity" in selected]
    results: list[dict[str, Any]] = []
    measured: dict[str, list[dict[str, Any]]] = {}
    for size in (max(1, n // 4), n):
        pristine, db = work / f"process-{size}.sqlite3", work / f"process-{size}-run.sqlite3"
        t = time.perf_counter()
        hub = generate(f"sqlite:///{pristine}", size)
        seed_s = time.perf_counter() - t
        get_engine(f"sqlite:///{pristine}").dispose()
        print(f"process hub N={size}: {hub} in {seed_s:.1f} s", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {step: [] for step in kept}
        for _ in range(rounds):
            _copy(pristine, db)
            for step, worker in steps:
                got = _run_worker(worker, f"sqlite:///{db}")
                if step in runs:
                    runs[step].append(got)
        for step in kept:
            entry = _entry(step, size, hub, seed_s, runs[step])
            measured.setdefault(step, []).append(entry)
            results.append(entry)
        for path in (pristine, db):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    for small, big in (e for e in measured.values() if len(e) == 2):
        results.append(_growth(small, big))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--url")
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.url)))
    else:
        with tempfile.TemporaryDirectory(prefix="interchange-bench-") as tmp:
            entries = run(list(BENCHMARKS), args.customers, work=Path(tmp),
                          rounds=args.rounds)
        sys.exit(0 if all(e.get("met", True) for e in entries) else 1)
