"""Request dependencies, as typed aliases routes declare as parameters.

- ``SessionDep`` — a hub database session for the request (engine from the URL the
  app was created with; built on first use, cached per URL by ``interchange.store``).
- ``require_scopes(...)`` / ``CustomersReadKey`` / ``PaymentsReadKey`` — the caller's
  API key, checked for the scopes the route needs. The key is read from ``X-API-Key``
  or ``Authorization: Bearer <key>``; both are declared as OpenAPI security schemes so
  Swagger UI offers "Authorize".
- ``PageDep`` — ``limit`` and ``cursor`` query parameters, the cursor decoded
  (a malformed one is a 422 ``invalid_parameters`` problem naming ``cursor``).

Authentication failures are RFC 9457 problems (401 ``unauthorized``, 403 ``forbidden``).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from experience_apis.http.keys import ApiKey, Scope, verify_key
from experience_apis.http.problems import Problem
from interchange.store import get_engine

# -- database ---------------------------------------------------------------------------

log = logging.getLogger("interchange.api")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; closing it rolls back whatever was not committed."""
    engine = get_engine(request.app.state.database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

# -- authentication -----------------------------------------------------------------------

API_KEY_HEADER = "X-API-Key"
# Both schemes are optional at the framework level (auto_error=False) so that a
# missing key is answered by our own 401 problem, not FastAPI's plain-JSON 403.
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="An Interchange API key (`ick_<prefix>_<secret>`) in the `X-API-Key` header.",
    auto_error=False,
)
bearer_key = HTTPBearer(
    scheme_name="BearerKey",
    bearerFormat="ick_<prefix>_<secret>",
    description="The same API key as `Authorization: Bearer <key>`.",
    auto_error=False,
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="interchange"'}


def authenticate(
    security_scopes: SecurityScopes,
    session: SessionDep,
    header_key: Annotated[str | None, Security(api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_key)],
) -> ApiKey:
    """The caller's active API key, holding every scope in ``security_scopes``."""
    plaintext = header_key or (bearer.credentials if bearer else None)
    if not plaintext:
        raise Problem(
            "unauthorized",
            f"Send an API key in the {API_KEY_HEADER} header or as Authorization: Bearer <key>.",
            headers=_CHALLENGE,
        )
    key = verify_key(session, plaintext)
    if key is None:
        raise Problem(
            "unauthorized", "The API key is invalid or has been revoked.", headers=_CHALLENGE
        )
    try:
        session.commit()  # persists last_used_at when verify_key updated it
    except OperationalError:
        # Best effort: a busy hub (a sync holding SQLite's write lock) must not turn
        # a read into an error. The next request records the use.
        session.rollback()
        log.info("could not record last use of key %s (database busy)", key.prefix)
    missing = [s for s in security_scopes.scopes if s not in key.scopes]
    if missing:
        raise Problem("forbidden", f"This API key lacks the scope(s): {', '.join(missing)}.")
    return key


def require_scopes(*scopes: Scope | str) -> Any:
    """A ``Security`` marker: authenticate and require ``scopes`` (listed in OpenAPI)."""
    return Security(authenticate, scopes=[str(s) for s in scopes])


CustomersReadKey = Annotated[ApiKey, require_scopes(Scope.customers_read)]
PaymentsReadKey = Annotated[ApiKey, require_scopes(Scope.payments_read)]

# -- pagination ---------------------------------------------------------------------------

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def encode_cursor(last_id: str) -> str:
    """An opaque cursor pointing after ``last_id`` (URL-safe base64, no padding)."""
    return base64.urlsafe_b64encode(last_id.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    """The id a cursor points after; ``ValueError`` if it is not one of ours."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        last_id = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        last_id = ""
    if not last_id or len(last_id) > 255 or not last_id.isprintable():
        raise ValueError("malformed cursor")
    return last_id


def _cursor_after(cursor: str | None) -> str | None:
    # Runs as part of parameter validation, so a bad cursor is reported in the same
    # 422 problem as any other bad parameter.
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise PydanticCustomError(
            "cursor", "Malformed cursor: pass next_cursor from a previous page unchanged."
        ) from None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: str | None  # the decoded cursor: the last id of the previous page


def page_params(
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description="Page size, 1 to 200."),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            max_length=400,
            description="`next_cursor` of the previous page; omit for the first page. "
            "Opaque: do not build or modify it.",
        ),
        AfterValidator(_cursor_after),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]
