"""The declarative REST source description: what a data engineer writes in sources.yaml.

A source with ``kind: rest`` needs no code. Its entry names the base URL, where its
credentials live in Vault, how to authenticate and, per stream, how to read it::

    sources:
      storefront:
        kind: rest
        base_url: https://api.example.com/v2/
        vault_path: interchange/sources/storefront
        auth: {kind: api_key, header: X-Api-Key, key: api_key}
        streams:
          customers:
            path: customers.json
            records: customers                 # where the list is in the body
            params: {status: any}              # sent with the first request
            paginator: {type: link_header}
            incremental: {param: updated_at_min, cursor_field: updated_at}
            primary_key: id
            entity: customer                   # for the process layer (mapping)
            fields: {email: email, phone: phone}

Auth kinds (secret values stay in Vault, at ``vault_path``):

``bearer``
    ``Authorization: Bearer <key>``.
``api_key``
    ``<header>: <prefix><key>``.
``oauth2_client_credentials``
    ``client_id_key``/``client_secret_key`` in Vault, a token from ``token_url``
    (absolute, or relative to the base URL), optional ``scope``/``audience``,
    ``client_auth`` ``basic`` (default) or ``body``.

Paginators (see :mod:`system_apis.rest.paginators`): ``json_cursor`` (``cursor_path`` in
the body -> ``param``), ``link_header`` (RFC 8288 ``rel``, same origin only), ``offset``
(``offset_param``/``limit_param``, optional ``total_path``) and ``page_number``
(``page_param``/``size_param``, ``start``, optional ``total_pages_path``).

Paths into a body or a record are dotted (``paging.next.after``, ``properties.email``;
a number indexes a list). ``entity`` and ``fields`` are the process layer's business
(:mod:`process_apis.mapping.rest` checks them); here they are only carried.

:func:`rest_spec` validates a :class:`~interchange.settings.SourceConfig` into a
:class:`RestSource` and raises :class:`~interchange.errors.ConfigError` naming the
source, the stream and the setting that is wrong.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from interchange.errors import ConfigError
from interchange.settings import SourceConfig

__all__ = [
    "ApiKeyAuth",
    "BearerAuth",
    "Incremental",
    "JsonCursorPaginator",
    "LinkHeaderPaginator",
    "OAuth2Auth",
    "OffsetPaginator",
    "PageNumberPaginator",
    "RestSource",
    "RestStream",
    "dig",
    "rest_spec",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BearerAuth(_Spec):
    kind: Literal["bearer"]
    key: str = Field("token", description="Vault key holding the token.")


class ApiKeyAuth(_Spec):
    kind: Literal["api_key"]
    header: str = Field(description="Header carrying the key, e.g. X-Api-Key.")
    key: str = Field("api_key", description="Vault key holding the API key.")
    prefix: str = Field("", description="Text before the key in the header, e.g. 'Token '.")


class OAuth2Auth(_Spec):
    kind: Literal["oauth2_client_credentials"]
    token_url: str = Field(description="Token endpoint, absolute or relative to base_url.")
    client_id_key: str = "client_id"
    client_secret_key: str = "client_secret"  # noqa: S105 - a Vault key's name
    scope: str | None = None
    audience: str | None = None
    client_auth: Literal["basic", "body"] = "basic"
    margin_seconds: float = Field(60.0, ge=0, description="Refresh this long before expiry.")


AuthSpec = Annotated[BearerAuth | ApiKeyAuth | OAuth2Auth, Field(discriminator="kind")]


class JsonCursorPaginator(_Spec):
    type: Literal["json_cursor"]
    cursor_path: str = Field(description="Dotted path of the next cursor in the body.")
    param: str = Field(description="Query parameter that takes the cursor.")
    limit_param: str | None = "limit"


class LinkHeaderPaginator(_Spec):
    type: Literal["link_header"]
    rel: str = "next"
    limit_param: str | None = "limit"


class OffsetPaginator(_Spec):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: int = Field(0, ge=0)
    total_path: str | None = Field(None, description="Dotted path of the total count.")
    stop_on_short_page: bool = Field(
        True, description="A page with fewer records than asked for is the last one.")


class PageNumberPaginator(_Spec):
    type: Literal["page_number"]
    page_param: str = "page"
    size_param: str | None = "per_page"
    start: int = Field(1, ge=0)
    total_pages_path: str | None = Field(None, description="Dotted path of the page count.")
    stop_on_short_page: bool = True


PaginatorSpec = Annotated[
    JsonCursorPaginator | LinkHeaderPaginator | OffsetPaginator | PageNumberPaginator,
    Field(discriminator="type"),
]


class Incremental(_Spec):
    param: str = Field(description="Query parameter that takes the lower bound.")
    cursor_field: str = Field(description="Dotted path of each record's modification time.")
    format: Literal["iso8601", "epoch", "epoch_ms", "date"] = Field(
        "iso8601", description="How the lower bound is written into the parameter.")


class RestStream(_Spec):
    path: str = Field(description="Path relative to base_url.")
    records: str = Field("", description="Dotted path of the record list ('' = the body).")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    paginator: PaginatorSpec
    incremental: Incremental | None = None
    primary_key: str | list[str] = "id"
    page_size: int | None = Field(None, ge=1, description="Overrides the source's page_size.")
    max_page_size: int = Field(100, ge=1, description="The API's largest page.")
    # The process layer's part (process_apis.mapping.rest validates it).
    entity: str | None = None
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Canonical field -> dotted path (or paths, the "
        "first with a value wins).")
    required: list[str] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if "://" in value or value.startswith("//"):
            raise ValueError("must be relative to base_url (credentials never leave it)")
        return value.lstrip("/")

    @property
    def key_fields(self) -> tuple[str, ...]:
        return (self.primary_key,) if isinstance(self.primary_key, str) else tuple(
            self.primary_key)


class RestSource(_Spec):
    name: str
    base_url: str
    vault_path: str
    auth: AuthSpec
    headers: dict[str, str] = Field(default_factory=dict)
    streams: dict[str, RestStream] = Field(min_length=1)

    @field_validator("headers")
    @classmethod
    def _no_auth_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            lowered = name.lower()
            if lowered in ("authorization", "cookie", "proxy-authorization") or any(
                    word in lowered for word in ("key", "token", "secret", "auth",
                                                 "password")):  # fmt: skip
                raise ValueError(f"{name} cannot be set here: credentials come from Vault "
                                 "(name the header in auth:)")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _auth_header_not_in_headers(self) -> RestSource:
        header = getattr(self.auth, "header", None)
        if header and header.lower() in {h.lower() for h in self.headers}:
            raise ValueError(f"headers: {header} is the auth header; its value comes from "
                             "Vault")  # fmt: skip
        return self


def rest_spec(config: SourceConfig) -> RestSource:
    """The validated description of a ``kind: rest`` source (cached per config)."""
    if config.kind != "rest":
        raise ConfigError(f"source {config.name!r} is not a declarative REST source "
                          "(kind: rest)")  # fmt: skip
    return _rest_spec(config.name, config.base_url, config.vault_path,
                      json.dumps(config.auth, sort_keys=True, default=str),
                      json.dumps(config.headers, sort_keys=True),
                      json.dumps(config.streams, sort_keys=True, default=str))


@functools.lru_cache(maxsize=32)
def _rest_spec(name: str, base_url: str, vault_path: str, auth: str, headers: str,
               streams: str) -> RestSource:  # fmt: skip
    if json.loads(auth) is None:
        raise ConfigError(f"source {name!r}: kind: rest needs an auth: block "
                          "(bearer, api_key or oauth2_client_credentials)")  # fmt: skip
    try:
        return RestSource(name=name, base_url=base_url, vault_path=vault_path,
                          auth=json.loads(auth), headers=json.loads(headers),
                          streams=json.loads(streams))  # fmt: skip
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"source {name!r} is not a valid REST source: {problems}") from None


_MISSING = object()


def dig(value: Any, path: str, default: Any = None) -> Any:
    """``value`` at a dotted ``path`` (numbers index lists); ``default`` when absent."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return default
    return value
