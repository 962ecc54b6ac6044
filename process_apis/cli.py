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
