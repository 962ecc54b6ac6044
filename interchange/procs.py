"""Child processes of the local stack and the tests: stopping a process group cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process_group(proc: subprocess.Popen, *, timeout: float = 10.0) -> int | None:
    """SIGTERM the process group ``proc`` leads (started with ``start_new_session``),
    SIGKILL it if it has not exited after ``timeout`` seconds; return the exit code."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)
