"""Stripe-shaped pydantic models: the typed form of what the Stripe API returns.

These models describe the *source*, not the canonical hub: field names and values are
kept exactly as Stripe sends them (emails untrimmed, country codes as typed, amounts in
minor units, ``created`` as epoch seconds). Normalisation is the process layer's job.

* Tolerant of additions: ``extra="allow"`` keeps every field Stripe adds (or that an
  older API version / localstripe still sends) on the model.
* Strict on types: ``strict=True`` means no silent coercion (``"123"`` is not an
  ``int``), so a retyped field is reported as a :class:`~interchange.errors.SchemaError`
  by :func:`system_apis.stripe.streams.parse_record` instead of being bent into shape.
* Optional where Stripe documents the field as nullable (or omits it in some API
  versions).

A deleted customer comes back from Stripe as ``{"id", "object", "deleted": true}``;
:class:`StripeCustomer` accepts that tombstone, and only requires ``created`` on live
customers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "StripeAddress",
    "StripeCharge",
    "StripeCustomer",
    "StripeEvent",
    "StripeEventData",
    "StripeModel",
    "StripeRefund",
]


class StripeModel(BaseModel):
    """Base of every Stripe model: extra fields kept, types checked strictly."""

    model_config = ConfigDict(extra="allow", strict=True)


class StripeAddress(StripeModel):
    city: str | None = None
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    state: str | None = None


class StripeCustomer(StripeModel):
    """A Stripe ``customer`` object (or its ``deleted: true`` tombstone)."""

    id: str
    object: str = "customer"
    created: int | None = Field(None, description="Epoch seconds; absent on a tombstone.")
    deleted: bool = False
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    address: StripeAddress | None = None
    shipping: dict[str, Any] | None = None
    currency: str | None = None
    balance: int | None = None
    delinquent: bool | None = None
    default_source: str | None = None
    invoice_prefix: str | None = None
    preferred_locales: list[str] | None = None
    livemode: bool | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _live_customer_has_created(self) -> StripeCustomer:
        if not self.deleted and self.created is None:
            raise ValueError("field 'created' is required on a customer that is not deleted")
        return self


class StripeCharge(StripeModel):
    """A Stripe ``charge``: one payment attempt (also behind every PaymentIntent)."""

    id: str
    object: str = "charge"
    amount: int
    amount_captured: int | None = None
    amount_refunded: int | None = None
    currency: str
    created: int
    status: str
    paid: bool | None = None
    captured: bool | None = None
    refunded: bool | None = None
    customer: str | None = None
    payment_intent: str | None = None
    payment_method: str | None = None
    balance_transaction: str | None = None
    description: str | None = None
    receipt_email: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    invoice: str | None = None
    statement_descriptor: str | None = None
    livemode: bool | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StripeRefund(StripeModel):
    """A Stripe ``refund`` of a charge (or of a PaymentIntent's latest charge)."""

    id: str
    object: str = "refund"
    amount: int
    currency: str
    created: int
    charge: str | None = None
    payment_intent: str | None = None
    status: str | None = None
    reason: str | None = None
    balance_transaction: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StripeEventData(StripeModel):
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class StripeEvent(StripeModel):
    """A Stripe ``event``: something changed; ``data.object`` is the object at that time."""

    id: str
    object: str = "event"
    type: str
    created: int
    data: StripeEventData
    api_version: str | None = None
    livemode: bool | None = None
    pending_webhooks: int | None = None
    request: dict[str, Any] | str | None = None
