"""The resilient HTTP layer: retries, Retry-After, rate limit, typed errors.

httpx.MockTransport stands in for the network here because these are wire cases
(exact retry sequences, HTTP dates) a sandbox cannot produce on demand; the
integration tests drive the same code through a chaos proxy in front of localstripe.
"""

import httpx
import pytest

from interchange import errors
from interchange.http import (
    ResilientTransport,
    RetryPolicy,
    TokenBucket,
    build_client,
    parse_retry_after,
)


def scripted(*responses):
    """A transport that answers with the given statuses / exceptions in order."""
    calls = []
    script = list(responses)

    def handler(request):
        calls.append(request)
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers = item if isinstance(item, tuple) else (item, {})
        return httpx.Response(status, headers=headers, json={"ok": status < 400})

    return httpx.MockTransport(handler), calls


def client_with(transport, sleeps, **policy):
    client = build_client(source="test", base_url="https://source.test", transport=transport,
                          rate_limit_per_second=None, policy=RetryPolicy(**policy))
    client.http._transport._sleep = sleeps.append  # record instead of sleeping
    return client


def test_retries_5xx_and_drops_then_succeeds():
    transport, calls = scripted(500, httpx.ConnectError("reset"), 503, 200)
    sleeps = []
    client = client_with(transport, sleeps, backoff_base=0.5, backoff_max=4)
    assert client.get_json("/v1/things") == {"ok": True}
    assert len(calls) == 4 and client.stats.retries == 3
    assert all(0 <= s <= min(4, 0.5 * 2**i) for i, s in enumerate(sleeps))
    assert client.stats.statuses["500"] == 1 and client.stats.statuses["error"] == 1


def test_429_waits_retry_after_capped():
    transport, _ = scripted((429, {"Retry-After": "3"}), (429, {"Retry-After": "999"}), 200)
    sleeps = []
    client = client_with(transport, sleeps, retry_after_cap=10)
    client.get_json("/v1/things")
    assert sleeps == [3.0, 10.0]


def test_gives_up_after_max_retries_with_a_typed_error():
    transport, calls = scripted(502, 502, 502)
    client = client_with(transport, [], max_retries=2)
    with pytest.raises(errors.SourceServerError) as info:
        client.get_json("/v1/things", params={"secret": "sk_live_x"})
    assert info.value.retryable and info.value.status_code == 502
    assert "sk_live_x" not in str(info.value)  # no query strings in messages
    assert len(calls) == 3


def test_4xx_is_not_retried():
    transport, calls = scripted(400)
    client = client_with(transport, [])
    with pytest.raises(errors.SourceClientError):
        client.get_json("/v1/things")
    assert len(calls) == 1


@pytest.mark.parametrize(("status", "kind"), [(401, errors.SourceAuthError),
                                              (404, errors.SourceNotFound)])
def test_status_maps_to_specific_error(status, kind):
    transport, _ = scripted(status)
    with pytest.raises(kind):
        client_with(transport, []).get_json("/x")


def test_post_without_idempotency_key_is_not_retried():
    transport, calls = scripted(500, 200)
    client = client_with(transport, [])
    with pytest.raises(errors.SourceServerError):
        client.request("POST", "/v1/things", data={"a": "1"})
    assert len(calls) == 1
    transport, calls = scripted(500, 200)
    client = client_with(transport, [])
    client.request("POST", "/v1/things", data={"a": "1"}, headers={"Idempotency-Key": "k1"})
    assert len(calls) == 2


def test_transport_errors_become_connect_errors():
    transport, _ = scripted(*[httpx.ReadError("dropped")] * 3)
    client = client_with(transport, [], max_retries=2)
    with pytest.raises(errors.SourceConnectError) as info:
        client.get_json("/x")
    assert isinstance(info.value.__cause__, httpx.ReadError)


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None


def test_token_bucket_paces_requests():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=1, clock=lambda: now[0])
    assert bucket.acquire() == 0.0
    import interchange.http as mod

    slept = []

    def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    original = mod.time.sleep
    mod.time.sleep = fake_sleep
    try:
        bucket.acquire()
    finally:
        mod.time.sleep = original
    assert slept == [pytest.approx(0.5)]


def test_resilient_transport_records_latency():
    transport, _ = scripted(200)
    t = ResilientTransport(source="s", inner=transport)
    with httpx.Client(transport=t, base_url="https://x.test") as c:
        c.get("/")
    assert t.stats.requests == 1 and t.stats.as_dict()["statuses"] == {"200": 1}
