"""``python -m sandboxes.hubspot --port P [--host H] [--token T] [--records N] [--db PATH]``.

Runs the HubSpot sandbox seeded, in the foreground, and prints the credentials it accepts:
the private-app token (``--token``) and the OAuth client id, secret and refresh token.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import uvicorn

from sandboxes.hubspot.app import (
    DEFAULT_AUTH_CODE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_TOKEN,
    create_app,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.hubspot", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="private-app token accepted")
    parser.add_argument("--records", type=int, default=1000, help="contacts to seed")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--refresh-token", default=DEFAULT_REFRESH_TOKEN)
    parser.add_argument("--config", default="{}", help="initial knobs as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hubspot-sandbox-") as tmp:
        db = args.db or Path(tmp) / "hubspot.sqlite3"
        app = create_app(
            db_path=db, token=args.token, client_id=args.client_id,
            client_secret=args.client_secret, refresh_token=args.refresh_token,
            records=args.records, seed=args.seed, knobs=json.loads(args.config),
        )  # fmt: skip
        print(f"HubSpot sandbox on http://{args.host}:{args.port} ({args.records} contacts)")
        # A token handed in (make up passes one that lives in Vault) is not echoed
        # into logs; the well-known defaults are, for development by hand.
        shown = args.token if args.token == DEFAULT_TOKEN else f"{args.token[:8]}... (as given)"
        print(f"  private-app token : {shown}")
        print(f"  OAuth client id   : {args.client_id}")
        print(f"  OAuth secret      : {args.client_secret}")
        print(f"  OAuth refresh     : {args.refresh_token} (rotates on every refresh)")
        print(f"  OAuth auth code   : {DEFAULT_AUTH_CODE}")
        print(f"  SQLite            : {db}", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
