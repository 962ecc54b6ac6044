"""Quarantine replay: run today's rules again on quarantined records and land the fixed ones.

Two ways a quarantined record gets fixed:

* the record was corrected at the source: replay with ``refetch=True`` reads its
  current state from the source's system API, then maps and validates it again
  (sources whose system API can read one record: :data:`REFETCHABLE`);
* a rule was corrected (or was too strict): replay with ``refetch=False`` re-runs the
  stored raw payload through the current rules and expectations.

Records that now pass are upserted and their quarantine rows marked ``replayed``;
the rest stay ``open`` with their fresh reasons. Nothing is deleted, and the result
counts every candidate row by what became of it, per source and entity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from interchange.errors import SourceNotFound
from interchange.settings import get_settings, get_source
from interchange.store import session_scope
from process_apis import hub, pipeline

REFETCHABLE = frozenset({"stripe"})


def replay_quarantine(
    source: str | None = None,
    *,
    refetch: bool = False,
    ids: Sequence[int] | None = None,
    entity: str | None = None,
    default_region: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Replay the open quarantine rows of ``source`` (None: every source), optionally
    only ``entity`` or the rows ``ids``.

    ``refetch`` re-reads records from the source first: an error for a named source
    that cannot; with every source, those that cannot replay their stored payload
    (listed under ``stored_payload``).
    """
    if refetch and source and source not in REFETCHABLE:
        raise ValueError(f"refetch is not available for source {source!r} "
                         f"(only {', '.join(sorted(REFETCHABLE))}); replay without it")
    region = default_region or get_settings().default_region
    with session_scope(database_url) as session:
        rows = hub.open_quarantine(session, source=source, entity=entity, ids=ids)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        members: dict[tuple[str, str], list[int]] = defaultdict(list)
        for row in rows:
            groups[(row.source, row.stream)].append(dict(row.raw))
            members[(row.source, row.entity)].append(int(row.id or 0))
    totals: dict[str, Any] = {"candidates": len(rows), "replayed": 0, "still_failing": 0,
                              "gone_at_source": 0, "stored_payload": [], "by_source": {}}
    for (src, stream), raws in groups.items():
        if refetch and src in REFETCHABLE:
            raws, gone = _refetch(src, stream, raws)
            totals["gone_at_source"] += gone
        elif refetch and src not in totals["stored_payload"]:
            totals["stored_payload"].append(src)
        pipeline.replay_records(src, stream, raws, default_region=region,
                                database_url=database_url)
    for src in sorted({s for s, _ in groups}):
        pipeline.link_orphans(src, database_url=database_url)  # e.g. orders of a customer
    # What became of each candidate row, read back: a count per row, never per record
    # the replay happened to map (a payload can map to several records).
    with session_scope(database_url) as session:
        for (src, ent), row_ids in sorted(members.items()):
            after = hub.list_quarantine(session, ids=row_ids)
            replayed = sum(1 for r in after if r.status != "open")
            counts = {"candidates": len(row_ids), "replayed": replayed,
                      "still_failing": len(after) - replayed}
            totals["by_source"].setdefault(src, {})[ent] = counts
            totals["replayed"] += replayed
            totals["still_failing"] += counts["still_failing"]
    return totals


def _refetch(source: str, stream: str, raws: list[dict[str, Any]]) -> tuple[list[dict], int]:
    if source not in REFETCHABLE:
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
