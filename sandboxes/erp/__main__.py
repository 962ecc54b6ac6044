"""``python -m sandboxes.erp --url URL --records N``: create the ERP tables and seed them."""

from __future__ import annotations

import argparse
import json

from sandboxes.erp.seed import create_and_seed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.erp", description=__doc__)
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the ERP database")
    parser.add_argument("--records", type=int, default=1000, help="customers to seed")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args = parser.parse_args(argv)
    expected = create_and_seed(args.url, args.records, seed_value=args.seed)
    counts = {k: v for k, v in expected.items() if k not in ("invalid", "last_mod_max")}
    invalid = {k: len(v) for k, v in expected["invalid"].items()}
    print(json.dumps({"seeded": counts, "invalid": invalid}))


if __name__ == "__main__":
    main()
