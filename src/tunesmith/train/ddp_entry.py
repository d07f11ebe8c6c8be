"""`python -m tunesmith.train.ddp_entry CONFIG [--set KEY=VALUE ...] [--resume|--no-resume] [--quiet]`

The training entry point without the CLI around it: what the multi-process tests launch with
`torchrun --nproc_per_node N -m tunesmith.train.ddp_entry CONFIG` (`torchrun -m tunesmith train
CONFIG` does the same through the CLI). User errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from tunesmith.config import load_config
from tunesmith.errors import TunesmithError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunesmith.train.ddp_entry", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or estimate table")
    args = parser.parse_args(argv)
    from tunesmith.train import train

    try:
        result = train(load_config(args.config, args.overrides), resume=args.resume, progress=not args.quiet)
    except TunesmithError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"weights: {result.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
