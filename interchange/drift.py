"""Schema-drift fingerprints shared by every system API.

A stream's *field set* is the fields seen in a batch with the types of their values;
its fingerprint is a stable hash of that set. Comparing two field sets tells what a
source added, dropped or retyped. ``null`` says nothing about a type: a field seen
only as null is typed ``null``, and null never counts as a retype.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def fingerprint(
    records: Iterable[Mapping[str, Any]],
    *,
    type_name: Callable[[Any], str] = json_type,
    fold_numbers: bool = True,
    expand: Callable[[str, Any], Iterable[tuple[str, Any]]] | None = None,
) -> tuple[str, dict[str, str]]:
    """``(16 hex digits of SHA-256, {field: type})`` for the fields of ``records``.

    A field's type is the set of type names seen for it, ``|``-joined and sorted
    (``integer`` folds into ``number`` when both occur and ``fold_numbers``). ``expand``
    names nested fields to track as well (HubSpot's ``properties.<name>``).
    """
    seen: dict[str, set[str]] = {}
    for record in records:
        for name, value in record.items():
            seen.setdefault(str(name), set()).add(type_name(value))
            if expand is not None:
                for sub, sub_value in expand(str(name), value):
                    seen.setdefault(sub, set()).add(type_name(sub_value))
    fields: dict[str, str] = {}
    for name in sorted(seen):
        types = seen[name] - {"null"} or {"null"}
        if fold_numbers and {"integer", "number"} <= types:
            types.discard("integer")
        fields[name] = "|".join(sorted(types))
    digest = hashlib.sha256(
        json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    return digest, fields


def diff_fields(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{"added": {f: t}, "missing": {f: t}, "retyped": {f: {"old", "new"}}}``."""
    return {
        "added": {k: new[k] for k in sorted(new.keys() - old.keys())},
        "missing": {k: old[k] for k in sorted(old.keys() - new.keys())},
        "retyped": {
            k: {"old": old[k], "new": new[k]}
            for k in sorted(old.keys() & new.keys())
            if old[k] != new[k] and "null" not in (old[k], new[k])
        },
    }
