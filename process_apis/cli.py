"""``interchange quarantine``: see what was rejected and why, and replay it."""

from __future__ import annotations

import json
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inspect and replay quarantined records.", no_args_is_help=True)

STATUSES = ("open", "replayed", "resolved")
DB_HELP = "Hub database URL (default: settings)."


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _check_entity(entity: str | None) -> None:
    from process_apis.quality.expectations import EXPECTATIONS

    if entity and entity not in EXPECTATIONS:
        _fail(f"unknown entity {entity!r}; one of: {', '.join(EXPECTATIONS)}")


def _reasons(failed_rules: list[dict]) -> str:
    return "; ".join(f"{f.get('check') or f.get('rule')}: {f.get('message', '')}"
                     for f in failed_rules)


@app.command("list")
def list_(
    source: str = typer.Option("", help="Only this source (default: every source)."),
    entity: str = typer.Option("", help="Only this canonical entity."),
    status: str = typer.Option("open", help="open, replayed, resolved or all."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    database_url: str = typer.Option("", help=DB_HELP),
) -> None:
    """Quarantine records with the rules they failed (default: the open ones)."""
    from interchange.store import migrate, session_scope
    from process_apis import hub

    _check_entity(entity)
    if status not in (*STATUSES, "all"):
        _fail(f"unknown status {status!r}; one of: {', '.join(STATUSES)}, all")
    migrate(database_url or None)
    with session_scope(database_url or None) as session:
        rows = hub.list_quarantine(session, source=source or None, entity=entity or None,
                                   status=None if status == "all" else status)
        items = [
            {"id": r.id, "source": r.source, "entity": r.entity, "source_id": r.source_id,
             "stream": r.stream, "status": r.status, "failed_rules": r.failed_rules,
             "occurrences": r.occurrences, "last_seen_at": r.last_seen_at.isoformat()}
            for r in rows
        ]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table("id", "source", "entity", "source id", "status", "failed rules", "seen",
                  title=f"{len(items)} quarantine records")
    for item in items:
        table.add_row(str(item["id"]), item["source"], item["entity"], item["source_id"],
                      item["status"], _reasons(item["failed_rules"]), str(item["occurrences"]))
    Console().print(table)


@app.command()
def show(
    quarantine_id: int = typer.Argument(..., metavar="ID", help="The quarantine id."),
    database_url: str = typer.Option("", help=DB_HELP),
) -> None:
    """One quarantined record: its failed rules, raw payload and history (JSON)."""
    from interchange.store import migrate, session_scope
    from process_apis.canonical.models import QuarantineRecord

    migrate(database_url or None)
    with session_scope(database_url or None) as session:
        row = session.get(QuarantineRecord, quarantine_id)
        if row is None:
            _fail(f"no quarantine record {quarantine_id}")
        body = {
            "id": row.id, "source": row.source, "entity": row.entity, "stream": row.stream,
            "source_id": row.source_id, "status": row.status,
            "failed_rules": row.failed_rules, "occurrences": row.occurrences,
            "first_seen_at": row.first_seen_at.isoformat(),
            "last_seen_at": row.last_seen_at.isoformat(),
            "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
            "raw": row.raw,
        }
    typer.echo(json.dumps(body, indent=2, default=str))


@app.command()
def replay(
    source: str = typer.Option("", help="Only this source (default: every source)."),
    entity: str = typer.Option("", help="Only this canonical entity."),
    ids: list[int] = typer.Option(None, "--id", "--ids", help="Only these quarantine ids "
                                  "(repeat the option)."),
    refetch: bool = typer.Option(
        False, help="Re-read each record from the source first (stripe only); default: "
        "re-run the stored payload through the current rules."),
    database_url: str = typer.Option("", help=DB_HELP),
) -> None:
    """Re-run the current rules on open quarantined records; land those that pass.

    Prints what became of every candidate, by source and entity: replayed (landed) or
    still failing (kept open with its fresh reasons). Nothing is deleted.
    """
    from interchange.store import migrate, session_scope
    from process_apis import hub
    from process_apis.replay import replay_quarantine

    _check_entity(entity)
    migrate(database_url or None)
    if ids:
        with session_scope(database_url or None) as session:
            found = {r.id: r.status for r in hub.list_quarantine(session, ids=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            _fail(f"no quarantine record {', '.join(map(str, missing))}")
        closed = [f"{i} ({found[i]})" for i in ids if found[i] != "open"]
        if closed:
            _fail(f"not open, nothing to replay: {', '.join(closed)}")
    try:
        result = replay_quarantine(source or None, refetch=refetch, ids=ids or None,
                                   entity=entity or None, database_url=database_url or None)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result, indent=2))


@app.command()
def stats(
    status: str = typer.Option("open", help="open, replayed, resolved or all."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    database_url: str = typer.Option("", help=DB_HELP),
) -> None:
    """Counts by source, entity and status, by failed rule, and referential orphans."""
    from interchange.store import migrate, session_scope
    from process_apis import hub
    from process_apis.quality import referential

    if status not in (*STATUSES, "all"):
        _fail(f"unknown status {status!r}; one of: {', '.join(STATUSES)}, all")
    migrate(database_url or None)
    with session_scope(database_url or None) as session:
        body = hub.quarantine_stats(session, status=None if status == "all" else status)
        # Landed records whose customer/product is not in the hub (see quality.referential).
        body["orphans"] = [{"source": s, "check": c, "count": n}
                           for s, checks in referential.hub_orphans(session).items()
                           for c, n in checks.items()]
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    console = Console()
    table = Table("source", "entity", "status", "records", title="Quarantine by source")
    for row in body["by_status"]:
        table.add_row(row["source"], row["entity"], row["status"], str(row["count"]))
    console.print(table)
    table = Table("source", "entity", "rule", "records", title="By failed rule")
    for row in body["by_rule"]:
        table.add_row(row["source"], row["entity"], row["rule"], str(row["count"]))
    console.print(table)
    table = Table("source", "check", "records", title="Referential orphans (landed)")
    for row in body["orphans"]:
        table.add_row(row["source"], row["check"], str(row["count"]))
    console.print(table)


customers_app = typer.Typer(help="Customer 360: golden customers, and undoing a wrong merge.",
                            no_args_is_help=True)


@customers_app.command("resolve")
def customers_resolve(
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Match every source customer into golden customers now (no events)."""
    from interchange.store import migrate
    from process_apis import identity

    migrate(database_url or None)
    typer.echo(json.dumps(identity.resolve(database_url=database_url or None).counts()))


@customers_app.command("show")
def customers_show(
    golden_id: str,
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """A golden customer, where each value came from, and its source records."""
    from interchange.store import migrate, session_scope
    from process_apis import identity

    migrate(database_url or None)
    with session_scope(database_url or None) as session:
        view = identity.golden_view(session, golden_id)
        if view is None:
            typer.echo(f"no golden customer {golden_id}", err=True)
            raise typer.Exit(1)
        g = view["golden"]
        body = {"id": g.id, "email": g.email, "name": g.name, "phone": g.phone,
                "country": g.country, "provenance": g.provenance,
                "members": [{"customer_id": m.id, "source": m.source,
                             "source_id": m.source_id} for m in view["members"]]}  # fmt: skip
    typer.echo(json.dumps(body, indent=2))


@customers_app.command("split")
def customers_split(
    customer_id: str = typer.Argument(help="The hub customer id (cus_...) to take out."),
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Undo a wrong merge: the source customer gets a golden customer of its own and
    stays there (pinned) until `unpin`."""
    from interchange.errors import ConfigError
    from process_apis import identity

    try:
        typer.echo(identity.split(customer_id, database_url=database_url or None))
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@customers_app.command("unpin")
def customers_unpin(
    customer_id: str,
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Hand a split source customer back to automatic matching."""
    from interchange.errors import ConfigError
    from process_apis import identity

    try:
        identity.unpin(customer_id, database_url=database_url or None)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
