"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns has the same shape, whatever raised it: a route raising
:class:`Problem`, FastAPI's request validation, a Starlette ``HTTPException`` (404 for
an unknown path, 405, ...), a database outage, or a bug. Consumers branch on ``code``
(stable, snake_case) or on ``type`` (a documentation URI); ``title`` is the same for
every occurrence of a type, ``detail`` explains this occurrence, ``instance`` is the
request path, and validation problems list every bad parameter in ``errors``.

Documented problem types (``https://interchange.dev/problems/<code>``):

===================== ====== ==========================================================
code                  status meaning
===================== ====== ==========================================================
``unauthorized``      401    no API key, or an unknown or revoked one
``forbidden``         403    the key is valid but lacks a scope the operation needs
``not_found``         404    the resource (or path) does not exist
``method_not_allowed`` 405   the path exists but not with this HTTP method
``invalid_parameters`` 422   one or more parameters are invalid; see ``errors``
``rate_limited``      429    too many requests; wait ``Retry-After`` seconds
``internal``          500    a bug on our side; nothing about it is disclosed
``unavailable``       503    the hub database is unreachable; retry later
===================== ====== ==========================================================

Statuses without a documented type get ``type: "about:blank"`` and the HTTP reason
phrase as ``title``, as RFC 9457 prescribes.
"""

from __future__ import annotations

import http
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from interchange.errors import StoreError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://interchange.dev/problems/"


@dataclass(frozen=True)
class ProblemType:
    """One documented kind of problem."""

    code: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code


PROBLEM_TYPES: dict[str, ProblemType] = {
    pt.code: pt
    for pt in (
        ProblemType(
            "unauthorized",
            401,
            "Authentication required",
            "No API key was sent, or the key is unknown or revoked. Send a key in the "
            "`X-API-Key` header or as `Authorization: Bearer <key>`.",
        ),
        ProblemType(
            "forbidden",
            403,
            "Missing scope",
            "The API key is valid but lacks a scope this operation requires.",
        ),
        ProblemType(
            "not_found",
            404,
            "Not found",
            "The requested resource or path does not exist.",
        ),
        ProblemType(
            "method_not_allowed",
            405,
            "Method not allowed",
            "The path exists but does not support this HTTP method.",
        ),
        ProblemType(
            "invalid_parameters",
            422,
            "Invalid parameters",
            "One or more request parameters are invalid; `errors` names each of them.",
        ),
        ProblemType(
            "rate_limited",
            429,
            "Too many requests",
            "The consumer exceeded its rate limit; retry after `Retry-After` seconds.",
        ),
        ProblemType(
            "internal",
            500,
            "Internal error",
            "An unexpected error on our side. Quote the error id from `detail` when reporting it.",
        ),
        ProblemType(
            "unavailable",
            503,
            "Service unavailable",
            "A backing service (the hub database) is unreachable; retry later.",
        ),
    )
}
_TYPE_BY_STATUS = {pt.status: pt for pt in PROBLEM_TYPES.values()}


class InvalidParam(BaseModel):
    """One invalid request parameter."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(description="Parameter name; dotted path for body fields.")
    location: Literal["query", "path", "header", "cookie", "body"] = Field(
        alias="in", description="Where the parameter was sent."
    )
    reason: str = Field(description="Why the value was rejected.")


class ProblemDetail(BaseModel):
    """An RFC 9457 problem details object, plus a stable machine-readable ``code``."""

    type: str = Field(
        "about:blank",
        description="URI of the problem type's documentation.",
        examples=[PROBLEM_TYPE_BASE + "not_found"],
    )
    title: str = Field(description="Short summary, the same for every occurrence of the type.")
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str | None = Field(None, description="What went wrong in this occurrence.")
    instance: str | None = Field(None, description="The request path that failed.")
    code: str = Field(description="Stable snake_case problem code.", examples=["not_found"])
    errors: list[InvalidParam] | None = Field(
        None, description="For `invalid_parameters`: each invalid parameter."
    )


class Problem(Exception):
    """Raise from a route or dependency to answer with a documented problem.

    ``Problem("not_found", "No customer with id 'cus_1'.")`` — status and title come
    from the problem type; ``headers`` (``WWW-Authenticate``, ``Retry-After``) are sent
    as given. ``detail`` is shown to the consumer: never put internals in it.
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        errors: list[InvalidParam] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in PROBLEM_TYPES:
            raise ValueError(f"undocumented problem code {code!r}")
        super().__init__(detail or code)
        self.problem_type = PROBLEM_TYPES[code]
        self.detail = detail
        self.errors = errors
        self.headers = headers

    @classmethod
    def invalid(cls, name: str, reason: str, *, location: str = "query") -> Problem:
        """A 422 for a single parameter the framework could not check itself."""
        return cls(
            "invalid_parameters",
            f"Invalid parameter: {name}.",
            errors=[InvalidParam(name=name, location=location, reason=reason)],
        )


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    type_: str,
    detail: str | None = None,
    errors: list[InvalidParam] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetail(
        type=type_,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True, exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _typed(request: Request, pt: ProblemType, detail: str | None = None, **kw: Any) -> JSONResponse:
    return problem_response(
        request,
        status=pt.status,
        code=pt.code,
        title=pt.title,
        type_=pt.uri,
        detail=detail,
        **kw,
    )


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return _typed(request, exc.problem_type, exc.detail, errors=exc.errors, headers=exc.headers)


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = http.HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    # Starlette fills ``detail`` with the reason phrase when none was given.
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    headers = dict(exc.headers) if exc.headers else None
    pt = _TYPE_BY_STATUS.get(exc.status_code)
    if pt is not None and exc.status_code < 500:
        return _typed(request, pt, detail, headers=headers)
    if exc.status_code >= 500:
        # A deliberate 5xx may still carry text meant for logs only.
        logger.error("HTTP %s on %s: %s", exc.status_code, request.url.path, exc.detail)
        detail = None
    return problem_response(
        request,
        status=exc.status_code,
        code=phrase.lower().replace(" ", "_").replace("-", "_").replace("'", ""),
        title=phrase,
        type_=pt.uri if pt else "about:blank",
        detail=detail,
        headers=headers,
    )


def _param_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]]
    return ".".join(parts) if parts else str(loc[0]) if loc else "request"


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[InvalidParam] = []
    for err in exc.errors():
        loc = tuple(err.get("loc") or ())
        where = str(loc[0]) if loc else "body"
        if where not in ("query", "path", "header", "cookie", "body"):
            where = "body"
        errors.append(
            InvalidParam(name=_param_name(loc), location=where, reason=str(err.get("msg", "")))
        )
    names = ", ".join(dict.fromkeys(e.name for e in errors))
    detail = f"Invalid parameter{'s' if len(errors) > 1 else ''}: {names}."
    return _typed(request, PROBLEM_TYPES["invalid_parameters"], detail, errors=errors)


async def _handle_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The driver's message may contain host names or SQL: log it, never return it.
    logger.error("hub database unavailable on %s: %r", request.url.path, exc)
    return _typed(
        request,
        PROBLEM_TYPES["unavailable"],
        "The hub database is unreachable. Retry later.",
        headers={"Retry-After": "5"},
    )


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex
    logger.exception("unhandled error %s on %s %s", error_id, request.method, request.url.path)
    return _typed(
        request,
        PROBLEM_TYPES["internal"],
        f"An unexpected error occurred. Error id: {error_id}.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error ``app`` returns an ``application/problem+json`` document."""
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(sa.exc.OperationalError, _handle_unavailable)
    app.add_exception_handler(StoreError, _handle_unavailable)
    # Starlette runs the ``Exception`` handler in its outermost middleware, so it
    # also catches errors raised by other middleware.
    app.add_exception_handler(Exception, _handle_unexpected)


# -- OpenAPI ---------------------------------------------------------------------------

_EXAMPLE_DETAIL = {
    "unauthorized": "Send an API key in the X-API-Key header or as Authorization: Bearer <key>.",
    "forbidden": "This API key lacks the scope(s): customers:read.",
    "not_found": "No customer with id 'cus_0123456789abcdef0123456789abcdef'.",
    "invalid_parameters": "Invalid parameters: limit, updated_since.",
    "rate_limited": "Rate limit exceeded. Retry after 12 seconds.",
    "internal": "An unexpected error occurred. Error id: 4f1c0a7e9b2d4c3a8e6f5d1b2c3a4e5f.",
    "unavailable": "The hub database is unreachable. Retry later.",
}


def problem_example(code: str, instance: str = "/v1/customers") -> dict[str, Any]:
    pt = PROBLEM_TYPES[code]
    example: dict[str, Any] = {
        "type": pt.uri,
        "title": pt.title,
        "status": pt.status,
        "detail": _EXAMPLE_DETAIL.get(code, pt.description),
        "instance": instance,
        "code": code,
    }
    if code == "invalid_parameters":
        example["errors"] = [
            {"name": "limit", "in": "query", "reason": "Input should be less than or equal to 200"},
            {"name": "updated_since", "in": "query", "reason": "Input should have timezone info"},
        ]
    return example


def problem_responses(*codes: str, instance: str = "/v1/customers") -> dict[int | str, Any]:
    """``responses=`` entries documenting the given problem codes on a route."""
    out: dict[int | str, Any] = {}
    for code in codes:
        pt = PROBLEM_TYPES[code]
        out[pt.status] = {
            "model": ProblemDetail,
            "description": pt.description,
            "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example(code, instance)}},
        }
    return out


def fix_problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error bodies as ``application/problem+json`` in an OpenAPI document.

    FastAPI files a ``responses=`` model under the route's own media type
    (``application/json``); move the schema next to the problem example instead.
    """
    ref = "#/components/schemas/ProblemDetail"
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                as_json = content.get("application/json")
                if (
                    str(status)[:1] in ("4", "5")
                    and as_json
                    and as_json.get("schema", {}).get("$ref") == ref
                ):
                    content.pop("application/json")
                    content.setdefault(PROBLEM_MEDIA_TYPE, {})["schema"] = {"$ref": ref}
    return schema
