"""The sandbox's state: one SQLite table per resource, keyset paging by id.

Every resource row keeps its JSON body plus the columns the API filters and pages on:
``id``, ``created_ts`` / ``updated_ts`` (epoch seconds) and, for orders, ``status``.
Paging is by ``id`` (keyset), so a page costs one index range scan whatever the depth
and records changing between pages never shift the listing. Inventory levels are keyed
by ``(inventory_item_id, location_id)`` and paged by their row id.

A single connection is shared under a lock (FastAPI runs sync routes in a thread pool);
``:memory:`` by default, a file path for state that survives a restart.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from sandboxes.shopify import seed as seed_data

__all__ = ["RESOURCES", "ShopifyStore", "parse_ts"]

RESOURCES = ("customers", "products", "orders", "locations", "inventory_levels")
_ENTITY_TABLES = ("customers", "products", "orders", "locations")


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def parse_ts(text: str) -> float:
    """ISO 8601 (offset, ``Z`` or naive = UTC) to epoch seconds; ValueError if invalid."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _order_status(body: dict[str, Any]) -> str:
    if body.get("cancelled_at"):
        return "cancelled"
    if body.get("closed_at"):
        return "closed"
    return "open"


class ShopifyStore:
    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._create()

    def _create(self) -> None:
        with self._lock:
            for table in _ENTITY_TABLES:
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, "  # noqa: S608
                    "created_ts REAL NOT NULL, updated_ts REAL NOT NULL, status TEXT, "
                    "body TEXT NOT NULL)"
                )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS inventory_levels (id INTEGER PRIMARY KEY, "
                "inventory_item_id INTEGER NOT NULL, location_id INTEGER NOT NULL, "
                "created_ts REAL NOT NULL, updated_ts REAL NOT NULL, status TEXT, "
                "body TEXT NOT NULL, UNIQUE (inventory_item_id, location_id))"
            )
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS inventory_levels_location "
                "ON inventory_levels (location_id, id)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS inventory_items (id INTEGER PRIMARY KEY)")

    # ------------------------------------------------------------------ seeding

    def reset(self) -> None:
        with self._lock:
            for table in (*RESOURCES, "inventory_items"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names

    def seed(self, records: int, *, seed: int = 42) -> dict[str, int]:
        """Replace the state with :func:`sandboxes.shopify.seed.generate` data."""
        return self.load(seed_data.generate(records, seed=seed))

    def load(self, objects: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
        """Replace the state with ``(resource, object)`` pairs (e.g. a seeded world)."""
        batches: dict[str, list[tuple]] = {name: [] for name in RESOURCES}
        items: list[tuple[int]] = []
        with self._lock:
            self.reset()
            self._db.execute("BEGIN")
            try:
                for resource, body in objects:
                    if resource not in batches:
                        raise ValueError(f"unknown resource {resource!r}")
                    batches[resource].append(self._row(resource, body))
                    if resource == "products":
                        items.extend((v["inventory_item_id"],) for v in body["variants"])
                    if len(batches[resource]) >= 5000:
                        self._insert(resource, batches[resource])
                        batches[resource] = []
                for resource, rows in batches.items():
                    self._insert(resource, rows)
                self._db.executemany("INSERT INTO inventory_items (id) VALUES (?)", items)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.counts()

    @staticmethod
    def _row(resource: str, body: dict[str, Any]) -> tuple:
        updated = parse_ts(body["updated_at"])
        created = parse_ts(body.get("created_at") or body["updated_at"])
        text = _dumps(body)
        if resource == "inventory_levels":
            return (body["inventory_item_id"], body["location_id"], created, updated, None, text)
        status = _order_status(body) if resource == "orders" else None
        return (body["id"], created, updated, status, text)

    def _insert(self, resource: str, rows: list[tuple]) -> None:
        if not rows:
            return
        if resource == "inventory_levels":
            self._db.executemany(
                "INSERT INTO inventory_levels (inventory_item_id, location_id, created_ts, "
                "updated_ts, status, body) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        else:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {resource} (id, created_ts, updated_ts, status, body) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            out = {
                t: self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in (*RESOURCES, "inventory_items")
            }
        return out

    # ------------------------------------------------------------------ reading

    def page(
        self,
        resource: str,
        *,
        limit: int,
        after: int | None = None,
        before: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """Up to ``limit`` ``(key, body)`` rows after ``after`` (ascending) or before
        ``before`` (the page just before it, still returned ascending), and whether
        more rows lie beyond in the direction of travel."""
        where, args = self._where(resource, filters or {})
        backwards = before is not None
        if after is not None:
            where.append("id > ?")
            args.append(after)
        if backwards:
            where.append("id < ?")
            args.append(before)
        sql = f"SELECT id, body FROM {resource}"  # noqa: S608 - resource is whitelisted
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {'DESC' if backwards else 'ASC'} LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        return [(key, orjson.loads(body)) for key, body in rows], more

    def exists(self, resource: str, *, before: int | None = None, after: int | None = None,
               filters: dict[str, Any] | None = None) -> bool:  # fmt: skip
        where, args = self._where(resource, filters or {})
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if after is not None:
            where.append("id > ?")
            args.append(after)
        sql = f"SELECT 1 FROM {resource}"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            return self._db.execute(sql + " LIMIT 1", args).fetchone() is not None

    @staticmethod
    def _where(resource: str, filters: dict[str, Any]) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        for name, column, op in (
            ("updated_at_min", "updated_ts", ">="),
            ("updated_at_max", "updated_ts", "<="),
            ("created_at_min", "created_ts", ">="),
            ("created_at_max", "created_ts", "<="),
        ):
            if filters.get(name) is not None:
                where.append(f"{column} {op} ?")
                args.append(filters[name])
        if filters.get("since_id") is not None:
            where.append("id > ?")
            args.append(filters["since_id"])
        if resource == "orders" and filters.get("status", "open") != "any":
            where.append("status = ?")
            args.append(filters.get("status", "open"))
        if resource == "products" and filters.get("status"):
            statuses = [s.strip() for s in str(filters["status"]).split(",") if s.strip()]
            where.append(f"json_extract(body, '$.status') IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        for name, column in (("location_ids", "location_id"),
                             ("inventory_item_ids", "inventory_item_id")):  # fmt: skip
            if filters.get(name):
                ids = list(filters[name])
                where.append(f"{column} IN ({','.join('?' * len(ids))})")
                args.extend(ids)
        return where, args

    def get(self, resource: str, key: int) -> dict[str, Any] | None:
        with self._lock:
            sql = f"SELECT body FROM {resource} WHERE id = ?"  # noqa: S608 - whitelisted name
            row = self._db.execute(sql, (key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    # ------------------------------------------------------------------ writing

    def touch(self, resource: str, ids: Iterable[int], changes: dict[str, Any]) -> int:
        """Apply ``changes`` to top-level fields and stamp ``updated_at`` now."""
        now = time.time()
        stamp = seed_data.format_ts(datetime.fromtimestamp(now, UTC))
        done = 0
        with self._lock:
            for key in ids:
                body = self.get(resource, int(key))
                if body is None:
                    continue
                body.update(changes)
                body["updated_at"] = stamp
                status = _order_status(body) if resource == "orders" else None
                self._db.execute(
                    f"UPDATE {resource} SET updated_ts = ?, status = ?, body = ? "  # noqa: S608
                    "WHERE id = ?",
                    (now, status, _dumps(body), int(key)),
                )
                done += 1
        return done

    def has_location(self, location_id: int) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM locations WHERE id = ?", (location_id,)).fetchone()
                is not None
            )

    def has_item(self, item_id: int) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM inventory_items WHERE id = ?", (item_id,)
                ).fetchone()
                is not None
            )

    def set_level(self, item_id: int, location_id: int, available: int) -> dict[str, Any]:
        """Set (or connect) a level; unchanged values keep their ``updated_at``."""
        now = time.time()
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM inventory_levels WHERE inventory_item_id = ? AND location_id = ?",
                (item_id, location_id),
            ).fetchone()
            if row is not None:
                body = orjson.loads(row[0])
                if body.get("available") == available:
                    return body
                body["available"] = available
                body["updated_at"] = seed_data.format_ts(datetime.fromtimestamp(now, UTC))
                self._db.execute(
                    "UPDATE inventory_levels SET updated_ts = ?, body = ? "
                    "WHERE inventory_item_id = ? AND location_id = ?",
                    (now, _dumps(body), item_id, location_id),
                )
                return body
            body = {
                "inventory_item_id": item_id,
                "location_id": location_id,
                "available": available,
                "updated_at": seed_data.format_ts(datetime.fromtimestamp(now, UTC)),
            }
            self._db.execute(
                "INSERT INTO inventory_levels (inventory_item_id, location_id, created_ts, "
                "updated_ts, status, body) VALUES (?, ?, ?, ?, NULL, ?)",
                (item_id, location_id, now, now, _dumps(body)),
            )
            return body

    def close(self) -> None:
        with self._lock:
            self._db.close()
