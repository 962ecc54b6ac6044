"""Quarantine replay: run today's rules again on quarantined records and land the fixed ones.

Two ways a quarantined record gets fixed:

* the record was corrected at the source: replay with ``refetch=True`` reads its
  current state from the source's system API, then maps and validates it again;
* a rule was corrected (or was too strict): replay with ``refetch=False`` re-runs the
  stored raw payload through the current rules.

Records that now pass are upserted and their quarantine rows marked ``replayed``;
the rest stay ``open`` with their fresh reasons. Nothing is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from interchange.errors import SourceNotFound
from interchange.settings import get_settings, get_source
from interchange.store import session_scope
from process_apis import hub, pipeline


def replay_quarantine(
    source: str = "stripe",
    *,
    refetch: bool = True,
    ids: Sequence[int] | None = None,
    entity: str | None = None,
    default_region: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    region = default_region or get_settings().default_region
    with session_scope(database_url) as session:
        rows = hub.open_quarantine(session, source=source, entity=entity, ids=ids)
        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_stream[row.stream].append(dict(row.raw))
    totals: dict[str, Any] = {"candidates": len(rows), "replayed": 0, "still_failing": 0,
                              "gone_at_source": 0}
    for stream, raws in by_stream.items():
        if refetch:
            raws, gone = _refetch(source, stream, raws)
            totals["gone_at_source"] += gone
        result = pipeline.replay_records(source, stream, raws, default_region=region,
                                         database_url=database_url)
        totals["replayed"] += result["replayed"]
        totals["still_failing"] += result["still_failing"]
    return totals


def _refetch(source: str, stream: str, raws: list[dict[str, Any]]) -> tuple[list[dict], int]:
    if source != "stripe":
        raise ValueError(f"refetch is not available for source {source!r}")
    from system_apis.stripe.client import stripe_client
    from system_apis.stripe.streams import fetch_current

    fresh: list[dict[str, Any]] = []
    gone = 0
    with stripe_client(get_source(source)) as client:
        for raw in raws:
            try:
                fresh.append(fetch_current(client, stream, str(raw.get("id"))))
            except SourceNotFound:
                gone += 1
                fresh.append(raw)  # keep it quarantined with the stored payload
    return fresh, gone
