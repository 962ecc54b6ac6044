"""The Stripe system API against real components: localstripe and OpenBao.

The secret key lives in a real OpenBao dev server and is read by
:class:`interchange.secrets.VaultSecrets`; requests go to a localstripe launched by the
test fixtures. A recording transport wraps the real network transport (it forwards
every request unchanged) so the tests can check what went over the wire.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from interchange import vaultdev
from interchange.errors import SourceAuthError
from interchange.secrets import VaultSecrets
from interchange.settings import SourceConfig
from sandboxes.stripe_seed import demo_dataset
from system_apis.stripe.client import stripe_client
from system_apis.stripe.streams import diff_fields, fingerprint, parse_record, read_stream


class RecordingTransport(httpx.BaseTransport):
    """The real HTTP transport, remembering each request's URL and Authorization header."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.sent: list[tuple[str, str | None, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.sent.append(
            (str(request.url), request.headers.get("Authorization"), response.status_code)
        )
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def vault_path(vault) -> str:
    """A fresh KV path holding a valid localstripe key."""
    path = f"interchange/sources/stripe-{uuid.uuid4().hex[:8]}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"api_key": "sk_test_" + uuid.uuid4().hex}})
    return path


@pytest.fixture
def secrets(vault) -> Iterator[VaultSecrets]:
    s = VaultSecrets(addr=vault.addr, token=vault.root_token, cache_ttl=300)
    try:
        yield s
    finally:
        s.close()


def make_config(url: str, vault_path: str) -> SourceConfig:
    return SourceConfig(
        name="stripe-it",
        base_url=url,
        vault_path=vault_path,
        rate_limit_per_second=1000,
        burst=100,
        max_retries=2,
        backoff_base_seconds=0.05,
    )


def create(http: httpx.Client, path: str, data: dict) -> dict:
    response = http.post(path, data=data)
    response.raise_for_status()
    return response.json()


def next_second() -> int:
    """Sleep into the next whole second and return it: later objects are strictly newer."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return int(time.time())


def all_ids(pages) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


# --------------------------------------------------------------------------- tests


def test_full_walk_returns_every_object_once_and_resumes_from_a_cursor(
    fresh_localstripe, vault_path, secrets
):
    url = fresh_localstripe.url
    dataset = demo_dataset(customers=250, seed=11)
    for payment in dataset["payments"]:
        payment.pop("description", None)  # localstripe's PaymentIntent takes no description
    seeded = fresh_localstripe.seed(dataset)
    customers = set(seeded["customers"].values())
    charges = {p["charge"] for p in seeded["payments"].values() if p["charge"]}
    refunds = set(seeded["refunds"].values())
    assert len(customers) == 250 and charges and refunds

    with stripe_client(make_config(url, vault_path), secrets=secrets) as client:
        pages = list(read_stream(client, "customers", mode="full", page_size=100))
        assert [len(p.records) for p in pages] == [100, 100, 50]
        assert [p.has_more for p in pages] == [True, True, False]
        ids = all_ids(pages)
        assert len(ids) == 250 and set(ids) == customers

        # the messy data set fits the source models, values as the source has them
        raws = {r["id"]: r for p in pages for r in p.records}
        for raw in raws.values():
            model = parse_record("customers", raw)
            assert model.email == raw["email"] and model.created == raw["created"]
        assert all(p.high_water and p.high_water <= int(time.time()) for p in pages)
        # the sandbox's field set is the same on every page: no drift to report
        field_sets = [fingerprint(p.records)[1] for p in pages]
        for other in field_sets[1:]:
            assert diff_fields(field_sets[0], other) == {"added": {}, "missing": {}, "retyped": {}}
        assert field_sets[0]["created"] == "integer" and field_sets[0]["id"] == "string"

        # resume after the first page, as a new process would: only the cursor string
        cursor = pages[0].cursor
        assert isinstance(cursor, str)
        rest = all_ids(read_stream(client, "customers", mode="full", cursor=cursor, page_size=100))
        assert rest == ids[100:]
        assert set(rest) == customers - set(ids[:100])

        for stream, expected in (("payments", charges), ("refunds", refunds)):
            got = all_ids(read_stream(client, stream, mode="full", page_size=37))
            assert len(got) == len(set(got)) and set(got) == expected, stream
            for p in read_stream(client, stream, page_size=100):
                for raw in p.records:
                    parse_record(stream, raw)


def test_incremental_returns_updated_and_deleted_customers(fresh_localstripe, vault_path, secrets):
    url = fresh_localstripe.url
    with fresh_localstripe.client(timeout=30) as http:
        customers = [
            create(http, "/v1/customers", {"email": f"c{i}@example.com"}) for i in range(30)
        ]
        since = next_second()
        updated = customers[7]["id"]
        gone = customers[12]["id"]
        http.post(f"/v1/customers/{updated}", data={"name": "  Renamed  "}).raise_for_status()
        http.delete(f"/v1/customers/{gone}").raise_for_status()
        new = create(http, "/v1/customers", {"email": "new@example.com"})["id"]

    with stripe_client(make_config(url, vault_path), secrets=secrets) as client:
        pages = list(read_stream(client, "customers", mode="incremental", since=since, page_size=2))
    records = {r["id"]: r for p in pages for r in p.records}
    assert set(records) == {updated, gone, new}
    assert records[updated]["name"] == "  Renamed  "  # current state, untrimmed
    assert records[gone] == {"id": gone, "object": "customer", "deleted": True}
    assert parse_record("customers", records[gone]).deleted is True
    assert pages[-1].has_more is False
    assert max(p.high_water or 0 for p in pages) >= since


def test_payments_and_refunds_incremental(fresh_localstripe, vault_path, secrets):
    url = fresh_localstripe.url
    with fresh_localstripe.client(timeout=30) as http:
        customer = create(http, "/v1/customers", {"email": "payer@example.com"})["id"]

        def charge(amount: int) -> dict:
            pm = create(
                http,
                "/v1/payment_methods",
                {
                    "type": "card",
                    "card[number]": "4242424242424242",
                    "card[exp_month]": "12",
                    "card[exp_year]": "2034",
                    "card[cvc]": "123",
                },
            )["id"]
            return create(
                http,
                "/v1/charges",
                {"amount": amount, "currency": "eur", "source": pm, "customer": customer},
            )

        old = charge(1000)
        create(http, "/v1/refunds", {"charge": old["id"], "amount": 100})
        since = next_second()
        new = charge(2500)
        refund = create(http, "/v1/refunds", {"charge": new["id"], "amount": 500})

    with stripe_client(make_config(url, vault_path), secrets=secrets) as client:
        payments = list(read_stream(client, "payments", mode="incremental", since=since))
        assert all_ids(payments) == [new["id"]]
        charge_model = parse_record("payments", payments[0].records[0])
        assert charge_model.amount == 2500 and charge_model.customer == customer
        assert sorted(all_ids(read_stream(client, "payments"))) == sorted([old["id"], new["id"]])

        refunds = list(read_stream(client, "refunds", mode="incremental", since=since))
        assert len(all_ids(refunds)) == 2 and refund["id"] in all_ids(refunds)  # full listing
        assert all(parse_record("refunds", r).currency == "eur" for p in refunds for r in p.records)


def test_key_rotation_rereads_vault_after_401(fresh_localstripe, vault, secrets):
    path = f"interchange/sources/stripe-rot-{uuid.uuid4().hex[:8]}"
    # localstripe only accepts keys starting with sk_: the old key is "revoked" there.
    old_key, new_key = "rk_test_revoked_" + uuid.uuid4().hex, "sk_test_rotated_" + uuid.uuid4().hex
    vaultdev.seed(vault.addr, vault.root_token, {path: {"api_key": old_key}})
    assert secrets.get(path, "api_key").get_secret_value() == old_key  # cached for 300 s
    vaultdev.seed(vault.addr, vault.root_token, {path: {"api_key": new_key}})  # rotation

    url = fresh_localstripe.url
    with fresh_localstripe.client(timeout=30) as http:
        cid = create(http, "/v1/customers", {"email": "rot@example.com"})["id"]

    transport = RecordingTransport()
    with stripe_client(make_config(url, path), secrets=secrets, transport=transport) as client:
        assert all_ids(read_stream(client, "customers")) == [cid]
        assert client.http.auth.rotations == 1
        assert [(auth, status) for _, auth, status in transport.sent] == [
            (f"Bearer {old_key}", 401),
            (f"Bearer {new_key}", 200),
        ]
        # later requests use the fresh key straight away
        list(read_stream(client, "refunds"))
        assert transport.sent[-1][1:] == (f"Bearer {new_key}", 200)
    for sent_url, _, _ in transport.sent:
        assert old_key not in sent_url and new_key not in sent_url


def test_revoked_key_without_rotation_is_an_auth_error_that_hides_the_key(
    fresh_localstripe, vault, secrets
):
    path = f"interchange/sources/stripe-bad-{uuid.uuid4().hex[:8]}"
    bad_key = "rk_test_revoked_" + uuid.uuid4().hex
    vaultdev.seed(vault.addr, vault.root_token, {path: {"api_key": bad_key}})
    transport = RecordingTransport()
    with stripe_client(
        make_config(fresh_localstripe.url, path), secrets=secrets, transport=transport
    ) as client:
        with pytest.raises(SourceAuthError) as info:
            list(read_stream(client, "customers"))
    assert info.value.status_code == 401
    assert bad_key not in str(info.value) and bad_key not in repr(info.value.args)
    assert len(transport.sent) == 1  # Vault still holds the same key: no pointless retry


def test_authorization_header_carries_the_key_and_no_url_does(
    fresh_localstripe, vault, vault_path, secrets
):
    key = secrets.get(vault_path, "api_key").get_secret_value()
    url = fresh_localstripe.url
    with fresh_localstripe.client(timeout=30) as http:
        for i in range(5):
            create(http, "/v1/customers", {"email": f"h{i}@example.com"})
    since = int(time.time()) - 60
    transport = RecordingTransport()
    with stripe_client(
        make_config(url, vault_path), secrets=secrets, transport=transport
    ) as client:
        for stream in ("customers", "payments", "refunds"):
            list(read_stream(client, stream, mode="full", page_size=2))
            list(read_stream(client, stream, mode="incremental", since=since, page_size=2))
    assert len(transport.sent) > 10
    for sent_url, auth, status in transport.sent:
        assert status == 200
        assert auth == f"Bearer {key}"
        assert key not in sent_url
    # Stripe's bracket notation on the wire: created[gte] on events, created[gt] on charges
    events = [u for u, _, _ in transport.sent if "/v1/events?" in u]
    charges = [u for u, _, _ in transport.sent if "/v1/charges?" in u and "created" in u]
    assert events and all(f"created%5Bgte%5D={since}" in u for u in events)
    assert charges and all(f"created%5Bgt%5D={since - 1}" in u for u in charges)
