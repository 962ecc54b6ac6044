"""``/v1/customers``: canonical customers and their payments, read-only.

Public model variants live here (``CustomerPublic``, ``PaymentPublic``): they choose
which hub columns consumers see (no content hashes, no internal source links) and
render every timestamp as ISO 8601 in UTC (``2024-05-01T12:00:00Z``). Data comes from
``process_apis.queries``; this module only translates HTTP to those calls.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from experience_apis.http.deps import (
    CustomersReadKey,
    PageDep,
    PaymentsReadKey,
    SessionDep,
    encode_cursor,
)
from experience_apis.http.problems import Problem, problem_responses
from process_apis import queries

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:  # hub columns are UTC; be explicit rather than local
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# Pydantic renders an aware UTC datetime as ``...Z``.
UTCTimestamp = Annotated[dt.datetime, AfterValidator(_as_utc)]

_CUSTOMER_EXAMPLE: dict[str, Any] = {
    "id": "cus_3f2a9c1e8b7d4a6f9e0c1b2a3d4e5f60",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "phone": "+14155550123",
    "country": "GB",
    "deleted": False,
    "source": "stripe",
    "source_id": "cus_Q1w2E3r4T5y6",
    "source_created_at": "2024-03-01T09:30:00Z",
    "created_at": "2024-03-01T09:31:12Z",
    "updated_at": "2024-05-01T12:00:00Z",
}
_PAYMENT_EXAMPLE: dict[str, Any] = {
    "id": "pay_9b8a7c6d5e4f40312a1b2c3d4e5f6a7b",
    "kind": "payment",
    "customer_id": _CUSTOMER_EXAMPLE["id"],
    "amount_minor": 4999,
    "currency": "EUR",
    "status": "succeeded",
    "source": "stripe",
    "source_id": "ch_3P1a2B3c4D5e",
    "occurred_at": "2024-05-01T11:58:03Z",
    "created_at": "2024-05-01T11:59:00Z",
    "updated_at": "2024-05-01T11:59:00Z",
}


class CustomerPublic(BaseModel):
    """A canonical customer as consumers see it."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_CUSTOMER_EXAMPLE]}
    )

    id: str = Field(description="Stable hub id (`cus_...`).")
    email: str | None = Field(None, description="Trimmed, lower-cased e-mail address.")
    name: str | None = None
    phone: str | None = Field(None, description="E.164, e.g. `+14155550123`.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 country code.")
    deleted: bool = Field(description="True once the source deleted the customer.")
    source: str = Field(description="The system the record comes from.")
    source_id: str = Field(description="The record's id in that system.")
    source_created_at: UTCTimestamp | None = Field(
        None, description="When the source created the record."
    )
    created_at: UTCTimestamp = Field(description="When the hub first stored the record.")
    updated_at: UTCTimestamp = Field(description="When the hub record last changed.")
    golden_id: str | None = Field(
        None, description="The golden customer (`gld_...`) this record belongs to: "
        "`GET /v1/customers/{golden_id}` answers the customer 360. Null until identity "
        "resolution has seen the record.")


class PaymentPublic(BaseModel):
    """A canonical payment or refund, amounts in integer minor units."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_PAYMENT_EXAMPLE]}
    )

    id: str = Field(description="Stable hub id (`pay_...`).")
    kind: str = Field(description="`payment` or `refund`.")
    customer_id: str | None = Field(None, description="Hub id of the customer.")
    amount_minor: int = Field(description="Amount in minor units (cents): 4999 = 49.99.")
    currency: str = Field(description="ISO 4217 currency code.")
    status: str
    source: str
    source_id: str
    occurred_at: UTCTimestamp | None = None
    created_at: UTCTimestamp
    updated_at: UTCTimestamp


class OrderPublic(BaseModel):
    """An order, amounts in integer minor units."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Stable hub id (`ord_...`).")
    number: str | None = Field(None, description="The order number the shop shows.")
    status: str
    total_minor: int = Field(description="Order total in minor units.")
    currency: str = Field(description="ISO 4217 currency code.")
    customer_id: str | None = Field(None, description="Hub id of the source customer.")
    source: str
    source_id: str
    placed_at: UTCTimestamp | None = None


class ProvenancePublic(BaseModel):
    source: str = Field(description="The system the value came from.")
    source_id: str = Field(description="The record's id in that system.")
    customer_id: str = Field(description="Hub id of that source record.")


_GOLDEN_EXAMPLE: dict[str, Any] = {
    "id": "gld_0a1b2c3d4e5f40718293a4b5c6d7e8f9",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "phone": "+14155550123",
    "country": "GB",
    "provenance": {"email": {"source": "hubspot", "source_id": "51",
                             "customer_id": "cus_..."}},
    "sources": [_CUSTOMER_EXAMPLE],
    "orders": [],
    "order_count": 0,
    "payments": [_PAYMENT_EXAMPLE],
    "payment_count": 1,
    "updated_at": "2024-05-01T12:00:00Z",
}


class Customer360Public(BaseModel):
    """A golden customer: one person across every connected system."""

    model_config = ConfigDict(json_schema_extra={"examples": [_GOLDEN_EXAMPLE]})

    id: str = Field(description="Stable golden id (`gld_...`).")
    email: str | None = None
    name: str | None = None
    phone: str | None = Field(None, description="E.164.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2.")
    provenance: dict[str, ProvenancePublic] = Field(
        description="Per field, the source record its value came from (survivorship).")
    sources: list[CustomerPublic] = Field(description="The linked source records.")
    orders: list[OrderPublic] = Field(description="The 50 most recent orders, newest first.")
    order_count: int
    payments: list[PaymentPublic] | None = Field(
        description="The 50 most recent payments and refunds, newest first; null unless "
        "the key has scope `payments:read`.")
    payment_count: int | None = None
    updated_at: UTCTimestamp


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    has_more: bool = Field(description="Whether another page follows.")


class CustomerPage(Page[CustomerPublic]):
    """A page of customers."""


class PaymentPage(Page[PaymentPublic]):
    """A page of payments."""


P = TypeVar("P", bound=Page[Any])


def _page(page_model: type[P], rows: list[Any], limit: int) -> P:
    # The queries were asked for limit + 1 rows: the extra one only says "there is more".
    has_more = len(rows) > limit
    rows = rows[:limit]
    return page_model.model_validate(
        {
            "data": rows,
            "next_cursor": encode_cursor(rows[-1].id) if has_more else None,
            "has_more": has_more,
        }
    )


def _ok_example(example: Any) -> dict[int | str, Any]:
    return {200: {"content": {"application/json": {"example": example}}}}


CustomerId = Annotated[
    str,
    Path(description="Hub customer id.", examples=[_CUSTOMER_EXAMPLE["id"]]),
]


@router.get(
    "",
    summary="List customers",
    operation_id="listCustomers",
    response_model=CustomerPage,
    responses={
        **_ok_example(
            {
                "data": [_CUSTOMER_EXAMPLE],
                "next_cursor": "Y3VzXzNmMmE5YzFlOGI3ZDRhNmY5ZTBjMWIyYTNkNGU1ZjYw",
                "has_more": True,
            }
        ),
        **problem_responses("unauthorized", "forbidden", "invalid_parameters"),
    },
)
def list_customers(
    _key: CustomersReadKey,
    session: SessionDep,
    page: PageDep,
    email: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=320,
            description="Only customers with this e-mail address. Matching ignores case "
            "and surrounding spaces.",
        ),
    ] = None,
    updated_since: Annotated[
        AwareDatetime | None,
        Query(
            description="Only customers whose hub record changed at or after this "
            "instant. ISO 8601 **with a UTC offset** (`2024-05-01T00:00:00Z` or "
            "`...+02:00`, URL-encode `+` as `%2B`); a time without offset is rejected "
            "with 422 rather than guessed.",
            examples=["2024-05-01T00:00:00Z"],
        ),
    ] = None,
) -> CustomerPage:
    """Customers in the hub, in a stable order (by id), one page at a time.

    Requires scope `customers:read`.

    Follow `next_cursor` until `has_more` is false to read every customer exactly
    once, even while the hub is being updated; send the same filters with every
    page. To sync incrementally, remember when you started a full read and next time
    pass that instant as `updated_since`. Deleted customers are included with
    `deleted: true`, so you also learn about deletions.
    """
    rows = queries.list_customers(
        session,
        after=page.after,
        limit=page.limit + 1,
        email=email,
        updated_since=updated_since,
    )
    golden = queries.golden_ids(session, [r.id for r in rows])
    records = [CustomerPublic.model_validate(r).model_copy(update={"golden_id": golden.get(r.id)})
               for r in rows]  # fmt: skip
    return _page(CustomerPage, records, page.limit)


@router.get(
    "/{customer_id}",
    summary="Get a customer (a source record, or the customer 360)",
    operation_id="getCustomer",
    response_model=Customer360Public | CustomerPublic,
    responses={
        200: {"content": {"application/json": {"examples": {
            "golden": {"summary": "a golden id: the customer 360", "value": _GOLDEN_EXAMPLE},
            "record": {"summary": "a source record id", "value": _CUSTOMER_EXAMPLE},
        }}}},
        **problem_responses(
            "unauthorized",
            "forbidden",
            "not_found",
            "invalid_parameters",
            instance=f"/v1/customers/{_CUSTOMER_EXAMPLE['id']}",
        ),
    },
)
def get_customer(
    key: CustomersReadKey, session: SessionDep, customer_id: CustomerId
) -> Customer360Public | CustomerPublic:
    """One customer. Requires scope `customers:read`.

    * A **golden id** (`gld_...`, from a record's `golden_id`) answers the customer
      360: the one person across every connected system, each value with the source
      record it came from, the linked source records, and the most recent orders and
      (with scope `payments:read`) payments. The id of a golden customer that was later
      merged into another answers the one it was merged into.
    * A **record id** (`cus_...`, as `GET /v1/customers` lists them) answers that source
      record, with its `golden_id`.

    Answers 404 `not_found` when no customer has this id.
    """
    if customer_id.startswith("gld_"):
        view = queries.get_customer_360(session, customer_id)
        if view is None:
            raise Problem("not_found", f"No customer with id {customer_id!r}.")
        golden = view["golden"]
        links = {m.id: golden.id for m in view["sources"]}
        payments = "payments:read" in key.scopes
        return Customer360Public(
            id=golden.id, email=golden.email, name=golden.name, phone=golden.phone,
            country=golden.country, provenance=golden.provenance,
            sources=[CustomerPublic.model_validate(m).model_copy(
                update={"golden_id": links[m.id]}) for m in view["sources"]],
            orders=[OrderPublic.model_validate(o) for o in view["orders"]],
            order_count=view["order_count"],
            payments=[PaymentPublic.model_validate(p) for p in view["payments"]]
            if payments else None,
            payment_count=view["payment_count"] if payments else None,
            updated_at=golden.updated_at,
        )  # fmt: skip
    customer = queries.get_customer(session, customer_id)
    if customer is None:
        raise Problem("not_found", f"No customer with id {customer_id!r}.")
    return CustomerPublic.model_validate(customer).model_copy(
        update={"golden_id": queries.golden_id_of(session, customer_id)})


@router.get(
    "/{customer_id}/payments",
    summary="List a customer's payments",
    operation_id="listCustomerPayments",
    response_model=PaymentPage,
    responses={
        **_ok_example({"data": [_PAYMENT_EXAMPLE], "next_cursor": None, "has_more": False}),
        **problem_responses(
            "unauthorized",
            "forbidden",
            "not_found",
            "invalid_parameters",
            instance=f"/v1/customers/{_CUSTOMER_EXAMPLE['id']}/payments",
        ),
    },
)
def list_customer_payments(
    _key: PaymentsReadKey, session: SessionDep, customer_id: CustomerId, page: PageDep
) -> PaymentPage:
    """Payments and refunds of one customer, by id, one page at a time.

    Requires scope `payments:read`. Paginated like `GET /v1/customers`: follow
    `next_cursor` while `has_more` is true. Answers 404 `not_found` when no customer
    has this id (a known customer without payments gives an empty page).
    """
    if queries.get_customer(session, customer_id) is None:
        raise Problem("not_found", f"No customer with id {customer_id!r}.")
    rows = queries.list_customer_payments(
        session, customer_id, after=page.after, limit=page.limit + 1
    )
    return _page(PaymentPage, rows, page.limit)
