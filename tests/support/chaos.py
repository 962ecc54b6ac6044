"""ChaosProxy: a reverse HTTP proxy in front of a real component that misbehaves on cue.

Tests put it between a client and a sandbox (localstripe, OpenBao, …) to produce the wire
failures a sandbox will not produce by itself, deterministically::

    with ChaosProxy(localstripe.url) as proxy:
        proxy.plan([Fault.status(429, retry_after=1), Fault.drop(path="/v1/charges")])
        proxy.on_request(3, revoke_token)          # runs as the 3rd request arrives
        client = make_client(base_url=proxy.url)   # ... exercise the client
        assert proxy.faults_injected["status:429"] == 1

Forwarding is transparent: method, path and raw query, body and headers (``Host``
included, so upstream-built links keep pointing at the proxy; hop-by-hop headers
excepted) go up; status, reason, headers and the raw, still-encoded body come back,
with ``Content-Length`` recomputed. Bodies are buffered: no streaming, no WebSockets.

Faults (:class:`Fault`), taken from a FIFO queue by the next request they match (an
optional ``path`` prefix, matched against the path without the query):

* ``Fault.status(code, retry_after=None, body=None)`` — answer ``code`` without
  forwarding (``Retry-After`` when given; a small JSON error body by default);
* ``Fault.drop(reset=False)`` — read the request, then close the connection without a
  byte of response (``reset=True``: abort with a TCP RST instead of a FIN);
* ``Fault.delay(seconds)`` — wait, then forward as usual (pair it with a client timeout
  for a read timeout).

Every request arriving is counted per path (``requests_by_path``) and recorded
(``requests``); faults per kind in ``faults_injected`` (``"status:503"``, ``"drop"``,
``"delay"``). ``on_request(n, callback)`` calls ``callback()`` when the n-th request to be
forwarded arrives, before it is forwarded (status and drop faults answer without
forwarding and are not counted). A callback that raises is reported by :meth:`stop`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class Fault:
    kind: Literal["status", "drop", "delay"]
    path: str | None = None
    code: int = 0
    retry_after: float | None = None
    body: bytes | None = None
    seconds: float = 0.0
    reset: bool = False

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        body: bytes | str | None = None,
        path: str | None = None,
    ) -> Fault:
        if isinstance(body, str):
            body = body.encode()
        return cls("status", path=path, code=code, retry_after=retry_after, body=body)

    @classmethod
    def drop(cls, *, reset: bool = False, path: str | None = None) -> Fault:
        return cls("drop", path=path, reset=reset)

    @classmethod
    def delay(cls, seconds: float, *, path: str | None = None) -> Fault:
        return cls("delay", path=path, seconds=seconds)

    @property
    def label(self) -> str:
        return f"status:{self.code}" if self.kind == "status" else self.kind

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: str
    fault: str | None  # the injected fault's label, None when forwarded untouched


class ChaosProxy:
    """Reverse proxy on ``127.0.0.1:<free port>`` to ``target`` (``http://host:port``)."""

    def __init__(self, target: str, *, timeout: float = 60.0) -> None:
        self.target = target.rstrip("/")
        self.timeout = timeout
        self.requests_by_path: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.requests: list[SeenRequest] = []
        self.forwarded = 0
        self.callback_errors: list[BaseException] = []
        self._faults: list[Fault] = []
        self._callbacks: dict[int, list[Callable[[], object]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._connections: set[socket.socket] = set()

    # lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ChaosProxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ChaosProxy:
        if self._server is not None:
            return self
        self._client = httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"chaos-proxy-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); raise if an ``on_request`` callback failed."""
        if self._server is not None:
            self._stopping.set()  # wakes handlers sleeping in a delay fault
            self._server.shutdown()
            self._server.server_close()
            with self._lock:  # idle keep-alive connections would otherwise be served on
                connections, self._connections = list(self._connections), set()
            for connection in connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server = None
            if self._thread is not None:
                self._thread.join(timeout=5)
            if self._client is not None:
                self._client.close()
        if self.callback_errors:
            errors, self.callback_errors = self.callback_errors, []
            raise RuntimeError(f"ChaosProxy on_request callback failed: {errors[0]!r}") from (
                errors[0]
            )

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.stop()
        else:  # do not hide the test's own exception behind a callback's
            self.callback_errors.clear()
            self.stop()

    # the plan

    def plan(self, faults: Iterable[Fault]) -> ChaosProxy:
        """Queue faults; each is used once, by the next request it matches."""
        with self._lock:
            self._faults.extend(faults)
        return self

    def clear(self) -> None:
        """Forget pending faults and callbacks (counters are kept)."""
        with self._lock:
            self._faults.clear()
            self._callbacks.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def on_request(self, n: int, callback: Callable[[], object]) -> ChaosProxy:
        """Call ``callback()`` when the n-th forwarded request (1-based, counting from the
        proxy's start) arrives, before forwarding it."""
        if n < 1:
            raise ValueError("n counts from 1")
        with self._lock:
            self._callbacks.setdefault(n, []).append(callback)
        return self

    # used by the handler threads

    def _take(self, method: str, path: str, query: str) -> tuple[Fault | None, list]:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(path)), None)
            if fault is not None:
                self._faults.remove(fault)
                self.faults_injected[fault.label] += 1
            self.requests_by_path[path] += 1
            self.requests.append(SeenRequest(method, path, query, fault and fault.label))
            callbacks: list = []
            if fault is None or fault.kind == "delay":
                self.forwarded += 1
                callbacks = self._callbacks.pop(self.forwarded, [])
            return fault, callbacks


def _handler_for(proxy: ChaosProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: ChaosProxy
    protocol_version = "HTTP/1.1"  # keep-alive, like the servers it stands in for
    timeout = 60  # idle keep-alive connections do not pin a thread forever

    def setup(self) -> None:
        super().setup()
        with self.proxy._lock:
            self.proxy._connections.add(self.connection)

    def finish(self) -> None:
        with self.proxy._lock:
            self.proxy._connections.discard(self.connection)
        super().finish()

    def do_request(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._read_body()
        fault, callbacks = self.proxy._take(self.command, path, query)
        if fault is not None and fault.kind == "drop":
            self._drop(fault.reset)
            return
        if fault is not None and fault.kind == "status":
            self._answer_fault(fault)
            return
        if fault is not None and fault.kind == "delay":
            if self.proxy._stopping.wait(fault.seconds):
                self._drop(reset=False)
                return
        for callback in callbacks:
            try:
                callback()
            except BaseException as exc:  # noqa: BLE001 - reported by ChaosProxy.stop()
                self.proxy.callback_errors.append(exc)
        self._forward(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> None:
        client = self.proxy._client
        assert client is not None
        headers = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
        ]
        # httpx.Request adds only Host (kept from the client here) and Content-Length;
        # client.send() adds no default headers, so upstream sees what the client sent.
        request = httpx.Request(
            self.command,
            self.proxy.target + self.path,
            headers=headers,
            content=body if body or self.command in ("POST", "PUT", "PATCH") else None,
        )
        try:
            response = client.send(request, stream=True)
            try:
                raw = b"".join(response.iter_raw())
            finally:
                response.close()
        except httpx.HTTPError as exc:
            self._send(502, "Bad Gateway", [("Content-Type", "application/json")],
                       _error_body(f"chaos proxy: upstream failed: {exc!r}"))  # fmt: skip
            return
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.headers.raw
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
            and name.lower() != b"content-length"
        ]
        self._send(response.status_code, response.reason_phrase, headers, raw)

    def _answer_fault(self, fault: Fault) -> None:
        headers = [("Content-Type", "application/json")]
        if fault.retry_after is not None:
            value = fault.retry_after
            headers.append(("Retry-After", str(int(value)) if value == int(value) else str(value)))
        body = fault.body if fault.body is not None else _error_body(f"chaos: {fault.label}")
        self._send(fault.code, None, headers, body)

    def _send(
        self, code: int, reason: str | None, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        try:
            # send_response_only: no Server/Date of our own, the upstream's pass through
            self.send_response_only(code, reason or None)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)

    def _drop(self, reset: bool) -> None:
        self.close_connection = True
        sock = self.connection
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        else:
            sock.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read the counters instead


def _error_body(message: str) -> bytes:
    return json.dumps(
        {"error": {"type": "chaos_proxy", "message": message, "at": time.time()}}
    ).encode()
