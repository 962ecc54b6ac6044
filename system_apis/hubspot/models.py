"""HubSpot-shaped pydantic models: CRM v3 objects exactly as the API returns them.

A CRM v3 object is ``{"id", "properties": {name: value}, "createdAt", "updatedAt",
"archived"}`` (plus ``archivedAt``, ``associations``, ``propertiesWithHistory`` when asked
for). These models describe the *source*, not the hub: property values stay as HubSpot
sends them (strings, or null; e-mails as typed, phones as typed), timestamps stay ISO 8601
strings. Normalisation is the process layer's job.

* Tolerant of additions: ``extra="allow"`` keeps every top-level field HubSpot adds.
* Strict where HubSpot's envelope is fixed (``id`` is a string, ``archived`` a boolean),
  so a retyped envelope field is a :class:`~interchange.errors.SchemaError` from
  :func:`system_apis.hubspot.streams.parse_record`.
* Loose inside ``properties``: HubSpot sends every property value as a string, but a
  portal's property set is user-defined and changes (renamed, removed, retyped custom
  properties); those changes are reported by the drift fingerprint, which looks inside
  ``properties``, rather than by failing every record of the stream.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HubSpotCompany", "HubSpotContact", "HubSpotModel", "HubSpotObject"]


class HubSpotModel(BaseModel):
    """Base of every HubSpot model: extra fields kept, types checked strictly."""

    model_config = ConfigDict(extra="allow", strict=True)


class HubSpotObject(HubSpotModel):
    """Any CRM v3 object (``/crm/v3/objects/{objectType}``)."""

    id: str
    properties: dict[str, Any] = Field(default_factory=dict)
    createdAt: str | None = Field(None, description="ISO 8601, UTC (``...Z``).")
    updatedAt: str | None = Field(None, description="ISO 8601, UTC (``...Z``).")
    archived: bool = False
    archivedAt: str | None = None

    def prop(self, name: str) -> Any:
        """One property value as HubSpot sent it (``None`` when absent)."""
        return self.properties.get(name)


class HubSpotContact(HubSpotObject):
    """A ``contacts`` object (e-mail, names, phone, ... inside ``properties``)."""


class HubSpotCompany(HubSpotObject):
    """A ``companies`` object (name, domain, ... inside ``properties``)."""
