"""The HubSpot sandbox against its contract: the official SDK unchanged, plus raw HTTP for
the wire details (401 body, rate limits, the search cap, drift, seeding at volume)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest
from hubspot import Client
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import NotFoundException

if TYPE_CHECKING:  # the plugin is loaded by tests/conftest.py, not imported
    from tests.fixtures.hubspot import HubSpotSandbox


def sdk(sandbox: HubSpotSandbox, token: str | None = None) -> Client:
    return Client.create(access_token=token or sandbox.token, host=sandbox.url)


def test_sdk_list_paging_walks_every_contact_once(fresh_hubspot_sandbox: HubSpotSandbox) -> None:
    api = sdk(fresh_hubspot_sandbox).crm.contacts.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = api.get_page(limit=100, after=after, properties=["email", "phone", "country"])
        pages += 1
        seen.extend(c.id for c in page.results)
        assert all("email" in c.properties and "hs_object_id" in c.properties for c in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    # and the SDK's own paging helper agrees
    assert len(sdk(fresh_hubspot_sandbox).crm.contacts.get_all(properties=["email"])) == 250


def test_sdk_get_by_id_and_404(hubspot_sandbox: HubSpotSandbox) -> None:
    api = sdk(hubspot_sandbox).crm.contacts.basic_api
    contact = api.get_by_id("7", properties=["email", "lifecyclestage"])
    assert contact.id == "7"
    assert contact.properties["hs_object_id"] == "7"
    assert contact.created_at.tzinfo is not None
    with pytest.raises(NotFoundException) as excinfo:
        api.get_by_id("99999999")
    assert '"category":"OBJECT_NOT_FOUND"' in excinfo.value.body.replace(" ", "")


def test_sdk_search_gte_last_modified_sorted(hubspot_sandbox: HubSpotSandbox) -> None:
    client = sdk(hubspot_sandbox)
    everything = client.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(limit=1)
    )
    assert everything.total == 1000
    since = "2025-08-01T00:00:00.000Z"
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[
            Filter(property_name="hs_lastmodifieddate", operator="GTE", value=since)
        ])],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email", "hs_lastmodifieddate"],
        limit=200,
    )  # fmt: skip
    found = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert 0 < found.total < 1000
    stamps = [c.properties["hs_lastmodifieddate"] for c in found.results]
    assert stamps == sorted(stamps) and stamps[0] >= since
    # epoch milliseconds work as the filter value too, and DESC reverses
    request.filter_groups[0].filters[0].value = "1753999200000"  # 2025-07-31T22:00Z
    request.sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}]
    desc = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert desc.total >= found.total
    desc_stamps = [c.properties["hs_lastmodifieddate"] for c in desc.results]
    assert desc_stamps == sorted(desc_stamps, reverse=True)


def test_sdk_batch_upsert_by_email_is_idempotent(fresh_hubspot_sandbox: HubSpotSandbox) -> None:
    client = sdk(fresh_hubspot_sandbox)
    batch = client.crm.contacts.batch_api

    def upsert(props: dict[str, str]):
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id_property="email", id=f"new.person{i}@example.com", properties=props
            )
            for i in range(3)
        ]
        body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
        return batch.upsert(batch_input_simple_public_object_batch_input_upsert=body)

    created = upsert({"firstname": "New", "lifecyclestage": "lead"})
    assert created.status == "COMPLETE"
    assert [r.new for r in created.results] == [True, True, True]
    ids = sorted(r.id for r in created.results)
    assert fresh_hubspot_sandbox.state()["counts"]["contacts"] == 253

    updated = upsert({"firstname": "New", "lifecyclestage": "customer"})
    assert [r.new for r in updated.results] == [False, False, False]
    assert sorted(r.id for r in updated.results) == ids
    assert all(r.updated_at > r.created_at for r in updated.results)
    again = upsert({"firstname": "New", "lifecyclestage": "customer"})
    assert [r.updated_at for r in again.results] == [r.updated_at for r in updated.results]
    assert fresh_hubspot_sandbox.state()["counts"]["contacts"] == 253
    contact = client.crm.contacts.basic_api.get_by_id(ids[0], properties=["lifecyclestage"])
    assert contact.properties["lifecyclestage"] == "customer"

    # existing contacts match by e-mail case-insensitively, ignoring stray spaces
    first = client.crm.contacts.basic_api.get_by_id("1", properties=["email"])
    inputs = [SimplePublicObjectBatchInputUpsert(
        id_property="email", id=f"  {first.properties['email'].strip().swapcase()} ",
        properties={"phone": "+1 415 555 0100"})]  # fmt: skip
    result = batch.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
    assert result.results[0].id == "1" and result.results[0].new is False

    too_many = {"inputs": [{"idProperty": "email", "id": f"x{i}@example.com", "properties": {}}
                           for i in range(101)]}  # fmt: skip
    with fresh_hubspot_sandbox.client() as http:
        response = http.post("/crm/v3/objects/contacts/batch/upsert", json=too_many)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_sdk_oauth_refresh_rotates_and_access_tokens_expire(
    hubspot_sandbox_factory: Callable[..., HubSpotSandbox],
) -> None:
    sandbox = hubspot_sandbox_factory(records=20, knobs={"token_lifetime_seconds": 1})
    tokens_api = Client.create(host=sandbox.url).oauth.tokens_api
    first = tokens_api.create(grant_type="refresh_token", client_id=sandbox.client_id,
                              client_secret=sandbox.client_secret,
                              refresh_token=sandbox.refresh_token)  # fmt: skip
    assert first.token_type == "bearer" and first.expires_in == 1
    assert first.refresh_token != sandbox.refresh_token
    page = sdk(sandbox, first.access_token).crm.contacts.basic_api.get_page(limit=5)
    assert len(page.results) == 5

    second = tokens_api.create(grant_type="refresh_token", client_id=sandbox.client_id,
                               client_secret=sandbox.client_secret,
                               refresh_token=first.refresh_token)  # fmt: skip
    assert second.refresh_token not in (first.refresh_token, sandbox.refresh_token)

    form = {
        "grant_type": "refresh_token",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": first.refresh_token,
    }
    reused = httpx.post(f"{sandbox.url}/oauth/v1/token", data=form)
    assert reused.status_code == 400 and reused.json()["status"] == "BAD_REFRESH_TOKEN"

    time.sleep(1.1)
    expired = httpx.get(f"{sandbox.url}/crm/v3/objects/contacts",
                        headers={"Authorization": f"Bearer {first.access_token}"})  # fmt: skip
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_401_has_hubspot_error_body(hubspot_sandbox: HubSpotSandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{hubspot_sandbox.url}/crm/v3/objects/contacts", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == "error"
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"] and body["correlationId"]


def test_429_after_the_ten_second_limit(
    hubspot_sandbox_factory: Callable[..., HubSpotSandbox],
) -> None:
    sandbox = hubspot_sandbox_factory(records=10, knobs={"rate_limit_per_10s": 5,
                                                          "search_rate_per_second": 2})  # fmt: skip
    with sandbox.client() as http:
        remaining = []
        for _ in range(5):
            ok = http.get("/crm/v3/objects/contacts")
            assert ok.status_code == 200
            assert ok.headers["X-HubSpot-RateLimit-Max"] == "5"
            assert ok.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            remaining.append(int(ok.headers["X-HubSpot-RateLimit-Remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        limited = http.get("/crm/v3/objects/contacts")
        assert limited.status_code == 429
        assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        body = limited.json()
        assert body["status"] == "error" and body["category"] == "RATE_LIMITS"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["correlationId"]

        # the search limit is separate and per second
        codes = [http.post("/crm/v3/objects/contacts/search", json={}).status_code
                 for _ in range(3)]  # fmt: skip
        assert codes == [200, 200, 429]

        # random 429s and 500s by knob
        sandbox.configure(rate_limit_per_10s=1000, rate_429=1.0)
        assert http.get("/crm/v3/objects/contacts").status_code == 429
        sandbox.configure(rate_429=0.0, error_rate=1.0)
        failed = http.get("/crm/v3/objects/contacts")
        assert failed.status_code == 500 and failed.json()["status"] == "error"


def test_search_past_ten_thousand_is_400(
    hubspot_sandbox_factory: Callable[..., HubSpotSandbox],
) -> None:
    sandbox = hubspot_sandbox_factory(records=10_500, knobs={"search_rate_per_second": 100})
    with sandbox.client() as http:
        last = http.post("/crm/v3/objects/contacts/search", json={"limit": 200, "after": "9800"})
        assert last.status_code == 200
        assert last.json()["total"] == 10_500
        assert last.json()["paging"]["next"]["after"] == "10000"
        past = http.post("/crm/v3/objects/contacts/search", json={"limit": 100, "after": "10000"})
        assert past.status_code == 400
        assert past.json()["category"] == "VALIDATION_ERROR"
        assert http.post("/crm/v3/objects/contacts/search", json={"limit": 201}).status_code == 400


def test_drift_knobs_change_the_property_set(fresh_hubspot_sandbox: HubSpotSandbox) -> None:
    props = {"properties": "email,phone,lifecyclestage"}
    with fresh_hubspot_sandbox.client() as http:
        before = http.get("/crm/v3/objects/contacts/1", params=props).json()["properties"]
        assert {"phone", "lifecyclestage"} <= before.keys()
        fresh_hubspot_sandbox.configure(
            drift_rename={"phone": "phone_number"},
            drift_remove=["lifecyclestage"],
            drift_retype={"hs_object_id": "number"},
        )
        after = http.get("/crm/v3/objects/contacts/1", params=props).json()["properties"]
        company = http.get("/crm/v3/objects/companies", params={"limit": 1}).json()
    assert "phone" not in after and "lifecyclestage" not in after
    assert after["phone_number"] == before["phone"]
    assert after["hs_object_id"] == 1 and before["hs_object_id"] == "1"
    assert isinstance(company["results"][0]["properties"]["hs_object_id"], int)


def test_seed_data_is_messy_and_counted(fresh_hubspot_sandbox: HubSpotSandbox) -> None:
    with fresh_hubspot_sandbox.client() as http:
        params = {"limit": 100, "properties": "email,phone,country"}
        page = http.get("/crm/v3/objects/contacts", params=params).json()
    emails = [c["properties"]["email"] for c in page["results"]]
    assert any(e != e.strip() for e in emails) or any(e != e.lower() for e in emails)
    phones = [c["properties"]["phone"] for c in page["results"]]
    assert None in phones and any(p and "(" in p for p in phones)
    expected = fresh_hubspot_sandbox.state()["expected"]
    assert expected["contacts"] == 250 and expected["companies"] == 25


def test_seeding_100k_takes_seconds(fresh_hubspot_sandbox: HubSpotSandbox) -> None:
    started = time.perf_counter()
    result = fresh_hubspot_sandbox.seed(100_000)
    elapsed = time.perf_counter() - started
    print(f"\nseeded 100,000 contacts + 10,000 companies in {elapsed:.2f}s "
          f"(server-side {result['seconds']:.2f}s)")  # fmt: skip
    assert elapsed < 20
    assert fresh_hubspot_sandbox.state()["counts"] == {"contacts": 100_000, "companies": 10_000}
    with fresh_hubspot_sandbox.client() as http:
        started = time.perf_counter()
        page = http.get("/crm/v3/objects/contacts", params={"limit": 100, "after": "99000"})
        search = http.post("/crm/v3/objects/contacts/search", json={
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate",
                                           "operator": "GTE", "value": "1756684800000"}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "limit": 200})  # fmt: skip
        elapsed = time.perf_counter() - started
    assert page.status_code == search.status_code == 200
    assert len(page.json()["results"]) == 100
    print(f"list page + search at 100k: {elapsed * 1000:.0f} ms")
    assert elapsed < 2
