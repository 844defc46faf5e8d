"""Parsing and checking one field value: carriers, airport ids, delays and dates.

Each function takes the raw text of one field and returns ``(text, error)``:
the value as it is staged for ``COPY`` (``""`` stands for NULL) or the reason
the row is rejected. The validator calls them once per *distinct* value of a
chunk, so they favour clarity over speed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

# Longest carrier code the warehouse stores: airlines.daily_flights_fact.carrier and
# flights_stage.carrier are VARCHAR(8), and Redshift sizes VARCHAR in bytes, not
# characters (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html):
# "ÉÉÉÉÉ" is 5 characters but 10 bytes of UTF-8, and would fail the whole COPY.
CARRIER_MAX_BYTES = 8

# Sane bound for a delay, in minutes: |delay| <= 4000 (about 66 hours). Real
# delays stay far below it (the BTS sample's largest is under 1,500 minutes),
# while a value in seconds, a mangled number or a sentinel such as 99999 lands
# outside it and is rejected instead of skewing every average.
MAX_ABS_DELAY_MINUTES = 4000

# Airport ids are BIGINT in the warehouse; 18 digits always fit.
_AIRPORT_ID = re.compile(r"(\d{1,18})(?:\.0*)?")
_DELAY = re.compile(r"([+-]?\d{1,9})(?:\.0*)?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_US_DATE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?"
)
_KEY_DATE = re.compile(r"(?:^|/)date=(\d{4})-(\d{2})-(\d{2})(?:/|$)")

Parsed = tuple[str, Optional[str]]


def parse_carrier(raw: str) -> Parsed:
    """A carrier code: surrounding spaces removed, not empty, at most 8 bytes of UTF-8."""
    text = raw.strip()
    if not text:
        return "", "carrier is empty"
    size = utf8_length(text)
    if size > CARRIER_MAX_BYTES:
        limit = CARRIER_MAX_BYTES
        return "", (
            f"carrier {text!r} is {size} bytes long ({len(text)} characters), more than the "
            f"{limit} bytes of the warehouse column (carrier VARCHAR({limit}))"
        )
    return csv_field(text), None


def parse_airport_id(raw: str, field: str) -> Parsed:
    """An airport id: a non-negative integer (``13851``, or ``13851.0`` from spreadsheets)."""
    text = raw.strip()
    match = _AIRPORT_ID.fullmatch(text)
    if not match:
        return "", f"{field} {raw!r} is not an integer airport id"
    return str(int(match.group(1))), None


def parse_delay(raw: str, field: str) -> Parsed:
    """A delay in minutes: an integer or integral decimal (``-11.00``); empty means NULL."""
    text = raw.strip()
    if not text:
        return "", None
    match = _DELAY.fullmatch(text)
    if not match:
        return "", f"{field} {raw!r} is not a whole number of minutes"
    minutes = int(match.group(1))
    if abs(minutes) > MAX_ABS_DELAY_MINUTES:
        return "", (
            f"{field} {minutes} is outside the sane bound of ±{MAX_ABS_DELAY_MINUTES} minutes"
        )
    return str(minutes), None


def parse_flight_date(raw: str, fallback: Optional[dt.date] = None) -> Parsed:
    """A flight date as BTS writes it: ``2023-01-01``, ``1/1/2023 0:00``, ``12/1/2023 12:00:00 AM``.

    An empty value takes the fallback (the object key's ``date=`` segment) or NULL.
    """
    text = raw.strip()
    if not text:
        return (fallback.isoformat() if fallback else ""), None
    iso = _ISO_DATE.fullmatch(text)
    us = None if iso else _US_DATE.fullmatch(text)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
    elif us:
        month, day, year = (int(part) for part in us.groups())
    else:
        return "", f"flight date {raw!r} is not in a recognised format"
    try:
        return dt.date(year, month, day).isoformat(), None
    except ValueError:
        return "", f"flight date {raw!r} is not a valid calendar date"


def date_from_key(key: str) -> Optional[dt.date]:
    """The date of a ``date=YYYY-MM-DD`` segment of an object key, if it has one."""
    match = _KEY_DATE.search(key)
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def utf8_length(text: str) -> int:
    """How many bytes ``text`` takes in UTF-8: what a Redshift ``VARCHAR(n)`` limit counts."""
    return len(text.encode("utf-8", "surrogatepass"))


def csv_field(text: str) -> str:
    """``text`` as one RFC 4180 field: quoted only when it has to be."""
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
