"""The HubSpot sandbox's HTTP contract: CRM v3 objects, search, batch upsert, OAuth.

Follows HubSpot's documented contract closely enough that the official
``hubspot-api-client`` SDK works against it unchanged (``host=`` the sandbox URL):

* ``GET /crm/v3/objects/{contacts|companies}`` — ``limit`` (default 10, capped at 100),
  ``after`` cursor, ``properties`` (comma list or repeated), ``archived``;
  ``paging.next.after``/``link``, no ``paging`` on the last page.
* ``GET /crm/v3/objects/{type}/{id}`` — ``idProperty`` optional; 404 with an error body.
* ``POST /crm/v3/objects/{type}/search`` — filterGroups (EQ, NEQ, GT, GTE, LT, LTE,
  BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY), sorts, query, limit <= 200,
  ``after`` offset, ``total``; paging past 10,000 results answers 400 like HubSpot.
* ``POST /crm/v3/objects/contacts/batch/upsert`` — <= 100 inputs, ``idProperty: email``.
* ``POST /oauth/v1/token`` — refresh_token / authorization_code grants; refresh tokens
  rotate (the old one is invalid afterwards); access tokens expire.

Auth is ``Authorization: Bearer`` with the private-app token or a live OAuth access
token; anything else gets HubSpot's 401 body. Rate limits: a rolling 10-second window per
app (the private app, the OAuth app) with ``X-HubSpot-RateLimit-*`` headers and a
per-second search limit; over either
answers 429 (``category: RATE_LIMITS``, ``Retry-After``).

Knobs (``GET``/``POST /_sandbox/config``, also at start): ``latency_ms``, ``error_rate``,
``rate_429``, ``token_lifetime_seconds``, ``rate_limit_per_10s``,
``search_rate_per_second``, ``drift_rename``, ``drift_remove``, ``drift_retype``.
Test routes: ``POST /_sandbox/seed``, ``/_sandbox/load`` (given objects),
``/_sandbox/reset``, ``/_sandbox/touch``,
``/_sandbox/expire_tokens``, ``GET /_sandbox/state``. None of ``/_sandbox`` needs auth.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandboxes.hubspot import seed as seed_data
from sandboxes.hubspot.store import OBJECT_TYPES, QueryError, Row, Store, iso

DEFAULT_TOKEN = "pat-na1-sandbox-0000"  # noqa: S105 - public sandbox credentials
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - public sandbox credentials
DEFAULT_REFRESH_TOKEN = "sandbox-refresh-token-0"  # noqa: S105 - public sandbox credentials
DEFAULT_AUTH_CODE = "sandbox-auth-code"  # noqa: S105 - public sandbox credentials

SEARCH_CAP = 10_000
DAILY_MAX = 500_000
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
}  # fmt: skip
ALWAYS = ["createdate", "hs_lastmodifieddate", "hs_object_id"]
# HubSpot-defined properties a custom property may not take the name of (a sample).
BUILT_IN_PROPERTIES = {*DEFAULT_PROPERTIES["contacts"], *DEFAULT_PROPERTIES["companies"],
                       *ALWAYS, "phone", "mobilephone", "country", "industry", "website",
                       "lifecyclestage", "company", "associatedcompanyid"}


class Knobs(BaseModel):
    """Behaviour switches; ``POST /_sandbox/config`` merges a partial object into these."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(0, ge=0, description="added to every /crm response")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of random 500s")
    rate_429: float = Field(0.0, ge=0, le=1, description="share of random 429s")
    token_lifetime_seconds: float = Field(1800, gt=0, description="OAuth access tokens")
    rate_limit_per_10s: int = Field(100, ge=1, description="rolling 10 s limit per token")
    search_rate_per_second: int = Field(5, ge=1, description="search requests per second")
    drift_rename: dict[str, str] = Field(default_factory=dict, description="old -> new name")
    drift_remove: list[str] = Field(default_factory=list, description="properties dropped")
    drift_retype: dict[str, str] = Field(
        default_factory=dict, description="property -> number|string|boolean|array"
    )


@dataclass
class Credentials:
    private_token: str = DEFAULT_TOKEN
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN
    auth_code: str = DEFAULT_AUTH_CODE


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            **extra, "category": category}  # fmt: skip


@dataclass
class State:
    store: Store
    credentials: Credentials
    initial_knobs: Knobs
    records: int
    seed: int
    knobs: Knobs = field(init=False)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    refresh_tokens: set[str] = field(default_factory=set)
    auth_codes: set[str] = field(default_factory=set)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    search_windows: dict[str, deque[float]] = field(default_factory=dict)
    daily_used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reset_runtime()

    def reset_runtime(self) -> None:
        self.knobs = self.initial_knobs.model_copy(deep=True)
        self.access_tokens.clear()
        self.refresh_tokens = {self.credentials.refresh_token}
        self.auth_codes = {self.credentials.auth_code}
        self.windows.clear()
        self.search_windows.clear()
        self.daily_used = 0

    def reseed(self, records: int, seed: int) -> dict[str, Any]:
        started = time.perf_counter()
        data = seed_data.generate(records, seed=seed)
        self.store.clear()
        self.store.insert_many("contacts", data.contacts)
        self.store.insert_many("companies", data.companies)
        self.store.set_meta("expected", data.expected)
        return {"expected": data.expected, "seconds": round(time.perf_counter() - started, 3)}


def create_app(
    *,
    db_path: str | Path,
    token: str = DEFAULT_TOKEN,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    refresh_token: str = DEFAULT_REFRESH_TOKEN,
    auth_code: str = DEFAULT_AUTH_CODE,
    records: int = 0,
    seed: int = 42,
    knobs: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the sandbox over the SQLite file ``db_path``, seeded with ``records`` contacts
    (and ``records // 10`` companies) unless ``records`` is 0 and the file has data."""
    store = Store(db_path)
    creds = Credentials(token, client_id, client_secret, refresh_token, auth_code)
    state = State(store, creds, Knobs(**(knobs or {})), records, seed)
    if records or store.get_meta("expected") is None:
        state.reseed(records, seed)

    app = FastAPI(title="HubSpot sandbox", description=__doc__, docs_url="/_sandbox/docs",
                  openapi_url="/_sandbox/openapi.json", redoc_url=None)  # fmt: skip
    app.state.sandbox = state

    @app.exception_handler(HubSpotError)
    async def _hubspot_error(request: Request, exc: HubSpotError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.category, **exc.extra), exc.status)

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "VALIDATION_ERROR"), 400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body(message, "VALIDATION_ERROR"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
        return JSONResponse(error_body(str(exc.detail), category), exc.status_code)

    @app.middleware("http")
    async def _crm_gate(request: Request, call_next: Any) -> Any:
        if not request.url.path.startswith("/crm/"):
            return await call_next(request)
        knobs = state.knobs
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        problem = _authenticate(state, request.headers.get("authorization", ""))
        if problem is not None:
            return problem
        token = request.headers["authorization"].split(None, 1)[1].strip()
        # Limits are per app: the private app has one bucket, the OAuth app another.
        bucket = "private-app" if token == state.credentials.private_token else "oauth-app"
        is_search = request.method == "POST" and request.url.path.endswith("/search")
        limited, headers = _rate_limit(state, bucket, is_search)
        if limited is not None:
            return limited
        if knobs.rate_429 and random.random() < knobs.rate_429:
            return _too_many(headers, retry_after=1, policy="TEN_SECONDLY_ROLLING")
        if knobs.error_rate and random.random() < knobs.error_rate:
            body = error_body("internal error (sandbox error_rate)", "INTERNAL_ERROR")
            return JSONResponse(body, 500, headers=headers)
        response = await call_next(request)
        response.headers.update(headers)
        return response

    # -- CRM objects ----------------------------------------------------------------

    @app.get("/crm/v3/objects/{object_type}")
    def list_objects(
        object_type: str,
        request: Request,
        limit: int = 10,
        after: str | None = None,
        archived: str = "false",
    ) -> dict[str, Any]:
        """A page of objects in id order; ``paging.next.after`` resumes after it."""
        _check_type(object_type)
        if limit < 1:
            raise HubSpotError(400, "limit must be at least 1", "VALIDATION_ERROR")
        limit = min(limit, 100)
        cursor = _parse_after(after)
        props = _requested(request)
        rows = state.store.page(object_type, after=cursor, limit=limit + 1,
                                archived=_truthy(archived))  # fmt: skip
        body: dict[str, Any] = {
            "results": [_render(state, object_type, r, props) for r in rows[:limit]]
        }
        if len(rows) > limit:
            nxt = str(rows[limit - 1].id)
            link = f"{str(request.base_url).rstrip('/')}/crm/v3/objects/{object_type}?after={nxt}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return body

    @app.get("/crm/v3/objects/{object_type}/{object_id}")
    def get_object(object_type: str, object_id: str, request: Request,
                   idProperty: str | None = None, archived: str = "false") -> dict[str, Any]:  # noqa: N803  # fmt: skip
        """One object by id (or by ``idProperty``); 404 when there is none."""
        _check_type(object_type)
        row = state.store.get(object_type, object_id, id_property=idProperty,
                              archived=_truthy(archived))  # fmt: skip
        if row is None:
            raise HubSpotError(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND", context={"id": [object_id]})  # fmt: skip
        return _render(state, object_type, row, _requested(request))

    @app.post("/crm/v3/objects/{object_type}/search")
    async def search(object_type: str, request: Request) -> dict[str, Any]:
        """Filtered, sorted search; ``after`` is an offset; at most 10,000 results reachable."""
        _check_type(object_type)
        body = await _json(request)
        limit = _int(body.get("limit", 10), "limit")
        if not 1 <= limit <= 200:
            raise HubSpotError(400, "limit must be between 1 and 200", "VALIDATION_ERROR")
        offset = _parse_after(body.get("after"))
        if offset + limit > SEARCH_CAP:
            raise HubSpotError(
                400,
                f"Search results are limited to {SEARCH_CAP} per query: after={offset} with "
                f"limit={limit} pages past them. Narrow the query (e.g. a smaller "
                "hs_lastmodifieddate window).",
                "VALIDATION_ERROR",
            )
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            raise HubSpotError(400, "at most 5 filterGroups of at most 6 filters each",
                               "VALIDATION_ERROR")  # fmt: skip
        sorts = [_parse_sort(s) for s in body.get("sorts") or []]
        props = body.get("properties") or None
        rows, total = await asyncio.to_thread(
            state.store.search, object_type, filter_groups=groups, sorts=sorts,
            query=body.get("query"), offset=offset, limit=limit,
        )  # fmt: skip
        out: dict[str, Any] = {
            "total": total,
            "results": [_render(state, object_type, r, props) for r in rows],
        }
        if offset + len(rows) < total:
            out["paging"] = {"next": {"after": str(offset + len(rows))}}
        return out

    @app.post("/crm/v3/objects/{object_type}/batch/upsert")
    async def batch_upsert(object_type: str, request: Request) -> dict[str, Any]:
        """Create or update up to 100 contacts by e-mail (``idProperty: "email"``)."""
        _check_type(object_type)
        body = await _json(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise HubSpotError(400, "inputs must be a non-empty list", "VALIDATION_ERROR")
        if len(inputs) > 100:
            raise HubSpotError(400, f"Batch input size {len(inputs)} is over the limit of 100",
                               "VALIDATION_ERROR")  # fmt: skip
        parsed: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for item in inputs:
            if not isinstance(item, dict) or item.get("idProperty") != "email":
                raise HubSpotError(400, "every input needs idProperty 'email'",
                                   "VALIDATION_ERROR")  # fmt: skip
            email = str(item.get("id") or "").strip()
            props = item.get("properties") or {}
            if not email or not isinstance(props, dict):
                raise HubSpotError(400, "every input needs an id and properties",
                                   "VALIDATION_ERROR")  # fmt: skip
            if email.lower() in seen:
                raise HubSpotError(400, f"Duplicate IDs found in batch input: [{email}]",
                                   "VALIDATION_ERROR")  # fmt: skip
            seen.add(email.lower())
            parsed.append((email, {k: None if v is None else str(v) for k, v in props.items()}))
        started = iso(int(time.time() * 1000))
        results = await asyncio.to_thread(state.store.upsert_by_email, object_type, parsed)
        rendered = []
        for (row, new), (_, props) in zip(results, parsed, strict=True):
            item = _render(state, object_type, row, list(props))
            item["new"] = new
            rendered.append(item)
        return {"status": "COMPLETE", "results": rendered, "startedAt": started,
                "completedAt": iso(int(time.time() * 1000))}  # fmt: skip

    # -- Properties (custom property definitions) --------------------------------------

    @app.get("/crm/v3/properties/{object_type}")
    def list_properties(object_type: str) -> dict[str, Any]:
        """The custom properties created through this API (built-ins are not listed)."""
        _check_type(object_type)
        return {"results": list((state.store.get_meta(f"properties:{object_type}")
                                 or {}).values())}  # fmt: skip

    @app.post("/crm/v3/properties/{object_type}", status_code=201)
    async def create_property(object_type: str, request: Request) -> Any:
        """Create a custom property; 409 ``OBJECT_ALREADY_EXISTS`` when the name is taken.
        (The sandbox does not refuse unknown properties on writes, as HubSpot does.)"""
        _check_type(object_type)
        body = await _json(request)
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName")
                   if not isinstance(body.get(k), str) or not body[k]]
        if missing:
            raise HubSpotError(400, f"Property is missing {', '.join(missing)}",
                               "VALIDATION_ERROR")  # fmt: skip
        key = f"properties:{object_type}"
        with state.lock:
            known = state.store.get_meta(key) or {}
            if body["name"] in known or body["name"] in BUILT_IN_PROPERTIES:
                return JSONResponse(error_body(
                    f"Property named '{body['name']}' already exists.",
                    "OBJECT_ALREADY_EXISTS"), 409)  # fmt: skip
            now = iso(int(time.time() * 1000))
            known[body["name"]] = {**body, "createdAt": now, "updatedAt": now,
                                   "hubspotDefined": False}  # fmt: skip
            state.store.set_meta(key, known)
        return known[body["name"]]

    # -- OAuth ----------------------------------------------------------------------

    @app.post("/oauth/v1/token")
    async def oauth_token(request: Request) -> JSONResponse:
        """Token grants (form encoded): ``refresh_token`` (rotates) and
        ``authorization_code``."""
        raw = (await request.body()).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        creds = state.credentials
        if form.get("client_id") != creds.client_id:
            return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != creds.client_secret:
            return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant = form.get("grant_type")
        with state.lock:
            if grant == "refresh_token":
                if form.get("refresh_token") not in state.refresh_tokens:
                    return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
                state.refresh_tokens.discard(form["refresh_token"])
            elif grant == "authorization_code":
                if form.get("code") not in state.auth_codes:
                    return _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
                state.auth_codes.discard(form["code"])
            else:
                return _oauth_error("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")
            access = f"sbx-at-{secrets.token_urlsafe(24)}"
            refresh = f"sbx-rt-{secrets.token_urlsafe(24)}"
            lifetime = state.knobs.token_lifetime_seconds
            state.access_tokens[access] = time.time() + lifetime
            state.refresh_tokens.add(refresh)
        body = {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                "expires_in": math.ceil(lifetime)}  # fmt: skip
        return JSONResponse(body)

    # -- sandbox control ------------------------------------------------------------

    @app.get("/_sandbox/config")
    def get_config() -> dict[str, Any]:
        """The current knobs."""
        return state.knobs.model_dump()

    @app.post("/_sandbox/config")
    async def set_config(request: Request) -> dict[str, Any]:
        """Merge a partial knobs object, e.g. ``{"latency_ms": 50}``; returns all knobs."""
        changes = await _json(request)
        try:
            state.knobs = Knobs(**{**state.knobs.model_dump(), **changes})
        except ValueError as exc:
            raise HubSpotError(400, str(exc), "VALIDATION_ERROR") from exc
        return state.knobs.model_dump()

    @app.post("/_sandbox/seed")
    async def seed(request: Request) -> dict[str, Any]:
        """Replace all data with ``records`` contacts (``seed`` fixes the randomness)."""
        body = await _json(request)
        records = _int(body.get("records", state.records), "records")
        seed_value = _int(body.get("seed", state.seed), "seed")
        return await asyncio.to_thread(state.reseed, records, seed_value)

    @app.post("/_sandbox/load")
    async def load(request: Request) -> dict[str, Any]:
        """Replace all data with given objects: ``{"contacts": [[properties, created_ms,
        updated_ms], ...], "companies": [...]}`` (a seeded world: :mod:`sandboxes.world`)."""
        body = await _json(request)
        rows: dict[str, list[tuple[dict[str, Any], int, int]]] = {}
        for object_type in ("contacts", "companies"):
            items = body.get(object_type) or []
            if not isinstance(items, list) or not all(
                    isinstance(i, list) and len(i) == 3 and isinstance(i[0], dict)
                    and all(isinstance(t, int) for t in i[1:]) for i in items):  # fmt: skip
                raise HubSpotError(400, f"{object_type} must be [[properties, created_ms, "
                                        "updated_ms], ...]", "VALIDATION_ERROR")
            rows[object_type] = [(i[0], i[1], i[2]) for i in items]

        def replace() -> dict[str, Any]:
            state.store.clear()
            for object_type, items in rows.items():
                state.store.insert_many(object_type, items)
            expected = {"contacts": len(rows["contacts"]), "companies": len(rows["companies"])}
            state.store.set_meta("expected", expected)
            return {"expected": expected}

        return await asyncio.to_thread(replace)

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, Any]:
        """Back to the start: data reseeded as at start, knobs, tokens and limits reset."""
        with state.lock:
            state.reset_runtime()
        return await asyncio.to_thread(state.reseed, state.records, state.seed)

    @app.post("/_sandbox/touch")
    async def touch(request: Request) -> dict[str, Any]:
        """Modify objects now (``{"type", "ids", "properties"}``): changes while paging."""
        body = await _json(request)
        object_type = body.get("type", "contacts")
        _check_type(object_type)
        ids = [int(i) for i in body.get("ids") or []]
        n = state.store.touch(object_type, ids, body.get("properties") or {})
        return {"touched": n}

    @app.post("/_sandbox/expire_tokens")
    def expire_tokens() -> dict[str, Any]:
        """Expire every OAuth access token now (the private-app token never expires)."""
        with state.lock:
            n = len(state.access_tokens)
            for key in state.access_tokens:
                state.access_tokens[key] = 0.0
        return {"expired": n}

    @app.get("/_sandbox/state")
    def sandbox_state() -> dict[str, Any]:
        """Counts, the seeded data set's ``expected`` counts and the knobs."""
        return {
            "counts": {t: state.store.count(t) for t in OBJECT_TYPES},
            "expected": state.store.get_meta("expected"),
            "knobs": state.knobs.model_dump(),
        }

    return app


# -- helpers ------------------------------------------------------------------------


def _authenticate(state: State, header: str) -> JSONResponse | None:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if secrets.compare_digest(token, state.credentials.private_token):
            return None
        expiry = state.access_tokens.get(token)
        if expiry is not None:
            if expiry > time.time():
                return None
            body = error_body(
                "The OAuth token used to make this call expired "
                f"{int(time.time() - expiry) + 1} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
            return JSONResponse(body, 401)
    body = error_body(
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
        "oauth-overview",
        "INVALID_AUTHENTICATION",
    )
    return JSONResponse(body, 401)


def _rate_limit(state: State, bucket: str, is_search: bool) -> tuple[JSONResponse | None, dict]:
    knobs, now = state.knobs, time.monotonic()
    with state.lock:
        if is_search:
            # HubSpot's search responses carry no X-HubSpot-RateLimit-* headers.
            window = state.search_windows.setdefault(bucket, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= knobs.search_rate_per_second:
                retry = max(1, math.ceil(window[0] + 1.0 - now))
                return _too_many({}, retry_after=retry, policy="SECONDLY"), {}
            window.append(now)
            return None, {}
        window = state.windows.setdefault(bucket, deque())
        while window and window[0] <= now - 10.0:
            window.popleft()
        headers = {
            "X-HubSpot-RateLimit-Max": str(knobs.rate_limit_per_10s),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(DAILY_MAX),
        }
        if len(window) >= knobs.rate_limit_per_10s:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
            retry = max(1, math.ceil(window[0] + 10.0 - now))
            return _too_many(headers, retry_after=retry, policy="TEN_SECONDLY_ROLLING"), headers
        window.append(now)
        state.daily_used += 1
        headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, DAILY_MAX - state.daily_used))
        headers["X-HubSpot-RateLimit-Remaining"] = str(knobs.rate_limit_per_10s - len(window))
        return None, headers


def _too_many(headers: dict[str, str], *, retry_after: int, policy: str) -> JSONResponse:
    name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "secondly"
    body = error_body(f"You have reached your {name} limit.", "RATE_LIMITS",
                      errorType="RATE_LIMIT", policyName=policy)  # fmt: skip
    return JSONResponse(body, 429, headers={**headers, "Retry-After": str(retry_after)})


def _oauth_error(status: str, message: str) -> JSONResponse:
    body = {"status": status, "message": message, "correlationId": str(uuid.uuid4())}
    return JSONResponse(body, 400)


def _check_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise HubSpotError(400, f"Unable to infer object type from: {object_type}",
                           "VALIDATION_ERROR")  # fmt: skip


def _parse_after(after: Any) -> int:
    if after in (None, ""):
        return 0
    text = str(after)
    if not text.isdigit():
        raise HubSpotError(400, f"after must be a paging cursor, got {text!r}",
                           "VALIDATION_ERROR")  # fmt: skip
    return int(text)


def _parse_sort(sort: Any) -> tuple[str, bool]:
    if isinstance(sort, str):
        return (sort[1:], True) if sort.startswith("-") else (sort, False)
    if isinstance(sort, dict) and sort.get("propertyName"):
        return sort["propertyName"], str(sort.get("direction", "")).upper() == "DESCENDING"
    raise HubSpotError(400, f"invalid sort {sort!r}", "VALIDATION_ERROR")


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise HubSpotError(400, f"{name} must be an integer", "VALIDATION_ERROR") from exc


def _truthy(value: str) -> bool:
    return str(value).lower() == "true"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError as exc:
        raise HubSpotError(400, "Invalid input JSON", "VALIDATION_ERROR") from exc
    if not isinstance(body, dict):
        raise HubSpotError(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR")
    return body


def _requested(request: Request) -> list[str] | None:
    names = [p.strip() for v in request.query_params.getlist("properties") for p in v.split(",")]
    return [n for n in names if n] or None


def _render(state: State, object_type: str, row: Row, props: list[str] | None) -> dict[str, Any]:
    values = dict(row.properties)
    values["createdate"] = iso(row.created)
    values["hs_lastmodifieddate"] = values["lastmodifieddate"] = iso(row.updated)
    values["hs_object_id"] = str(row.id)
    names = list(dict.fromkeys([*(props or DEFAULT_PROPERTIES[object_type]), *ALWAYS]))
    out = {name: values.get(name) for name in names}
    knobs = state.knobs
    for old, new in knobs.drift_rename.items():
        if old in out or old in values:
            out.pop(old, None)
            out[new] = values.get(old)
    for name in knobs.drift_remove:
        out.pop(name, None)
    for name, kind in knobs.drift_retype.items():
        if out.get(name) is not None:
            out[name] = _retype(out[name], kind)
    item: dict[str, Any] = {
        "id": str(row.id),
        "properties": out,
        "createdAt": iso(row.created),
        "updatedAt": iso(row.updated),
        "archived": row.archived,
    }
    return item


def _retype(value: Any, kind: str) -> Any:
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return str(value).lower() not in ("", "0", "false", "no")
    if kind == "array":
        return [value]
    return str(value)
