"""Source benchmarks: records/s through each system API against a raw baseline.

Run by ``make bench`` (``python -m bench.run --only hubspot,shopify,erp --records N``
for these alone). Both sides read the same sandbox in the same run.

For each source one sandbox is seeded with N records (default 50,000) and read in full,
each side in its own process (so peak RSS is its own), in alternating order over
``rounds`` rounds; each side's best round counts (rounds damp the noise of a two-core
machine where the sandbox server and the reader share the CPUs). Target: system API
records/s divided by baseline records/s >= :data:`TARGET`.

* **hubspot** - 50,000 contacts from the HubSpot sandbox (``python -m sandboxes.hubspot``).
  Baseline: plain httpx ``GET /crm/v3/objects/contacts`` paging on ``paging.next.after``,
  ``limit=100`` (HubSpot's maximum), the same ``properties`` list and token, every page
  JSON-decoded (``response.json()``) and its records counted. System API:
  ``hubspot_client(config)`` (token read from Vault) and ``streams.read_stream(client,
  "contacts", mode="full", page_size=100)``.
* **shopify** - N/2 customers and N/2 orders (``status=any``) from the Shopify sandbox.
  Baseline: plain httpx with ``limit=250`` following the ``Link: rel="next"`` URL.
  System API: ``shopify_client(config)`` and ``streams.read_stream(..., page_size=250)``.
* **erp** - ``CUST_MASTER`` + ``ITEM_MASTER`` + ``STOCK`` seeded by ``sandboxes.erp``
  with N*2/5 customers, so the three tables hold N rows together. On a SQLite file
  always, and on PostgreSQL (127.0.0.1:5432, user postgres, trust) when it answers, in a
  throwaway database (``ANALYZE``d after seeding). Baseline: a plain DB-API cursor,
  ``SELECT *`` and ``fetchmany(1000)`` (sqlite3; psycopg with a server-side cursor).
  System API: ``erp_engine(config)`` and ``streams.read_stream(engine, stream,
  page_size=1000)`` (keyset pages); on PostgreSQL with a short-lived login leased from
  OpenBao's database secrets engine (``open_seconds``/``close_seconds`` in the result:
  the lease and its revocation, inside the timed read).

What is switched off, so that raw throughput is what is measured:

* the sandboxes' artificial limits and latency: HubSpot ``rate_limit_per_10s`` raised to
  10,000,000, ``latency_ms``/``error_rate``/``rate_429`` 0; Shopify's leaky bucket
  ``bucket_size`` 10,000,000 and ``leak_rate`` 1,000,000/s (default 40 and 2/s, which
  would cap both sides at 500 records/s);
* the system APIs' outbound limits: ``SourceConfig.rate_limit_per_second`` 100,000 with
  ``burst`` 1,000 (the token bucket is still acquired on every request, only never
  waits) and Shopify's ``options.leak_rate`` 1,000,000 so its call-limit pacer never
  sleeps. With realistic limits both sides would only measure the limit.

Everything else of the system API stays in: Vault for credentials (a real OpenBao dev
server), auth flow, retry transport and its statistics, Prometheus histograms, error
translation, response validation, cursors and high-water marks per page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.8
SOURCES = ("hubspot", "shopify", "erp")
DEFAULT_RECORDS = 50_000
DEFAULT_ROUNDS = 2
ERP_PAGE = 1000
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

HUBSPOT_TOKEN = "pat-na1-bench-" + uuid.uuid4().hex[:12]
SHOPIFY_TOKEN = "shpat_bench_" + uuid.uuid4().hex[:12]
SHOPIFY_VERSION = "2025-01"
# The bench's settings, recorded with each result.
HUBSPOT_KNOBS = {"rate_limit_per_10s": 10_000_000, "latency_ms": 0, "error_rate": 0.0,
                 "rate_429": 0.0}
SHOPIFY_BUCKET = {"bucket_size": 10_000_000, "leak_rate": 1_000_000.0}
SOURCE_LIMITS = {"rate_limit_per_second": 100_000.0, "burst": 1000}


def _peak_mb() -> float:
    """This process's peak RSS. ``VmHWM`` where there is one: ``ru_maxrss`` survives
    ``exec`` on Linux, so a worker spawned by a big driver would report the driver's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(read: Callable[[], int]) -> dict[str, Any]:
    started = time.perf_counter()
    cpu = _cpu_seconds()
    records = read()
    return {"records": records, "seconds": time.perf_counter() - started,
            "cpu_seconds": _cpu_seconds() - cpu, "peak_mb": _peak_mb()}


# --------------------------------------------------------------------------- workers
# Each runs in a process of its own: ``python -m bench.sources --worker NAME --spec JSON``.
# Imports happen before the clock starts, on both sides.


def hubspot_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    def read() -> int:
        records = 0
        params: dict[str, Any] = {"limit": 100, "properties": ",".join(spec["properties"]),
                                  "archived": "false"}
        with httpx.Client(base_url=spec["url"], timeout=60,
                          headers={"Authorization": f"Bearer {spec['token']}"}) as client:
            while True:
                body = client.get("/crm/v3/objects/contacts", params=params) \
                    .raise_for_status().json()
                records += len(body["results"])
                after = (body.get("paging") or {}).get("next", {}).get("after")
                if not after:
                    return records
                params["after"] = after

    return _measure(read)


def hubspot_api(spec: dict[str, Any]) -> dict[str, Any]:
    from interchange.settings import SourceConfig
    from system_apis.hubspot.client import hubspot_client
    from system_apis.hubspot.streams import read_stream

    config = SourceConfig(name="hubspot", base_url=spec["url"], vault_path=spec["vault_path"],
                          **SOURCE_LIMITS)
    stats: dict[str, Any] = {}

    def read() -> int:
        records = 0
        with hubspot_client(config) as client:
            for page in read_stream(client, "contacts", mode="full", page_size=100):
                records += len(page.records)
            stats.update(client.stats.as_dict())
        return records

    return {**_measure(read), "requests": stats.get("requests"),
            "throttled_seconds": stats.get("throttled_seconds")}


def shopify_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    def read() -> int:
        records = 0
        base = f"{spec['url']}/admin/api/{SHOPIFY_VERSION}"
        with httpx.Client(timeout=60,
                          headers={"X-Shopify-Access-Token": spec["token"]}) as client:
            for stream, params in (("customers", {}), ("orders", {"status": "any"})):
                url: str | None = f"{base}/{stream}.json"
                query: dict[str, Any] | None = {"limit": 250, **params}
                while url:
                    response = client.get(url, params=query).raise_for_status()
                    records += len(response.json()[stream])
                    url, query = response.links.get("next", {}).get("url"), None
        return records

    return _measure(read)


def shopify_api(spec: dict[str, Any]) -> dict[str, Any]:
    from interchange.settings import SourceConfig
    from system_apis.shopify.client import shopify_client
    from system_apis.shopify.streams import read_stream

    config = SourceConfig(
        name="shopify", base_url=spec["url"], vault_path=spec["vault_path"], **SOURCE_LIMITS,
        options={"api_version": SHOPIFY_VERSION, "leak_rate": SHOPIFY_BUCKET["leak_rate"]},
    )
    stats: dict[str, Any] = {}

    def read() -> int:
        records = 0
        with shopify_client(config) as client:
            for stream in ("customers", "orders"):
                for page in read_stream(client, stream, mode="full", page_size=250):
                    records += len(page.records)
            stats.update(client.stats.as_dict())
            stats["pacer_waits"] = client.call_limit.waits  # type: ignore[attr-defined]
        return records

    return {**_measure(read), "requests": stats.get("requests"),
            "throttled_seconds": stats.get("throttled_seconds"),
            "pacer_waits": stats.get("pacer_waits")}


ERP_TABLES = {"customers": "CUST_MASTER", "items": "ITEM_MASTER", "stock": "STOCK"}


def erp_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["backend"] == "sqlite":
        import sqlite3

        def connect() -> Any:
            return sqlite3.connect(spec["path"])

        def cursor(conn: Any) -> Any:
            return conn.cursor()
    else:
        import psycopg

        def connect() -> Any:
            return psycopg.connect(spec["admin_dsn"])

        def cursor(conn: Any) -> Any:
            return conn.cursor(name=f"bench_{uuid.uuid4().hex[:8]}")  # server-side

    def read() -> int:
        records = 0
        conn = connect()
        try:
            for table in ERP_TABLES.values():
                cur = cursor(conn)
                cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - fixed names
                while rows := cur.fetchmany(ERP_PAGE):
                    records += len(rows)
                cur.close()
        finally:
            conn.close()
        return records

    return _measure(read)


def erp_api(spec: dict[str, Any]) -> dict[str, Any]:
    from interchange.settings import SourceConfig
    from system_apis.erp.client import erp_engine
    from system_apis.erp.streams import read_stream

    config = SourceConfig(name="erp", base_url=spec["url"],
                          vault_path=spec.get("vault_path") or "database/creds/unused")

    phases: dict[str, float] = {}

    def read() -> int:
        records = 0
        started = time.perf_counter()
        with erp_engine(config) as engine:
            opened = time.perf_counter()
            for stream in ERP_TABLES:
                for page in read_stream(engine, stream, mode="full", page_size=ERP_PAGE):
                    records += len(page.records)
            phases["open_seconds"] = opened - started  # PostgreSQL: the Vault lease
            phases["read_seconds"] = time.perf_counter() - opened
            closing = time.perf_counter()
        phases["close_seconds"] = time.perf_counter() - closing  # PostgreSQL: revoke
        return records

    return {**_measure(read), **{k: round(v, 4) for k, v in phases.items()}}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "hubspot-baseline": hubspot_baseline, "hubspot-api": hubspot_api,
    "shopify-baseline": shopify_baseline, "shopify-api": shopify_api,
    "erp-baseline": erp_baseline, "erp-api": erp_api,
}


# --------------------------------------------------------------------------- driver


def _run_worker(name: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.sources", "--worker", name, "--spec", json.dumps(spec)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {name} failed:\n{out.stdout[-3000:]}\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _start(cmd: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_http(proc: subprocess.Popen, check: Callable[[], bool], log_path: Path,
               timeout: float = 120) -> None:
    from tests.fixtures.common import wait_until

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited:\n{log_path.read_text()[-2000:]}")
        return check()

    wait_until(up, timeout=timeout, interval=0.2)


@contextlib.contextmanager
def _hubspot_sandbox(work: Path, n: int) -> Iterator[str]:
    import httpx

    from interchange.procs import stop_process_group
    from tests.fixtures.common import free_port

    port = free_port()
    log = work / "hubspot.log"
    proc = _start([sys.executable, "-m", "sandboxes.hubspot", "--port", str(port),
                   "--records", str(n), "--db", str(work / "hubspot.sqlite3"),
                   "--token", HUBSPOT_TOKEN, "--config", json.dumps(HUBSPOT_KNOBS)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(proc, lambda: httpx.get(f"{url}/_sandbox/state", timeout=5)
                   .status_code == 200, log)
        yield url
    finally:
        stop_process_group(proc)


@contextlib.contextmanager
def _shopify_sandbox(work: Path, n: int) -> Iterator[str]:
    import httpx

    from interchange.procs import stop_process_group
    from tests.fixtures.common import free_port

    port = free_port()
    log = work / "shopify.log"
    proc = _start([sys.executable, "-m", "sandboxes.shopify", "--port", str(port),
                   "--records", str(n // 2), "--token", SHOPIFY_TOKEN,
                   "--db", str(work / "shopify.sqlite3"),
                   "--bucket-size", str(SHOPIFY_BUCKET["bucket_size"]),
                   "--leak-rate", str(SHOPIFY_BUCKET["leak_rate"])], log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(proc, lambda: httpx.get(f"{url}/_sandbox/config", timeout=5)
                   .status_code == 200, log)
        yield url
    finally:
        stop_process_group(proc)


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except Exception:  # noqa: BLE001 - no PostgreSQL: the bench skips that backend
        return False


@contextlib.contextmanager
def _erp_postgres(n: int, vault_addr: str, root_token: str) -> Iterator[dict[str, Any]]:
    import hvac
    import psycopg

    from sandboxes.erp import vault_setup
    from sandboxes.erp.seed import create_and_seed

    name = f"erp_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    path = None
    try:
        create_and_seed(admin_url, n * 2 // 5)
        # Planner statistics, as any live database has them (autovacuum would gather them
        # later): without them PostgreSQL sorts the whole table for every keyset page.
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}",
                             autocommit=True) as conn:
            conn.execute("ANALYZE")
        path = vault_setup.setup_database_role(
            vault_addr, root_token, admin_url=admin_url, role=f"bench-{name[-10:]}",
            default_ttl="10m", max_ttl="1h",
        )
        yield {"backend": "postgresql", "url": f"postgresql+psycopg://127.0.0.1:5432/{name}",
               "vault_path": path,
               "admin_dsn": f"postgresql://postgres@127.0.0.1:5432/{name}"}
    finally:
        if path is not None:
            client = hvac.Client(url=vault_addr, token=root_token, timeout=10)
            try:
                client.sys.revoke_prefix(prefix=path)
            finally:
                client.adapter.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _compare(name: str, source: str, streams: list[str], spec: dict[str, Any],
             env: dict[str, str], rounds: int, settings: dict[str, Any]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "api": []}
    for r in range(rounds):
        order = ("baseline", "api") if r % 2 == 0 else ("api", "baseline")
        for side in order:
            runs[side].append(_run_worker(f"{source}-{side}", spec, env))
    best = {side: min(rs, key=lambda x: x["seconds"]) for side, rs in runs.items()}
    peak = {side: max(x["peak_mb"] for x in rs) for side, rs in runs.items()}
    api, base = best["api"], best["baseline"]
    api_rps = api["records"] / api["seconds"]
    base_rps = base["records"] / base["seconds"]
    ratio = api_rps / base_rps
    entry = {
        "name": name,
        "source": source,
        "streams": streams,
        "records": api["records"],
        "baseline_records": base["records"],
        "system_api_records_per_s": round(api_rps, 1),
        "baseline_records_per_s": round(base_rps, 1),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": bool(ratio >= TARGET and api["records"] == base["records"]),
        "system_api_seconds": round(api["seconds"], 2),
        "baseline_seconds": round(base["seconds"], 2),
        "system_api_cpu_seconds": round(api["cpu_seconds"], 2),
        "baseline_cpu_seconds": round(base["cpu_seconds"], 2),
        "system_api_peak_mb": round(peak["api"], 1),
        "baseline_peak_mb": round(peak["baseline"], 1),
        "rounds": rounds,
        "all_ratios": [round((a["records"] / a["seconds"]) / (b["records"] / b["seconds"]), 3)
                       for a, b in zip(runs["api"], runs["baseline"], strict=True)],
        "settings": settings,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for extra in ("requests", "throttled_seconds", "pacer_waits", "open_seconds",
                  "read_seconds", "close_seconds"):
        if extra in api:
            entry[f"system_api_{extra}"] = api[extra]
    print(f"{name}: {entry['records']} records | system API "
          f"{entry['system_api_records_per_s']}/s ({entry['system_api_peak_mb']} MB peak) | "
          f"baseline {entry['baseline_records_per_s']}/s ({entry['baseline_peak_mb']} MB peak)"
          f" | ratio {entry['ratio']} (target >= {TARGET}: "
          f"{'met' if entry['met'] else 'MISSED'}; rounds {entry['all_ratios']}) | CPU s "
          f"system API {entry['system_api_cpu_seconds']} baseline "
          f"{entry['baseline_cpu_seconds']}", flush=True)
    if api["records"] != base["records"]:
        print(f"  record counts differ: system API {api['records']}, "
              f"baseline {base['records']}", flush=True)
    return entry


def run(sources: list[str], n: int, *, vault_addr: str, root_token: str, work: Path,
        rounds: int = DEFAULT_ROUNDS) -> list[dict[str, Any]]:
    """Benchmark ``sources`` at ``n`` records; one result entry per source (and backend)."""
    from interchange import vaultdev

    env = {**os.environ, "INTERCHANGE_VAULT_ADDR": vault_addr,
           "INTERCHANGE_VAULT_TOKEN": root_token}
    limits = {**SOURCE_LIMITS}
    results = []
    if "hubspot" in sources:
        from system_apis.hubspot.streams import STREAMS as HUBSPOT_STREAMS

        vaultdev.seed(vault_addr, root_token,
                      {"interchange/sources/hubspot": {"access_token": HUBSPOT_TOKEN}})
        with _hubspot_sandbox(work, n) as url:
            spec = {"url": url, "token": HUBSPOT_TOKEN,
                    "vault_path": "interchange/sources/hubspot",
                    "properties": list(HUBSPOT_STREAMS["contacts"].properties)}
            results.append(_compare(
                f"hubspot_contacts_n{n}", "hubspot", ["contacts"], spec, env, rounds,
                {"sandbox_knobs": HUBSPOT_KNOBS, "source_config": limits, "page_size": 100},
            ))
    if "shopify" in sources:
        vaultdev.seed(vault_addr, root_token,
                      {"interchange/sources/shopify": {"access_token": SHOPIFY_TOKEN}})
        with _shopify_sandbox(work, n) as url:
            spec = {"url": url, "token": SHOPIFY_TOKEN,
                    "vault_path": "interchange/sources/shopify"}
            results.append(_compare(
                f"shopify_customers_orders_n{n}", "shopify", ["customers", "orders"], spec,
                env, rounds,
                {"sandbox_bucket": SHOPIFY_BUCKET, "page_size": 250,
                 "source_config": {**limits, "options.leak_rate": SHOPIFY_BUCKET["leak_rate"]}},
            ))
    if "erp" in sources:
        from sandboxes.erp.seed import create_and_seed

        db = work / "erp.sqlite3"
        create_and_seed(f"sqlite:///{db}", n * 2 // 5)
        spec = {"backend": "sqlite", "url": f"sqlite:///{db}", "path": str(db)}
        results.append(_compare(
            f"erp_sqlite_n{n}", "erp", list(ERP_TABLES), spec, env, rounds,
            {"page_size": ERP_PAGE, "backend": "sqlite file"},
        ))
        if _pg_available():
            with _erp_postgres(n, vault_addr, root_token) as spec:
                results.append(_compare(
                    f"erp_postgres_n{n}", "erp", list(ERP_TABLES), spec, env, rounds,
                    {"page_size": ERP_PAGE, "backend": "postgresql 127.0.0.1:5432",
                     "credentials": "system API: leased from OpenBao's database engine; "
                                    "baseline: the trusted postgres admin"},
                ))
        else:
            print("erp: PostgreSQL at 127.0.0.1:5432 does not answer - SQLite only", flush=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=sorted(WORKERS), required=True)
    parser.add_argument("--spec", required=True, help="JSON: what the worker reads")
    args = parser.parse_args()
    print(json.dumps(WORKERS[args.worker](json.loads(args.spec))))
