"""The header layouts the job recognises and the column names accepted for each field.

Two families of files arrive: the tutorial layout
(``Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay``, optionally a date
column) and the BTS on-time layouts with their many extra columns. Both are
described by one table of aliases, so a new spelling is one line here. Names
match case-insensitively and ignoring surrounding spaces; extra columns are
ignored and column order is free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from flightpipe.etl.errors import FileRejected

# Field -> accepted header names, in order of preference (the first present wins).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "carrier": ("Carrier", "OP_UNIQUE_CARRIER", "OP_CARRIER", "MKT_UNIQUE_CARRIER"),
    "dep_airport_id": ("OriginAirportID", "ORIGIN_AIRPORT_ID"),
    "arr_airport_id": ("DestAirportID", "DEST_AIRPORT_ID"),
    "dep_delay": ("DepDelay", "DEP_DELAY"),
    "arr_delay": ("ArrDelay", "ARR_DELAY"),
    "flight_date": ("FL_DATE", "FlightDate", "Flight_Date", "Date"),
}
REQUIRED_FIELDS: tuple[str, ...] = (
    "carrier",
    "dep_airport_id",
    "arr_airport_id",
    "dep_delay",
    "arr_delay",
)
OPTIONAL_FIELDS: tuple[str, ...] = ("flight_date",)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d*)?")


def normalise_name(name: str) -> str:
    """A header name as it is compared: surrounding spaces removed, case folded."""
    return name.strip().casefold()


@dataclass(frozen=True)
class ColumnMap:
    """Where each field sits in the file: its 0-based position and the header name used."""

    field_count: int
    positions: dict[str, int]
    names: dict[str, str]

    def position(self, field: str) -> Optional[int]:
        return self.positions.get(field)

    @property
    def has_date(self) -> bool:
        return "flight_date" in self.positions

    @property
    def layout(self) -> str:
        """``tutorial`` or ``bts``, from the header name the carrier column used."""
        return "tutorial" if normalise_name(self.names["carrier"]) == "carrier" else "bts"


def resolve_columns(header: Sequence[str]) -> ColumnMap:
    """Map a header row to the job's fields, or reject the file naming what is missing."""
    first_position: dict[str, int] = {}
    for position, name in enumerate(header):
        first_position.setdefault(normalise_name(name), position)
    positions: dict[str, int] = {}
    names: dict[str, str] = {}
    for field, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            position = first_position.get(normalise_name(alias))
            if position is not None:
                positions[field] = position
                names[field] = header[position].strip()
                break
    missing = [field for field in REQUIRED_FIELDS if field not in positions]
    if not positions and looks_like_data(header):
        shown = ",".join(header[:8])
        raise FileRejected(f"the file has no header row: its first line looks like data ({shown})")
    if missing:
        raise FileRejected(missing_columns_message(missing, header))
    return ColumnMap(field_count=len(header), positions=positions, names=names)


def looks_like_data(fields: Sequence[str]) -> bool:
    """True when a first line holds numbers: header names never do."""
    return any(_NUMBER.fullmatch(field.strip()) for field in fields)


def missing_columns_message(missing: Sequence[str], header: Sequence[str]) -> str:
    """Name each missing field and every header name accepted for it."""
    parts = [f"{field} (accepted names: {', '.join(FIELD_ALIASES[field])})" for field in missing]
    shown = ", ".join(name.strip() for name in header[:12])
    more = f", … ({len(header)} columns)" if len(header) > 12 else ""
    return f"required columns missing: {'; '.join(parts)}. The header has: {shown}{more}"
