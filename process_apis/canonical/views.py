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
    amount_minor: int
    currency: str
    status: str
    occurred_at: dt.datetime | None = None
