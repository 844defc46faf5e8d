"""The ``flightpipe`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightpipe", description="Serverless flight-data pipeline"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from flightpipe.local.cli import add_parser as add_local

    add_local(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
