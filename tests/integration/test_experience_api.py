"""The experience API over a real hub database: auth, problems, pagination, filters, OpenAPI.

One migrated SQLite file per module with canonical rows inserted directly; the core
scenario also runs against PostgreSQL (``-m postgres``).
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from fastapi.testclient import TestClient

from experience_apis.http.app import create_app
from experience_apis.http.keys import ApiKey, create_key, revoke_key
from interchange.store import get_engine, migrate, session_scope
from process_apis.canonical.models import Customer, Payment

N_CUSTOMERS = 257
N_PAYMENTS = 7
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PROBLEM = "application/problem+json"


@dataclass
class Hub:
    url: str
    client: TestClient
    full_key: str = ""
    customers_key: str = ""
    payments_key: str = ""
    revoked_key: str = ""
    customer_ids: list[str] = field(default_factory=list)  # sorted, as the API orders them
    payer_id: str = ""
    payment_ids: list[str] = field(default_factory=list)  # sorted
    no_payments_id: str = ""

    def get(self, path: str, key: str | None = None, **params):
        headers = {"X-API-Key": key} if key else {}
        return self.client.get(path, headers=headers, params=params or None)


def seed(url: str) -> dict:
    """Migrate ``url`` and fill it with customers, payments and keys."""
    migrate(url)
    out: dict = {}
    with session_scope(url) as s:
        customers = [
            Customer(
                source="test",
                source_id=f"c{i:03d}",
                email=f"user{i:03d}@example.com",
                name=f"Customer {i}",
                country="DE",
                source_created_at=BASE - dt.timedelta(days=1),
                created_at=BASE,
                updated_at=BASE + dt.timedelta(hours=i),
                content_hash="x" * 64,
            )
            for i in range(N_CUSTOMERS)
        ]
        s.add_all(customers)
        payer, no_payments = customers[3], customers[4]
        payments = [
            Payment(
                source="test",
                source_id=f"p{j}",
                kind="payment" if j % 3 else "refund",
                customer_id=payer.id,
                amount_minor=1000 + j,
                currency="EUR",
                status="succeeded",
                occurred_at=BASE + dt.timedelta(minutes=j),
            )
            for j in range(N_PAYMENTS)
        ]
        # Another customer's payment must never leak into the payer's list.
        payments.append(
            Payment(
                source="test",
                source_id="other",
                kind="payment",
                customer_id=customers[5].id,
                amount_minor=1,
                currency="USD",
                status="succeeded",
            )
        )
        s.add_all(payments)
        _, out["full_key"] = create_key(s, name="full", scopes=["customers:read", "payments:read"])
        _, out["customers_key"] = create_key(s, name="customers-only", scopes="customers:read")
        _, out["payments_key"] = create_key(s, name="payments-only", scopes="payments:read")
        _, out["revoked_key"] = create_key(s, name="revoked", scopes="customers:read")
        revoke_key(s, name="revoked")
        out["customer_ids"] = sorted(c.id for c in customers)
        out["payer_id"] = payer.id
        out["payment_ids"] = sorted(p.id for p in payments[:N_PAYMENTS])
        out["no_payments_id"] = no_payments.id
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hub') / 'hub.db'}"
    data = seed(url)
    with TestClient(create_app(database_url=url)) as client:
        yield Hub(url=url, client=client, **data)
    get_engine(url).dispose()


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["type"] == f"https://interchange.dev/problems/{code}"
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    return body


def invalid_names(resp) -> set[str]:
    body = assert_problem(resp, 422, "invalid_parameters")
    for err in body["errors"]:
        assert err["in"] == "query" and err["reason"]
    return {e["name"] for e in body["errors"]}


def walk(hub: Hub, path: str, key: str, **params) -> tuple[list[dict], int]:
    """Follow next_cursor to the end; returns every item and the number of pages."""
    items: list[dict] = []
    pages, cursor = 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        resp = hub.get(path, key, **query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        items.extend(body["data"])
        assert body["has_more"] is (body["next_cursor"] is not None)
        if not body["has_more"]:
            return items, pages
        cursor = body["next_cursor"]
        assert pages < 100


def core_scenario(hub: Hub) -> None:
    """The behaviour that must hold on every database backend."""
    assert_problem(hub.get("/v1/customers"), 401, "unauthorized")
    assert_problem(hub.get("/v1/customers", hub.revoked_key), 401, "unauthorized")
    assert_problem(
        hub.get(f"/v1/customers/{hub.payer_id}/payments", hub.customers_key), 403, "forbidden"
    )
    assert_problem(hub.get("/v1/customers/cus_nope", hub.full_key), 404, "not_found")
    assert invalid_names(hub.get("/v1/customers", hub.full_key, cursor="!!!")) == {"cursor"}

    items, pages = walk(hub, "/v1/customers", hub.full_key, limit=50)
    assert [c["id"] for c in items] == hub.customer_ids
    assert pages == 6

    found = hub.get("/v1/customers", hub.full_key, email="  USER007@Example.COM ").json()
    assert [c["source_id"] for c in found["data"]] == ["c007"]

    since = (BASE + dt.timedelta(hours=250)).isoformat()
    recent, _ = walk(hub, "/v1/customers", hub.full_key, updated_since=since, limit=3)
    assert sorted(c["source_id"] for c in recent) == [f"c{i}" for i in range(250, 257)]

    payments, _ = walk(hub, f"/v1/customers/{hub.payer_id}/payments", hub.full_key, limit=3)
    assert [p["id"] for p in payments] == hub.payment_ids


def test_core_scenario_sqlite(hub: Hub) -> None:
    core_scenario(hub)


# -- authentication ----------------------------------------------------------------------


def test_no_key_is_401_problem(hub: Hub) -> None:
    resp = hub.get("/v1/customers")
    body = assert_problem(resp, 401, "unauthorized")
    assert body["instance"] == "/v1/customers"
    assert "X-API-Key" in body["detail"]
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "bad_key",
    [
        "not-a-key",
        "ick_000000000000_" + "A" * 40,  # well-formed, unknown prefix
        "ick__",
        "ick_" + "f" * 40 + "_x",  # prefix longer than any stored one
    ],
)
def test_bad_key_is_401_problem(hub: Hub, bad_key: str) -> None:
    assert_problem(hub.get("/v1/customers", bad_key), 401, "unauthorized")


def test_right_prefix_wrong_secret_is_401(hub: Hub) -> None:
    prefix = hub.full_key.rsplit("_", 1)[0]
    assert_problem(hub.get("/v1/customers", prefix + "_" + "B" * 40), 401, "unauthorized")


def test_revoked_key_is_401_problem(hub: Hub) -> None:
    body = assert_problem(hub.get("/v1/customers", hub.revoked_key), 401, "unauthorized")
    assert "revoked" in body["detail"]


def test_bearer_header_is_accepted(hub: Hub) -> None:
    resp = hub.client.get(
        "/v1/customers", headers={"Authorization": f"Bearer {hub.full_key}"}, params={"limit": 1}
    )
    assert resp.status_code == 200, resp.text
    bad = hub.client.get("/v1/customers", headers={"Authorization": "Bearer nope"})
    assert_problem(bad, 401, "unauthorized")


def test_missing_scope_is_403_problem(hub: Hub) -> None:
    body = assert_problem(
        hub.get(f"/v1/customers/{hub.payer_id}/payments", hub.customers_key), 403, "forbidden"
    )
    assert "payments:read" in body["detail"]
    body = assert_problem(hub.get("/v1/customers", hub.payments_key), 403, "forbidden")
    assert "customers:read" in body["detail"]
    # payments:read alone is enough for the payments sub-resource
    assert hub.get(f"/v1/customers/{hub.payer_id}/payments", hub.payments_key).status_code == 200


def test_auth_is_checked_before_parameters(hub: Hub) -> None:
    assert_problem(hub.get("/v1/customers", limit=0), 401, "unauthorized")


def test_use_is_recorded(hub: Hub) -> None:
    hub.get("/v1/customers", hub.full_key, limit=1)
    with session_scope(hub.url) as s:
        from sqlmodel import select

        key = s.exec(select(ApiKey).where(ApiKey.name == "full")).one()
        assert key.last_used_at is not None
        assert hub.full_key not in (key.key_hash, key.prefix)


# -- problems ------------------------------------------------------------------------------


def test_unknown_customer_is_404_problem(hub: Hub) -> None:
    body = assert_problem(hub.get("/v1/customers/cus_unknown", hub.full_key), 404, "not_found")
    assert body["instance"] == "/v1/customers/cus_unknown"
    assert "cus_unknown" in body["detail"]
    assert_problem(hub.get("/v1/customers/cus_unknown/payments", hub.full_key), 404, "not_found")


def test_unknown_path_and_method_are_problems(hub: Hub) -> None:
    assert_problem(hub.get("/v2/nothing"), 404, "not_found")
    resp = hub.client.post("/v1/customers", headers={"X-API-Key": hub.full_key})
    assert_problem(resp, 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": 0}, {"limit"}),
        ({"limit": 201}, {"limit"}),
        ({"limit": "ten"}, {"limit"}),
        ({"updated_since": "2024-01-01T00:00:00"}, {"updated_since"}),  # naive: rejected
        ({"updated_since": "last tuesday"}, {"updated_since"}),
        ({"cursor": "!!!"}, {"cursor"}),
        ({"cursor": "_w"}, {"cursor"}),  # valid base64, not UTF-8
        ({"cursor": "AA"}, {"cursor"}),  # decodes to a control character
        ({"limit": 0, "cursor": "%%%", "updated_since": "x"}, {"limit", "cursor", "updated_since"}),
    ],
)
def test_bad_parameters_are_422_problems_naming_each(hub: Hub, params: dict, names: set) -> None:
    resp = hub.get("/v1/customers", hub.full_key, **params)
    assert invalid_names(resp) == names
    for name in names:
        assert name in resp.json()["detail"]


def test_bad_cursor_on_payments_is_422(hub: Hub) -> None:
    resp = hub.get(f"/v1/customers/{hub.payer_id}/payments", hub.full_key, cursor="***")
    assert invalid_names(resp) == {"cursor"}


def test_internal_errors_do_not_leak(hub: Hub) -> None:
    app = create_app(database_url=hub.url)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/boom")
    body = assert_problem(resp, 500, "internal")
    assert "hunter2" not in resp.text and "secret" not in resp.text
    assert "Error id" in body["detail"]


def test_unmigrated_database_is_503_without_details(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(database_url=url)) as client:
        resp = client.get("/v1/customers", headers={"X-API-Key": "ick_abc_def"})
    assert_problem(resp, 503, "unavailable")
    assert "api_keys" not in resp.text and "sqlite" not in resp.text.lower()
    assert resp.headers["retry-after"]
    get_engine(url).dispose()


# -- customers -----------------------------------------------------------------------------


def test_pagination_walks_every_customer_once_in_order(hub: Hub) -> None:
    items, pages = walk(hub, "/v1/customers", hub.full_key, limit=50)
    ids = [c["id"] for c in items]
    assert len(ids) == N_CUSTOMERS == len(set(ids))
    assert ids == hub.customer_ids
    assert pages == 6  # 5 full pages and 7 on the last


def test_page_sizes(hub: Hub) -> None:
    body = hub.get("/v1/customers", hub.full_key).json()
    assert len(body["data"]) == 50 and body["has_more"]
    body = hub.get("/v1/customers", hub.full_key, limit=200).json()
    assert len(body["data"]) == 200 and body["has_more"]
    # A cursor to the second-to-last id: the last page holds one row and ends the walk.
    cursor = base64.urlsafe_b64encode(hub.customer_ids[-2].encode()).decode().rstrip("=")
    tail = hub.get("/v1/customers", hub.full_key, cursor=cursor, limit=1).json()
    assert [c["id"] for c in tail["data"]] == [hub.customer_ids[-1]]
    assert tail["has_more"] is False and tail["next_cursor"] is None
    # A page that ends exactly on the last row does not promise another (empty) page.
    cursor = base64.urlsafe_b64encode(hub.customer_ids[-3].encode()).decode().rstrip("=")
    exact = hub.get("/v1/customers", hub.full_key, cursor=cursor, limit=2).json()
    assert len(exact["data"]) == 2 and exact["has_more"] is False


def test_customer_representation(hub: Hub) -> None:
    body = hub.get(f"/v1/customers/{hub.payer_id}", hub.full_key).json()
    assert body["id"] == hub.payer_id
    assert body["email"] == "user003@example.com"
    assert body["updated_at"] == "2024-01-01T03:00:00Z"
    assert body["created_at"] == "2024-01-01T00:00:00Z"
    assert body["source_created_at"] == "2023-12-31T00:00:00Z"
    assert body["deleted"] is False
    assert "content_hash" not in body


@pytest.mark.parametrize(
    "email", ["user007@example.com", "USER007@Example.COM", "  user007@EXAMPLE.com\t"]
)
def test_email_filter_ignores_case_and_spaces(hub: Hub, email: str) -> None:
    body = hub.get("/v1/customers", hub.full_key, email=email).json()
    assert [c["email"] for c in body["data"]] == ["user007@example.com"]
    assert body["has_more"] is False


@pytest.mark.parametrize("email", ["nobody@example.com", "not an e-mail", "   "])
def test_email_filter_without_match_is_empty(hub: Hub, email: str) -> None:
    body = hub.get("/v1/customers", hub.full_key, email=email).json()
    assert body == {"data": [], "next_cursor": None, "has_more": False}


def test_updated_since_filter(hub: Hub) -> None:
    since = BASE + dt.timedelta(hours=250)
    body = hub.get("/v1/customers", hub.full_key, updated_since=since.isoformat()).json()
    assert sorted(c["source_id"] for c in body["data"]) == [f"c{i}" for i in range(250, 257)]
    # The same instant in another offset selects the same rows.
    plus2 = since.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert hub.get("/v1/customers", hub.full_key, updated_since=plus2).json() == body
    zulu = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert hub.get("/v1/customers", hub.full_key, updated_since=zulu).json() == body
    # The boundary is inclusive; after the last change nothing is returned.
    later = (BASE + dt.timedelta(hours=256, seconds=1)).isoformat()
    assert hub.get("/v1/customers", hub.full_key, updated_since=later).json()["data"] == []


def test_filters_combine_with_pagination(hub: Hub) -> None:
    since = (BASE + dt.timedelta(hours=100)).isoformat()
    items, pages = walk(hub, "/v1/customers", hub.full_key, updated_since=since, limit=50)
    assert len(items) == N_CUSTOMERS - 100 and pages == 4
    assert [c["id"] for c in items] == sorted(c["id"] for c in items)


# -- payments ------------------------------------------------------------------------------


def test_payments_sub_resource(hub: Hub) -> None:
    items, pages = walk(hub, f"/v1/customers/{hub.payer_id}/payments", hub.full_key, limit=3)
    assert [p["id"] for p in items] == hub.payment_ids
    assert pages == 3
    first = next(p for p in items if p["amount_minor"] == 1000)
    assert first["customer_id"] == hub.payer_id
    assert first["currency"] == "EUR" and first["kind"] == "refund"
    assert first["occurred_at"] == "2024-01-01T00:00:00Z"


def test_customer_without_payments_has_empty_page(hub: Hub) -> None:
    body = hub.get(f"/v1/customers/{hub.no_payments_id}/payments", hub.full_key).json()
    assert body == {"data": [], "next_cursor": None, "has_more": False}


# -- documentation -------------------------------------------------------------------------


def test_openapi_documents_routes_security_and_problems(hub: Hub) -> None:
    spec = hub.client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Interchange API"
    assert spec["info"]["version"] and spec["info"]["description"]
    paths = spec["paths"]
    for path in (
        "/v1/customers",
        "/v1/customers/{customer_id}",
        "/v1/customers/{customer_id}/payments",
        "/healthz",
    ):
        assert "get" in paths[path], path
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["BearerKey"]["scheme"] == "bearer"
    listing = paths["/v1/customers"]["get"]
    assert {"ApiKey": ["customers:read"]} in listing["security"]
    assert {"ApiKey": ["payments:read"]} in paths["/v1/customers/{customer_id}/payments"]["get"][
        "security"
    ]
    assert "security" not in paths["/healthz"]["get"]
    for status in ("401", "403", "422"):
        content = listing["responses"][status]["content"]
        assert list(content) == [PROBLEM]
        assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/ProblemDetail"}
        assert content[PROBLEM]["example"]["status"] == int(status)
    assert "404" in paths["/v1/customers/{customer_id}"]["get"]["responses"]
    assert "example" in listing["responses"]["200"]["content"]["application/json"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ProblemDetail" in spec["components"]["schemas"]


def test_docs_page_is_html(hub: Hub) -> None:
    resp = hub.client.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "swagger" in resp.text.lower()


def test_healthz_needs_no_key(hub: Hub) -> None:
    resp = hub.client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_create_app_opens_no_connection(tmp_path) -> None:
    # Building the app must not touch the database (the file would be created).
    create_app(database_url=f"sqlite:///{tmp_path / 'never.db'}")
    assert not (tmp_path / "never.db").exists()


# -- PostgreSQL ----------------------------------------------------------------------------

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_hub() -> Iterator[Hub]:
    name = f"ic_test_api_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        data = seed(url)
        with TestClient(create_app(database_url=url)) as client:
            yield Hub(url=url, client=client, **data)
    finally:
        get_engine(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_core_scenario_postgres(pg_hub: Hub) -> None:
    core_scenario(pg_hub)
