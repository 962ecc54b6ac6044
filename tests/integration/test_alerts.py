"""Alert automations against a real Prefect server and the local alert receiver.

Flow-run state events (``prefect.flow-run.Failed``, ``.Running``, …) are emitted by
the *server* when it accepts a state transition, so an in-process flow run needs no
client-side event flush: the triggers and actions services that ``prefect server
start`` runs pick them up and call the webhook block, which posts to the receiver.

The slow run (15 s against a 10 s threshold) starts first on a background thread and
overlaps the failed-run test; proactive triggers are evaluated every 5 s, so its
alert lands 10-15 s after the run starts (or at the latest when its Completed event
arrives after the window has closed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect import flow, tags
from prefect.client.orchestration import get_client

from interchange.alerts import (
    automation_names,
    ensure_automations,
    ensure_notification_block,
)
from interchange.errors import ConfigError
from interchange.receiver import AlertReceiver, serve
from tests.fixtures.common import free_port, wait_until

pytestmark = [pytest.mark.slow]

SLOW_THRESHOLD = 10
SLOW_SLEEP = 15
RUN_TAG = f"alerts-test-{uuid.uuid4().hex[:8]}"
PREFIX = f"alerts-test-{uuid.uuid4().hex[:6]}"


@flow(name="alerts-test-failing", log_prints=False)
def failing_flow() -> None:
    raise ValueError('boom: "quoted" <message> for the alerts test')


@flow(name="alerts-test-slow")
def slow_flow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@dataclass
class SlowRun:
    started: float = 0.0
    finished: float = 0.0
    state: Any = None
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


def _alerts(receiver: AlertReceiver, kind: str, flow_name: str) -> list[dict[str, Any]]:
    return [a for a in receiver.snapshot() if a.get("alert") == kind and a.get("flow") == flow_name]


def _automations_named(*names: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        return [
            a for name in names for a in client.read_automations_by_name(name) if a.name == name
        ]


def _delete_automations(ids: list[uuid.UUID]) -> None:
    with get_client(sync_client=True) as client:
        for automation_id in ids:
            client.delete_automation(automation_id)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertReceiver]:
    out = tmp_path_factory.mktemp("alerts") / "alerts.jsonl"
    server = serve(free_port(), out, echo=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def alert_automations(prefect_server, receiver: AlertReceiver) -> Iterator[list[uuid.UUID]]:
    block_id = ensure_notification_block(
        kind="webhook", url=receiver.url, block_name=f"{PREFIX}-webhook"
    )
    ids = ensure_automations(
        block_id=block_id,
        slow_after_seconds=SLOW_THRESHOLD,
        name_prefix=PREFIX,
        match_tags=[RUN_TAG],  # only this module's runs, whatever else the session runs
    )
    try:
        yield ids
    finally:
        _delete_automations(ids)


@pytest.fixture(scope="module")
def slow_run(alert_automations: list[uuid.UUID]) -> Iterator[SlowRun]:
    """An honest slow run, started once on a background thread and shared."""
    run = SlowRun()

    def target() -> None:
        try:
            with tags(RUN_TAG):
                run.state = slow_flow(SLOW_SLEEP, return_state=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            run.error = exc
        finally:
            run.finished = time.monotonic()

    run.started = time.monotonic()
    run.thread = threading.Thread(target=target, name="slow-flow", daemon=True)
    run.thread.start()
    yield run
    run.thread.join(timeout=SLOW_SLEEP + 30)


def test_failed_run_sends_a_failed_alert(
    receiver: AlertReceiver, alert_automations: list[uuid.UUID], slow_run: SlowRun
) -> None:
    with tags(RUN_TAG):
        state = failing_flow(return_state=True)
    assert state.is_failed()
    finished = time.monotonic()
    run_id = str(state.state_details.flow_run_id)

    wait_until(lambda: _alerts(receiver, "failed", "alerts-test-failing"), timeout=15, interval=0.1)
    latency = time.monotonic() - finished
    print(f"failed-run alert {latency:.2f}s after the run ended")

    (alert,) = _alerts(receiver, "failed", "alerts-test-failing")
    assert alert["flow_run_id"] == run_id
    assert alert["state"] == "Failed"
    assert 'boom: "quoted" <message>' in alert["message"]
    assert alert["flow_run"] and alert["flow_run"] in alert["subject"]
    assert alert["link"].endswith(f"/runs/flow-run/{run_id}")
    assert RUN_TAG in alert["tags"]
    assert alert["automation"] == automation_names(PREFIX)[0]


def test_slow_run_sends_a_slow_alert(receiver: AlertReceiver, slow_run: SlowRun) -> None:
    wait_until(
        lambda: _alerts(receiver, "slow", "alerts-test-slow"),
        timeout=SLOW_SLEEP + 20,
        interval=0.2,
    )
    seen = time.monotonic()
    print(f"slow-run alert {seen - slow_run.started:.1f}s after the run was started")

    (alert,) = _alerts(receiver, "slow", "alerts-test-slow")
    assert alert["state"] in {"Running", "Completed"}
    assert alert["slow_after_seconds"] == SLOW_THRESHOLD
    assert f"still running after {SLOW_THRESHOLD} s" in alert["subject"]
    assert alert["automation"] == automation_names(PREFIX)[1]
    assert seen - slow_run.started >= SLOW_THRESHOLD

    assert slow_run.thread is not None
    slow_run.thread.join(timeout=SLOW_SLEEP + 30)
    assert slow_run.error is None
    assert slow_run.state.is_completed()
    assert alert["flow_run_id"] == str(slow_run.state.state_details.flow_run_id)
    # a run that fails is not also reported as slow, and one slow run alerts once
    assert not _alerts(receiver, "slow", "alerts-test-failing")


def test_ensure_automations_is_idempotent(prefect_server, receiver: AlertReceiver) -> None:
    prefix = f"idem-{uuid.uuid4().hex[:6]}"
    block_id = ensure_notification_block(url=receiver.url, block_name=f"{prefix}-webhook")
    assert ensure_notification_block(url=receiver.url, block_name=f"{prefix}-webhook") == block_id

    first = ensure_automations(block_id=block_id, slow_after_seconds=30, name_prefix=prefix)
    second = ensure_automations(block_id=block_id, slow_after_seconds=45, name_prefix=prefix)
    try:
        assert first == second
        found = _automations_named(*automation_names(prefix))
        assert len(found) == 4
        slow = next(a for a in found if a.name.endswith("slow runs"))
        assert slow.trigger.within.total_seconds() == 45  # replaced, not duplicated
    finally:
        _delete_automations(second)


@pytest.mark.parametrize("bad", [0, 5, 9])
def test_slow_threshold_below_ten_seconds_is_rejected(bad: int) -> None:
    # validated before any server call, so no server is needed
    with pytest.raises(ConfigError, match="at least 10"):
        ensure_automations(block_id=uuid.uuid4(), slow_after_seconds=bad)


def test_email_kind_explains_it_is_unavailable() -> None:
    with pytest.raises(ConfigError, match="prefect-email"):
        ensure_notification_block(kind="email", url=None, emails=["ops@example.com"])


def test_module_entry_point_applies_settings(prefect_server, receiver: AlertReceiver) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        **prefect_server.env,
        "INTERCHANGE_ALERT_URL": receiver.url,
        "INTERCHANGE_ALERT_SLOW_SECONDS": "120",
        "INTERCHANGE_ALERT_NAME_PREFIX": prefix,
        "INTERCHANGE_ALERT_BLOCK_NAME": f"{prefix}-webhook",
    }
    done = subprocess.run(
        [sys.executable, "-m", "interchange.alerts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = _automations_named(*automation_names(prefix))
    try:
        assert len(found) == 4
        assert {str(a.id) for a in found} <= set(done.stdout.split())
    finally:
        _delete_automations([a.id for a in found])

    missing = {k: v for k, v in env.items() if k != "INTERCHANGE_ALERT_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "interchange.alerts"],
        env=missing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "INTERCHANGE_ALERT_URL" in done.stderr


def test_schema_drift_event_sends_a_drift_alert(
    receiver: AlertReceiver, alert_automations: list[uuid.UUID]
) -> None:
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    stream = f"stream-{uuid.uuid4().hex[:6]}"
    emit_event(
        event="interchange.schema.drift",
        resource={"prefect.resource.id": f"interchange.source.testsrc.{stream}"},
        payload={"source": "testsrc", "stream": stream, "added": ["fax"],
                 "missing": ["email"], "retyped": []},
    )
    EventsWorker.drain_all(timeout=10)

    def drift_alerts():
        return [a for a in receiver.snapshot()
                if a.get("alert") == "drift" and a.get("stream") == stream]

    wait_until(drift_alerts, timeout=20, interval=0.1)
    (alert,) = drift_alerts()
    assert (alert["source"], alert["added"], alert["missing"]) == ("testsrc", ["fax"], ["email"])
    assert alert["automation"] == automation_names(PREFIX)[2]


def test_reconciliation_mismatch_event_sends_a_reconciliation_alert(
    receiver: AlertReceiver, alert_automations: list[uuid.UUID]
) -> None:
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    from interchange.alerts import reconciliation_automation_name

    assert len(alert_automations) == 4
    resource = f"interchange.reconciliation.test-{uuid.uuid4().hex[:6]}"
    counts = {"orders_considered": 10, "unmatched_order": 2, "orphan_payment": 1}
    emit_event(
        event="interchange.reconciliation.mismatch",
        resource={"prefect.resource.id": resource},
        payload={"rate": 0.3, "threshold": 0.05, "problems": 3, "counts": counts,
                 "export": "reconciliation-20260301T000000Z.csv"},
    )
    EventsWorker.drain_all(timeout=10)

    def mismatch_alerts():
        # Only this module's automation (other tests make their own with other prefixes).
        return [a for a in receiver.snapshot()
                if a.get("alert") == "reconciliation" and a.get("resource") == resource
                and a.get("automation") == reconciliation_automation_name(PREFIX)]

    wait_until(mismatch_alerts, timeout=20, interval=0.1)
    (alert,) = mismatch_alerts()
    assert (alert["rate"], alert["threshold"], alert["problems"]) == (0.3, 0.05, 3)
    assert alert["counts"] == counts
    assert alert["export"] == "reconciliation-20260301T000000Z.csv"
    assert alert["automation"] == reconciliation_automation_name(PREFIX)


def test_build_automations_includes_the_reconciliation_alert() -> None:
    from interchange.alerts import build_automations, reconciliation_automation_name

    built = build_automations(block_id=uuid.uuid4(), name_prefix="x")
    assert [a.name for a in built] == list(automation_names("x"))
    assert built[3].name == reconciliation_automation_name("x")
    trigger = built[3].trigger
    assert trigger.expect == {"interchange.reconciliation.mismatch"}
    assert trigger.match.root == {"prefect.resource.id": "interchange.reconciliation.*"}
