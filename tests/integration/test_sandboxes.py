"""The sandboxes the other tests stand on: the localstripe launcher, its bulk seed route,
the demo data set, SDK interop, and the ChaosProxy."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pycountry
import pytest
import stripe
from email_validator import EmailNotValidError, validate_email

from sandboxes.stripe_seed import DECLINED_CARD, demo_dataset, seed, seed_via_sdk
from tests.fixtures.stripe import REPO_ROOT, LocalStripe
from tests.support.chaos import ChaosProxy, Fault

PICKLE = Path("/tmp/localstripe.pickle")


def walk(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every object of a list endpoint, page by page (``has_more``/``starting_after``)."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        query = {"limit": 100, **params, **({"starting_after": after} if after else {})}
        page = client.get(path, params=query).raise_for_status().json()
        items.extend(page["data"])
        if not page["has_more"]:
            return items
        after = page["data"][-1]["id"]


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _listeners(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


# -- the launcher ---------------------------------------------------------------------------


def test_launcher_binds_loopback_only_and_writes_no_pickle(
    localstripe_factory: Any,
) -> None:
    before = _stat(PICKLE)
    sandbox: LocalStripe = localstripe_factory()
    print(f"launcher ready in {sandbox.startup_seconds:.2f}s")
    with sandbox.client() as client:
        client.post("/v1/customers", data={"email": "a@example.com"}).raise_for_status()
        client.delete(
            f"/v1/customers/{client.post('/v1/customers').json()['id']}"
        ).raise_for_status()
        sandbox.seed(demo_dataset(customers=20))
        assert len(walk(client, "/v1/customers")) == 21

    assert _stat(PICKLE) == before, "the launcher touched /tmp/localstripe.pickle"
    if Path("/proc/net/tcp").exists():
        assert _listeners(sandbox.port) == ["127.0.0.1"]
    if socket.has_ipv6:  # upstream's "::" socket would have accepted this
        with socket.socket(socket.AF_INET6) as s6, pytest.raises(OSError):
            s6.settimeout(2)
            s6.connect(("::1", sandbox.port))


def test_launcher_refuses_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sandboxes.localstripe_server", "--port", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_instances_are_isolated(localstripe_factory: Any) -> None:
    a, b = localstripe_factory(), localstripe_factory()
    with a.client() as ca, b.client() as cb:
        created = ca.post("/v1/customers", data={"name": "only in a"}).json()
        b.seed(demo_dataset(customers=5))
        assert [c["id"] for c in walk(ca, "/v1/customers")] == [created["id"]]
        assert len(walk(cb, "/v1/customers")) == 5
        assert cb.get(f"/v1/customers/{created['id']}").status_code == 404
        a.flush()
        assert walk(ca, "/v1/customers") == []
        assert len(walk(cb, "/v1/customers")) == 5


# -- the data set ---------------------------------------------------------------------------


def _country(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = raw.strip()
    found = None
    if len(value) == 2:
        found = pycountry.countries.get(alpha_2=value.upper())
    elif len(value) == 3:
        found = pycountry.countries.get(alpha_3=value.upper())
    return (found or pycountry.countries.lookup(value)).alpha_2


def _broken_rules(customer: dict[str, Any]) -> list[str]:
    """The e-mail and phone rules of process_apis.canonical, re-stated independently."""
    broken = []
    email = customer.get("email")
    if email is not None and email.strip():
        try:
            validate_email(email.strip().lower(), check_deliverability=False)
        except EmailNotValidError:
            broken.append("email.valid")
    phone = (customer.get("phone") or "").strip()
    if phone:
        region = _country((customer.get("address") or {}).get("country")) or "US"
        try:
            number = phonenumbers.parse(phone, None if phone.startswith("+") else region)
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            broken.append("phone.e164")
    return broken


@pytest.mark.parametrize("seed_value", [1, 7, 2024])
def test_demo_dataset_is_deterministic_messy_and_labelled(seed_value: int) -> None:
    data = demo_dataset(customers=1000, seed=seed_value)
    assert data == demo_dataset(customers=1000, seed=seed_value)
    assert data != demo_dataset(customers=1000, seed=seed_value + 1)
    expected = data["expected"]
    customers = data["customers"]

    # exactly the labelled customers break exactly the labelled rules
    broken = {c["ref"]: rules for c in customers if (rules := _broken_rules(c))}
    assert broken == expected["invalid_customers"]
    assert 0.015 <= len(broken) / len(customers) <= 0.03
    assert {tuple(r) for r in broken.values()} == {
        ("email.valid",),
        ("phone.e164",),
        ("email.valid", "phone.e164"),
    }

    # messy, as promised
    emails = [c["email"] for c in customers if "email" in c]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)
    phones = [c["phone"] for c in customers if "phone" in c]
    for shape in ("(", ".", "+44 ", "+49 ", "+33 ", "020 7946 ", "030 "):
        assert any(shape in p for p in phones), shape
    assert {_country(c["address"]["country"]) for c in customers if "address" in c} == {
        "US", "GB", "DE", "FR",
    }  # fmt: skip
    assert len({c["address"]["country"] for c in customers if "address" in c}) > 4
    for repeat, original in expected["duplicates"].items():
        by_ref = {c["ref"]: c for c in customers}
        assert by_ref[repeat]["email"].strip().lower() == by_ref[original]["email"].strip().lower()
        assert by_ref[repeat]["email"] != by_ref[original]["email"]

    payments = data["payments"]
    assert expected["payments"] == len(payments)
    assert set(expected["payments_by_currency"]) == {"usd", "eur", "gbp", "jpy"}
    assert all(type(p["amount"]) is int and p["amount"] > 0 for p in payments)
    assert expected["payments_failed"] == sum(p["card"] == DECLINED_CARD for p in payments) > 0
    paying = {p["customer"] for p in payments}
    assert 0.75 < len(paying) / len(customers) < 0.95
    assert max(Counter(p["customer"] for p in payments).values()) == 3
    refunds = data["refunds"]
    assert 0.08 <= expected["refunded_payments"] / expected["payments_succeeded"] <= 0.12
    assert expected["refunds_full"] > 0 and expected["refunds_partial"] > 0
    amounts = {p["ref"]: p["amount"] for p in payments}
    for ref in {r["payment"] for r in refunds}:
        parts = [r.get("amount", amounts[ref]) for r in refunds if r["payment"] == ref]
        assert sum(parts) <= amounts[ref]


# -- seeding --------------------------------------------------------------------------------


def test_bulk_seed_of_the_demo_dataset_gives_exact_counts(fresh_localstripe: LocalStripe) -> None:
    data = demo_dataset(customers=300)
    expected = data["expected"]
    result = seed(fresh_localstripe.url, fresh_localstripe.api_key, data, max_body=64 * 1024)
    assert result["requests"] > 3  # the small max_body forced several requests per section
    counts = result["counts"]
    assert counts["customers"] == expected["customers"] == len(result["customers"])
    assert counts["payments"] == expected["payments"] == len(result["payments"])
    assert counts["payments_succeeded"] == expected["payments_succeeded"]
    assert counts["payments_failed"] == expected["payments_failed"]
    assert counts["refunds"] == expected["refunds"] == len(result["refunds"])

    with fresh_localstripe.client(timeout=30) as client:
        customers = walk(client, "/v1/customers")
        charges = walk(client, "/v1/charges")
        intents = walk(client, "/v1/payment_intents")
        refunds = walk(client, "/v1/refunds")
        events = Counter(e["type"] for e in walk(client, "/v1/events"))
        unauthenticated = httpx.post(f"{fresh_localstripe.url}/_interchange/seed", json={})

    assert len(customers) == expected["customers"]
    assert [c["metadata"]["seed_ref"] for c in customers] == [c["ref"] for c in data["customers"]]
    broken = {c["metadata"]["seed_ref"]: r for c in customers if (r := _broken_rules(c))}
    assert broken == expected["invalid_customers"]
    assert sum(c["phone"] is None for c in customers) == expected["customers_without_phone"]

    assert len(charges) == len(intents) == expected["payments"]
    assert sum(c["status"] == "failed" for c in charges) == expected["payments_failed"]
    assert Counter(c["currency"] for c in charges) == expected["payments_by_currency"]
    assert sum(pi["status"] == "succeeded" for pi in intents) == expected["payments_succeeded"]
    assert len(refunds) == expected["refunds"]
    assert sum(c["refunded"] for c in charges) == expected["fully_refunded_payments"]
    assert sum(c["amount_refunded"] > 0 for c in charges) == expected["refunded_payments"]
    assert all(0 <= c["amount_refunded"] <= c["amount"] for c in charges)
    for event_type, count in expected["events"].items():
        assert events[event_type] == count, event_type
    assert unauthenticated.status_code == 401


def test_seed_route_backdates_and_reports_errors(fresh_localstripe: LocalStripe) -> None:
    now = int(time.time())
    data = demo_dataset(customers=60, seed=3, created_range=(now - 30 * 86_400, now - 60))
    fresh_localstripe.seed(data)
    middle = now - 15 * 86_400
    want = sum(p["created"] > middle for p in data["payments"])
    with fresh_localstripe.client() as client:
        customers = walk(client, "/v1/customers")
        recent = walk(client, "/v1/charges", **{"created[gt]": middle})
        created_events = walk(client, "/v1/events", type="customer.created")
        later = walk(client, "/v1/events", **{"created[gte]": middle})
        assert [c["created"] for c in customers] == [c["created"] for c in data["customers"]]
        assert len(recent) == want > 0
        assert [e["created"] for e in created_events] == [c["created"] for c in customers]
        assert all(e["data"]["object"]["created"] == e["created"] for e in created_events)
        assert len(later) == sum(e["created"] >= middle for e in walk(client, "/v1/events"))

        bad = client.post(
            "/_interchange/seed",
            json={
                "customers": [{"ref": "x", "name": "X"}],
                "payments": [{"customer": "nobody", "amount": 100, "currency": "usd"}],
            },
        )
        assert bad.status_code == 404
        error = bad.json()["error"]
        assert error["message"].startswith("payments[0]: no customer 'nobody'")
        assert error["seeded"]["customers"] == 1  # not atomic: said so in the error
        pay = client.post(
            "/_interchange/seed",
            json={
                "customers": [{"ref": "y"}],
                "payments": [{"ref": "p", "customer": "y", "amount": 1000, "currency": "eur"}],
                "refunds": [{"payment": "p", "amount": 600}, {"payment": "p"}],
            },
        ).json()
        charge = client.get(f"/v1/charges/{pay['payments']['p']['charge']}").json()
        assert charge["amount_refunded"] == 1000 and charge["refunded"] is True  # not 1600
        over = client.post(
            "/_interchange/seed", json={"refunds": [{"payment": charge["id"], "amount": 1}]}
        )
        assert over.status_code == 400 and "exceeds" in over.json()["error"]["message"]
        typo = client.post("/_interchange/seed", json={"customer": []})
        assert typo.status_code == 400


def test_official_stripe_sdk_works_against_the_launcher(fresh_localstripe: LocalStripe) -> None:
    done = seed_via_sdk(fresh_localstripe.url, fresh_localstripe.api_key, limit=6)
    assert done["counts"]["customers"] == 6
    assert done["counts"]["payments"] >= 1

    client = stripe.StripeClient(
        fresh_localstripe.api_key,
        base_addresses={"api": fresh_localstripe.url},
        max_network_retries=0,
    )
    extra = [
        client.v1.customers.create(params={"email": f"sdk{i}@example.com", "metadata": {"i": i}})
        for i in range(7)
    ]
    assert extra[0].metadata["i"] == "0"  # form-encoded, like Stripe
    page = client.v1.customers.list(params={"limit": 4})
    assert len(page.data) == 4 and page.has_more
    listed = [c.id for c in page.auto_paging_iter()]
    assert listed == [*done["customers"].values(), *(c.id for c in extra)]  # oldest first
    assert client.v1.customers.retrieve(extra[3].id).email == "sdk3@example.com"
    charges = list(client.v1.charges.list(params={"limit": 2}).auto_paging_iter())
    assert len(charges) == done["counts"]["payments"]
    statuses = {p["status"] for p in done["payments"].values()}
    assert statuses <= {"succeeded", "requires_payment_method"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_doesnotexist")
    # As on Stripe, confirming a PaymentIntent copies its metadata into the charge.
    intent = client.v1.payment_intents.create(params={
        "amount": 1250, "currency": "usd", "customer": extra[0].id,
        "payment_method": "pm_card_visa", "metadata": {"order_id": "#1042"}})
    intent = client.v1.payment_intents.confirm(intent.id)
    latest = intent.latest_charge
    charge = client.v1.charges.retrieve(latest if isinstance(latest, str) else latest.id)
    assert charge.metadata["order_id"] == "#1042"


def test_seeding_5000_customers_takes_seconds(fresh_localstripe: LocalStripe) -> None:
    data = demo_dataset(customers=5000)
    started = time.perf_counter()
    result = fresh_localstripe.seed(data)
    elapsed = time.perf_counter() - started
    print(
        f"seeded {result['counts']} in {elapsed:.2f}s "
        f"({result['requests']} requests, {result['server_seconds']:.2f}s in the server)"
    )
    assert result["counts"]["customers"] == 5000
    assert result["counts"]["payments"] == data["expected"]["payments"]
    assert elapsed < 60  # ~3 s here; the upstream store took minutes
    with fresh_localstripe.client() as client:
        started = time.perf_counter()
        page = client.get("/v1/charges", params={"limit": 100}).json()
        print(f"first charges page of 100 in {time.perf_counter() - started:.3f}s")
        assert page["has_more"] and len(page["data"]) == 100


# -- the chaos proxy ------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received; gzip-encoded, with repeated and custom headers."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.hex(),
        }
        payload = gzip.compress(json.dumps(seen).encode(), mtime=0)
        self.send_response(207 if self.command == "PATCH" else 200, "Custom Reason")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _raw(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, bytes]:
    client.cookies.clear()  # cookie jars ignore ports: the echo's cookies would follow us
    with client.stream(method, url, **kwargs) as response:
        return response, b"".join(response.iter_raw())


def test_chaos_proxy_forwards_requests_and_responses_unchanged(
    chaos_proxy: Any, echo_server: str
) -> None:
    proxy: ChaosProxy = chaos_proxy(echo_server)
    body = bytes(range(256)) * 3
    path = "/v1/things/%2Fx?created[gte]=1&q=a%20b+c&q=2&empty="
    headers = {"Authorization": "Bearer sk_test_secret", "X-Custom": "spaced  value; q=1"}
    with httpx.Client(timeout=10) as client:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            content = body if method in ("POST", "PATCH") else None
            direct, direct_raw = _raw(
                client, method, echo_server + path, headers=headers, content=content
            )
            proxied, proxied_raw = _raw(
                client, method, proxy.url + path, headers=headers, content=content
            )
            assert proxied.status_code == direct.status_code
            assert proxied.reason_phrase == direct.reason_phrase == "Custom Reason"
            assert proxied.headers.get_list("set-cookie") == ["a=1", "b=2"]
            # Date/Server: per response; Content-Length: the echoed Host differs
            skip = {"date", "server", "content-length"}
            assert proxied.headers["content-length"] == str(len(proxied_raw))
            assert [kv for kv in proxied.headers.multi_items() if kv[0] not in skip] == [
                kv for kv in direct.headers.multi_items() if kv[0] not in skip
            ]
            seen_direct = json.loads(gzip.decompress(direct_raw))
            seen_proxied = json.loads(gzip.decompress(proxied_raw))
            assert seen_proxied["method"] == method
            assert seen_proxied["path"] == path == seen_direct["path"]
            assert bytes.fromhex(seen_proxied["body"]) == (content or b"")
            # upstream sees the client's own headers, Host included (the proxy's), less
            # the hop-by-hop Connection
            assert seen_proxied["headers"] == [
                [k, proxy.url.removeprefix("http://") if k.lower() == "host" else v]
                for k, v in seen_direct["headers"]
                if k.lower() != "connection"
            ]
    assert proxy.requests_by_path["/v1/things/%2Fx"] == 4
    assert proxy.forwarded == 4 and not proxy.faults_injected


def test_chaos_proxy_is_transparent_for_localstripe(
    chaos_proxy: Any, localstripe: LocalStripe
) -> None:
    proxy = chaos_proxy(localstripe.url)
    with (
        localstripe.client() as direct,
        httpx.Client(base_url=proxy.url, headers=localstripe.headers) as proxied,
    ):
        made = proxied.post("/v1/customers", data={"email": "via-proxy@example.com"})
        assert made.status_code == 200
        a = direct.get(f"/v1/customers/{made.json()['id']}")
        b = proxied.get(f"/v1/customers/{made.json()['id']}")
        assert (a.status_code, a.content) == (b.status_code, b.content)
        assert {k: v for k, v in a.headers.items() if k != "date"} == {
            k: v for k, v in b.headers.items() if k != "date"
        }


def test_chaos_proxy_injects_planned_faults(chaos_proxy: Any, localstripe: LocalStripe) -> None:
    proxy = chaos_proxy(localstripe.url)
    proxy.plan(
        [
            Fault.status(429, retry_after=1),
            Fault.status(500),
            Fault.status(502),
            Fault.status(503, path="/v1/charges"),
            Fault.drop(),
            Fault.drop(reset=True),
            Fault.delay(0.3),
        ]
    )
    with httpx.Client(base_url=proxy.url, headers=localstripe.headers, timeout=10) as client:
        limited = client.get("/v1/customers", params={"limit": 1})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        assert client.get("/v1/customers").status_code == 500
        assert client.get("/v1/customers").status_code == 502
        # the 503 waits for its path; the drop is next for everything else
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/customers")
        assert client.get("/v1/charges", params={"limit": 1}).status_code == 503
        with pytest.raises(httpx.TransportError):
            client.get("/v1/customers")
        started = time.monotonic()
        assert client.get("/v1/customers", params={"limit": 1}).status_code == 200
        assert time.monotonic() - started >= 0.3
        assert client.get("/v1/customers", params={"limit": 1}).status_code == 200
    assert proxy.pending == []
    assert proxy.faults_injected == {
        "status:429": 1, "status:500": 1, "status:502": 1, "status:503": 1,
        "drop": 2, "delay": 1,
    }  # fmt: skip
    assert proxy.requests_by_path == {"/v1/customers": 7, "/v1/charges": 1}
    assert proxy.forwarded == 2
    assert [r.fault for r in proxy.requests][-2:] == ["delay", None]


def test_chaos_proxy_delay_trips_a_client_timeout(
    chaos_proxy: Any, localstripe: LocalStripe
) -> None:
    proxy = chaos_proxy(localstripe.url).plan([Fault.delay(2)])
    with httpx.Client(base_url=proxy.url, headers=localstripe.headers, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/v1/customers", params={"limit": 1})


def test_chaos_proxy_runs_a_callback_on_the_nth_request(
    chaos_proxy: Any, localstripe: LocalStripe
) -> None:
    proxy = chaos_proxy(localstripe.url)
    email = f"callback-{os.getpid()}-{time.monotonic_ns()}@example.com"
    calls = []

    def create_behind_the_clients_back() -> None:
        calls.append(proxy.forwarded)
        httpx.post(
            f"{localstripe.url}/v1/customers", data={"email": email}, headers=localstripe.headers
        ).raise_for_status()

    proxy.on_request(3, create_behind_the_clients_back)
    proxy.plan([Fault.status(500)])  # answered by the proxy: not a forwarded request
    with httpx.Client(base_url=proxy.url, headers=localstripe.headers) as client:
        found = [
            len(client.get("/v1/customers", params={"email": email}).json().get("data", []))
            for _ in range(4)
        ]
    assert found == [0, 0, 0, 1]  # the 500, then forwarded #1, #2, and #3 sees the effect
    assert calls == [3]

    failing = ChaosProxy(localstripe.url).start()
    failing.on_request(1, lambda: 1 / 0)
    httpx.get(f"{failing.url}/v1/customers", headers=localstripe.headers)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        failing.stop()
