"""Declarative REST streams -> canonical records, by the ``entity`` and ``fields`` in YAML.

A ``kind: rest`` source's stream names the canonical entity it feeds and, per canonical
field, the dotted path of the value in a source record::

    entity: customer
    fields: {email: properties.email, phone: properties.phone,
             first_name: properties.firstname, last_name: properties.lastname}
    required: [email]

The values then go through the same canonical rules as every hand-written mapper
(e-mail, E.164 read in the record's country, ISO 3166, ISO 4217 and minor units, UTC),
the same Great Expectations suites, quarantine and idempotent upserts. A field may
name several paths (``phone: [phone, default_address.phone]``): the first with a value
wins. Fields per entity (:data:`FIELDS`):

``customer``  email, phone, name | first_name + last_name, country, created_at, deleted
``company``   name, domain, country, industry, updated_at, deleted
``product``   sku, name, price (decimal, major units) | price_minor, currency, active,
              updated_at, deleted

``deleted`` (and ``active``) take booleans or ``true``/``false``/``1``/``0``/``yes``/
``no``. A record without its primary key, or without a value for a ``required`` field,
is quarantined with the reason; fields not named here stay in the raw payload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interchange.errors import ConfigError
from interchange.settings import SourceConfig
from process_apis.canonical import rules
from process_apis.canonical.rules import RuleViolation
from process_apis.canonical.views import CanonicalCompany, CanonicalCustomer, CanonicalProduct
from process_apis.mapping.base import MapResult, Rejected
from process_apis.mapping.common import MappingFailed, clean, collect
from system_apis.rest.spec import RestSource, RestStream, dig, rest_spec
from system_apis.rest.streams import record_key

__all__ = ["FIELDS", "RestMapping", "for_source"]

FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset({"email", "phone", "name", "first_name", "last_name", "country",
                           "created_at", "deleted"}),
    "company": frozenset({"name", "domain", "country", "industry", "updated_at", "deleted"}),
    "product": frozenset({"sku", "name", "price", "price_minor", "currency", "active",
                          "updated_at", "deleted"}),
}  # fmt: skip
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _flag(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RuleViolation("boolean.valid", f"{field} {value!r} is not true or false")


def _paths(paths: str | list[str]) -> str:
    return paths if isinstance(paths, str) else " or ".join(paths)


def _text(value: Any) -> str | None:
    return clean(value) if isinstance(value, str | int | float) and not isinstance(
        value, bool) else None


@dataclass(frozen=True)
class _StreamMapping:
    source: str
    stream: str
    spec: RestStream
    entity: str

    def get(self, raw: dict[str, Any], field: str) -> Any:
        paths = self.spec.fields.get(field) or ()
        for path in (paths,) if isinstance(paths, str) else paths:
            value = dig(raw, path)
            if value is not None and value != "":
                return value
        return None

    def customer(self, raw: dict[str, Any], sid: str, region: str) -> CanonicalCustomer:
        if _flag(self.get(raw, "deleted"), "deleted"):
            return CanonicalCustomer(source=self.source, source_id=sid, deleted=True)
        country = collect([("country", lambda: rules.normalize_country(
            _text(self.get(raw, "country"))))])  # fmt: skip
        values = collect([
            ("email", lambda: rules.normalize_email(_text(self.get(raw, "email")))),
            ("phone", lambda: rules.normalize_phone(_text(self.get(raw, "phone")),
                                                    region=country["country"] or region)),
            ("source_created_at", lambda: rules.to_utc(self.get(raw, "created_at"))),
        ])  # fmt: skip
        name = _text(self.get(raw, "name")) or " ".join(
            x for x in (_text(self.get(raw, "first_name")), _text(self.get(raw, "last_name")))
            if x)  # fmt: skip
        return CanonicalCustomer(source=self.source, source_id=sid, name=name or None,
                                 **country, **values)  # fmt: skip

    def company(self, raw: dict[str, Any], sid: str, region: str) -> CanonicalCompany:
        if _flag(self.get(raw, "deleted"), "deleted"):
            return CanonicalCompany(source=self.source, source_id=sid, deleted=True)
        values = collect([
            ("country", lambda: rules.normalize_country(_text(self.get(raw, "country")))),
            ("domain", lambda: rules.normalize_domain(_text(self.get(raw, "domain")))),
            ("source_updated_at", lambda: rules.to_utc(self.get(raw, "updated_at"))),
        ])  # fmt: skip
        return CanonicalCompany(source=self.source, source_id=sid,
                                name=_text(self.get(raw, "name")),
                                industry=_text(self.get(raw, "industry")), **values)

    def product(self, raw: dict[str, Any], sid: str, region: str) -> CanonicalProduct:
        price, minor = self.get(raw, "price"), self.get(raw, "price_minor")
        amount = minor if minor is not None else price

        def price_minor() -> int | None:
            if amount is None or amount == "":
                return None
            return rules.non_negative(
                rules.to_minor_units(amount, _text(self.get(raw, "currency")) or "",
                                     minor=minor is not None),
                "money.non_negative", "price")  # fmt: skip

        values = collect([
            ("price_minor", price_minor),
            ("currency", lambda: rules.normalize_currency(_text(self.get(raw, "currency")))
             if _text(self.get(raw, "currency")) else None),
            ("source_updated_at", lambda: rules.to_utc(self.get(raw, "updated_at"))),
            ("deleted", lambda: _flag(self.get(raw, "deleted"), "deleted")),
            ("active", lambda: _flag(self.get(raw, "active"), "active")),
        ])  # fmt: skip
        active = values.pop("active")
        deleted = values.pop("deleted")
        return CanonicalProduct(source=self.source, source_id=sid,
                                sku=_text(self.get(raw, "sku")),
                                name=_text(self.get(raw, "name")),
                                active=not deleted and active is not False, **values)

    def map(self, raw: dict[str, Any], region: str) -> Any:
        sid = record_key(self.spec, raw)
        if not sid:
            raise MappingFailed([{"rule": "schema", "message": f"{self.source} {self.stream}: "
                                  f"primary key {'+'.join(self.spec.key_fields)} is missing"}])
        missing = [f for f in self.spec.required
                   if self.get(raw, f) is None or _text(self.get(raw, f)) == ""]
        if missing:
            raise MappingFailed([
                {"rule": "required", "message": f"{f} ({_paths(self.spec.fields[f])}) is missing"}
                for f in missing])  # fmt: skip
        build: Callable[[dict[str, Any], str, str], Any] = getattr(self, self.entity)
        try:
            return build(raw, sid, region)
        except RuleViolation as exc:  # a check outside collect(): still this record's reject
            raise MappingFailed([exc.as_dict()]) from None


class RestMapping:
    """What :mod:`process_apis.pipeline` needs of a mapper, for one ``kind: rest`` source."""

    def __init__(self, source: RestSource) -> None:
        self.source = source.name
        self.streams: dict[str, _StreamMapping] = {}
        for name, spec in source.streams.items():
            where = f"source {source.name!r}, stream {name!r}"
            if spec.entity not in FIELDS:
                raise ConfigError(f"{where}: entity must be one of {sorted(FIELDS)}, "
                                  f"not {spec.entity!r}")  # fmt: skip
            unknown = sorted(set(spec.fields) - FIELDS[spec.entity])
            if unknown:
                raise ConfigError(f"{where}: {spec.entity} has no field(s) {unknown} "
                                  f"(have: {sorted(FIELDS[spec.entity])})")  # fmt: skip
            unmapped = sorted(set(spec.required) - set(spec.fields))
            if unmapped:
                raise ConfigError(f"{where}: required field(s) {unmapped} are not in fields")
            self.streams[name] = _StreamMapping(source.name, name, spec, spec.entity)
        self.ENTITY_OF_STREAM = {name: m.entity for name, m in self.streams.items()}

    def key_for(self, stream: str) -> Callable[[dict[str, Any]], str]:
        spec = self.streams[stream].spec
        # A record without its key is kept apart (and quarantined), never merged.
        return lambda raw: record_key(spec, raw) or f"\0missing-key:{id(raw)}"

    def map_records(
        self, stream: str, raws: list[dict[str, Any]], *, default_region: str = "US"
    ) -> MapResult:
        mapping = self.streams[stream]
        result: MapResult = MapResult()
        for raw in raws:
            try:
                record = mapping.map(raw, default_region)
            except MappingFailed as exc:
                result.rejected.append(Rejected(reject_id(mapping.spec, raw), raw,
                                                exc.violations))  # fmt: skip
            else:
                result.records.append(record)
                result.raws.append(raw)
        return result


def reject_id(spec: RestStream, raw: dict[str, Any]) -> str:
    """The quarantine id of a rejected record: its key, or - without one - a digest of the
    record, so keyless rejects stay apart (and the same record stays one row)."""
    key = record_key(spec, raw)
    if key:
        return key
    body = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return "missing-key:" + hashlib.sha256(body.encode()).hexdigest()[:16]


_CACHE: dict[str, RestMapping] = {}


def for_source(config: SourceConfig) -> RestMapping:
    """The mapping of a ``kind: rest`` source (validated; cached per description)."""
    key = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    mapping = _CACHE.get(key)
    if mapping is None:
        if len(_CACHE) > 32:
            _CACHE.clear()
        mapping = _CACHE[key] = RestMapping(rest_spec(config))
    return mapping
