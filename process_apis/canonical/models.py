"""The canonical hub tables (SQLModel) and their public views.

Every canonical record is keyed by ``(source, source_id)``: a source record maps to
exactly one hub row, so loads are idempotent upserts. ``id`` is the hub's own stable
identifier that consumers see. ``content_hash`` lets a reload of an unchanged record
leave the row (and its ``updated_at``) alone.

Must stay in step with ``interchange/migrations`` (tests compare both).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from interchange.store import UTCDateTime, utcnow


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_customers_source"),)

    id: str = Field(default_factory=lambda: new_id("cus"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    email: str | None = Field(default=None, max_length=320, index=True)
    name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)
    deleted: bool = False
    source_created_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class PaymentKind(StrEnum):
    payment = "payment"
    refund = "refund"


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_payments_source"),)

    id: str = Field(default_factory=lambda: new_id("pay"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    kind: str = Field(max_length=16)
    customer_id: str | None = Field(default=None, max_length=40, index=True)
    customer_source_id: str | None = Field(default=None, max_length=255, index=True)
    related_source_id: str | None = Field(default=None, max_length=255)
    order_ref: str | None = Field(default=None, max_length=255, index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    status: str = Field(max_length=32)
    occurred_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class QuarantineStatus(StrEnum):
    open = "open"  # waiting for a fix
    replayed = "replayed"  # landed by a quarantine replay
    resolved = "resolved"  # landed by a later sync (fixed at the source)


class QuarantineRecord(SQLModel, table=True):
    """A record that failed mapping or validation, kept whole with its reasons."""

    __tablename__ = "quarantine"
    __table_args__ = (
        sa.UniqueConstraint("entity", "source", "source_id", name="uq_quarantine_record"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    stream: str = Field(max_length=64)
    raw: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    failed_rules: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=QuarantineStatus.open, max_length=16, index=True)
    occurrences: int = 1
    first_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    replayed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Watermark(SQLModel, table=True):
    """How far a stream's incremental sync has read (a source-specific cursor)."""

    __tablename__ = "watermarks"

    source: str = Field(primary_key=True, max_length=40)
    stream: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Checkpoint(SQLModel, table=True):
    """Where an unfinished run of a stream stopped, so the next run resumes there."""

    __tablename__ = "checkpoints"

    source: str = Field(primary_key=True, max_length=40)
    stream: str = Field(primary_key=True, max_length=64)
    mode: str = Field(primary_key=True, max_length=16)
    cursor: str | None = Field(default=None, max_length=255)
    high_water: str | None = Field(default=None, max_length=255)
    pages: int = 0
    records: int = 0
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SchemaFingerprint(SQLModel, table=True):
    """The field set last seen per source stream, to detect schema drift."""

    __tablename__ = "schema_fingerprints"

    source: str = Field(primary_key=True, max_length=40)
    stream: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=64)
    fields: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Company(SQLModel, table=True):
    """An organisation (CRM companies, ERP accounts)."""

    __tablename__ = "companies"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_companies_source"),)

    id: str = Field(default_factory=lambda: new_id("com"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255)
    domain: str | None = Field(default=None, max_length=255, index=True)
    country: str | None = Field(default=None, max_length=2)
    industry: str | None = Field(default=None, max_length=100)
    deleted: bool = False
    source_updated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class Product(SQLModel, table=True):
    """A sellable item (commerce products/variants, ERP items), keyed by SKU across sources."""

    __tablename__ = "products"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_products_source"),)

    id: str = Field(default_factory=lambda: new_id("prd"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    sku: str | None = Field(default=None, max_length=100, index=True)
    name: str | None = Field(default=None, max_length=255)
    price_minor: int | None = None
    currency: str | None = Field(default=None, max_length=3)
    active: bool = True
    source_updated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class Order(SQLModel, table=True):
    """A customer order; its lines are in ``order_lines``."""

    __tablename__ = "orders"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_orders_source"),)

    id: str = Field(default_factory=lambda: new_id("ord"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    number: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, max_length=40, index=True)
    customer_source_id: str | None = Field(default=None, max_length=255, index=True)
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(max_length=32)
    total_minor: int
    currency: str = Field(max_length=3)
    placed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    source_updated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (sa.UniqueConstraint("source", "source_id", name="uq_order_lines_source"),)

    id: str = Field(default_factory=lambda: new_id("oln"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)
    order_source_id: str = Field(max_length=255, index=True)
    sku: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=255)
    quantity: int
    unit_price_minor: int
    currency: str = Field(max_length=3)


class InventoryLevel(SQLModel, table=True):
    """Stock of one SKU at one location, as a source reports it."""

    __tablename__ = "inventory_levels"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_inventory_levels_source"),
    )

    id: str = Field(default_factory=lambda: new_id("inv"), primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    source_id: str = Field(max_length=255)  # "<location>:<item>" or the source's own id
    sku: str | None = Field(default=None, max_length=100, index=True)
    location: str = Field(max_length=100)
    available: int
    source_updated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class GoldenCustomer(SQLModel, table=True):
    """One person across every source: the customer 360 record (identity resolution).

    Its field values are chosen by the survivorship rules (process_apis/survivorship.yaml);
    ``provenance`` says, per field, which source record each value came from. A golden
    customer absorbed by another keeps its row with ``merged_into`` set, so an old id
    still leads to the person.
    """

    __tablename__ = "golden_customers"

    id: str = Field(default_factory=lambda: new_id("gld"), primary_key=True, max_length=40)
    email: str | None = Field(default=None, max_length=320, index=True)
    name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)
    provenance: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    members: int = 0
    merged_into: str | None = Field(default=None, max_length=40)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(default="", max_length=64)


class CustomerLink(SQLModel, table=True):
    """Which golden customer a source customer (hub ``customers`` row) belongs to, and why.

    ``matched_by``: ``email``, ``phone+name``, ``alone`` (no match) or ``pinned``. A pinned
    link was set by hand (a wrong merge undone) and is left alone by automatic matching.
    """

    __tablename__ = "customer_links"

    customer_id: str = Field(primary_key=True, max_length=40)
    golden_id: str = Field(max_length=40, index=True)
    matched_by: str = Field(max_length=16)
    pinned: bool = False
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EnrichmentPush(SQLModel, table=True):
    """What the CRM enrichment last wrote to HubSpot for a golden customer, and when.

    Written only after HubSpot accepted the values, so the next run sends exactly what
    changed since (see :mod:`process_apis.enrichment`). ``email`` is the contact key the
    values went to; ``properties`` the HubSpot property values as sent (strings).
    """

    __tablename__ = "enrichment_pushes"

    golden_id: str = Field(primary_key=True, max_length=40)
    email: str = Field(max_length=320)
    properties: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    hubspot_id: str | None = Field(default=None, max_length=40)
    pushed_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
