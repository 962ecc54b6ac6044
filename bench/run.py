"""``make bench``: the Stripe pipeline and the sources' system APIs against raw baselines.

Each benchmark compares with its baseline measured in the same run.

**Stripe pipeline.** For each size N (default 5,000 customers, and 4N) a fresh
localstripe is seeded with the demo data set (customers with 1-3 payments each, ~10%
refunded). Then, each in its own process so peak memory is its own:

* **baseline** - plain httpx paging of customers, charges and refunds
  (``limit``/``starting_after``) and bulk inserts of the raw JSON into SQLite; no
  rules, no validation, no orchestration;
* **pipeline** - the ``sync-stripe`` flow (full mode) on a real Prefect server:
  Vault, rate limiter, retries, mapping rules, Great Expectations per batch,
  quarantine, idempotent upserts, checkpoints, artifacts.

Targets: ratio >= 0.7 at N = 5,000; peak memory flat from N to 4N.

**Sources** (:mod:`bench.sources`): records per second read through the system API of
HubSpot (contacts), Shopify (customers + orders) and the ERP (its three tables, on a
SQLite file and, when it answers, PostgreSQL) against a raw baseline (plain httpx /
DB-API cursor) on the same sandbox, at 50,000 records (``--records``), each side in its
own process, best of two alternating rounds (``--rounds``). Sandbox limits and the
system APIs' outbound rate limits are set out of the way (see :mod:`bench.sources`).
Target: system API records/s / baseline records/s >= 0.8 for each.

**Process** (:mod:`bench.process`): identity resolution (first run, then the unchanged
steady state) and order-to-cash reconciliation on a synthetic hub (SQLite file) of N/4
and N customers (default 100,000, ``--customers``) with 2N orders and their payments,
each step in its own process, best of ``--rounds`` rounds on a fresh copy. Target: CPU
time at N / at N/4 <= 5.0 (linear = 4.0; wall time beside it); peak memory growth
reported against flat (not a pass/fail: both steps hold their input in memory).
``--only identity``, ``--only reconciliation`` or ``--only process`` (both).

It prints records/s for both sides, their ratio and peak RSS, and writes
``bench/results.json`` (one entry per benchmark; the ratio under ``ratio``). A full
run rewrites the file; a run with ``--only`` (or ``--single``) updates the entries it
measured and keeps the others (Stripe entries are written only when both sizes ran).
Exit status 1 when a target of what ran was missed.

``python -m bench.run [--only stripe,hubspot,shopify,erp,identity,reconciliation,process]
[--n 5000] [--single] [--records 50000] [--customers 100000] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import process as bench_process
from bench import sources as bench_sources

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
BENCHMARKS = ("stripe", *bench_sources.SOURCES, *bench_process.BENCHMARKS)
ALIASES = {"process": bench_process.BENCHMARKS}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _names(text: str) -> list[str]:
    names: list[str] = []
    for name in (n.strip().lower() for n in text.split(",") if n.strip()):
        names.extend(n for n in ALIASES.get(name, (name,)) if n not in names)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {unknown}; choose from "
            f"{','.join((*BENCHMARKS, *ALIASES))}")
    return names


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- workers


def worker_baseline(url: str, key: str, db: str) -> dict:
    import sqlite3

    import httpx

    conn = sqlite3.connect(db)
    conn.execute("create table raw (stream text, id text primary key, body text)")
    started = time.perf_counter()
    cpu = _cpu_seconds()
    records = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as client:
        for stream, path in (("customers", "/v1/customers"), ("payments", "/v1/charges"),
                             ("refunds", "/v1/refunds")):
            after = None
            while True:
                params = {"limit": 100, **({"starting_after": after} if after else {})}
                page = client.get(path, params=params).raise_for_status().json()
                rows = [(stream, o["id"], json.dumps(o)) for o in page["data"]]
                conn.executemany("insert or replace into raw values (?, ?, ?)", rows)
                conn.commit()
                records += len(rows)
                if not page["has_more"] or not rows:
                    break
                after = rows[-1][1]
    return {"records": records, "seconds": time.perf_counter() - started,
            "cpu_seconds": _cpu_seconds() - cpu, "peak_mb": _peak_mb()}


def worker_pipeline() -> dict:
    from flows.sync_stripe import SyncMode, SyncStripeParams, sync_stripe
    from process_apis.quality.suites import _context

    _context()  # imports and builds GX once, like the baseline's imports: not timed
    started = time.perf_counter()
    cpu = _cpu_seconds()
    summary = sync_stripe(SyncStripeParams(mode=SyncMode.full))
    seconds = time.perf_counter() - started
    records = sum(s["read"] for s in summary.values() if isinstance(s, dict))
    return {"records": records, "seconds": seconds, "peak_mb": _peak_mb(),
            "cpu_seconds": _cpu_seconds() - cpu,
            "quarantined": sum(s["quarantined"] for s in summary.values()
                               if isinstance(s, dict))}


# --------------------------------------------------------------------------- driver


def _run_worker(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.run", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {args} failed:\n{out.stdout[-3000:]}\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bench_stripe(sizes: list[int], work: Path, procs: list[subprocess.Popen],
                  vault_addr: str, root_token: str) -> list[dict]:
    """The Stripe pipeline at each size, then the memory growth from the first to the last."""
    from interchange import prefect_server, vaultdev
    from tests.fixtures.common import free_port, wait_until

    key = "sk_test_" + secrets.token_hex(12)
    results: list[dict] = []
    vaultdev.seed(vault_addr, root_token, {"interchange/sources/stripe": {"api_key": key}})

    pf_port = free_port()
    pf = prefect_server.start_server(port=pf_port, home=work / "prefect",
                                     log_path=work / "prefect.log", ui=False)
    procs.append(pf)
    api_url = prefect_server.api_url_for(pf_port)
    prefect_server.wait_ready(api_url, timeout=120, proc=pf)

    for n in sizes:
        port = free_port()
        ls = subprocess.Popen([sys.executable, "-m", "sandboxes.localstripe_server",
                               "--port", str(port)], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ls)
        url = f"http://127.0.0.1:{port}"
        import httpx

        wait_until(lambda u=url: httpx.get(f"{u}/v1/customers?limit=1",
                                           headers={"Authorization": f"Bearer {key}"})
                   .status_code == 200, timeout=30)
        from sandboxes.stripe_seed import demo_dataset, seed

        t = time.perf_counter()
        seeded = seed(url, key, demo_dataset(customers=n, seed=11))
        seed_s = time.perf_counter() - t

        sources = work / f"sources-{n}.yaml"
        sources.write_text(
            "sources:\n  stripe:\n"
            f"    base_url: {url}\n    vault_path: interchange/sources/stripe\n"
            "    rate_limit_per_second: 1000\n    burst: 100\n    page_size: 100\n"
        )
        base_env = {**os.environ, **prefect_server.client_env(api_url),
                    "INTERCHANGE_SOURCES_FILE": str(sources),
                    "INTERCHANGE_VAULT_ADDR": vault_addr,
                    "INTERCHANGE_VAULT_TOKEN": root_token,
                    "PREFECT_LOGGING_LEVEL": "WARNING"}
        baseline = _run_worker(["--worker", "baseline", "--url", url, "--key", key,
                                "--db", str(work / f"raw-{n}.db")], base_env)
        pipeline = _run_worker(
            ["--worker", "pipeline"],
            {**base_env, "INTERCHANGE_DATABASE_URL": f"sqlite:///{work}/hub-{n}.db"},
        )
        entry = {
            "name": f"stripe_sync_n{n}",
            "n_customers": n,
            "records": pipeline["records"],
            "baseline_records": baseline["records"],
            "pipeline_records_per_s": round(pipeline["records"] / pipeline["seconds"], 1),
            "baseline_records_per_s": round(baseline["records"] / baseline["seconds"], 1),
            "ratio": round(baseline["seconds"] / pipeline["seconds"], 3),
            "pipeline_seconds": round(pipeline["seconds"], 2),
            "baseline_seconds": round(baseline["seconds"], 2),
            "pipeline_cpu_seconds": round(pipeline["cpu_seconds"], 2),
            "baseline_cpu_seconds": round(baseline["cpu_seconds"], 2),
            "pipeline_peak_mb": round(pipeline["peak_mb"], 1),
            "baseline_peak_mb": round(baseline["peak_mb"], 1),
            "quarantined": pipeline["quarantined"],
            "seed_seconds": round(seed_s, 2),
            "seeded": seeded.get("counts", {}),
        }
        results.append(entry)
        print(f"N={n:>6}: {entry['records']} records | pipeline "
              f"{entry['pipeline_records_per_s']}/s ({entry['pipeline_peak_mb']} MB peak) | "
              f"baseline {entry['baseline_records_per_s']}/s "
              f"({entry['baseline_peak_mb']} MB peak) | ratio {entry['ratio']} | "
              f"CPU s pipeline {entry['pipeline_cpu_seconds']} "
              f"baseline {entry['baseline_cpu_seconds']}",
              flush=True)
        ls.terminate()

    # The source benchmarks that follow share two cores with whatever still runs.
    prefect_server.stop(pf)
    procs.remove(pf)
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = {
            "name": "stripe_sync_memory_growth",
            "n_small": small["n_customers"], "n_big": big["n_customers"],
            "ratio": round(big["pipeline_peak_mb"] / small["pipeline_peak_mb"], 3),
            "baseline_ratio": round(big["baseline_peak_mb"] / small["baseline_peak_mb"], 3),
            "meaning": "pipeline peak RSS at 4N divided by peak RSS at N (1.0 = flat)",
        }
        results.append(growth)
        print(f"peak memory N -> {big['n_customers'] // small['n_customers']}N: "
              f"x{growth['ratio']} (baseline x{growth['baseline_ratio']})")
    return results


def _write_results(results: list[dict], *, replace: bool) -> None:
    """``bench/results.json``: all of ``results`` when ``replace``, else ``results``
    merged into the file (same name replaced, others kept)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not replace and RESULTS.exists():
        previous = json.loads(RESULTS.read_text()).get("benchmarks", [])
        fresh = {r["name"]: r for r in results}
        merged = [fresh.pop(r["name"], r) for r in previous]
        results = merged + list(fresh.values())
    RESULTS.write_text(json.dumps({"when": now, "benchmarks": results}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def main(sizes: list[int], only: list[str] | None = None,
         records: int = bench_sources.DEFAULT_RECORDS,
         rounds: int = bench_sources.DEFAULT_ROUNDS,
         customers: int = bench_process.DEFAULT_CUSTOMERS) -> int:
    from interchange import prefect_server, vaultdev
    from tests.fixtures.common import free_port

    selected = list(only or BENCHMARKS)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="interchange-bench-"))
    procs: list[subprocess.Popen] = []
    root_token = secrets.token_urlsafe(16)
    stripe: list[dict] = []
    sources: list[dict] = []
    process: list[dict] = []
    wanted = [s for s in bench_sources.SOURCES if s in selected]
    try:
        if "stripe" in selected or wanted:
            vault_port = free_port()
            vault = vaultdev.start_dev_server(port=vault_port, root_token=root_token,
                                              log_path=work / "openbao.log")
            procs.append(vault)
            vault_addr = f"http://127.0.0.1:{vault_port}"
            vaultdev.wait_ready(vault_addr, proc=vault)

        if "stripe" in selected:
            stripe = _bench_stripe(sizes, work, procs, vault_addr, root_token)
        if wanted:
            sources = bench_sources.run(wanted, records, vault_addr=vault_addr,
                                        root_token=root_token, work=work, rounds=rounds)
        steps = [s for s in bench_process.BENCHMARKS if s in selected]
        if steps:
            process = bench_process.run(steps, customers, work=work, rounds=rounds)
    finally:
        for p in reversed(procs):
            prefect_server.stop(p) if p is not None else None
    ok = True
    if "stripe" in selected:
        stripe_ok = bool(stripe) and stripe[0]["ratio"] >= 0.7
        print(f"target ratio >= 0.7 at N={sizes[0]}: " + ("met" if stripe_ok else "MISSED"))
        ok = ok and stripe_ok
        if len(stripe) < 2:
            print("single size: Stripe entries of bench/results.json left as they were")
            stripe = []
    for entry in sources:
        print(f"{entry['name']}: ratio {entry['ratio']} >= {entry['target']}: "
              + ("met" if entry["met"] else "MISSED"))
        ok = ok and entry["met"]
    for entry in process:
        if "met" in entry:
            print(f"{entry['name']}: CPU time x{entry['ratio']} <= {entry['target']}: "
                  + ("met" if entry["met"] else "MISSED")
                  + f"; peak memory x{entry['memory_ratio']} (flat = 1.0)")
            ok = ok and entry["met"]
    if stripe or sources or process:
        _write_results(stripe + sources + process, replace=only is None and bool(stripe))
    else:
        print("bench/results.json left as it was")
    print(f"bench wall time {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["baseline", "pipeline"])
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--db")
    parser.add_argument("--n", type=int, default=5000, help="customers at the small size")
    parser.add_argument("--single", action="store_true", help="only N (no 4N, no memory check)")
    parser.add_argument("--only", type=_names,
                        help="comma list of benchmarks to run "
                             f"({','.join((*BENCHMARKS, *ALIASES))}; default all)")
    parser.add_argument("--records", type=_positive, default=bench_sources.DEFAULT_RECORDS,
                        help="records per source benchmark (default 50,000)")
    parser.add_argument("--rounds", type=_positive, default=bench_sources.DEFAULT_ROUNDS,
                        help="rounds per source and process benchmark; best one counts")
    parser.add_argument("--customers", type=_positive,
                        default=bench_process.DEFAULT_CUSTOMERS,
                        help="customers of the process benchmarks' big hub (default "
                             "100,000; also run at a quarter of it)")
    args = parser.parse_args()
    if args.worker == "baseline":
        print(json.dumps(worker_baseline(args.url, args.key, args.db)))
    elif args.worker == "pipeline":
        print(json.dumps(worker_pipeline()))
    else:
        sys.exit(main([args.n] if args.single else [args.n, 4 * args.n], args.only,
                      args.records, args.rounds, args.customers))
