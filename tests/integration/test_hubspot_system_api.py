"""The HubSpot system API against real components: the HubSpot sandbox and OpenBao.

Credentials live in a real OpenBao dev server and are read (and, for a rotated OAuth
refresh token, written back) by :class:`interchange.secrets.VaultSecrets`; requests go to
the project's HubSpot-contract sandbox started by ``tests.fixtures.hubspot``. Run with
``-p tests.fixtures.hubspot`` until that plugin is listed in ``tests/conftest.py``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import hvac
import pytest

from interchange import vaultdev
from interchange.errors import SourceClientError
from interchange.secrets import VaultSecrets
from interchange.settings import SourceConfig
from system_apis.hubspot.auth import HubSpotOAuth, HubSpotPrivateAppAuth
from system_apis.hubspot.client import hubspot_client
from system_apis.hubspot.streams import (
    batch_upsert_contacts,
    diff_fields,
    fingerprint,
    parse_record,
    read_stream,
)


class RecordingTransport(httpx.BaseTransport):
    """The real HTTP transport, remembering each request's path, auth header and status."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.sent: list[tuple[str, str, str | None, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.sent.append((request.method, str(request.url),
                          request.headers.get("Authorization"), response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def secrets(vault) -> Iterator[VaultSecrets]:
    s = VaultSecrets(addr=vault.addr, token=vault.root_token, cache_ttl=300)
    try:
        yield s
    finally:
        s.close()


def seed_path(vault, values: dict[str, str]) -> str:
    path = f"interchange/sources/hubspot-{uuid.uuid4().hex[:8]}"
    vaultdev.seed(vault.addr, vault.root_token, {path: values})
    return path


def read_back(vault, path: str) -> dict[str, Any]:
    """The secret as stored in OpenBao now, read with hvac directly (no cache)."""
    client = hvac.Client(url=vault.addr, token=vault.root_token)
    return client.secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]


def private_path(vault, sandbox) -> str:
    return seed_path(vault, {"access_token": sandbox.token})


def oauth_path(vault, sandbox) -> str:
    return seed_path(vault, {"client_id": sandbox.client_id,
                             "client_secret": sandbox.client_secret,
                             "refresh_token": sandbox.refresh_token})


def make_config(url: str, vault_path: str, **overrides: Any) -> SourceConfig:
    options = {"requests_per_10_seconds": 1000, "search_requests_per_second": 4}
    options.update(overrides.pop("options", {}))
    values: dict[str, Any] = dict(
        name=f"hubspot-it-{uuid.uuid4().hex[:6]}", base_url=url, vault_path=vault_path,
        burst=20, max_retries=3, backoff_base_seconds=0.05, options=options,
    )
    values.update(overrides)
    return SourceConfig(**values)


def all_ids(pages) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


def snapshot(client, stream: str = "contacts") -> dict[str, Any]:
    return {r["id"]: (r["properties"], r["updatedAt"])
            for p in read_stream(client, stream) for r in p.records}


# --------------------------------------------------------------------------- tests


def test_full_walk_returns_every_object_exactly_once(hubspot_sandbox, vault, secrets):
    sandbox = hubspot_sandbox
    counts = sandbox.state()["counts"]
    path = private_path(vault, sandbox)
    with hubspot_client(make_config(sandbox.url, path), secrets=secrets) as client:
        assert isinstance(client.auth, HubSpotPrivateAppAuth)
        pages = list(read_stream(client, "contacts", mode="full", page_size=100))
        ids = all_ids(pages)
        assert len(ids) == len(set(ids)) == counts["contacts"] == 1000
        assert [p.has_more for p in pages] == [True] * 9 + [False]
        for raw in (r for p in pages for r in p.records):
            model = parse_record("contacts", raw)
            assert model.prop("email") == raw["properties"]["email"]  # as typed, untrimmed
        assert all(p.high_water and p.high_water < time.time() for p in pages)
        field_sets = [fingerprint(p.records)[1] for p in pages]
        assert "properties.email" in field_sets[0]
        assert all(not any(diff_fields(field_sets[0], f).values()) for f in field_sets[1:])

        rest = all_ids(read_stream(client, "contacts", cursor=pages[3].cursor))
        assert rest == ids[400:]

        companies = all_ids(read_stream(client, "companies", page_size=30))
        assert len(companies) == len(set(companies)) == counts["companies"]
        assert client.rate_limit["max"] > 0  # X-HubSpot-RateLimit-* seen


def test_incremental_after_batch_upsert_and_upsert_is_idempotent(
    fresh_hubspot_sandbox, vault, secrets
):
    sandbox = fresh_hubspot_sandbox
    path = private_path(vault, sandbox)
    with hubspot_client(make_config(sandbox.url, path), secrets=secrets) as client:
        existing = [r for r in next(read_stream(client, "contacts", page_size=30)).records
                    if r["properties"].get("email")][:20]
        since = int(time.time()) - 1
        contacts = [{"email": f"new{i}@Example.com", "firstname": f"New{i}",
                     "phone": f"+1 415 555 {i:04d}"} for i in range(130)]
        contacts += [{"email": r["properties"]["email"].strip().upper(),
                      "firstname": "Changed"} for r in existing]
        first = batch_upsert_contacts(client, contacts)
        assert first["batches"] == 2 and first["inputs"] == 150
        assert (first["created"], first["updated"], first["errors"]) == (130, 20, [])
        assert sandbox.state()["counts"]["contacts"] == 250 + 130

        changed = list(read_stream(client, "contacts", mode="incremental", since=since,
                                   page_size=40))
        got = all_ids(changed)
        assert Counter(got) == Counter(first["ids"].values())
        assert {r["id"] for r in existing} <= set(got)
        assert changed[-1].has_more is False
        assert max(p.high_water for p in changed) >= since

        before = snapshot(client)
        again = batch_upsert_contacts(client, contacts)
        assert (again["created"], again["updated"]) == (0, 150)
        assert again["ids"] == first["ids"]
        assert snapshot(client) == before  # nothing changed, not even lastmodifieddate
        assert sandbox.state()["counts"]["contacts"] == 380


def test_oauth_refresh_rotates_and_writes_the_refresh_token_back_to_vault(
    fresh_hubspot_sandbox, vault, secrets
):
    sandbox = fresh_hubspot_sandbox
    path = oauth_path(vault, sandbox)
    transport = RecordingTransport()
    with hubspot_client(make_config(sandbox.url, path), secrets=secrets,
                        transport=transport) as client:
        assert isinstance(client.auth, HubSpotOAuth)
        assert len(all_ids(read_stream(client, "companies"))) == 25
        stored = read_back(vault, path)
        assert stored["client_id"] == sandbox.client_id
        assert stored["client_secret"] == sandbox.client_secret
        assert stored["refresh_token"] != sandbox.refresh_token  # rotated, written back
        assert client.auth.refreshes == 1 and client.auth.rotations == 1
        assert [(m, u.split("?")[0].removeprefix(sandbox.url), s)
                for m, u, _, s in transport.sent[:2]] == [
            ("POST", "/oauth/v1/token", 200), ("GET", "/crm/v3/objects/companies", 200)]
        for text in (repr(client.auth), repr(secrets)):
            assert stored["refresh_token"] not in text
    # the old refresh token is dead; a new process starts from what Vault holds now
    dead = httpx.post(f"{sandbox.url}/oauth/v1/token", data={
        "grant_type": "refresh_token", "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret, "refresh_token": sandbox.refresh_token})
    assert dead.status_code == 400 and dead.json()["status"] == "BAD_REFRESH_TOKEN"
    fresh_secrets = VaultSecrets(addr=vault.addr, token=vault.root_token)
    try:
        with hubspot_client(make_config(sandbox.url, path), secrets=fresh_secrets) as client:
            assert len(all_ids(read_stream(client, "contacts"))) == 250
    finally:
        fresh_secrets.close()
    assert read_back(vault, path)["refresh_token"] != stored["refresh_token"]
    for _, url, _, _ in transport.sent:
        assert stored["refresh_token"] not in url


def test_access_token_expiring_mid_paging(fresh_hubspot_sandbox, vault, secrets):
    sandbox = fresh_hubspot_sandbox
    path = oauth_path(vault, sandbox)
    transport = RecordingTransport()
    config = make_config(sandbox.url, path, options={"token_margin_seconds": 0})
    with hubspot_client(config, secrets=secrets, transport=transport) as client:
        # 1) the sandbox revokes every access token between two pages: 401, refresh, go on
        ids = []
        for n, page in enumerate(read_stream(client, "contacts", page_size=20)):
            ids += [r["id"] for r in page.records]
            if n == 3:
                assert sandbox.expire_tokens()["expired"] >= 1
        assert len(ids) == len(set(ids)) == 250
        assert client.auth.refreshes == 2
        assert sum(1 for _, _, _, s in transport.sent if s == 401) == 1

        # 2) short-lived tokens (the lifetime knob): refreshed as they run out, mid-search
        sandbox.configure(token_lifetime_seconds=1, latency_ms=60)
        client.auth.margin = 0.3
        sandbox.expire_tokens()
        pages = list(read_stream(client, "contacts", mode="incremental", since=0,
                                 page_size=20))
        assert Counter(all_ids(pages)) == Counter(ids)
        assert client.auth.refreshes >= 4
    final = read_back(vault, path)["refresh_token"]
    assert final not in (sandbox.refresh_token,)
    ok = httpx.post(f"{sandbox.url}/oauth/v1/token", data={
        "grant_type": "refresh_token", "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret, "refresh_token": final})
    assert ok.status_code == 200  # Vault holds the live refresh token


def test_429_storm_gives_exact_counts(fresh_hubspot_sandbox, vault, secrets):
    sandbox = fresh_hubspot_sandbox
    path = private_path(vault, sandbox)
    sandbox.configure(rate_429=0.5)
    config = make_config(sandbox.url, path, max_retries=25, retry_after_cap_seconds=0.02,
                         backoff_base_seconds=0.01)
    with hubspot_client(config, secrets=secrets) as client:
        full_pages = list(read_stream(client, "contacts", page_size=25))
        full = all_ids(full_pages)
        assert len(full) == len(set(full)) == 250
        incremental_pages = list(read_stream(client, "contacts", mode="incremental", since=0,
                                             page_size=50))
        assert Counter(all_ids(incremental_pages)) == Counter(full)
        stats = client.stats
        assert stats.statuses["429"] >= 1
        assert stats.retries == stats.statuses["429"] == stats.retry_reasons["429"]
        assert stats.requests == stats.statuses["200"] + stats.statuses["429"]
        assert stats.statuses["200"] == len(full_pages) + len(incremental_pages)


def test_incremental_past_the_search_cap_reads_every_record_once(
    hubspot_sandbox_factory, vault, secrets
):
    sandbox = hubspot_sandbox_factory(records=10_500, knobs={"search_rate_per_second": 200})
    path = private_path(vault, sandbox)
    config = make_config(sandbox.url, path, options={"search_requests_per_second": 100})
    transport = RecordingTransport()
    with hubspot_client(config, secrets=secrets, transport=transport) as client:
        pages = list(read_stream(client, "contacts", mode="incremental", since=0,
                                 page_size=200))
    ids = all_ids(pages)
    assert len(ids) == len(set(ids)) == 10_500  # more than one query may return
    assert all(s == 200 for *_, s in transport.sent)
    assert len(transport.sent) <= 10_500 // 199 + 2


def test_schema_drift_and_hubspot_errors(fresh_hubspot_sandbox, vault, secrets):
    sandbox = fresh_hubspot_sandbox
    path = private_path(vault, sandbox)
    with hubspot_client(make_config(sandbox.url, path), secrets=secrets) as client:
        before = fingerprint(next(read_stream(client, "contacts", page_size=50)).records)
        sandbox.configure(drift_rename={"firstname": "first_name"}, drift_remove=["country"],
                          drift_retype={"phone": "array"})
        page = next(read_stream(client, "contacts", page_size=50))
        after = fingerprint(page.records)
        assert before[0] != after[0]
        diff = diff_fields(before[1], after[1])
        assert "properties.first_name" in diff["added"]
        assert {"properties.firstname", "properties.country"} <= set(diff["missing"])
        assert diff["retyped"]["properties.phone"] == {"old": "string", "new": "array"}
        for raw in page.records:  # unknown and retyped properties are kept, not fatal
            assert parse_record("contacts", raw).id == raw["id"]

        with pytest.raises(SourceClientError) as info:
            client.request("POST", "/crm/v3/objects/contacts/search", json={"limit": 500})
    exc = info.value
    assert exc.status_code == 400 and exc.category == "VALIDATION_ERROR"
    assert exc.correlation_id and exc.correlation_id in str(exc)
    assert "limit must be between 1 and 200" in str(exc)
    assert sandbox.token not in str(exc) and sandbox.token not in exc.body
