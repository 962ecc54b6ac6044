"""`make up` as a newcomer runs it: the whole stack, the printed curl works, Ctrl-C stops all.

Runs ``interchange up`` (what ``make up`` calls) on free ports with a temporary
state directory and a small demo data set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.common import free_port

ROOT = Path(__file__).resolve().parents[2]
PORTS = ("prefect", "api", "vault", "stripe", "hubspot", "shopify", "alerts")


def stack_env(tmp_path: Path, **ports: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "INTERCHANGE_"))}
    env.update({
        "INTERCHANGE_HOME": str(tmp_path / "state"),
        "INTERCHANGE_DEMO_CUSTOMERS": "40",
        "INTERCHANGE_ALERT_SLOW_SECONDS": "600",
    })
    for name in PORTS:
        env[f"INTERCHANGE_{name.upper()}_PORT"] = str(ports.get(name) or free_port())
    return env


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_serves_the_synced_customers_and_ctrl_c_stops_everything(tmp_path):
    env = stack_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interchange.cli", "up"], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "Press Ctrl-C" in output, output
        assert re.search(r"First sync completed: sync-stripe completed, sync-crm completed, "
                         r"sync-commerce completed, sync-erp completed", output), output
        by_source = re.search(r"customers \((.*?)\)", output).group(1)
        counts = dict(part.rsplit(" ", 1) for part in by_source.split(", "))
        assert set(counts) == {"erp", "hubspot", "shopify", "stripe"}
        # One world of 40 people in four systems; the few records it broke on purpose
        # are quarantined, not dropped.
        assert all(10 <= int(v) <= 40 for v in counts.values()), counts
        quarantined = int(re.search(r"; (\d+) records quarantined", output).group(1))
        assert quarantined > 0
        golden = re.search(r"customer 360: (\d+) golden customers from (\d+) source records "
                           r"\((\d+) people in the seeded world, (\d+) with a valid", output)
        assert golden, output
        assert int(golden.group(1)) == int(golden.group(4)) <= int(golden.group(3)) == 40
        assert int(golden.group(1)) < int(golden.group(2))  # records merged into people

        # The printed curl works as printed.
        curl = re.search(r"curl -s -H '(X-API-Key: [^']+)' '([^']+)'", output)
        header, url = curl.group(1).split(": ", 1), curl.group(2)
        body = httpx.get(url, headers={header[0]: header[1]}).json()
        assert len(body["data"]) == 5 and body["has_more"] is True
        for name in ("Prefect UI", "API docs"):
            link = re.search(rf"{name}\s+(http://\S+)", output).group(1)
            assert httpx.get(link, timeout=10).status_code == 200
        api = f"http://127.0.0.1:{env['INTERCHANGE_PREFECT_PORT']}/api"
        check_deployments_and_alerts(api)
        check_declarative_source_runs(api)
        summary_lines = "\n".join(ln for ln in lines if "order-to-cash:" in ln
                                  or "inventory:" in ln)
        assert re.search(r"order-to-cash: \d+ payments matched by order reference, \d+ by "
                         r"customer and amount; \d+ problems \(1 amount mismatch", output), output
        assert re.search(r"inventory: \d+ Shopify stock levels set from the ERP", output), (
            summary_lines)
        check_stock_change_reaches_the_shop(api, tmp_path / "state" / "erp.db")
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "stopped." in rest
    # The Stripe key lives only in Vault: no log, Prefect database, result or hub file
    # of the whole stack holds a Stripe secret key.
    leaks = [str(p) for p in (tmp_path / "state").rglob("*")
             if p.is_file() and re.search(
                 rb"sk_(test|live)_[A-Za-z0-9]{16,}|pat-na1-[0-9a-f]{32}|shpat_[0-9a-f]{32}",
                 p.read_bytes())]
    assert leaks == []
    for name in PORTS:
        assert port_is_free(int(env[f"INTERCHANGE_{name.upper()}_PORT"])), name


def check_deployments_and_alerts(api: str) -> None:
    """What `prefect deploy --all` left on the server: forms, schedules, automations."""
    from interchange.alerts import automation_names

    deployments = {d["name"]: d for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
    assert {"sync-stripe", "sync-crm", "sync-commerce", "sync-erp", "sync-rest",
            "replay-quarantine"} <= set(deployments)
    sync = deployments["sync-stripe"]
    schema = sync["parameter_openapi_schema"]
    params = schema["definitions"]["SyncStripeParams"]["properties"]
    assert "incremental" in params["mode"]["description"]
    assert set(schema["definitions"]["SyncMode"]["enum"]) == {"incremental", "full"}
    assert '"maximum": 250' in json.dumps(params["page_size"])  # bounds reach the form
    slugs = {s["slug"]: s for s in sync["schedules"]}
    assert slugs["incremental-every-15-min"]["schedule"]["interval"] == 900
    assert slugs["nightly-full"]["parameters"] == {"params": {"mode": "full"}}
    names = {a["name"] for a in httpx.post(f"{api}/automations/filter", json={}).json()}
    assert set(automation_names("interchange")) <= names


def create_run(api: str, deployment_id: str, parameters: dict) -> dict:
    """A flow run of a deployment, as the UI's Run button makes it. The local Prefect
    server on SQLite can answer 503 for a moment while the worker and the stack's own
    runs write: ask again then, and fail on anything else."""
    for _ in range(5):
        response = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run",
                              json={"parameters": parameters}, timeout=30)
        if response.status_code < 500:
            break
        time.sleep(1)
    assert response.is_success, response.text
    return response.json()


def check_declarative_source_runs(api: str) -> None:
    """The shipped YAML-only example, run as an analyst would: the sync-rest deployment
    with the form's defaults, picked up by the stack's worker."""
    deployment = next(d for d in httpx.post(f"{api}/deployments/filter", json={}).json()
                      if d["name"] == "sync-rest")
    assert deployment["schedules"] == []  # on demand
    form = deployment["parameter_openapi_schema"]["definitions"]["SyncRestParams"]
    assert form["properties"]["source"]["default"] == "storefront"
    run = create_run(api, deployment["id"], {"params": {"mode": "full"}})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{run['id']}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(0.5)
    assert state["type"] == "COMPLETED", state
    check_customer_360_follows_the_syncs(api)


def check_customer_360_follows_the_syncs(api: str) -> None:
    """resolve-customers is triggered by completed sync runs (prefect.yaml triggers)."""
    deployment = next(d for d in httpx.post(f"{api}/deployments/filter", json={}).json()
                      if d["name"] == "resolve-customers")
    body = {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]},
                          "state": {"type": {"any_": ["COMPLETED"]}}}}
    deadline = time.monotonic() + 90
    runs: list = []
    while time.monotonic() < deadline and not runs:
        runs = httpx.post(f"{api}/flow_runs/filter", json=body).json()
        time.sleep(0.5)
    assert runs, "no resolve-customers run followed the syncs"


def check_stock_change_reaches_the_shop(api: str, erp_db: Path) -> None:
    """ERP stock moves -> sync-erp sees it and emits interchange.inventory.changed ->
    the trigger in prefect.yaml runs sync-inventory -> exactly that level is set in
    the Shopify sandbox."""
    import sqlite3

    with sqlite3.connect(erp_db) as conn:
        sku, qty = conn.execute('SELECT "ITEM_NO", "QTY_ON_HAND" FROM "STOCK" '
                                "WHERE \"WAREHOUSE\" = 'WH1' ORDER BY 1 LIMIT 1").fetchone()
        conn.execute('UPDATE "STOCK" SET "QTY_ON_HAND" = ?, "LAST_MOD" = ? WHERE '
                     '"ITEM_NO" = ? AND "WAREHOUSE" = ?',
                     (qty + 17, time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
                      sku, "WH1"))
    deployments = {d["name"]: d for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
    started = create_run(api, deployments["sync-erp"]["id"], {"params": {"mode": "incremental"}})
    body = {"flow_runs": {"deployment_id": {"any_": [deployments["sync-inventory"]["id"]]},
                          "start_time": {"after_": started["created"]},
                          "state": {"type": {"any_": ["COMPLETED"]}}}}
    deadline = time.monotonic() + 150
    applied: list[str] = []
    while time.monotonic() < deadline and not applied:
        for run in httpx.post(f"{api}/flow_runs/filter", json=body).json():
            logs = httpx.post(f"{api}/logs/filter", json={
                "logs": {"flow_run_id": {"any_": [run["id"]]}}}).json()
            applied += [log["message"] for log in logs
                        if log["message"].startswith("inventory sync:")
                        and "'applied': 1," in log["message"]]
        time.sleep(1)
    assert applied, f"no triggered sync-inventory run applied the change to {sku}"


def test_a_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "interchange.cli", "up"], cwd=ROOT, capture_output=True,
            text=True, env=stack_env(tmp_path, api=port), timeout=60,
        )
    assert result.returncode == 1
    assert f"API ({port}; choose another with INTERCHANGE_API_PORT)" in result.stdout
