"""The Shopify Admin REST sandbox application: :func:`create_app`.

Contract (what a client written for Shopify sees)
-------------------------------------------------
* ``GET /admin/api/{version}/{customers,products,orders,locations,inventory_levels}.json``
  with ``version`` a stable release from 2024-01 to 2025-10 (``YYYY-01|04|07|10``),
  anything else 404 ``{"errors": "Not Found"}``. Every answer names the version in
  ``X-Shopify-API-Version``. Single objects: ``GET .../{resource}/{id}.json``.
* ``X-Shopify-Access-Token`` must be the configured token, else 401
  ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
  password)"}``.
* Cursor paging: ``limit`` 1-250 (default 50; larger values are capped at 250), records
  in ascending ``id`` order, ``Link: <...page_info=...>; rel="previous", <...>;
  rel="next"``. A ``page_info`` carries the query's filters, so a request with
  ``page_info`` accepts only ``limit`` and ``fields``; anything else is 400 like
  Shopify. Filters: ``updated_at_min/max``, ``created_at_min/max`` (ISO 8601 with
  offset), ``since_id``, ``fields``; orders take ``status`` (``open`` by default,
  ``closed``, ``cancelled``, ``any``); products ``status``; inventory levels need
  ``location_ids`` or ``inventory_item_ids`` (422 otherwise).
* Leaky bucket per access token: ``bucket_size`` (40) requests, leaking ``leak_rate``
  (2/s). Each answer carries ``X-Shopify-Shop-Api-Call-Limit: used/size``; a request
  into a full bucket gets 429 with ``Retry-After: 2.0`` and Shopify's error body.
* ``POST /admin/api/{version}/inventory_levels/set.json`` with ``{"location_id",
  "inventory_item_id", "available"}`` answers ``{"inventory_level": {...}}``; setting
  the value a level already has changes nothing (``updated_at`` included).

Sandbox controls (no token needed)
----------------------------------
``GET|POST /_sandbox/config`` - knobs: ``latency_ms``, ``error_rate`` (share of 500s),
``rate_429`` (share of 429s), ``throttle_next`` (exactly the next N API requests get
429), ``retry_after`` (seconds sent in ``Retry-After``), ``bucket_size``, ``leak_rate``,
``chaos_seed`` and ``drift`` - per resource ``{"renamed": {old: new}, "removed": [..],
"retyped": {field: "string"|"number"|"integer"|"array"}}``.
``POST /_sandbox/seed`` ``{"records", "seed"}`` replaces the data and answers the
``expected`` counts; ``POST /_sandbox/load`` ``{"objects": [[resource, object]]}`` replaces
it with given objects (a seeded world); ``POST /_sandbox/reset`` restores the start-up
data and knobs;
``POST /_sandbox/touch`` ``{"resource", "ids", "changes"}`` edits records as a merchant
would (``updated_at`` = now); ``POST /_sandbox/token`` ``{"token"}`` rotates the accepted
access token (the old one gets 401 from then on); ``GET|DELETE /_sandbox/stats`` counts
API answers.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandboxes.shopify import DEFAULT_TOKEN
from sandboxes.shopify.seed import LOCATION_ID0, LOCATIONS
from sandboxes.shopify.store import ShopifyStore, parse_ts

__all__ = ["DEFAULT_KNOBS", "SUPPORTED_VERSIONS", "create_app"]

SUPPORTED_VERSIONS = tuple(
    f"{year}-{month:02d}" for year in (2024, 2025) for month in (1, 4, 7, 10)
)
LIST_RESOURCES = ("customers", "products", "orders", "locations", "inventory_levels")
SINGLE_KEYS = {"customers": "customer", "products": "product", "orders": "order",
               "locations": "location"}  # fmt: skip
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
PAGE_INFO_PARAMS = frozenset({"page_info", "limit", "fields"})
FILTER_TIMES = ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max")
AUTH_ERROR = "[API] Invalid API key or access token (unrecognized login or wrong password)"
THROTTLE_ERROR = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)
DEFAULT_KNOBS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "rate_429": 0.0,
    "throttle_next": 0,
    "retry_after": 2.0,
    "bucket_size": 40,
    "leak_rate": 2.0,
    "chaos_seed": 0,
    "drift": {},
}


class _Reject(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.response = JSONResponse(body, status_code=status, headers=headers or {})


class _Sandbox:
    """Everything the routes share: store, knobs, buckets, stats."""

    def __init__(
        self, *, token: str, records: int, seed: int, db: str, knobs: dict[str, Any]
    ) -> None:
        self.token = token
        self.records = records
        self.seed_value = seed
        self.store = ShopifyStore(db)
        self.lock = threading.Lock()
        self.initial_knobs = {**json.loads(json.dumps(DEFAULT_KNOBS)), **knobs}
        self.knobs: dict[str, Any] = json.loads(json.dumps(self.initial_knobs))
        self.rng = random.Random(0)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.stats: Counter[str] = Counter()
        self.expected = self.store.seed(records, seed=seed)

    # -------------------------------------------------------------- guard

    def guard(self, request: Request, version: str) -> dict[str, str]:
        """Version, auth, bucket and knobs; the headers every answer carries."""
        knobs = self.knobs
        if knobs["latency_ms"]:
            time.sleep(knobs["latency_ms"] / 1000)
        if version not in SUPPORTED_VERSIONS:
            raise _Reject(404, {"errors": "Not Found"})
        headers = {"X-Shopify-API-Version": version}
        token = request.headers.get("x-shopify-access-token")
        if token != self.token:
            raise _Reject(401, {"errors": AUTH_ERROR}, headers)
        size = int(knobs["bucket_size"])
        with self.lock:
            now = time.monotonic()
            level, last = self.buckets.get(token, (0.0, now))
            level = max(0.0, level - (now - last) * float(knobs["leak_rate"]))
            full = level + 1 > size
            if not full:
                level += 1
            self.buckets[token] = (level, now)
            used = size if full else min(size, max(1, math.ceil(level - 1e-9)))
            headers["X-Shopify-Shop-Api-Call-Limit"] = f"{used}/{size}"
            throttle = full
            if not throttle and knobs["throttle_next"] > 0:
                knobs["throttle_next"] -= 1
                throttle = True
            if not throttle and knobs["rate_429"] and self.rng.random() < knobs["rate_429"]:
                throttle = True
            error = not throttle and knobs["error_rate"] and self.rng.random() < knobs["error_rate"]
        if throttle:
            raise _Reject(
                429, {"errors": THROTTLE_ERROR},
                {**headers, "Retry-After": str(float(knobs["retry_after"]))},
            )  # fmt: skip
        if error:
            raise _Reject(500, {"errors": "Internal Server Error"}, headers)
        return headers

    # -------------------------------------------------------------- rendering

    def render(self, resource: str, body: dict[str, Any], fields: list[str] | None):
        if resource == "inventory_levels":
            body = {
                **body,
                "admin_graphql_api_id": "gid://shopify/InventoryLevel/"
                f"{body['location_id']}?inventory_item_id={body['inventory_item_id']}",
            }
        drift = (self.knobs.get("drift") or {}).get(resource)
        if drift:
            body = _apply_drift(body, drift)
        if fields:
            body = {k: v for k, v in body.items() if k in fields}
        return body


def _apply_drift(body: dict[str, Any], drift: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    for old, new in (drift.get("renamed") or {}).items():
        if old in body:
            body[new] = body.pop(old)
    for name in drift.get("removed") or []:
        body.pop(name, None)
    for name, kind in (drift.get("retyped") or {}).items():
        if name in body:
            body[name] = _retype(body[name], kind)
    return body


def _retype(value: Any, kind: str) -> Any:
    try:
        if kind == "string":
            return None if value is None else str(value)
        if kind == "number":
            return float(value)
        if kind == "integer":
            return int(float(value))
        if kind == "array":
            return [value]
    except (TypeError, ValueError):
        return value
    return value


def _encode_page_info(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_info(text: str, resource: str) -> dict[str, Any]:
    try:
        padded = text + "=" * (-len(text) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict) or state.get("r") != resource:
            raise ValueError("another resource")
        if state.get("d") not in ("next", "prev") or type(state.get("k")) is not int:
            raise ValueError("bad key")
        if not isinstance(state.get("f"), dict):
            raise ValueError("bad filters")
        return state
    except (ValueError, TypeError, json.JSONDecodeError):
        raise _Reject(400, {"errors": {"page_info": ["Invalid value."]}}) from None


def _ids(text: str, name: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _Reject(400, {"errors": {name: ["is invalid"]}}) from None


def _filters(resource: str, params: dict[str, str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name in FILTER_TIMES:
        if params.get(name):
            try:
                filters[name] = parse_ts(params[name])
            except ValueError:
                raise _Reject(400, {"errors": {name: ["is invalid"]}}) from None
    if params.get("since_id"):
        try:
            filters["since_id"] = int(params["since_id"])
        except ValueError:
            raise _Reject(400, {"errors": {"since_id": ["is invalid"]}}) from None
    if resource in ("orders", "products") and params.get("status"):
        status = params["status"]
        if resource == "orders" and status not in ("open", "closed", "cancelled", "any"):
            raise _Reject(400, {"errors": {"status": ["is invalid"]}})
        filters["status"] = status
    if resource == "inventory_levels":
        for name in ("location_ids", "inventory_item_ids"):
            if params.get(name):
                ids = _ids(params[name], name)
                if len(ids) > 50:
                    raise _Reject(422, {"errors": {name: ["must have at most 50 ids"]}})
                filters[name] = ids
        if not filters.get("location_ids") and not filters.get("inventory_item_ids"):
            raise _Reject(422, {"errors": "One of inventory_item_ids or location_ids is required"})
    return filters


def create_app(
    *,
    token: str = DEFAULT_TOKEN,
    records: int = 1000,
    seed: int = 42,
    db: str = ":memory:",
    knobs: dict[str, Any] | None = None,
) -> FastAPI:
    """The sandbox, seeded with ``records`` customers (see :mod:`.seed` for the rest).

    ``knobs`` override :data:`DEFAULT_KNOBS` at start and on ``/_sandbox/reset``.
    """
    unknown = sorted(set(knobs or {}) - set(DEFAULT_KNOBS))
    if unknown:
        raise ValueError(f"unknown knobs: {unknown}")
    sandbox = _Sandbox(token=token, records=records, seed=seed, db=db, knobs=knobs or {})
    app = FastAPI(title="Shopify Admin REST sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox

    @app.exception_handler(_Reject)
    def _rejected(request: Request, exc: _Reject) -> JSONResponse:
        sandbox.stats[str(exc.response.status_code)] += 1
        return exc.response

    def ok(body: Any, headers: dict[str, str]) -> JSONResponse:
        sandbox.stats["200"] += 1
        return JSONResponse(body, headers=headers)

    # ---------------------------------------------------------------- writes

    @app.post("/admin/api/{version}/inventory_levels/set.json")
    async def set_inventory_level(version: str, request: Request) -> JSONResponse:
        """Set the available quantity of an inventory item at a location."""
        headers = sandbox.guard(request, version)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise _Reject(400, {"errors": "Invalid JSON"}, headers) from None
        if not isinstance(body, dict):
            raise _Reject(400, {"errors": "Invalid JSON"}, headers)
        values: dict[str, int] = {}
        for name in ("location_id", "inventory_item_id", "available"):
            value = body.get(name)
            if type(value) is str and re.fullmatch(r"-?\d+", value):
                value = int(value)
            if type(value) is not int:
                raise _Reject(
                    400, {"errors": {name: "Required parameter missing or invalid"}}, headers
                )
            values[name] = value
        if not sandbox.store.has_location(values["location_id"]):
            raise _Reject(422, {"errors": ["Location not found"]}, headers)
        if not sandbox.store.has_item(values["inventory_item_id"]):
            raise _Reject(422, {"errors": ["Inventory item not found"]}, headers)
        level = sandbox.store.set_level(
            values["inventory_item_id"], values["location_id"], values["available"]
        )
        return ok({"inventory_level": sandbox.render("inventory_levels", level, None)}, headers)

    # ---------------------------------------------------------------- reads

    @app.get("/admin/api/{version}/{resource}/{object_id}.json")
    def get_one(version: str, resource: str, object_id: str, request: Request) -> JSONResponse:
        """One customer, product, order or location by id."""
        headers = sandbox.guard(request, version)
        if resource not in SINGLE_KEYS or not object_id.isdigit():
            raise _Reject(404, {"errors": "Not Found"}, headers)
        body = sandbox.store.get(resource, int(object_id))
        if body is None:
            raise _Reject(404, {"errors": "Not Found"}, headers)
        fields = _fields(request.query_params.get("fields"))
        return ok({SINGLE_KEYS[resource]: sandbox.render(resource, body, fields)}, headers)

    @app.get("/admin/api/{version}/{name}.json")
    def list_resource(version: str, name: str, request: Request) -> JSONResponse:
        """A page of a resource, Link-header cursor paging."""
        headers = sandbox.guard(request, version)
        if name not in LIST_RESOURCES:
            raise _Reject(404, {"errors": "Not Found"}, headers)
        params = dict(request.query_params)
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise _Reject(400, {"errors": {"limit": ["is invalid"]}}, headers) from None
        if limit < 1:
            raise _Reject(400, {"errors": {"limit": ["must be at least 1"]}}, headers)
        limit = min(limit, MAX_LIMIT)
        fields = _fields(params.get("fields"))
        after = before = None
        if "page_info" in params:
            extra = sorted(set(params) - PAGE_INFO_PARAMS)
            if extra:
                raise _Reject(
                    400,
                    {"errors": {"page_info": [
                        f"cannot be combined with {', '.join(extra)}: only limit and "
                        "fields are allowed with page_info"]}},
                    headers,
                )  # fmt: skip
            try:
                state = _decode_page_info(params["page_info"], name)
            except _Reject as exc:
                exc.response.headers.update(headers)
                raise
            filters = state["f"]
            if state["d"] == "next":
                after = state["k"]
            else:
                before = state["k"]
        else:
            try:
                filters = _filters(name, params)
            except _Reject as exc:
                exc.response.headers.update(headers)
                raise
        rows, more = sandbox.store.page(
            name, limit=limit, after=after, before=before, filters=filters
        )
        links = []
        if rows:
            first, last = rows[0][0], rows[-1][0]
            has_prev = more if before is not None else (
                after is not None and sandbox.store.exists(name, before=first, filters=filters)
            )  # fmt: skip
            has_next = more if before is None else sandbox.store.exists(
                name, after=last, filters=filters
            )  # fmt: skip
            base = f"{str(request.base_url).rstrip('/')}/admin/api/{version}/{name}.json"
            for rel, direction, key, present in (
                ("previous", "prev", first, has_prev),
                ("next", "next", last, has_next),
            ):
                if present:
                    query = {"limit": str(limit)}
                    if fields:
                        query["fields"] = ",".join(fields)
                    query["page_info"] = _encode_page_info(
                        {"r": name, "d": direction, "k": key, "f": filters}
                    )
                    links.append(f'<{base}?{urlencode(query)}>; rel="{rel}"')
        if links:
            headers["Link"] = ", ".join(links)
        records = [sandbox.render(name, body, fields) for _, body in rows]
        return ok({name: records}, headers)

    # ---------------------------------------------------------------- controls

    @app.get("/_sandbox/config")
    def get_config() -> dict[str, Any]:
        return sandbox.knobs

    @app.post("/_sandbox/config")
    async def set_config(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")
        unknown = sorted(set(body) - set(DEFAULT_KNOBS))
        if unknown:
            return JSONResponse({"errors": f"unknown knobs: {unknown}"}, status_code=400)
        with sandbox.lock:
            sandbox.knobs.update(body)
            if "chaos_seed" in body:
                sandbox.rng = random.Random(body["chaos_seed"])
            if "bucket_size" in body or "leak_rate" in body:
                sandbox.buckets.clear()
        return sandbox.knobs

    @app.post("/_sandbox/seed")
    async def reseed(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")
        records = int(body.get("records", sandbox.records))
        seed_value = int(body.get("seed", sandbox.seed_value))
        sandbox.expected = sandbox.store.seed(records, seed=seed_value)
        return {"expected": sandbox.expected}

    @app.post("/_sandbox/load")
    async def load(request: Request) -> dict[str, Any]:
        """Replace the data with ``{"objects": [[resource, object], ...]}`` (a seeded
        world: see :mod:`sandboxes.world`)."""
        body = json.loads(await request.body() or b"{}")
        objects = body.get("objects")
        if not isinstance(objects, list) or not all(
                isinstance(o, list) and len(o) == 2 and isinstance(o[1], dict)
                for o in objects):  # fmt: skip
            return JSONResponse({"errors": "objects must be [[resource, object], ...]"},
                                status_code=400)  # fmt: skip
        try:
            sandbox.expected = sandbox.store.load((str(r), b) for r, b in objects)
        except (ValueError, KeyError) as exc:
            return JSONResponse({"errors": f"cannot load: {exc}"}, status_code=400)
        return {"expected": sandbox.expected}

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, Any]:
        with sandbox.lock:
            sandbox.knobs = json.loads(json.dumps(sandbox.initial_knobs))
            sandbox.rng = random.Random(0)
            sandbox.buckets.clear()
            sandbox.stats.clear()
        sandbox.expected = sandbox.store.seed(sandbox.records, seed=sandbox.seed_value)
        return {"expected": sandbox.expected}

    @app.post("/_sandbox/touch")
    async def touch(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")
        resource = body.get("resource")
        if resource not in SINGLE_KEYS:
            return JSONResponse({"errors": "unknown resource"}, status_code=400)
        done = sandbox.store.touch(resource, body.get("ids") or [], body.get("changes") or {})
        return {"updated": done}

    @app.post("/_sandbox/token")
    async def rotate_token(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body.get("token"), str) or not body["token"]:
            return JSONResponse({"errors": "token must be a non-empty string"}, status_code=400)
        sandbox.token = body["token"]
        return {"rotated": True}

    @app.get("/_sandbox/stats")
    def stats() -> dict[str, Any]:
        return {"statuses": dict(sandbox.stats), "expected": sandbox.expected,
                "location_ids": [LOCATION_ID0 + k + 1 for k in range(LOCATIONS)]}  # fmt: skip

    @app.delete("/_sandbox/stats")
    def clear_stats() -> dict[str, Any]:
        sandbox.stats.clear()
        with sandbox.lock:
            sandbox.buckets.clear()
        return {"statuses": {}}

    return app


def _fields(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [f.strip() for f in text.split(",") if f.strip()]
