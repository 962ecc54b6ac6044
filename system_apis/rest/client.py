"""The HTTP client of a declarative REST source: :func:`rest_client`.

:func:`interchange.http.build_client` (pooling, timeouts, outbound rate limit, retries
with backoff and ``Retry-After``, typed errors) configured from the source's
:class:`~interchange.settings.SourceConfig`, with the auth its ``auth:`` block names
(:mod:`interchange.auth`: a Vault-held bearer token or API key, or the OAuth 2.0
client-credentials grant) and its extra ``headers``. Nothing is read from Vault until
the first request.
"""

from __future__ import annotations

from urllib.parse import urljoin

import httpx

from interchange.auth import OAuth2ClientCredentials, SecretsReader, VaultHeaderAuth
from interchange.http import RetryPolicy, SourceClient, build_client
from interchange.settings import SourceConfig
from system_apis.rest.spec import ApiKeyAuth, BearerAuth, OAuth2Auth, RestSource, rest_spec

__all__ = ["rest_auth", "rest_client"]

USER_AGENT = "interchange-system-api/0.1 (+rest)"


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def rest_auth(
    source: RestSource,
    secrets: SecretsReader,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> httpx.Auth:
    auth = source.auth
    if isinstance(auth, BearerAuth):
        return VaultHeaderAuth(secrets=secrets, vault_path=source.vault_path, key=auth.key,
                               source=source.name)  # fmt: skip
    if isinstance(auth, ApiKeyAuth):
        return VaultHeaderAuth(secrets=secrets, vault_path=source.vault_path, key=auth.key,
                               header=auth.header, prefix=auth.prefix, source=source.name)
    if isinstance(auth, OAuth2Auth):
        return OAuth2ClientCredentials(
            secrets=secrets, vault_path=source.vault_path,
            token_url=urljoin(_base(source.base_url), auth.token_url),
            client_id_key=auth.client_id_key, client_secret_key=auth.client_secret_key,
            scope=auth.scope, audience=auth.audience, client_auth=auth.client_auth,
            margin=auth.margin_seconds, timeout=timeout, source=source.name,
            transport=transport,
        )  # fmt: skip
    raise TypeError(f"unknown auth {type(auth).__name__}")


def rest_client(
    config: SourceConfig,
    *,
    secrets: SecretsReader | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SourceClient:
    """A :class:`SourceClient` for the ``kind: rest`` source ``config``; its validated
    description is ``client.spec``. ``transport`` replaces the network (unit tests)."""
    spec = rest_spec(config)
    if secrets is None:
        from interchange.secrets import get_secrets

        secrets = get_secrets()
    client = build_client(
        source=config.name,
        base_url=_base(config.base_url),
        auth=rest_auth(spec, secrets, transport=transport, timeout=config.timeout_seconds),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **spec.headers},
        timeout=config.timeout_seconds,
        rate_limit_per_second=config.rate_limit_per_second,
        burst=config.burst,
        policy=RetryPolicy.for_source(config),
        transport=transport,
    )
    client.spec = spec  # type: ignore[attr-defined]
    return client
