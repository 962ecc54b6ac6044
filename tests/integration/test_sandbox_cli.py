"""`interchange sandbox NAME`: one sandbox alone, seeded, in the foreground."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.fixtures.common import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_stripe_sandbox_alone_is_seeded_and_stops_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "interchange.cli", "sandbox", "stripe", "--port", str(port),
         "--records", "20"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        line = ""
        while "Stripe sandbox on" not in line:
            line = proc.stdout.readline()
            assert line, "sandbox exited early"
        body = httpx.get(f"http://127.0.0.1:{port}/v1/customers", params={"limit": 100},
                         headers={"Authorization": "Bearer sk_test_any"}).json()
        assert len(body["data"]) == 20
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(20)
    with __import__("socket").socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening


def test_erp_sandbox_creates_and_seeds_a_database(tmp_path):
    import json
    import sqlite3

    db = tmp_path / "erp.db"
    out = subprocess.run(
        [sys.executable, "-m", "interchange.cli", "sandbox", "erp", "--url", f"sqlite:///{db}",
         "--records", "30"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    seeded = json.loads(out.stdout.strip().splitlines()[-1])["seeded"]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute('select count(*) from "CUST_MASTER"').fetchone()[0] == 30
    finally:
        conn.close()
    assert seeded
