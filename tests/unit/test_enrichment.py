"""CRM enrichment rules (process_apis.enrichment): property values and the diff, no I/O."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from interchange.errors import SourceAuthError
from interchange.settings import SourceConfig
from process_apis.enrichment import (
    LAST_ORDER_DATE,
    LTV,
    ORDER_COUNT,
    PROPERTY_DEFINITIONS,
    LastPush,
    Metrics,
    changes,
    contact_properties,
    content_hash,
    format_money,
    total,
)
from system_apis.hubspot.client import hubspot_client
from system_apis.hubspot.streams import ensure_properties


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (12345, "USD", "123.45"),
    (5, "EUR", "0.05"),
    (0, "USD", "0.00"),
    (-250, "USD", "-2.50"),
    (500, "JPY", "500"),
    (1234, "KWD", "1.234"),
])  # fmt: skip
def test_money_is_major_units_with_the_currency_exponent(minor, currency, text):
    assert format_money(minor, currency) == text


def test_properties_of_a_customer_in_the_reporting_currency():
    # placed late in the evening at UTC-5: already the next day in UTC
    last = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    m = Metrics("gld_1", "ann@example.com", order_count=3, last_order_at=last,
                net_minor=4999, payments=2)  # fmt: skip
    assert contact_properties(m, "USD") == {
        LTV: "49.99", ORDER_COUNT: "3", LAST_ORDER_DATE: "2026-03-02"}


def test_other_currency_clears_the_lifetime_value_but_keeps_the_orders():
    m = Metrics("gld_1", "ann@example.com", order_count=1,
                last_order_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC), net_minor=1000,
                other_currency=1, payments=2)  # fmt: skip
    assert contact_properties(m, "USD") == {
        LTV: "", ORDER_COUNT: "1", LAST_ORDER_DATE: "2026-01-05"}


def test_no_orders_no_payments():
    m = Metrics("gld_1", "ann@example.com")
    assert not m.active
    assert contact_properties(m, "EUR") == {LTV: "0.00", ORDER_COUNT: "0", LAST_ORDER_DATE: ""}
    assert Metrics("gld_2", None, payments=1).active
    assert Metrics("gld_3", None, order_count=1).active


DESIRED = {LTV: "10.00", ORDER_COUNT: "2", LAST_ORDER_DATE: "2026-02-01"}


def test_never_pushed_sends_everything():
    assert changes("a@x.io", DESIRED, None) == DESIRED


def test_same_values_send_nothing():
    assert changes("a@x.io", DESIRED, LastPush("a@x.io", dict(DESIRED))) == {}


def test_only_changed_properties_are_sent():
    before = LastPush("a@x.io", {**DESIRED, ORDER_COUNT: "1", LAST_ORDER_DATE: "2026-01-01"})
    assert changes("a@x.io", DESIRED, before) == {ORDER_COUNT: "2",
                                                  LAST_ORDER_DATE: "2026-02-01"}


def test_a_new_email_is_a_new_contact_so_everything_is_sent():
    assert changes("new@x.io", DESIRED, LastPush("a@x.io", dict(DESIRED))) == DESIRED


def test_a_property_missing_from_the_last_push_is_sent():
    before = LastPush("a@x.io", {LTV: "10.00", ORDER_COUNT: "2"})
    assert changes("a@x.io", DESIRED, before) == {LAST_ORDER_DATE: "2026-02-01"}


def test_hash_is_stable_and_covers_email_and_values():
    h = content_hash("a@x.io", DESIRED)
    assert h == content_hash("a@x.io", dict(reversed(list(DESIRED.items()))))
    assert h != content_hash("b@x.io", DESIRED)
    assert h != content_hash("a@x.io", {**DESIRED, LTV: "10.01"})


def test_total_adds_up_chunks():
    a = {"computed": 1000, "changed": 10, "pushed": 10, "batches": 1,
         "changed_properties": {LTV: 4, ORDER_COUNT: 10}, "error": None}
    b = {"computed": 5, "changed": 2, "pushed": 0, "failed": 2, "batches": 0,
         "changed_properties": {LTV: 2}, "error": "SourceServerError (500)"}
    out = total([a, b])
    assert (out["computed"], out["changed"], out["pushed"], out["failed"], out["batches"]) == (
        1005, 12, 10, 2, 1)
    assert out["changed_properties"] == {LTV: 6, ORDER_COUNT: 10}
    assert out["errors"] == ["SourceServerError (500)"]


# ------------------------------------------------- the properties (a wire case: MockTransport)


class _Secrets:
    def read(self, path: str) -> dict[str, SecretStr]:
        return {"access_token": SecretStr("pat-na1-unit-token")}

    def get(self, path: str, key: str) -> SecretStr:
        return self.read(path)[key]

    def write(self, path: str, values: dict[str, Any]) -> None:  # pragma: no cover
        raise AssertionError("a private-app token is never written back")

    def invalidate(self, path: str | None = None) -> None:
        pass


def test_ensure_properties_creates_the_missing_ones_and_accepts_409():
    existing = {ORDER_COUNT}
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/crm/v3/properties/contacts"
        assert request.headers["authorization"] == "Bearer pat-na1-unit-token"
        body = json.loads(request.content)
        bodies.append(body)
        if body["name"] in existing:
            return httpx.Response(409, json={"status": "error", "category": "CONFLICT",
                                             "message": "Property already exists"})
        existing.add(body["name"])
        return httpx.Response(201, json={**body, "createdAt": "2026-01-01T00:00:00Z"})

    config = SourceConfig(name="hubspot-unit", base_url="https://api.hubapi.test",
                          vault_path="interchange/sources/hubspot-unit", max_retries=0)
    with hubspot_client(config, secrets=_Secrets(), transport=httpx.MockTransport(handler)
                        ) as client:  # fmt: skip
        first = ensure_properties(client, PROPERTY_DEFINITIONS)
        again = ensure_properties(client, PROPERTY_DEFINITIONS)
    assert first == {"created": [LTV, LAST_ORDER_DATE], "existing": [ORDER_COUNT]}
    assert again == {"created": [], "existing": [LTV, ORDER_COUNT, LAST_ORDER_DATE]}
    by_name = {b["name"]: b for b in bodies}
    assert by_name[LAST_ORDER_DATE]["type"] == "date"
    assert by_name[LTV]["type"] == by_name[ORDER_COUNT]["type"] == "number"
    assert all(b["fieldType"] and b["groupName"] and b["label"] for b in bodies)


def test_ensure_properties_raises_other_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"status": "error", "category": "MISSING_SCOPES",
                                         "message": "needs crm.schemas.contacts.write"})

    config = SourceConfig(name="hubspot-unit", base_url="https://api.hubapi.test",
                          vault_path="interchange/sources/hubspot-unit", max_retries=0)
    with hubspot_client(config, secrets=_Secrets(), transport=httpx.MockTransport(handler)
                        ) as client, pytest.raises(SourceAuthError):  # fmt: skip
        ensure_properties(client, PROPERTY_DEFINITIONS)
