"""Run the Shopify sandbox in the foreground.

``python -m sandboxes.shopify --port P [--host H] [--token T] [--records N] [--seed S]
[--db PATH] [--bucket-size N] [--leak-rate R]`` - seeded before it starts listening,
loopback only by default; Ctrl-C stops it. A port already in use is a one-line error
with exit status 2.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from sandboxes.shopify import DEFAULT_PORT, DEFAULT_TOKEN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.shopify", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the access token accepted")
    parser.add_argument("--records", type=int, default=1000, help="customers (and orders)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", default=":memory:", help="SQLite path (default in memory)")
    parser.add_argument("--bucket-size", type=int, default=40, help="leaky bucket size")
    parser.add_argument("--leak-rate", type=float, default=2.0, help="requests leaked per s")
    args = parser.parse_args(argv)

    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            print(f"shopify sandbox: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2

    import uvicorn

    from sandboxes.shopify.app import create_app

    started = time.monotonic()
    app = create_app(
        token=args.token,
        records=args.records,
        seed=args.seed,
        db=args.db,
        knobs={"bucket_size": args.bucket_size, "leak_rate": args.leak_rate},
    )
    seeded = app.state.sandbox.expected
    print(
        f"shopify sandbox: seeded {seeded} in {time.monotonic() - started:.2f}s; "
        f"listening on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
