"""A tiny alert receiver for the local stack and the tests.

Prefect automations post alerts to a webhook (see :mod:`interchange.alerts`). On a
laptop there is no Slack to post to, so the local stack points the webhook at this
receiver: a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` that accepts any POST,
prints one readable line per alert to stdout and, when given a file, appends the
alert as one JSON object per line (JSONL)::

    python -m interchange.receiver --port 8765 --out .interchange/alerts.jsonl

Tests use :func:`serve`, which runs the server on a background thread and keeps the
received alerts in memory (``server.alerts``). Bodies that are not JSON are kept as
``{"raw": "<text>"}`` so nothing posted is lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["AlertReceiver", "format_alert", "main", "serve"]

HOST = "127.0.0.1"
MAX_BODY = 1_000_000


class AlertReceiver(ThreadingHTTPServer):
    """HTTP server that records every POSTed alert."""

    daemon_threads = True

    def __init__(self, port: int, out_path: Path | None = None, *, echo: bool = True) -> None:
        super().__init__((HOST, port), _Handler)
        self.out_path = Path(out_path) if out_path else None
        self.echo = echo
        self.alerts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/alerts"

    def record(self, alert: dict[str, Any]) -> None:
        with self._lock:
            self.alerts.append(alert)
            if self.out_path:
                self.out_path.parent.mkdir(parents=True, exist_ok=True)
                with self.out_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(alert, default=str) + "\n")
        if self.echo:
            print(format_alert(alert), flush=True)

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the alerts received so far (safe to iterate while serving)."""
        with self._lock:
            return list(self.alerts)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: AlertReceiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        alert = body if isinstance(body, dict) else {"raw": raw}
        alert.setdefault("received_at", datetime.now(UTC).isoformat())
        alert.setdefault("path", self.path)
        self.server.record(alert)
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - a health probe for the local stack
        payload = json.dumps({"alerts": len(self.server.alerts)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per alert is printed by record(); no access log noise


def format_alert(alert: dict[str, Any]) -> str:
    """One readable line: ``[FAILED] flow/run -> Failed: message  link``."""
    if "raw" in alert and len(alert) <= 3:
        return f"[alert] {alert['raw'].strip()[:300]}"
    kind = str(alert.get("alert") or "alert").upper()
    flow = alert.get("flow") or "?"
    run = alert.get("flow_run") or "?"
    state = alert.get("state") or "?"
    message = " ".join(str(alert.get("message") or "").split())[:200]
    line = f"[{kind}] {flow}/{run} -> {state}"
    if message:
        line += f": {message}"
    if alert.get("link"):
        line += f"  {alert['link']}"
    return line


def serve(port: int, out_path: Path | None = None, *, echo: bool = True) -> AlertReceiver:
    """Start a receiver on ``127.0.0.1:port`` on a daemon thread; ``.stop()`` ends it."""
    server = AlertReceiver(port, out_path, echo=echo)
    server._thread = threading.Thread(
        target=server.serve_forever, name=f"alert-receiver-{port}", daemon=True
    )
    server._thread.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Receive Interchange alert webhooks.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=None, help="append alerts to this JSONL")
    args = parser.parse_args(argv)
    server = AlertReceiver(args.port, args.out)
    print(f"alert receiver listening on {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
