"""The ``interchange`` command line (typer).

Platform commands live here; the layers contribute their own command groups through
the ``interchange.commands`` entry point group (for example ``keys`` from the
experience layer), so this package never imports the layers it serves.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

app = typer.Typer(help="Interchange: API-led integration on Prefect.", no_args_is_help=True)


@app.command()
def migrate(
    database_url: str = typer.Option("", help="Hub database URL (default: settings)."),
) -> None:
    """Create or upgrade the hub schema."""
    from interchange.store import migrate as run

    run(database_url or None)
    typer.echo("hub schema is up to date")


@app.command()
def up(
    demo: bool = typer.Option(False, help="Stop after the first sync and check the API."),
) -> None:
    """Start the whole local platform (see README)."""
    from interchange.stack import main

    raise typer.Exit(main(demo=demo))


def _load_plugins() -> None:
    for ep in entry_points(group="interchange.commands"):
        app.add_typer(ep.load(), name=ep.name)


_load_plugins()

if __name__ == "__main__":  # pragma: no cover
    app()
