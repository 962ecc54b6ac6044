"""``interchange sandbox NAME``: run one source's sandbox alone, seeded, in the foreground.

For development against a source without the whole stack. Each sandbox follows its
vendor's documented contract; ``--token`` sets the credential it accepts where the
vendor has one (anything else gets the vendor's 401).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import typer

app = typer.Typer(help="Run a source sandbox alone (seeded, foreground; Ctrl-C stops it).",
                  no_args_is_help=True)


def _exec_module(module: str, args: list[str]) -> None:
    """Hand the terminal to ``python -m module args`` (Ctrl-C goes straight to it)."""
    os.execv(sys.executable, [sys.executable, "-m", module, *args])  # noqa: S606 (no shell)


@app.command()
def stripe(
    port: int = typer.Option(8420, help="Port on 127.0.0.1."),
    token: str = typer.Option("sk_test_interchange_sandbox", help="Secret key to seed with "
                              "(localstripe accepts any sk_test_ key)."),
    records: int = typer.Option(300, help="Customers to seed (with payments and refunds)."),
) -> None:
    """localstripe through the project's launcher (127.0.0.1, in memory), seeded."""
    from sandboxes.stripe_seed import demo_dataset, seed

    proc = subprocess.Popen([sys.executable, "-m", "sandboxes.localstripe_server",
                             "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise typer.Exit(proc.returncode or 1)
            try:
                if httpx.get(f"{url}/v1/customers?limit=1",
                             headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                typer.echo("localstripe did not become ready", err=True)
                raise typer.Exit(1)
            time.sleep(0.1)
        result = seed(url, token, demo_dataset(customers=records))
        typer.echo(f"Stripe sandbox on {url}: {result['counts']}. Key: any sk_test_ key. "
                   "Ctrl-C stops it.")
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        proc.wait(10)


@app.command()
def hubspot(
    port: int = typer.Option(8421, help="Port on 127.0.0.1."),
    token: str = typer.Option("pat-na1-sandbox-0000", help="Private-app token it accepts."),
    records: int = typer.Option(1000, help="Contacts to seed (companies: a tenth)."),
) -> None:
    """HubSpot CRM v3 + OAuth sandbox (SQLite state), seeded; prints its credentials."""
    _exec_module("sandboxes.hubspot", ["--port", str(port), "--token", token,
                                       "--records", str(records)])


@app.command()
def shopify(
    port: int = typer.Option(8422, help="Port on 127.0.0.1."),
    token: str = typer.Option("shpat_interchange_sandbox",
                              help="Admin API access token it accepts."),
    records: int = typer.Option(1000, help="Customers to seed (orders, products, stock scale)."),
) -> None:
    """Shopify Admin REST sandbox (leaky bucket, Link paging), seeded."""
    _exec_module("sandboxes.shopify", ["--port", str(port), "--token", token,
                                       "--records", str(records)])


@app.command()
def erp(
    url: str = typer.Option("sqlite:///.interchange/erp.db",
                            help="Database to create the legacy ERP schema in."),
    records: int = typer.Option(1000, help="Customers to seed (items and stock scale with it)."),
) -> None:
    """Create and seed the legacy ERP database (SQLite by default; PostgreSQL by URL)."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _exec_module("sandboxes.erp", ["--url", url, "--records", str(records)])
