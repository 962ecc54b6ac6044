"""The local stack that ``make up`` / ``interchange up`` starts, in order, with readiness checks.

OpenBao (dev) seeded with the sandbox credentials -> localstripe (the project's
launcher: 127.0.0.1, in-memory) seeded with a messy demo data set -> the alert
receiver -> the Prefect server -> the process work pool and a worker ->
``prefect --no-prompt deploy --all`` (which also creates the alert automations) ->
the experience API -> the first sync through the Prefect server -> a summary with
the URLs and a demo API key. Ctrl-C stops everything it started.

Everything lives under ``.interchange/`` (git-ignored). The sandboxes start empty
each time, so the hub database is reset with them; the Prefect database is kept
(later starts skip its migrations).

This module only orchestrates processes: sandboxes, flows and the API are started
as subprocesses by module path, never imported.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hvac
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from interchange import prefect_server, vaultdev
from interchange.procs import stop_process_group

console = Console(highlight=False, soft_wrap=True)

ROOT = Path(__file__).resolve().parent.parent
STRIPE_VAULT_PATH = "interchange/sources/stripe"
HUBSPOT_VAULT_PATH = "interchange/sources/hubspot"
SHOPIFY_VAULT_PATH = "interchange/sources/shopify"
# The deployments whose first run `make up` waits for, in the order they are shown,
# then what runs over their results.
FIRST_SYNCS = ["sync-stripe/sync-stripe", "sync-crm/sync-crm", "sync-commerce/sync-commerce",
               "sync-erp/sync-erp"]
# The customer 360 and the stock push need only the syncs; reconciliation matches
# payments to orders through the golden customers, so it runs after them.
AFTER_SYNCS = ["resolve-customers/resolve-customers", "sync-inventory/sync-inventory"]
THEN = ["reconcile-orders/reconcile-orders"]


class StackSettings(BaseSettings):
    """Ports and sizes of the local stack, from ``INTERCHANGE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="INTERCHANGE_", extra="ignore")

    home: Path = Path(".interchange")
    prefect_port: int = 4200
    api_port: int = 8000
    vault_port: int = 8200
    stripe_port: int = 8420
    hubspot_port: int = 8421
    shopify_port: int = 8422
    alerts_port: int = 8425
    demo_customers: int = Field(300, ge=1)
    alert_slow_seconds: int = Field(600, ge=10)
    worker_poll_seconds: int = Field(2, ge=1)
    sync_timeout_seconds: int = Field(600, ge=10)


class StackError(RuntimeError):
    pass


@dataclass
class Managed:
    name: str
    proc: subprocess.Popen
    log: Path | None


@dataclass
class Stack:
    settings: StackSettings
    procs: list[Managed] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return (ROOT / self.settings.home).resolve() if not self.settings.home.is_absolute() \
            else self.settings.home

    def log_path(self, name: str) -> Path:
        path = self.home / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def spawn(
        self, name: str, cmd: list[str], env: dict[str, str], *, echo: bool = False
    ) -> Managed:
        log = None if echo else self.log_path(name)
        out = None if echo else open(log, "ab")  # noqa: SIM115 (handed to the child)
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT if out else None, start_new_session=True,
        )
        if out:
            out.close()
        managed = Managed(name, proc, log)
        self.procs.append(managed)
        return managed

    def adopt(self, name: str, proc: subprocess.Popen, log: Path | None) -> None:
        self.procs.append(Managed(name, proc, log))

    def stop_all(self) -> None:
        for managed in reversed(self.procs):
            _stop(managed.proc)
        self.procs.clear()


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    stop_process_group(proc, timeout=timeout)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(settings: StackSettings) -> None:
    taken = [
        f"{name} ({port}; choose another with INTERCHANGE_{var}_PORT)"
        for name, var, port in [
            ("Prefect", "PREFECT", settings.prefect_port), ("API", "API", settings.api_port),
            ("OpenBao", "VAULT", settings.vault_port),
            ("localstripe", "STRIPE", settings.stripe_port),
            ("HubSpot sandbox", "HUBSPOT", settings.hubspot_port),
            ("Shopify sandbox", "SHOPIFY", settings.shopify_port),
            ("alert receiver", "ALERTS", settings.alerts_port),
        ]
        if not _port_free(port)
    ]
    if taken:
        raise StackError(
            "port(s) already in use: " + ", ".join(taken)
            + ". Stop whatever listens there or pick free ports."
        )


def _wait_http(url: str, *, proc: subprocess.Popen, what: str, log: Path | None,
               timeout: float = 60, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}{_tail(log)}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise StackError(f"{what} not ready after {timeout:.0f}s{_tail(log)}")


def _tail(log: Path | None, lines: int = 20) -> str:
    if not log or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log} ---\n" + "\n".join(text)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _run(cmd: list[str], env: dict[str, str], what: str, *, timeout: float = 300) -> str:
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}):\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def _step(message: str) -> None:
    console.print(f"[bold cyan]>[/] {message}")


def start(settings: StackSettings) -> tuple[Stack, dict[str, str]]:
    """Start every component; return the stack and the facts the summary prints."""
    check_ports(settings)
    stack = Stack(settings)
    home = stack.home
    home.mkdir(parents=True, exist_ok=True)
    hub_db = home / "hub.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{hub_db}{suffix}").unlink(missing_ok=True)

    # Children get no Vault credentials unless they need them (only the worker does).
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PREFECT_", "VAULT_", "BAO_", "INTERCHANGE_VAULT_"))}
    venv_bin = str(Path(sys.executable).parent)
    base_env["PATH"] = venv_bin + os.pathsep + base_env.get("PATH", "")
    base_env["INTERCHANGE_HOME"] = str(home)
    base_env["INTERCHANGE_DATABASE_URL"] = f"sqlite:///{hub_db}"
    base_env["INTERCHANGE_SOURCES_FILE"] = str(ROOT / "sources.yaml")
    stripe_url = f"http://127.0.0.1:{settings.stripe_port}"
    hubspot_url = f"http://127.0.0.1:{settings.hubspot_port}"
    shopify_url = f"http://127.0.0.1:{settings.shopify_port}"
    erp_db = home / "erp.db"
    erp_db.unlink(missing_ok=True)
    base_env["INTERCHANGE_STRIPE_URL"] = stripe_url
    base_env["INTERCHANGE_HUBSPOT_URL"] = hubspot_url
    base_env["INTERCHANGE_SHOPIFY_URL"] = shopify_url
    base_env["INTERCHANGE_ERP_URL"] = f"sqlite:///{erp_db}"
    py = sys.executable
    try:
        # 1. Vault: a fresh dev server; the sandbox key exists only there.
        _step(f"OpenBao dev server on :{settings.vault_port}")
        vault_addr = f"http://127.0.0.1:{settings.vault_port}"
        root_token = pysecrets.token_urlsafe(24)
        proc = vaultdev.start_dev_server(port=settings.vault_port, root_token=root_token,
                                         log_path=stack.log_path("openbao"))
        stack.adopt("openbao", proc, stack.log_path("openbao"))
        vaultdev.wait_ready(vault_addr, proc=proc)
        stripe_key = "sk_test_" + pysecrets.token_hex(16)
        hubspot_token = "pat-na1-" + pysecrets.token_hex(16)
        shopify_token = "shpat_" + pysecrets.token_hex(16)
        vaultdev.seed(vault_addr, root_token, {
            STRIPE_VAULT_PATH: {"api_key": stripe_key},
            HUBSPOT_VAULT_PATH: {"access_token": hubspot_token},
            SHOPIFY_VAULT_PATH: {"access_token": shopify_token},
        })
        role_id, secret_id = vaultdev.setup_approle(
            vault_addr, root_token, read_paths=["interchange/*"]
        )
        # The worker logs in with AppRole (read-only). The root token was on the dev
        # server's command line and in its log: revoke it now that setup is done.
        hvac.Client(url=vault_addr, token=root_token).auth.token.revoke_self()
        vault_env = {
            "INTERCHANGE_VAULT_ADDR": vault_addr,
            "INTERCHANGE_VAULT_ROLE_ID": role_id,
            "INTERCHANGE_VAULT_SECRET_ID": secret_id,
        }

        # 2. localstripe through the project's launcher (seeded from the world below).
        _step(f"localstripe sandbox on :{settings.stripe_port}")
        m = stack.spawn("localstripe", [py, "-m", "sandboxes.localstripe_server",
                                        "--host", "127.0.0.1", "--port",
                                        str(settings.stripe_port)], base_env)
        _wait_http(f"{stripe_url}/v1/customers?limit=1", proc=m.proc, what="localstripe",
                   log=m.log, headers={"Authorization": f"Bearer {stripe_key}"})

        # 2b. The HubSpot and Shopify sandboxes (each accepts only its token from
        # Vault, passed through the environment, never the command line) and the ERP.
        n = str(settings.demo_customers)
        _step(f"HubSpot sandbox on :{settings.hubspot_port}, Shopify sandbox on "
              f":{settings.shopify_port}, ERP database")
        (home / "hubspot.sqlite3").unlink(missing_ok=True)
        m = stack.spawn("hubspot", [py, "-c", _RUN_SANDBOX, "sandboxes.hubspot",
                                    "--port", str(settings.hubspot_port), "--records", "0",
                                    "--db", str(home / "hubspot.sqlite3")],
                        {**base_env, "SANDBOX_TOKEN": hubspot_token})
        _wait_http(f"{hubspot_url}/crm/v3/objects/contacts?limit=1", proc=m.proc,
                   what="HubSpot sandbox", log=m.log,
                   headers={"Authorization": f"Bearer {hubspot_token}"})
        m = stack.spawn("shopify", [py, "-c", _RUN_SANDBOX, "sandboxes.shopify",
                                    "--port", str(settings.shopify_port), "--records", "0"],
                        {**base_env, "SANDBOX_TOKEN": shopify_token})
        _wait_http(f"{shopify_url}/admin/api/2025-01/customers.json?limit=1", proc=m.proc,
                   what="Shopify sandbox", log=m.log,
                   headers={"X-Shopify-Access-Token": shopify_token})
        # 2c. One seeded world in all four: the same people, orders, payments and
        # products, each system in its own formats and with its own disagreements.
        _step(f"seeding one world of {n} people into Stripe, HubSpot, Shopify and the ERP")
        world = _run([py, "-m", "sandboxes.world", "--people", n, "--stripe-url", stripe_url,
                      "--hubspot-url", hubspot_url, "--shopify-url", shopify_url,
                      "--erp-url", f"sqlite:///{erp_db}"],
                     {**base_env, "STRIPE_API_KEY": stripe_key}, "seeding the world")
        world_facts = json.loads(world.strip().splitlines()[-1])

        # 3. The alert receiver prints every alert into this terminal.
        _step(f"alert receiver on :{settings.alerts_port}")
        m = stack.spawn("alerts", [py, "-m", "interchange.receiver", "--port",
                                   str(settings.alerts_port), "--out",
                                   str(home / "alerts.jsonl")], base_env, echo=True)
        _wait_http(f"http://127.0.0.1:{settings.alerts_port}/", proc=m.proc,
                   what="alert receiver", log=None)

        # 4. Prefect server (SQLite under .interchange/prefect).
        _step(f"Prefect server on :{settings.prefect_port}")
        api_url = prefect_server.api_url_for(settings.prefect_port)
        log = stack.log_path("prefect-server")
        proc = prefect_server.start_server(port=settings.prefect_port, home=home / "prefect",
                                           log_path=log, ui=True)
        stack.adopt("prefect-server", proc, log)
        prefect_server.wait_ready(api_url, timeout=120)
        pf_env = {**base_env, **prefect_server.client_env(api_url),
                  "PREFECT_HOME": str(home / "prefect")}

        # 5. Work pool, deployments (+ alert automations), worker.
        _step("work pool, deployments and alert automations")
        prefect = _bin("prefect")
        _run([prefect, "--no-prompt", "work-pool", "create", "interchange", "--type",
              "process", "--overwrite"], pf_env, "creating the work pool")
        deploy_env = {**pf_env, "INTERCHANGE_ALERT_KIND": "webhook",
                      "INTERCHANGE_ALERT_URL": f"http://127.0.0.1:{settings.alerts_port}/",
                      "INTERCHANGE_ALERT_SLOW_SECONDS": str(settings.alert_slow_seconds)}
        _run([prefect, "--no-prompt", "deploy", "--all"], deploy_env, "prefect deploy --all")
        # The Prefect database outlives the stack, so runs scheduled while it was down
        # (and runs a killed stack left behind) would all start now and queue behind
        # each deployment's concurrency limit: drop them before the worker starts.
        dropped = _run([py, "-c", _DROP_STALE_RUNS], pf_env, "dropping stale runs").strip()
        if dropped and dropped != "0":
            _step(f"dropped {dropped} runs left over from an earlier start")
        worker_env = {**pf_env, **vault_env,
                      "PREFECT_WORKER_QUERY_SECONDS": str(settings.worker_poll_seconds)}
        stack.spawn("worker", [prefect, "worker", "start", "--pool", "interchange",
                               "--type", "process"], worker_env)

        # 6. Experience API.
        _step(f"experience API on :{settings.api_port}")
        _run([py, "-m", "interchange.cli", "migrate"], base_env, "hub migrations")
        m = stack.spawn("api", [py, "-m", "uvicorn", "--factory",
                                "experience_apis.http.app:create_app", "--host", "127.0.0.1",
                                "--port", str(settings.api_port)], base_env)
        _wait_http(f"http://127.0.0.1:{settings.api_port}/healthz", proc=m.proc,
                   what="experience API", log=m.log)

        # 7. The first sync, through the Prefect server and the worker.
        _step("first sync: " + ", ".join(d.split("/")[0] for d in FIRST_SYNCS)
              + " (full) through the Prefect server")
        run = _run([py, "-c", _RUN_FIRST_SYNC, str(settings.sync_timeout_seconds),
                    *FIRST_SYNCS], pf_env, "the first sync",
                   timeout=settings.sync_timeout_seconds + 60)
        facts = json.loads(run.strip().splitlines()[-1])
        # Then the process layer over what the syncs landed: the customer 360.
        _step("customer 360 (resolve-customers) and inventory sync (ERP stock -> Shopify)")
        run = _run([py, "-c", _RUN_FIRST_SYNC, str(settings.sync_timeout_seconds),
                    *AFTER_SYNCS], pf_env, "the customer 360",
                   timeout=settings.sync_timeout_seconds + 60)
        facts["runs"].update(json.loads(run.strip().splitlines()[-1])["runs"])
        _step("order-to-cash reconciliation (reconcile-orders)")
        run = _run([py, "-c", _RUN_FIRST_SYNC, str(settings.sync_timeout_seconds),
                    *THEN], pf_env, "the reconciliation",
                   timeout=settings.sync_timeout_seconds + 60)
        facts["runs"].update(json.loads(run.strip().splitlines()[-1])["runs"])
        facts["world"] = world_facts
        key = json.loads(_run([py, "-m", "interchange.cli", "keys", "create", "--name",
                               f"demo-{int(time.time())}", "--scopes",
                               "customers:read,payments:read", "--json"],
                              base_env, "creating the demo API key").strip().splitlines()[-1])
        facts.update(
            api_key=key["key"], api_url=f"http://127.0.0.1:{settings.api_port}",
            prefect_url=f"http://127.0.0.1:{settings.prefect_port}",
            vault_url=vault_addr, stripe_url=stripe_url, hubspot_url=hubspot_url,
            shopify_url=shopify_url,
            alerts_url=f"http://127.0.0.1:{settings.alerts_port}",
            **hub_counts(hub_db),
        )
        return stack, facts
    except BaseException:
        stack.stop_all()
        raise


# Runs in a child process with the stack's Prefect env: starts every first sync at
# once (the worker runs them side by side) and waits for all of them.
_RUN_FIRST_SYNC = """
import json, sys, time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
timeout, names = int(sys.argv[1]), sys.argv[2:]
params = {"sync-inventory": {"params": {"dry_run": False}}}
runs = {n: run_deployment(n, timeout=0, tags=["first-sync"],
                          parameters={"params": {"mode": "full"}} if n.startswith("sync-") and
                          n.split("/")[0] not in params else params.get(n.split("/")[0], {}))
        for n in names}
deadline = time.monotonic() + timeout
retries = {n: 0 for n in names}
with get_client(sync_client=True) as client:
    while True:
        states = {n: client.read_flow_run(r.id).state for n, r in runs.items()}
        resubmitted = False
        for n, state in states.items():
            # A deployment that drops colliding runs (CANCEL_NEW) drops ours while a
            # triggered run is in flight: ask again (a few times) once that one is done.
            if state and state.is_cancelled() and retries[n] < 10:
                retries[n] += 1
                resubmitted = True
                time.sleep(2)
                runs[n] = run_deployment(n, timeout=0, tags=["first-sync"],
                                         parameters=client.read_flow_run(runs[n].id).parameters)
        if resubmitted:
            continue  # judge the new runs, not the cancelled ones
        if all(s and s.is_final() for s in states.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
def result(state):
    try:  # flows that keep their (count-only) results: resolve, reconcile, inventory
        value = state.result(raise_on_failure=False)
        return value if isinstance(value, dict) else None
    except Exception:
        return None
print(json.dumps({"runs": {n.split("/")[0]: {"name": runs[n].name,
                  "state": states[n].type.value if states[n] else "UNKNOWN",
                  "result": result(states[n]) if states[n] else None} for n in names}},
                 default=str))
"""

_DROP_STALE_RUNS = """
import datetime as dt
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterState,
    FlowRunFilterStateType)
from prefect.client.schemas.objects import StateType
now = dt.datetime.now(dt.timezone.utc)
stale = FlowRunFilter(
    state=FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING])),
    expected_start_time=FlowRunFilterExpectedStartTime(before_=now))
n = 0
with get_client(sync_client=True) as client:
    while True:
        runs = client.read_flow_runs(flow_run_filter=stale, limit=200)
        if not runs:
            break
        for run in runs:
            client.delete_flow_run(run.id)
            n += 1
print(n)
"""

# Starts a sandbox module with the token from $SANDBOX_TOKEN, so the credential is
# not visible in the process list.
_RUN_SANDBOX = """
import os, runpy, sys
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:], "--token", os.environ.pop("SANDBOX_TOKEN")]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def hub_counts(db: Path) -> dict[str, Any]:
    """Counts straight from the hub database (this module knows no layer's models)."""
    conn = sqlite3.connect(db)
    try:
        def count(sql: str) -> int:
            return conn.execute(sql).fetchone()[0]

        return {
            "customers": count("select count(*) from customers"),
            "customers_by_source": dict(conn.execute(
                "select source, count(*) from customers group by source order by source")),
            "companies": count("select count(*) from companies"),
            "payments": count("select count(*) from payments where kind = 'payment'"),
            "refunds": count("select count(*) from payments where kind = 'refund'"),
            "products": count("select count(*) from products"),
            "orders": count("select count(*) from orders"),
            "stock_levels": count("select count(*) from inventory_levels"),
            "quarantined": count("select count(*) from quarantine where status = 'open'"),
            "golden_customers": count(
                "select count(*) from golden_customers where merged_into is null"),
        }
    finally:
        conn.close()


def print_summary(facts: dict[str, Any]) -> None:
    states = {name: run["state"] for name, run in facts["runs"].items()}
    ok = all(state == "COMPLETED" for state in states.values())
    colour = "green" if ok else "red"
    console.print()
    console.print(f"[bold {colour}]First sync " + ("completed" if ok else "did not complete")
                  + "[/]: " + ", ".join(f"{n} {s.lower()}" for n, s in states.items()))
    by_source = ", ".join(f"{k} {v}" for k, v in facts["customers_by_source"].items())
    console.print(f"  hub: {facts['customers']} customers ({by_source}), "
                  f"{facts['companies']} companies, {facts['payments']} payments, "
                  f"{facts['refunds']} refunds, {facts['orders']} orders, "
                  f"{facts['products']} products, "
                  f"{facts['stock_levels']} stock levels; {facts['quarantined']} records "
                  "quarantined with their reasons.")
    world = facts.get("world") or {}
    recon = (facts["runs"].get("reconcile-orders") or {}).get("result") or {}
    stock = (facts["runs"].get("sync-inventory") or {}).get("result") or {}
    console.print(f"  customer 360: {facts['golden_customers']} golden customers from "
                  f"{facts['customers']} source records ({world.get('people', '?')} people "
                  f"in the seeded world, {world.get('golden_customers', '?')} with a valid "
                  "record).")
    if recon:
        console.print(f"  order-to-cash: {recon.get('matched_by_reference', 0)} payments "
                      f"matched by order reference, {recon.get('matched_by_customer', 0)} by "
                      f"customer and amount; {recon.get('problems', 0)} problems "
                      f"({recon.get('amount_mismatch', 0)} amount mismatch, "
                      f"{recon.get('unmatched_order', 0)} unpaid orders, "
                      f"{recon.get('orphan_payment', 0)} orphan payments).")
    if stock:
        console.print(f"  inventory: {stock.get('applied', 0)} Shopify stock levels set from "
                      f"the ERP, {stock.get('in_sync', 0)} already in sync, "
                      f"{stock.get('low_stock', 0)} SKUs below their reorder point.")
    console.print()
    console.print(f"  Prefect UI       {facts['prefect_url']}")
    console.print(f"  API docs         {facts['api_url']}/docs")
    console.print(f"  OpenBao          {facts['vault_url']}")
    console.print(f"  localstripe      {facts['stripe_url']}")
    console.print(f"  HubSpot sandbox  {facts['hubspot_url']}")
    console.print(f"  Shopify sandbox  {facts['shopify_url']}")
    console.print(f"  alert receiver   {facts['alerts_url']} (alerts print here)")
    console.print()
    console.print("  Demo API key (shown once):")
    console.print(f"    curl -s -H 'X-API-Key: {facts['api_key']}' "
                  f"'{facts['api_url']}/v1/customers?limit=5'")
    console.print()


def check_api(facts: dict[str, str]) -> bool:
    """The demo's acceptance check: the API serves every synced customer."""
    seen, cursor = 0, None
    with httpx.Client(base_url=facts["api_url"],
                      headers={"X-API-Key": facts["api_key"]}, timeout=10) as client:
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            response = client.get("/v1/customers", params=params)
            if response.status_code != 200:
                console.print(f"[red]API answered {response.status_code}: {response.text}")
                return False
            body = response.json()
            seen += len(body["data"])
            cursor = body.get("next_cursor")
            if not body.get("has_more"):
                break
    ok = seen == int(facts["customers"]) and seen > 0
    console.print(f"API serves {seen} customers; hub has {facts['customers']}: "
                  + ("[green]ok[/]" if ok else "[red]MISMATCH[/]"))
    return ok


def main(*, demo: bool = False) -> int:
    settings = StackSettings()
    try:
        stack, facts = start(settings)
    except StackError as exc:
        console.print(f"[bold red]make up failed:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; stopped everything")
        return 130
    try:
        print_summary(facts)
        if demo:
            ok = all(r["state"] == "COMPLETED" for r in facts["runs"].values())
            ok = ok and check_api(facts)
            return 0 if ok else 1
        console.print("Running. Press Ctrl-C to stop everything.")
        while True:
            for managed in stack.procs:
                if managed.proc.poll() is not None:
                    console.print(f"[red]{managed.name} exited ({managed.proc.returncode})"
                                  f"{_tail(managed.log)}")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        console.print("stopping ...")
        stack.stop_all()
        console.print("stopped.")
