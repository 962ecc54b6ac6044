"""SQLite state of the HubSpot sandbox: one ``objects`` table, JSON properties per row.

Rows are keyed by ``(type, id)``; the e-mail (trimmed, lower-cased) and the
last-modified time have their own indexed columns because they are what paging, search
windows and upserts by e-mail hit, so the store stays fast at 100,000+ records. Seeding
uses ``executemany`` in one transaction. One connection behind a lock: the sandbox is a
development tool, and SQLite serialises writers anyway.

Search filters are translated to SQL here (HubSpot operators on the indexed columns or on
``json_extract`` of the properties); the HTTP layer owns the contract (limits, caps, errors).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OBJECT_TYPES = ("contacts", "companies")

# properties backed by a real column: name -> (column, kind)
_COLUMNS: dict[str, tuple[str, str]] = {
    "hs_lastmodifieddate": ("updated", "date"),
    "lastmodifieddate": ("updated", "date"),
    "createdate": ("created", "date"),
    "hs_object_id": ("id", "int"),
    "email": ("email_key", "email"),
}
# Only validated property names (``_check``) and fixed column names are interpolated.
_SELECT = "SELECT id, created, updated, archived, props FROM objects"
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    type TEXT NOT NULL,
    id INTEGER NOT NULL,
    email_key TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    props TEXT NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE INDEX IF NOT EXISTS objects_updated ON objects (type, updated, id);
CREATE INDEX IF NOT EXISTS objects_email ON objects (type, email_key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class QueryError(ValueError):
    """A search request the store cannot run (unknown operator, bad value...)."""


@dataclass(frozen=True)
class Row:
    id: int
    created: int
    updated: int
    archived: bool
    properties: dict[str, Any]


def iso(ms: int) -> str:
    """Milliseconds since the epoch -> HubSpot's ``2025-01-01T00:00:00.000Z``."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: Any) -> int:
    """A filter value for a date property: epoch milliseconds or an ISO 8601 string."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"{value!r} is not a valid date (epoch ms or ISO 8601)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def email_key(value: Any) -> str | None:
    return str(value).strip().lower() if value not in (None, "") else None


def now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM meta")

    def insert_many(
        self, object_type: str, rows: Iterable[tuple[dict[str, Any], int, int]]
    ) -> int:
        """Bulk insert ``(properties, created_ms, updated_ms)`` with fresh ids."""
        with self._lock:
            start = self._next_id(object_type)
            params = [
                (object_type, start + i, email_key(props.get("email")), created, updated,
                 json.dumps(props, separators=(",", ":")))
                for i, (props, created, updated) in enumerate(rows)
            ]  # fmt: skip
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO objects (type, id, email_key, created, updated, props)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                params,
            )
            self._db.execute("COMMIT")
            return len(params)

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def upsert_by_email(
        self, object_type: str, inputs: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[tuple[Row, bool]]:
        """Create or update by e-mail in one transaction; returns ``(row, created)``.

        Updates merge the given properties; the modification time moves only when a
        value actually changes, so repeating a batch leaves the store as it was.
        """
        out: list[tuple[Row, bool]] = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                next_id = self._next_id(object_type)
                for email, props in inputs:
                    key = email_key(email)
                    found = self._db.execute(
                        "SELECT id, created, updated, archived, props FROM objects"
                        " WHERE type = ? AND email_key = ? AND archived = 0 ORDER BY id LIMIT 1",
                        (object_type, key),
                    ).fetchone()
                    if found is None:
                        merged = {**props, "email": props.get("email", email)}
                        ts = now_ms()
                        self._db.execute(
                            "INSERT INTO objects (type, id, email_key, created, updated, props)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (object_type, next_id, email_key(merged["email"]), ts, ts,
                             json.dumps(merged)),
                        )  # fmt: skip
                        out.append((Row(next_id, ts, ts, False, merged), True))
                        next_id += 1
                        continue
                    row = _row(found)
                    merged = {**row.properties, **props}
                    updated = row.updated
                    if merged != row.properties:
                        updated = max(now_ms(), row.updated + 1)
                        self._db.execute(
                            "UPDATE objects SET props = ?, updated = ?, email_key = ?"
                            " WHERE type = ? AND id = ?",
                            (json.dumps(merged), updated, email_key(merged.get("email")),
                             object_type, row.id),
                        )  # fmt: skip
                    out.append((Row(row.id, row.created, updated, False, merged), False))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def touch(self, object_type: str, ids: Sequence[int], properties: dict[str, Any]) -> int:
        """Test helper: merge ``properties`` into some rows and bump their modification."""
        with self._lock:
            self._db.execute("BEGIN")
            n = 0
            for object_id in ids:
                found = self._db.execute(
                    "SELECT id, created, updated, archived, props FROM objects"
                    " WHERE type = ? AND id = ?",
                    (object_type, object_id),
                ).fetchone()
                if found is None:
                    continue
                row = _row(found)
                self._db.execute(
                    "UPDATE objects SET props = ?, updated = ? WHERE type = ? AND id = ?",
                    (json.dumps({**row.properties, **properties}),
                     max(now_ms(), row.updated + 1), object_type, object_id),
                )  # fmt: skip
                n += 1
            self._db.execute("COMMIT")
            return n

    # -- reads ----------------------------------------------------------------------

    def count(self, object_type: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM objects WHERE type = ?", (object_type,)
            ).fetchone()[0]

    def page(self, object_type: str, *, after: int, limit: int, archived: bool) -> list[Row]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created, updated, archived, props FROM objects"
                " WHERE type = ? AND archived = ? AND id > ? ORDER BY id LIMIT ?",
                (object_type, int(archived), after, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def get(self, object_type: str, object_id: str, *, id_property: str | None = None,
            archived: bool = False) -> Row | None:  # fmt: skip
        if id_property in (None, "hs_object_id"):
            if not str(object_id).isdigit():
                return None
            where, value = "id = ?", int(object_id)
        elif id_property == "email":
            where, value = "email_key = ?", email_key(object_id)
        else:
            where, value = f"json_extract(props, '$.{_check(id_property)}') = ?", object_id
        with self._lock:
            sql = f"{_SELECT} WHERE type = ? AND archived = ? AND {where} ORDER BY id LIMIT 1"
            found = self._db.execute(sql, (object_type, int(archived), value)).fetchone()
        return _row(found) if found else None

    def search(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[dict[str, Any]],
        sorts: Sequence[tuple[str, bool]],
        query: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Row], int]:
        """``sorts`` as ``(property, descending)``; returns ``(rows, total)``."""
        where = ["type = ?", "archived = 0"]
        params: list[Any] = [object_type]
        groups = []
        for group in filter_groups:
            parts = []
            for flt in group.get("filters") or []:
                sql, values = _filter_sql(flt)
                parts.append(sql)
                params.extend(values)
            if parts:
                groups.append("(" + " AND ".join(parts) + ")")
        if groups:
            where.append("(" + " OR ".join(groups) + ")")
        if query:
            like = f"%{query.strip().lower()}%"
            fields = ["email_key"] + [
                f"lower(json_extract(props, '$.{p}'))"
                for p in ("firstname", "lastname", "name", "domain", "phone")
            ]
            where.append("(" + " OR ".join(f"{f} LIKE ?" for f in fields) + ")")
            params.extend([like] * len(fields))
        order = [f"{_sort_sql(prop)} {'DESC' if desc else 'ASC'}" for prop, desc in sorts]
        order.append("id ASC")
        clause = " AND ".join(where)
        with self._lock:
            count_sql = f"SELECT COUNT(*) FROM objects WHERE {clause}"  # noqa: S608
            total = self._db.execute(count_sql, params).fetchone()[0]
            sql = f"{_SELECT} WHERE {clause} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
            rows = self._db.execute(sql, [*params, limit, offset]).fetchall()
        return [_row(r) for r in rows], total

    def _next_id(self, object_type: str) -> int:
        (top,) = self._db.execute(
            "SELECT MAX(id) FROM objects WHERE type = ?", (object_type,)
        ).fetchone()
        return (top or 0) + 1


def _row(found: tuple) -> Row:
    return Row(found[0], found[1], found[2], bool(found[3]), json.loads(found[4]))


def _check(prop: Any) -> str:
    if not isinstance(prop, str) or not _PROPERTY_NAME.match(prop):
        raise QueryError(f"invalid property name {prop!r}")
    return prop


def _sort_sql(prop: str) -> str:
    if prop in _COLUMNS:
        return _COLUMNS[prop][0]
    return f"json_extract(props, '$.{_check(prop)}')"


def _coerce(prop: str, value: Any) -> Any:
    column = _COLUMNS.get(prop)
    if column is None:
        return str(value)
    kind = column[1]
    if kind == "date":
        return to_ms(value)
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise QueryError(f"{value!r} is not a valid object id") from exc
    return email_key(value)


_OPS = {"EQ": "=", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}


def _filter_sql(flt: dict[str, Any]) -> tuple[str, list[Any]]:
    prop = _check(flt.get("propertyName"))
    op = flt.get("operator")
    expr = _sort_sql(prop)
    if op == "HAS_PROPERTY":
        return f"({expr} IS NOT NULL AND {expr} != '')", []
    if op == "NOT_HAS_PROPERTY":
        return f"({expr} IS NULL OR {expr} = '')", []
    if op in _OPS:
        if "value" not in flt or flt["value"] is None:
            raise QueryError(f"operator {op} needs a value")
        value = _coerce(prop, flt["value"])
        if prop not in _COLUMNS and op not in ("EQ", "NEQ") and _is_number(value):
            expr, value = f"CAST({expr} AS REAL)", float(value)
        if op == "NEQ":
            return f"({expr} IS NULL OR {expr} != ?)", [value]
        return f"{expr} {_OPS[op]} ?", [value]
    if op == "BETWEEN":
        low, high = _coerce(prop, flt.get("value")), _coerce(prop, flt.get("highValue"))
        return f"{expr} BETWEEN ? AND ?", [low, high]
    if op in ("IN", "NOT_IN"):
        values = [_coerce(prop, v) for v in flt.get("values") or []]
        if not values:
            raise QueryError(f"operator {op} needs values")
        marks = ", ".join("?" * len(values))
        return f"{expr} {'NOT ' if op == 'NOT_IN' else ''}IN ({marks})", values
    raise QueryError(f"unsupported operator {op!r}")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
