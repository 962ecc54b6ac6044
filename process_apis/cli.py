"""``interchange quarantine``: see what was rejected and why, and replay it."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inspect and replay quarantined records.", no_args_is_help=True)


@app.command("list")
def list_(
    source: str = typer.Option("stripe"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Open quarantine records with the rules they failed."""
    from interchange.store import migrate, session_scope
    from process_apis import hub

    migrate(database_url or None)
    with session_scope(database_url or None) as session:
        rows = hub.open_quarantine(session, source=source)
        items = [
            {"id": r.id, "entity": r.entity, "source_id": r.source_id, "stream": r.stream,
             "failed_rules": r.failed_rules, "occurrences": r.occurrences,
             "last_seen_at": r.last_seen_at.isoformat()}
            for r in rows
        ]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table("id", "entity", "source id", "failed rules", "seen")
    for item in items:
        reasons = "; ".join(f"{f['rule']}: {f['message']}" for f in item["failed_rules"])
        table.add_row(str(item["id"]), item["entity"], item["source_id"], reasons,
                      str(item["occurrences"]))
    Console().print(table)


@app.command()
def replay(
    source: str = typer.Option("stripe"),
    refetch: bool = typer.Option(True, help="Re-read each record from the source first."),
    ids: list[int] = typer.Option(None, "--id", help="Only these quarantine ids."),
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Re-run the current rules on quarantined records; land those that pass."""
    from process_apis.replay import replay_quarantine

    result = replay_quarantine(source, refetch=refetch, ids=ids or None,
                               database_url=database_url or None)
    typer.echo(json.dumps(result))
