"""Canonical records as pydantic values: what mappers produce and quality checks see."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class CanonicalCustomer(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    country: str | None = None
    deleted: bool = False
    source_created_at: dt.datetime | None = None


class CanonicalPayment(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    kind: str
    customer_source_id: str | None = None
    related_source_id: str | None = None
    order_ref: str | None = None  # the order this payment is for, as the payer's system names it
    amount_minor: int
    currency: str
    status: str
    occurred_at: dt.datetime | None = None


class CanonicalCompany(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    name: str | None = None
    domain: str | None = None
    country: str | None = None
    industry: str | None = None
    deleted: bool = False
    source_updated_at: dt.datetime | None = None


class CanonicalProduct(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    sku: str | None = None
    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    active: bool = True
    source_updated_at: dt.datetime | None = None


class CanonicalOrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    order_source_id: str
    sku: str | None = None
    name: str | None = None
    quantity: int
    unit_price_minor: int
    currency: str


class CanonicalOrder(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    number: str | None = None
    customer_source_id: str | None = None
    email: str | None = None
    status: str
    total_minor: int
    currency: str
    placed_at: dt.datetime | None = None
    source_updated_at: dt.datetime | None = None
    lines: tuple[CanonicalOrderLine, ...] = ()


class CanonicalInventoryLevel(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    sku: str | None = None
    location: str
    available: int
    source_updated_at: dt.datetime | None = None
