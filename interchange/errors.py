"""The Interchange exception hierarchy.

Every layer raises these types, never a transport library's own, so callers (and
Prefect retry conditions) can decide what to do from the type alone::

    InterchangeError
    ├── ConfigError                 bad or missing settings / sources file
    ├── SecretsError                Vault unreachable, auth failed
    │   ├── SecretNotFound          no secret (or key) at a configured Vault path
    │   └── SecretsAuthError        token refused and no AppRole to log in again
    ├── SourceError                 anything that went wrong talking to a source
    │   ├── SourceTransportError    (retryable) the request never got an HTTP answer
    │   │   ├── SourceTimeout
    │   │   └── SourceConnectError  refused, reset, dropped connection
    │   └── SourceHTTPError         the source answered with an error status
    │       ├── SourceAuthError     401 / 403: credentials wrong or revoked
    │       ├── SourceNotFound      404
    │       ├── SourceRateLimited   (retryable) 429, carries ``retry_after``
    │       ├── SourceClientError   other 4xx: our request is wrong, do not retry
    │       └── SourceServerError   (retryable) 5xx
    ├── SchemaError                 a source record does not fit its typed model
    ├── DataQualityError            a batch failed validation above its threshold
    └── StoreError                  the hub database failed

``retryable`` is the single attribute retry policies look at. Messages never carry
secret values: URLs are logged without query strings and headers are never quoted.
"""

from __future__ import annotations


class InterchangeError(Exception):
    """Base of every error Interchange raises on purpose."""

    retryable: bool = False


class ConfigError(InterchangeError):
    """Settings or the sources file are missing or invalid."""


class SecretsError(InterchangeError):
    """Vault could not be reached or refused every way we know to log in."""

    retryable = True


class SecretNotFound(SecretsError):
    """The configured Vault path or key does not exist."""

    retryable = False


class SecretsAuthError(SecretsError):
    """Vault refused our token and there is no AppRole to log in again with."""

    retryable = False


class SourceError(InterchangeError):
    """Base for errors talking to a source system."""

    def __init__(self, message: str, *, source: str = "", request: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.request = request  # "GET /v1/customers" - never a query string


class SourceTransportError(SourceError):
    retryable = True


class SourceTimeout(SourceTransportError):
    pass


class SourceConnectError(SourceTransportError):
    pass


class SourceHTTPError(SourceError):
    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        request: str = "",
        status_code: int = 0,
        body: str = "",
    ) -> None:
        super().__init__(message, source=source, request=request)
        self.status_code = status_code
        self.body = body[:500]


class SourceAuthError(SourceHTTPError):
    pass


class SourceNotFound(SourceHTTPError):
    pass


class SourceRateLimited(SourceHTTPError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SourceClientError(SourceHTTPError):
    pass


class SourceServerError(SourceHTTPError):
    retryable = True


class SchemaError(InterchangeError):
    """A source record could not be parsed into its source-shaped model."""


class DataQualityError(InterchangeError):
    """A batch failed validation above its configured threshold."""


class StoreError(InterchangeError):
    """The hub database failed."""

    retryable = True


def is_retryable(exc: BaseException) -> bool:
    """True when retrying the same operation may succeed."""
    return bool(getattr(exc, "retryable", False))


def error_for_status(
    status_code: int, *, source: str, request: str, body: str = "", retry_after: float | None = None
) -> SourceHTTPError:
    """Map an HTTP error status to the most specific SourceHTTPError."""
    msg = f"{source}: {request} answered {status_code}"
    kw = dict(source=source, request=request, status_code=status_code, body=body)
    if status_code in (401, 403):
        return SourceAuthError(msg, **kw)
    if status_code == 404:
        return SourceNotFound(msg, **kw)
    if status_code == 429:
        return SourceRateLimited(msg, retry_after=retry_after, **kw)
    if status_code >= 500:
        return SourceServerError(msg, **kw)
    return SourceClientError(msg, **kw)
