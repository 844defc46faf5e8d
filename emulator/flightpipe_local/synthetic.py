"""Realistic synthetic flight files, for the benchmark and for demos without real data.

Carriers, airport ids and delays are resampled from a real BTS on-time sample
when one is given (``../shared/data/bts_ontime_2023_01_OK.csv`` in this
project); otherwise from a built-in distribution over the airports that
:func:`generate_airports_csv` writes. A share of rows uses airport ids the
dimension does not know (new airports) and a share has blank delays (cancelled
or diverted flights), as real files do.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Optional, Union

import numpy as np

PathLike = Union[str, Path]

TUTORIAL_HEADER = ("Carrier", "OriginAirportID", "DestAirportID", "DepDelay", "ArrDelay")
BTS_HEADER = (
    "YEAR",
    "MONTH",
    "DAY_OF_MONTH",
    "FL_DATE",
    "OP_UNIQUE_CARRIER",
    "OP_CARRIER_FL_NUM",
    "ORIGIN_AIRPORT_ID",
    "ORIGIN_CITY_NAME",
    "DEST_AIRPORT_ID",
    "DEST_CITY_NAME",
    "DEP_DELAY",
    "ARR_DELAY",
    "CANCELLED",
    "DIVERTED",
)
UNKNOWN_AIRPORT_SHARE = 0.02
BLANK_DELAY_SHARE = 0.02
_BUILTIN_CARRIERS = ("AA", "DL", "UA", "WN", "OO", "YX", "MQ", "B6", "AS", "NK", "F9", "G4")
_BUILTIN_AIRPORT_COUNT = 300
_BUILTIN_FIRST_ID = 10100
_UNKNOWN_IDS = np.arange(16100, 16120)
_CHUNK_ROWS = 250_000
_STATES = ("AK", "AL", "AZ", "CA", "CO", "FL", "GA", "IL", "NY", "OK", "TX", "WA")


class _Distribution:
    """What rows are drawn from: carriers, airport ids and (dep, arr) delay pairs."""

    def __init__(self, source: Optional[PathLike]) -> None:
        if source is not None and Path(source).is_file():
            self._from_sample(Path(source))
        else:
            self._builtin()

    def _from_sample(self, path: Path) -> None:
        carriers, origins, dests, delays = [], [], [], []
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                carriers.append(row["OP_UNIQUE_CARRIER"])
                origins.append(int(row["ORIGIN_AIRPORT_ID"]))
                dests.append(int(row["DEST_AIRPORT_ID"]))
                if row["DEP_DELAY"] and row["ARR_DELAY"]:
                    delays.append((int(float(row["DEP_DELAY"])), int(float(row["ARR_DELAY"]))))
        self.carriers = np.array(carriers, dtype=object)
        self.airports = np.array(origins + dests, dtype=np.int64)
        self.delays = np.array(delays, dtype=np.int64)

    def _builtin(self) -> None:
        rng = np.random.default_rng(7)
        self.carriers = np.array(_BUILTIN_CARRIERS, dtype=object)
        self.airports = np.arange(_BUILTIN_FIRST_ID, _BUILTIN_FIRST_ID + _BUILTIN_AIRPORT_COUNT)
        dep = np.round(rng.gamma(0.6, 30.0, 5000) - 10).astype(np.int64)
        self.delays = np.stack([dep, dep + rng.integers(-20, 15, 5000)], axis=1)


def generate_flights_csv(
    path: PathLike,
    rows: int,
    seed: int = 0,
    layout: str = "bts",
    source: Optional[PathLike] = None,
    flight_date: dt.date = dt.date(2023, 1, 15),
    date_column: bool = False,
) -> Path:
    """Write ``rows`` flights in the ``bts`` or ``tutorial`` layout to ``path``; return it.

    ``date_column`` adds a ``FlightDate`` column (ISO dates) to the tutorial layout;
    the BTS layout always has ``FL_DATE``.
    """
    if layout not in ("bts", "tutorial"):
        raise ValueError(f"layout must be 'bts' or 'tutorial', not {layout!r}")
    distribution = _Distribution(source)
    rng = np.random.default_rng(seed)
    target = Path(path)
    with target.open("w", encoding="utf-8", newline="") as handle:
        header = BTS_HEADER if layout == "bts" else TUTORIAL_HEADER
        if layout == "tutorial" and date_column:
            header = (*header, "FlightDate")
        handle.write(",".join(header) + "\n")
        written = 0
        while written < rows:
            count = min(_CHUNK_ROWS, rows - written)
            handle.write(_chunk(distribution, rng, count, layout, flight_date, date_column))
            written += count
    return target


def _chunk(
    distribution: _Distribution,
    rng: np.random.Generator,
    count: int,
    layout: str,
    flight_date: dt.date,
    date_column: bool = False,
) -> str:
    carriers = distribution.carriers[rng.integers(0, len(distribution.carriers), count)]
    origins = _airport_ids(distribution, rng, count)
    dests = _airport_ids(distribution, rng, count)
    pairs = distribution.delays[rng.integers(0, len(distribution.delays), count)]
    blank = rng.random(count) < BLANK_DELAY_SHARE
    dep = np.where(blank, "", pairs[:, 0].astype(str)).astype(object)
    arr = np.where(blank, "", pairs[:, 1].astype(str)).astype(object)
    origin_text, dest_text = origins.astype(str).astype(object), dests.astype(str).astype(object)
    if layout == "tutorial":
        columns = [carriers, origin_text, dest_text, dep, arr]
        if date_column:
            days = flight_date.toordinal() + rng.integers(0, 3, count)
            iso = {day: dt.date.fromordinal(day).isoformat() for day in np.unique(days).tolist()}
            columns.append(np.array([iso[day] for day in days.tolist()], dtype=object))
    else:
        # Up to two days after flight_date, rolling over month ends as a calendar does.
        ordinals = flight_date.toordinal() + rng.integers(0, 3, count)
        dates = {day: dt.date.fromordinal(day) for day in np.unique(ordinals).tolist()}
        picked = [dates[day] for day in ordinals.tolist()]
        date_text = np.array([f"{d.month}/{d.day}/{d.year} 12:00:00 AM" for d in picked])
        year = np.array([str(d.year) for d in picked], dtype=object)
        month = np.array([str(d.month) for d in picked], dtype=object)
        day = np.array([str(d.day) for d in picked], dtype=object)
        numbers = rng.integers(1, 7000, count).astype(str).astype(object)
        cancelled = np.where(blank, "1.00", "0.00").astype(object)
        city = np.array(
            ['"Oklahoma City, OK"', '"Dallas/Fort Worth, TX"', '"Denver, CO"'], dtype=object
        )
        columns = [
            year,
            month,
            day,
            date_text.astype(object),
            carriers,
            numbers,
            origin_text,
            city[rng.integers(0, len(city), count)],
            dest_text,
            city[rng.integers(0, len(city), count)],
            dep,
            arr,
            cancelled,
            np.full(count, "0.00", dtype=object),
        ]
    return "\n".join(map(",".join, zip(*columns))) + "\n"


def _airport_ids(distribution: _Distribution, rng: np.random.Generator, count: int) -> np.ndarray:
    ids = distribution.airports[rng.integers(0, len(distribution.airports), count)]
    unknown = rng.random(count) < UNKNOWN_AIRPORT_SHARE / 2
    return np.where(unknown, _UNKNOWN_IDS[rng.integers(0, len(_UNKNOWN_IDS), count)], ids)


def generate_airports_csv(path: PathLike) -> Path:
    """Write the built-in airports dimension (``airport_id,city,state,name``) to ``path``."""
    target = Path(path)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("airport_id", "city", "state", "name"))
        for index in range(_BUILTIN_AIRPORT_COUNT):
            airport_id = _BUILTIN_FIRST_ID + index
            state = _STATES[index % len(_STATES)]
            writer.writerow((airport_id, f"City {index}", state, f"St. Mary's Field {index}"))
    return target
