"""A synthetic demo dataset, for ``make demo`` where the real data folder is absent.

Writes the airports dimension and two flight files (the tutorial layout and the
BTS layout) with the project's generator, and prints the flight files' paths.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flightpipe_local.synthetic import generate_airports_csv, generate_flights_csv

TUTORIAL_ROWS = 13
BTS_ROWS = 6000


def write_demo_dataset(directory: Path) -> list[Path]:
    """Write ``airports.csv`` and two flight files into ``directory``; return the flight files."""
    directory.mkdir(parents=True, exist_ok=True)
    generate_airports_csv(directory / "airports.csv")
    return [
        generate_flights_csv(
            directory / "synthetic_tutorial_flights.csv", TUTORIAL_ROWS, seed=1, layout="tutorial"
        ),
        generate_flights_csv(
            directory / "synthetic_bts_flights.csv", BTS_ROWS, seed=2, layout="bts"
        ),
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m flightpipe_local.demo_data DIR", file=sys.stderr)
        return 2
    for path in write_demo_dataset(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
