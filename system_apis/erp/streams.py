"""ERP streams: keyset-paged, resumable reads of customers, items and stock.

:func:`read_stream` is the one entry point the process layer calls. It yields
:class:`Page` objects - rows as plain dicts keyed by column name, values as the driver
returns them (``Decimal``, naive UTC ``datetime``, strings as typed), an opaque cursor
to resume right after the page, the page's high-water ``LAST_MOD`` and whether more
follows. One query per page, so memory stays flat however large the table is.

Keyset paging
-------------
Rows are read in ``(LAST_MOD, key...)`` order with
``WHERE (LAST_MOD, key...) > (:last_mod, :key...) ORDER BY LAST_MOD, key... LIMIT n``,
served by the ``(LAST_MOD, key)`` index of each table. Because the application only ever
moves ``LAST_MOD`` forward, a row updated while a read is paging moves *ahead* of the
read's position: if it was not read yet it is read once, in its new state; if it was
already read it is read again (a duplicate the hub's upsert by key removes). No row is
lost, and ties on ``LAST_MOD`` are broken by the key. (A row whose write commits
with a ``LAST_MOD`` older than rows already committed can still slip behind a running
read; incremental reads with the caller's lookback window pick it up.)

Modes
-----
``full``
    Every row, from the start of the ``(LAST_MOD, key)`` order.
``incremental``
    Rows with ``LAST_MOD >= since`` (an aware datetime, or naive UTC; the caller has
    already subtracted its lookback window). Without ``since`` it is a full read.

Both read until the table is caught up: the last page has ``has_more=False``.

Cursors
-------
An opaque string (compact JSON today) naming the stream, the mode, the ``since`` the read
started with and the ``(LAST_MOD, key)`` position after the page. Passing it back resumes
right after that page, in this or another process (the key columns are strings in
this schema; the position stores them as such); the cursor's ``since`` wins over the
argument so a resumed read continues the same listing.

Schema drift
------------
The table is reflected at the start of each read and every column is selected, so a
column added by the ERP team appears in the records and in :func:`fingerprint`.
:func:`parse_record` turns a row into its model or raises
:class:`~interchange.errors.SchemaError` naming the fields (never the values).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, Literal

import sqlalchemy as sa
import sqlalchemy.exc
from pydantic import ValidationError

from interchange import drift
from interchange.errors import ConfigError, SchemaError
from interchange.records import schema_error
from interchange.streams import InvalidCursor, Page
from system_apis.erp.client import translate_db_error
from system_apis.erp.models import ErpCustomer, ErpItem, ErpModel, ErpStock

__all__ = [
    "MAX_PAGE_SIZE",
    "STREAMS",
    "InvalidCursor",
    "Mode",
    "Page",
    "StreamSpec",
    "diff_fields",
    "fingerprint",
    "parse_record",
    "read_stream",
]

log = logging.getLogger("system_apis.erp.streams")

Mode = Literal["full", "incremental"]

MAX_PAGE_SIZE = 10_000
MOD_COLUMN = "LAST_MOD"
SOURCE = "erp"
_CURSOR_VERSION = 1


@dataclass(frozen=True)
class StreamSpec:
    """One stream: its table, key columns (in order) and model."""

    name: str
    table: str
    key: tuple[str, ...]
    model: type[ErpModel]


STREAMS: dict[str, StreamSpec] = {
    "customers": StreamSpec("customers", "CUST_MASTER", ("CUST_NO",), ErpCustomer),
    "items": StreamSpec("items", "ITEM_MASTER", ("ITEM_NO",), ErpItem),
    "stock": StreamSpec("stock", "STOCK", ("ITEM_NO", "WAREHOUSE"), ErpStock),
}






@dataclass(frozen=True)
class _Cursor:
    stream: str
    mode: Mode
    since: datetime | None = None  # naive UTC
    last_mod: datetime | None = None  # naive UTC
    key: tuple[str, ...] | None = None

    def encode(self) -> str:
        body = {
            "v": _CURSOR_VERSION,
            "stream": self.stream,
            "mode": self.mode,
            "since": self.since.isoformat() if self.since else None,
            "at": [self.last_mod.isoformat(), *self.key] if self.last_mod and self.key else None,
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str, spec: StreamSpec) -> _Cursor:
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            mode = body["mode"]
            if mode not in ("full", "incremental"):
                raise ValueError("unknown mode")
            since = datetime.fromisoformat(body["since"]) if body.get("since") else None
            at = body.get("at")
            last_mod = key = None
            if at is not None:
                if not isinstance(at, list) or len(at) != len(spec.key) + 1:
                    raise ValueError("position does not match the stream's key")
                if not all(isinstance(v, str) for v in at):
                    raise ValueError("position values must be strings")
                last_mod, key = datetime.fromisoformat(at[0]), tuple(at[1:])
            return cls(str(body["stream"]), mode, since, last_mod, key)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor(f"not an ERP stream cursor ({exc})") from None


# --------------------------------------------------------------------------- reading


def read_stream(
    conn_or_engine: sa.Connection | sa.Engine,
    stream: str,
    *,
    mode: Mode = "full",
    cursor: str | None = None,
    since: datetime | None = None,
    page_size: int = 1000,
) -> Iterator[Page]:
    """Yield the pages of ``stream`` (``customers``, ``items`` or ``stock``).

    ``conn_or_engine``: with an engine, each page borrows a pooled connection only for
    its query (nothing is held between pages); with a connection, every page runs on
    it. ``mode``/``since``/``cursor`` as in the module docstring; ``since`` is ignored in
    full mode. Arguments are checked when this is called; queries start on iteration.
    Database errors surface as :mod:`interchange.errors` types.
    """
    spec = _spec(stream)
    if mode not in ("full", "incremental"):
        raise ConfigError(f"unknown read mode {mode!r} (expected 'full' or 'incremental')")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if since is not None and not isinstance(since, datetime):
        raise ConfigError("since must be a datetime (aware, or naive UTC)")
    if cursor is not None:
        state = _Cursor.decode(cursor, spec)
        if state.stream != spec.name:
            raise InvalidCursor(f"cursor belongs to stream {state.stream!r}, not {spec.name!r}")
        if state.mode != mode:
            raise InvalidCursor(f"cursor comes from a {state.mode} read, not a {mode} one")
    else:
        start = _naive_utc(since) if mode == "incremental" and since is not None else None
        state = _Cursor(stream=spec.name, mode=mode, since=start)
    return _read(conn_or_engine, spec, state, page_size)


def _read(
    bind: sa.Connection | sa.Engine, spec: StreamSpec, state: _Cursor, page_size: int
) -> Iterator[Page]:
    table: sa.Table | None = None
    # The page query is built once per read and shape (first page / after a position)
    # and executed with the position as parameters: building and cache-keying a new
    # statement per page cost about a tenth of a full read on SQLite.
    queries: dict[bool, sa.Select] = {}
    while True:
        positioned = state.last_mod is not None and state.key is not None
        try:
            with _connection(bind) as conn:
                if table is None:
                    table = sa.Table(spec.table, sa.MetaData(), autoload_with=conn)
                    _check_columns(spec, table)
                query = queries.get(positioned)
                if query is None:
                    query = queries[positioned] = _page_query(
                        spec, table, since=state.since is not None, positioned=positioned,
                        limit=page_size + 1,
                    )
                result = conn.execute(query, _page_params(state))
                columns = [str(k) for k in result.keys()]
                rows = result.all()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise translate_db_error(exc, source=SOURCE, what=f"reading {spec.table}") from None
        more = len(rows) > page_size
        # map/zip rather than a comprehension with zip(strict=True): measurably faster
        records = list(map(dict, map(zip, repeat(columns), rows[:page_size])))
        if records:
            last = records[-1]
            state = _Cursor(
                stream=state.stream,
                mode=state.mode,
                since=state.since,
                last_mod=last[MOD_COLUMN],
                key=tuple(str(last[k]) for k in spec.key),
            )
        yield Page(
            records=records,
            cursor=state.encode() if state.last_mod is not None else None,
            high_water=_aware(records[-1][MOD_COLUMN]) if records else None,
            has_more=more,
        )
        if not more:
            return


class _Borrowed:
    """A caller's connection used as a context manager without closing it."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sa.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def _connection(bind: sa.Connection | sa.Engine) -> Any:
    return bind.connect() if isinstance(bind, sa.Engine) else _Borrowed(bind)


def _page_query(
    spec: StreamSpec, table: sa.Table, *, since: bool, positioned: bool, limit: int
) -> sa.Select:
    """The page query with named parameters (see :func:`_page_params`): ``since`` adds
    ``LAST_MOD >= :erp_since``, ``positioned`` the keyset condition
    ``(LAST_MOD, key...) > (:erp_at_mod, :erp_at_0...)``."""
    mod = table.c[MOD_COLUMN]
    keys = [table.c[k] for k in spec.key]
    query = sa.select(table)
    if since:
        query = query.where(mod >= sa.bindparam("erp_since", type_=mod.type))
    if positioned:
        position = [sa.bindparam("erp_at_mod", type_=mod.type)] + [
            sa.bindparam(f"erp_at_{i}", type_=c.type) for i, c in enumerate(keys)
        ]
        query = query.where(sa.tuple_(mod, *keys) > sa.tuple_(*position))
    return query.order_by(mod, *keys).limit(limit)


def _page_params(state: _Cursor) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if state.since is not None:
        params["erp_since"] = state.since
    if state.last_mod is not None and state.key is not None:
        params["erp_at_mod"] = state.last_mod
        params.update({f"erp_at_{i}": v for i, v in enumerate(state.key)})
    return params


def _check_columns(spec: StreamSpec, table: sa.Table) -> None:
    missing = [c for c in (MOD_COLUMN, *spec.key) if c not in table.c]
    if missing:
        raise SchemaError(
            f"erp {spec.name}: table {spec.table} lacks the paging column(s) {missing}"
        )


def _spec(stream: str) -> StreamSpec:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ConfigError(
            f"unknown ERP stream {stream!r} (have: {', '.join(sorted(STREAMS))})"
        ) from None


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- parsing


def parse_record(stream: str, raw: Any) -> ErpModel:
    """Validate one row of ``stream`` into its source-shaped model.

    Raises :class:`~interchange.errors.SchemaError` naming the record key, the fields
    and what is wrong with them - never the values. The structured list is on the
    exception's ``problems`` attribute.
    """
    spec = _spec(stream)
    if not isinstance(raw, Mapping):
        raise SchemaError(f"erp {stream}: record is a {type(raw).__name__}, not a row mapping")
    try:
        return spec.model.model_validate(dict(raw))
    except ValidationError as exc:
        key = [raw.get(k) for k in spec.key]
        record_id = "/".join(str(k) for k in key) if all(isinstance(k, str) for k in key) else None
        raise schema_error("erp", stream, record_id, spec.model.__name__, exc,
                           type_name=_type_name) from None


# --------------------------------------------------------------------------- drift


def _type_name(value: Any) -> str:
    """Database value types; plain JSON-like values are named as :mod:`interchange.drift` does."""
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, bytes | bytearray | memoryview):
        return "binary"
    return drift.json_type(value)


def fingerprint(records: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """The column set of ``records`` with value types (``string``, ``integer``,
    ``decimal``, ``number``, ``datetime``, ``date``, ``boolean``, ``binary``) and its
    stable hash, equal on SQLite and PostgreSQL (see :mod:`interchange.drift`)."""
    return drift.fingerprint(records, type_name=_type_name, fold_numbers=False)


diff_fields = drift.diff_fields
