"""Per-stream incremental strategy overrides (sources.yaml options.incremental)."""

import time

import httpx
import pytest

from interchange.errors import ConfigError
from interchange.http import build_client
from system_apis.stripe.streams import read_stream

SINCE = int(time.time()) - 3600  # within Stripe's 30-day event retention


def client_for(handler):
    return build_client(source="stripe", base_url="https://api.stripe.test",
                        transport=httpx.MockTransport(handler), rate_limit_per_second=None)


def test_payments_by_events_refetch_changed_charges():
    seen = []

    def handler(request):
        seen.append((request.url.path, dict(request.url.params)))
        if request.url.path == "/v1/events":
            charge = {"id": "ch_1", "object": "charge"}
            other = {"id": "cus_1", "object": "customer"}
            return httpx.Response(200, json={"object": "list", "has_more": False, "data": [
                {"id": "evt_1", "object": "event", "type": "charge.refunded", "created": SINCE,
                 "data": {"object": charge}},
                {"id": "evt_2", "object": "event", "type": "customer.updated",
                 "created": SINCE + 1, "data": {"object": other}},
            ]})
        assert request.url.path == "/v1/charges/ch_1"
        return httpx.Response(200, json={"id": "ch_1", "object": "charge", "amount": 5,
                                         "currency": "usd", "created": SINCE,
                                         "status": "succeeded", "refunded": True})

    pages = list(read_stream(client_for(handler), "payments", mode="incremental",
                             since=SINCE, strategy="events"))
    assert [r["id"] for p in pages for r in p.records] == ["ch_1"]
    assert pages[-1].high_water == SINCE + 1
    assert seen[0] == ("/v1/events", {"created[gte]": str(SINCE), "limit": "100"})


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown incremental strategy"):
        read_stream(client_for(lambda r: httpx.Response(500)), "payments",
                    mode="incremental", since=SINCE, strategy="psychic")
