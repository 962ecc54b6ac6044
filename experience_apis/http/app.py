"""The FastAPI application factory for the Interchange experience API.

``create_app()`` wires routers, problem handlers and OpenAPI; it opens no connection
(the engine is built on the first request that needs the database), so importing this
module is free. Serve it with::

    uvicorn --factory experience_apis.http.app:create_app
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from experience_apis.http.problems import (
    PROBLEM_TYPES,
    fix_problem_media_types,
    install_problem_handlers,
)
from experience_apis.http.routers import customers

TITLE = "Interchange API"


def _version() -> str:
    try:
        return metadata.version("interchange")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def _description() -> str:
    problems = "\n".join(
        f"| `{pt.code}` | {pt.status} | {pt.description} |" for pt in PROBLEM_TYPES.values()
    )
    return f"""\
Canonical data from the Interchange hub: customers and their payments, merged from
every connected source.

## Authentication

Every `/v1` operation needs an API key, sent as `X-API-Key: <key>` or
`Authorization: Bearer <key>`. Keys are issued by an operator with
`interchange keys create --name NAME --scopes customers:read,payments:read` and carry
scopes; each operation lists the scope it requires.

## Pagination

Lists return `{{"data": [...], "next_cursor": "...", "has_more": true}}`. Pass
`next_cursor` back as `cursor` (with the same filters) until `has_more` is false;
`limit` is 1 to 200 (default 50). Cursors are opaque.

## Timestamps

All timestamps are ISO 8601 in UTC (`2024-05-01T12:00:00Z`). Timestamp filters must
carry an offset (`Z` or `+02:00`).

## Errors

Errors are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details,
`application/problem+json`, with a stable `code`; `type` is
`https://interchange.dev/problems/<code>`. Invalid parameters are listed in `errors`.

| code | status | meaning |
|---|---|---|
{problems}
"""


class Health(BaseModel):
    status: str = "ok"
    version: str


def create_app(*, database_url: str | None = None) -> FastAPI:
    """A new app serving the hub at ``database_url`` (default: the configured hub)."""
    if database_url is None:
        from interchange.settings import get_settings

        database_url = get_settings().resolved_database_url()
    version = _version()
    app = FastAPI(
        title=TITLE,
        version=version,
        description=_description(),
        openapi_tags=[
            {"name": "customers", "description": "Canonical customers and their payments."},
            {"name": "health", "description": "Liveness for load balancers; no key needed."},
        ],
    )
    app.state.database_url = database_url
    install_problem_handlers(app)
    app.include_router(customers.router)

    @app.get("/healthz", tags=["health"], summary="Liveness", response_model=Health)
    def healthz() -> Health:
        """Answers 200 while the process serves requests. Needs no API key and does
        not touch the database, so a database outage does not get the process killed."""
        return Health(version=version)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = fix_problem_media_types(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# ``uvicorn --factory experience_apis.http.app:app`` works too: ``app`` is the factory,
# not an instance, so importing this module never reads settings or builds an engine.
app = create_app
