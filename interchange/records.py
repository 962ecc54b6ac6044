"""Validating source records, and turning a pydantic failure into a SchemaError.

Every system API validates raw records into source-shaped models; when one does not
fit, the error must name the record, the fields and what is wrong with them - never
the values (they may be personal data). The structured list rides on the
exception's ``problems`` attribute, with ``stream`` and ``record_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from interchange.drift import json_type
from interchange.errors import SchemaError


def schema_error(
    source: str,
    stream: str,
    record_id: str | None,
    model_name: str,
    exc: ValidationError,
    *,
    type_name: Callable[[Any], str] = json_type,
) -> SchemaError:
    problems = []
    for err in exc.errors(include_url=False, include_context=False, include_input=True):
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        msg = err["msg"]
        if err["loc"]:
            msg = f"{msg} (got {type_name(err.get('input'))})"
        problems.append({"field": loc, "problem": msg, "type": err["type"]})
    what = f"record {record_id!r}" if record_id else "record without an id"
    shown = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    if len(problems) > 5:
        shown += f"; and {len(problems) - 5} more"
    error = SchemaError(f"{source} {stream} {what} does not fit {model_name}: {shown}")
    error.stream = stream  # type: ignore[attr-defined]
    error.record_id = record_id  # type: ignore[attr-defined]
    error.problems = problems  # type: ignore[attr-defined]
    return error


def validate_record(
    source: str,
    stream: str,
    raw: Any,
    model: Any,
    *,
    record_id: Callable[[Any], str | None],
) -> Any:
    """``raw`` (decoded JSON) validated into the pydantic ``model``, or a
    :class:`SchemaError` naming the record (``record_id(raw)``), the fields and the
    problems - never the values."""
    if not isinstance(raw, dict):
        raise SchemaError(f"{source} {stream}: record is a JSON {json_type(raw)}, not an object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise schema_error(source, stream, record_id(raw), model.__name__, exc) from None
