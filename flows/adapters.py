"""How the sync engine talks to each source's system API (one adapter per source).

An adapter names the source's streams, opens its client for one extract task (the
client reads its own credentials from Vault), and bridges small differences: the
ERP reads by timestamp and has no HTTP stats, Stripe takes a per-stream strategy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from interchange.errors import ConfigError
from interchange.settings import SourceConfig, get_source
from system_apis.erp import streams as erp_streams
from system_apis.erp.client import erp_engine
from system_apis.hubspot import streams as hubspot_streams
from system_apis.hubspot.client import hubspot_client
from system_apis.rest import streams as rest_streams
from system_apis.rest.client import rest_client
from system_apis.rest.spec import rest_spec
from system_apis.shopify import streams as shopify_streams
from system_apis.shopify.client import shopify_client
from system_apis.stripe import streams as stripe_streams
from system_apis.stripe.client import stripe_client


def _same(value: Any) -> Any:
    return value


def _http_stats(client: Any) -> dict[str, Any]:
    stats = getattr(client, "stats", None)
    return stats.as_dict() if stats is not None else {}


def _epoch_to_datetime(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _datetime_to_epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


@dataclass(frozen=True)
class SourceAdapter:
    source: str
    streams: tuple[str, ...]
    open_client: Callable[[SourceConfig], AbstractContextManager[Any]]
    read_stream: Callable[..., Iterator[Any]]
    fingerprint: Callable[[list[dict[str, Any]]], tuple[str, dict[str, str]]]
    since_arg: Callable[[int], Any] = _same  # the watermark (epoch s) as read_stream wants it
    high_water_epoch: Callable[[Any], int | None] = _same
    stats: Callable[[Any], dict[str, Any]] = _http_stats
    read_options: Callable[[SourceConfig, str], dict[str, Any]] = field(
        default=lambda config, stream: {}
    )

    def read_kwargs(self, config: SourceConfig, stream: str) -> dict[str, Any]:
        return self.read_options(config, stream)


def _stripe_extra(config: SourceConfig, stream: str) -> dict[str, Any]:
    return {"strategy": (config.options.get("incremental") or {}).get(stream)}


ADAPTERS: dict[str, SourceAdapter] = {
    "stripe": SourceAdapter(
        source="stripe",
        streams=("customers", "payments", "refunds"),
        open_client=stripe_client,
        read_stream=stripe_streams.read_stream,
        fingerprint=stripe_streams.fingerprint,
        read_options=_stripe_extra,
    ),
    "hubspot": SourceAdapter(
        source="hubspot",
        streams=("contacts", "companies"),
        open_client=hubspot_client,
        read_stream=hubspot_streams.read_stream,
        fingerprint=hubspot_streams.fingerprint,
    ),
    "shopify": SourceAdapter(
        source="shopify",
        streams=("customers", "products", "orders", "inventory_levels"),
        open_client=shopify_client,
        read_stream=shopify_streams.read_stream,
        fingerprint=shopify_streams.fingerprint,
    ),
    "erp": SourceAdapter(
        source="erp",
        streams=("customers", "items", "stock"),
        open_client=erp_engine,
        read_stream=erp_streams.read_stream,
        fingerprint=erp_streams.fingerprint,
        since_arg=_epoch_to_datetime,
        high_water_epoch=_datetime_to_epoch,
        stats=lambda engine: {},
    ),
}


def _read_rest(client: Any, stream: str, **kwargs: Any) -> Iterator[Any]:
    return rest_streams.read_stream(client, client.spec, stream, **kwargs)


def rest_adapter(config: SourceConfig) -> SourceAdapter:
    """The adapter of a declarative ``kind: rest`` source (streams from its description)."""
    return SourceAdapter(
        source=config.name,
        streams=tuple(rest_spec(config).streams),
        open_client=rest_client,
        read_stream=_read_rest,
        fingerprint=rest_streams.fingerprint,
    )


def adapter_for(source: str) -> SourceAdapter:
    """A built-in source's adapter, or one built from a ``kind: rest`` description."""
    adapter = ADAPTERS.get(source)
    if adapter is not None:
        return adapter
    config = get_source(source)
    if config.kind == "rest":
        return rest_adapter(config)
    raise ConfigError(f"source {source!r} has no system API: give it kind: rest and a "
                      "description, or write one under system_apis/")
