"""Shared mapping helpers: collect every rule violation of a record, parse, map a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from interchange.errors import SchemaError
from process_apis.canonical.rules import RuleViolation
from process_apis.mapping.base import MapResult, Rejected


class MappingFailed(Exception):
    def __init__(self, violations: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{v['rule']}: {v['message']}" for v in violations))
        self.violations = violations


def collect(checks: Iterable[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
    """Run every check; raise :class:`MappingFailed` with all violations, else the values."""
    values: dict[str, Any] = {}
    violations: list[dict[str, str]] = []
    for name, check in checks:
        try:
            values[name] = check()
        except RuleViolation as exc:
            if exc.as_dict() not in violations:  # one bad field can break two checks
                violations.append(exc.as_dict())
    if violations:
        raise MappingFailed(violations)
    return values


def map_batch(
    raws: list[dict[str, Any]],
    *,
    parse: Callable[[dict[str, Any]], Any],
    mapper: Callable[[Any], Any],
    source_id: Callable[[dict[str, Any]], str],
) -> MapResult:
    """Parse (source model) and map (canonical view) a batch; rejects keep their reasons."""
    result: MapResult = MapResult()
    for raw in raws:
        try:
            record = mapper(parse(raw))
        except SchemaError as exc:
            result.rejected.append(
                Rejected(source_id(raw), raw, [{"rule": "schema", "message": str(exc)}])
            )
        except MappingFailed as exc:
            result.rejected.append(Rejected(source_id(raw), raw, exc.violations))
        else:
            result.records.append(record)
            result.raws.append(raw)
    return result


def clean(value: Any) -> str | None:
    """A trimmed string, or None for missing/blank values."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
