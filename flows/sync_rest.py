"""``sync-rest``: any declarative REST source (``kind: rest`` in sources.yaml) into the hub.

A data engineer describes the source in YAML (see :mod:`system_apis.rest.spec` and
:mod:`process_apis.mapping.rest`); this one flow syncs it through the same engine as
the hand-written sources: extract -> map + Great Expectations -> quarantine / upsert,
with checkpoints, watermarks and drift detection. The description is checked before
anything is read, so a mistake in it fails the run at once with the setting named.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import Field

from flows.adapters import adapter_for
from flows.engine import SyncMode, SyncParamsBase, run_sync
from interchange.errors import ConfigError
from process_apis.pipeline import mapper_for

__all__ = ["SyncRestParams", "SyncMode", "sync_rest"]


class SyncRestParams(SyncParamsBase):
    """Which declarative source to sync. Rendered by the Prefect UI as the run form."""

    source: str = Field(
        "storefront", min_length=1,
        description="Name of a kind: rest source in sources.yaml.",
    )
    streams: list[str] = Field(
        default_factory=list,
        description="Streams to sync (empty: every stream the source describes).",
    )


@flow(name="sync-rest", log_prints=False)
def sync_rest(params: SyncRestParams = SyncRestParams()) -> dict[str, Any]:
    """Sync one declarative REST source; returns per-stream counts (no data, no secrets)."""
    adapter = adapter_for(params.source)
    mapper_for(params.source)  # the mapping half of the description, checked up front
    unknown = sorted(set(params.streams) - set(adapter.streams))
    if unknown:
        raise ConfigError(f"source {params.source!r} has no stream(s) {unknown} "
                          f"(have: {sorted(adapter.streams)})")  # fmt: skip
    chosen = [s for s in adapter.streams if not params.streams or s in params.streams]
    return run_sync(params.source, chosen, params)


if __name__ == "__main__":
    sync_rest()
