"""HubSpot contacts -> canonical Customer; companies -> canonical Company.

Property values arrive as HubSpot stores them (strings, typed by hand): names are
joined and trimmed, e-mails and phones go through the canonical rules, the phone is
read in the contact's country when it has one. An archived object is a tombstone.
"""

from __future__ import annotations

from typing import Any

from process_apis.canonical import rules
from process_apis.canonical.views import CanonicalCompany, CanonicalCustomer
from process_apis.mapping.base import MapResult
from process_apis.mapping.common import clean, collect, map_batch
from system_apis.hubspot.streams import parse_record

SOURCE = "hubspot"
ENTITY_OF_STREAM = {"contacts": "customer", "companies": "company"}


def map_contact(model: Any, *, default_region: str = "US") -> CanonicalCustomer:
    p = model.properties
    if model.archived:
        return CanonicalCustomer(source=SOURCE, source_id=model.id, deleted=True)
    country = collect([("country", lambda: rules.normalize_country(clean(p.get("country"))))])
    values = collect([
        ("email", lambda: rules.normalize_email(p.get("email"))),
        ("phone", lambda: rules.normalize_phone(
            p.get("phone") or p.get("mobilephone"),
            region=country["country"] or default_region)),
        ("source_created_at", lambda: rules.to_utc(model.createdAt)),
    ])
    name = " ".join(x for x in (clean(p.get("firstname")), clean(p.get("lastname"))) if x)
    return CanonicalCustomer(source=SOURCE, source_id=model.id, name=name or None,
                             **country, **values)


def map_company(model: Any) -> CanonicalCompany:
    p = model.properties
    if model.archived:
        return CanonicalCompany(source=SOURCE, source_id=model.id, deleted=True)
    values = collect([
        ("country", lambda: rules.normalize_country(clean(p.get("country")))),
        ("domain", lambda: rules.normalize_domain(p.get("domain") or p.get("website"))),
        ("source_updated_at", lambda: rules.to_utc(model.updatedAt)),
    ])
    return CanonicalCompany(source=SOURCE, source_id=model.id, name=clean(p.get("name")),
                            industry=clean(p.get("industry")), **values)


def map_records(
    stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
) -> MapResult:
    if stream == "contacts":
        def mapper(m: Any) -> Any:
            return map_contact(m, default_region=default_region)
    elif stream == "companies":
        mapper = map_company
    else:
        raise ValueError(f"unknown HubSpot stream {stream!r}")
    return map_batch(raws, parse=lambda raw: parse_record(stream, raw), mapper=mapper,
                     source_id=lambda raw: str(raw.get("id") or ""))
