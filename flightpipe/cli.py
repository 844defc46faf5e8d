"""The ``flightpipe`` command line.

Subcommands are contributed by installed distributions through the
``flightpipe.commands`` entry-point group (a callable that adds its parsers to
the subparsers it is given), so that the product never imports development
tooling: ``flightpipe local …`` exists only where the emulator package
(``flightpipe-local``) is installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any, Optional

COMMAND_GROUP = "flightpipe.commands"


def add_operations(commands: Any) -> None:
    from flightpipe.ops.commands import add_parsers

    add_parsers(commands)


def _command_entry_points() -> list[Any]:
    found = entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=COMMAND_GROUP))
    return list(found.get(COMMAND_GROUP, []))  # Python 3.9


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightpipe", description="Serverless flight-data pipeline"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_operations(commands)
    for entry_point in sorted(_command_entry_points(), key=lambda e: e.name):
        entry_point.load()(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
