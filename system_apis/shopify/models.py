"""Shopify-shaped pydantic models: the typed form of what the Admin REST API returns.

These describe the *source*: field names and values exactly as Shopify sends them -
e-mails untrimmed, phones as typed, prices as decimal strings (``"19.99"``) next to an
ISO 4217 ``currency``, timestamps as ISO 8601 strings with the shop's UTC offset
(``"2026-01-02T03:04:05-05:00"``). Normalisation is the process layer's job.

* ``extra="allow"`` keeps every field Shopify adds (or an API version still sends).
* ``strict=True``: no silent coercion, so a retyped field (``"price": 19.99``) is a
  :class:`~interchange.errors.SchemaError` from
  :func:`system_apis.shopify.streams.parse_record`, not a value bent into shape.
* Optional wherever Shopify omits or nulls the field in practice.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ShopifyAddress",
    "ShopifyCustomer",
    "ShopifyInventoryLevel",
    "ShopifyLineItem",
    "ShopifyLocation",
    "ShopifyModel",
    "ShopifyOrder",
    "ShopifyOrderCustomer",
    "ShopifyProduct",
    "ShopifyVariant",
]


class ShopifyModel(BaseModel):
    """Base of every Shopify model: extra fields kept, types checked strictly."""

    model_config = ConfigDict(extra="allow", strict=True)


class ShopifyAddress(ShopifyModel):
    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    phone: str | None = None
    default: bool | None = None


class ShopifyCustomer(ShopifyModel):
    """A ``customer``: contact fields as typed by the merchant or the buyer."""

    id: int
    created_at: str = Field(description="ISO 8601 with the shop's UTC offset.")
    updated_at: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    state: str | None = None
    verified_email: bool | None = None
    orders_count: int | None = None
    total_spent: str | None = Field(None, description="Decimal string in `currency`.")
    currency: str | None = None
    tags: str | None = None
    note: str | None = None
    default_address: ShopifyAddress | None = None
    addresses: list[ShopifyAddress] = Field(default_factory=list)


class ShopifyLineItem(ShopifyModel):
    id: int
    quantity: int
    price: str = Field(description="Unit price, decimal string in the order's currency.")
    product_id: int | None = None
    variant_id: int | None = None
    sku: str | None = None
    title: str | None = None
    variant_title: str | None = None
    total_discount: str | None = None
    taxable: bool | None = None


class ShopifyOrderCustomer(ShopifyModel):
    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class ShopifyOrder(ShopifyModel):
    """An ``order`` with its line items; money as decimal strings in ``currency``."""

    id: int
    created_at: str
    updated_at: str
    currency: str
    total_price: str
    name: str | None = None
    order_number: int | None = None
    email: str | None = None
    processed_at: str | None = None
    cancelled_at: str | None = None
    closed_at: str | None = None
    presentment_currency: str | None = None
    subtotal_price: str | None = None
    total_tax: str | None = None
    total_discounts: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    customer: ShopifyOrderCustomer | None = None
    line_items: list[ShopifyLineItem] = Field(default_factory=list)


class ShopifyVariant(ShopifyModel):
    id: int
    product_id: int | None = None
    title: str | None = None
    sku: str | None = None
    price: str | None = Field(None, description="Decimal string in the shop's currency.")
    compare_at_price: str | None = None
    inventory_item_id: int | None = None
    inventory_quantity: int | None = None
    barcode: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ShopifyProduct(ShopifyModel):
    """A ``product`` with its variants (each variant names its inventory item)."""

    id: int
    title: str
    created_at: str
    updated_at: str
    status: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    handle: str | None = None
    body_html: str | None = None
    tags: str | None = None
    published_at: str | None = None
    variants: list[ShopifyVariant] = Field(default_factory=list)
    options: list[dict[str, Any]] = Field(default_factory=list)


class ShopifyLocation(ShopifyModel):
    id: int
    name: str | None = None
    active: bool | None = None
    country_code: str | None = None


class ShopifyInventoryLevel(ShopifyModel):
    """Available quantity of one inventory item at one location (``available`` may be
    null when the item is not tracked there)."""

    inventory_item_id: int
    location_id: int
    available: int | None = None
    updated_at: str | None = None

    @property
    def key(self) -> str:
        return f"{self.inventory_item_id}:{self.location_id}"
