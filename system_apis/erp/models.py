"""ERP-shaped pydantic models: the legacy rows exactly as the database holds them.

Field names are the legacy column names (``CUST_NO``, ``LAST_MOD``...). Values are not
normalised: ``CREATED_DT`` stays a ``MM/DD/YYYY`` string (possibly an impossible date),
phones keep their dashes, e-mails their case and spaces, ``CURRENCY`` whatever three
characters were typed, ``LAST_MOD`` a naive datetime in UTC. The canonical rules live in
the process layer.

``extra="allow"`` keeps columns added to the tables later (they arrive in the record and
in the drift fingerprint); ``strict=True`` makes a retyped column a
:class:`~interchange.errors.SchemaError` instead of a silent coercion.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

__all__ = ["ErpCustomer", "ErpItem", "ErpModel", "ErpStock"]


class ErpModel(BaseModel):
    """Base of every ERP model: extra columns kept, types checked strictly."""

    model_config = ConfigDict(extra="allow", strict=True)

    LAST_MOD: datetime

    @property
    def source_id(self) -> str:
        """The row's key as one string (``"SKU-00001/WH1"`` for stock)."""
        raise NotImplementedError


class ErpCustomer(ErpModel):
    """A ``CUST_MASTER`` row."""

    CUST_NO: str
    NAME: str | None = None
    EMAIL: str | None = None
    PHONE: str | None = None
    COUNTRY: str | None = None
    CREATED_DT: str | None = None  # MM/DD/YYYY, as typed

    @property
    def source_id(self) -> str:
        return self.CUST_NO


class ErpItem(ErpModel):
    """An ``ITEM_MASTER`` row (``ITEM_NO`` is the SKU)."""

    ITEM_NO: str
    DESCR: str | None = None
    PRICE: Decimal | None = None
    CURRENCY: str | None = None

    @property
    def source_id(self) -> str:
        return self.ITEM_NO


class ErpStock(ErpModel):
    """A ``STOCK`` row: one item in one warehouse."""

    ITEM_NO: str
    WAREHOUSE: str
    QTY_ON_HAND: int | None = None

    @property
    def source_id(self) -> str:
        return f"{self.ITEM_NO}/{self.WAREHOUSE}"
