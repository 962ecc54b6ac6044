"""Run a real Prefect server as a child process: a dev and test helper.

The local stack (``make up``) and the integration tests both need a genuine
``prefect server start`` (API, event pipeline, triggers and actions services), not
Prefect's in-process ephemeral server. This module owns starting one on a chosen
port with its own ``PREFECT_HOME`` (so its SQLite database lives under that
directory), waiting until it answers, stopping it, and the environment a client
process needs to talk to it::

    proc = start_server(port=4200, home=Path(".interchange/prefect"), log_path=log)
    try:
        wait_ready("http://127.0.0.1:4200/api", proc=proc, log_path=log)
        subprocess.run([...], env={**os.environ, **client_env(api_url)})
    finally:
        stop(proc)

The server is hermetic: ``PREFECT_*`` variables of the calling process (an API
URL, a profile, a database URL) are not passed on; add what you want through
``extra_env``. It runs in its own process group so :func:`stop` ends uvicorn and
anything it spawned. Production runs its server(s) on PostgreSQL and does not use
this module.

Timings on the 2-core dev machines: the first start on a fresh home migrates the
SQLite database (about 9 s); later starts on a migrated database take about 4 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from interchange.procs import stop_process_group

__all__ = [
    "ServerStartError",
    "api_url_for",
    "client_env",
    "start_server",
    "stop",
    "wait_ready",
]

HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The Prefect server could not be started or did not become healthy."""


def api_url_for(port: int, host: str = HOST) -> str:
    """The API URL of a server started by :func:`start_server` on ``port``."""
    return f"http://{host}:{port}/api"


def _prefect_command() -> list[str]:
    # Prefer the console script of the interpreter running us so the server is the
    # same Prefect version as the client; fall back to ``python -m prefect``.
    script = Path(sys.executable).parent / "prefect"
    if script.exists():
        return [str(script)]
    found = shutil.which("prefect")
    if found:
        return [found]
    return [sys.executable, "-m", "prefect"]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def server_env(
    *, port: int, home: Path, ui: bool = True, extra_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment :func:`start_server` gives the server process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(Path(home).resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "true" if ui else "false",
            # Server-rendered links (``{{ flow_run|ui_url }}`` in notifications)
            # need to know where the UI is; the server does not infer it.
            "PREFECT_UI_URL": f"http://{HOST}:{port}",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            # No colour codes or interactive prompts in the log file.
            "PREFECT_CLI_COLORS": "false",
            "PREFECT_CLI_PROMPT": "false",
        }
    )
    if extra_env:
        env.update({k: str(v) for k, v in extra_env.items()})
    return env


def start_server(
    *,
    port: int,
    home: Path,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    ui: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` on ``127.0.0.1:port`` and return at once.

    ``home`` becomes ``PREFECT_HOME`` (created if missing; the SQLite database is
    ``home/prefect.db``). stdout and stderr are appended to ``log_path``. Call
    :func:`wait_ready` before using the server and :func:`stop` to end it.

    Raises :class:`ServerStartError` when the port is already taken.
    """
    if _port_in_use(HOST, port):
        raise ServerStartError(
            f"cannot start the Prefect server: port {port} on {HOST} is already in use "
            "(another server or process is listening there; pick a free port)"
        )
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        *_prefect_command(),
        "server",
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
        "--analytics-off",
    ]
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            env=server_env(port=port, home=home, ui=ui, extra_env=extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals all of it
        )
    return proc


def _log_tail(log_path: Path | None, lines: int = 25) -> str:
    if not log_path:
        return ""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    api_url: str,
    timeout: float = 90,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.25,
) -> float:
    """Poll ``{api_url}/health`` until it answers 200; return the seconds waited.

    With ``proc``, fail fast (with the log tail from ``log_path``) if the server
    process exits instead of becoming healthy.
    """
    url = api_url.rstrip("/") + "/health"
    start = time.monotonic()
    deadline = start + timeout
    last: str = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerStartError(
                    f"the Prefect server exited with code {proc.returncode} before it was "
                    f"ready at {api_url}\n{_log_tail(log_path)}"
                )
            try:
                resp = client.get(url)
                if resp.status_code == 200:
                    return time.monotonic() - start
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(interval)
    raise ServerStartError(
        f"the Prefect server at {api_url} was not healthy after {timeout:.0f}s "
        f"(last: {last})\n{_log_tail(log_path)}"
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int | None:
    """Terminate the server's process group (SIGTERM, then SIGKILL) and wait."""
    return stop_process_group(proc, timeout=timeout)


def client_env(api_url: str) -> dict[str, str]:
    """Environment variables a client process (flow, worker, ``prefect deploy``) needs.

    Merge into a copy of ``os.environ``: ``{**os.environ, **client_env(url)}``.
    """
    base = api_url.rstrip("/")
    ui_url = base[: -len("/api")] if base.endswith("/api") else base
    return {
        "PREFECT_API_URL": base,
        "PREFECT_UI_URL": ui_url,
        # An API key in the caller's environment belongs to some other server.
        "PREFECT_API_KEY": "",
        # Never fall back to an in-process ephemeral server if the URL is wrong.
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
    }
