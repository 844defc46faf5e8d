"""Field values: what loads, what becomes NULL and what rejects the row, with the reason."""

from __future__ import annotations

import datetime as dt

import pytest

from flightpipe.etl.values import (
    MAX_ABS_DELAY_MINUTES,
    date_from_key,
    parse_airport_id,
    parse_carrier,
    parse_delay,
    parse_flight_date,
)
from flightpipe.warehouse.ledger import truncate_utf8


@pytest.mark.parametrize(
    ("raw", "staged"),
    [("DL", "DL"), (" AA ", "AA"), ("ABCDEFGH", "ABCDEFGH"), ('A,"B', '"A,""B"')],
)
def test_carrier_is_trimmed_and_csv_quoted_when_needed(raw, staged):
    assert parse_carrier(raw) == (staged, None)


@pytest.mark.parametrize(("raw", "reason"), [("", "carrier is empty"), ("   ", "carrier is empty")])
def test_empty_carrier_rejects_the_row(raw, reason):
    assert parse_carrier(raw) == ("", reason)


def test_carrier_longer_than_the_column_rejects_the_row():
    text, reason = parse_carrier("ABCDEFGHI")
    assert text == ""
    assert reason == (
        "carrier 'ABCDEFGHI' is 9 bytes long (9 characters), more than the 8 bytes of the "
        "warehouse column (carrier VARCHAR(8))"
    )


def test_carrier_limit_counts_utf8_bytes_as_redshift_varchar_does():
    # 4 two-byte characters fill VARCHAR(8) exactly; 5 of them are 10 bytes.
    assert parse_carrier("ÉÉÉÉ") == ("ÉÉÉÉ", None)
    text, reason = parse_carrier("ÉÉÉÉÉ")
    assert text == ""
    assert reason == (
        "carrier 'ÉÉÉÉÉ' is 10 bytes long (5 characters), more than the 8 bytes of the "
        "warehouse column (carrier VARCHAR(8))"
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 4096, "short"),
        ("ÉÉÉÉÉ", 10, "ÉÉÉÉÉ"),
        ("ÉÉÉÉÉ", 9, "ÉÉÉÉ"),  # never half a character
        ("✈✈✈", 8, "✈✈"),  # three-byte characters
        ("a\ud800b", 16, "a?b"),  # a lone surrogate cannot be stored
    ],
)
def test_truncate_utf8_cuts_at_a_character_boundary(text, limit, expected):
    assert truncate_utf8(text, limit, marker="") == expected


def test_truncate_utf8_marks_the_cut_within_the_limit():
    cut = truncate_utf8("é" * 3000, 4096)
    assert len(cut.encode("utf-8")) <= 4096
    assert cut.endswith(" …[truncated]") and cut.startswith("é" * 2000)


@pytest.mark.parametrize(
    ("raw", "staged"),
    [("13851", "13851"), (" 10397 ", "10397"), ("011", "11"), ("12478.0", "12478")],
)
def test_airport_ids_are_integers(raw, staged):
    assert parse_airport_id(raw, "dep_airport_id") == (staged, None)


@pytest.mark.parametrize("raw", ["", "OKC", "12.5", "-5", "1e4", "1234567890123456789"])
def test_non_integer_airport_id_rejects_the_row_naming_the_field(raw):
    text, reason = parse_airport_id(raw, "arr_airport_id")
    assert text == ""
    assert reason.startswith("arr_airport_id ") and "not an integer airport id" in reason


@pytest.mark.parametrize(
    ("raw", "staged"),
    [("-11", "-11"), ("-11.00", "-11"), ("5.", "5"), ("+7", "7"), ("0", "0"), ("1402.0", "1402")],
)
def test_delays_are_integers_or_integral_decimals(raw, staged):
    assert parse_delay(raw, "dep_delay") == (staged, None)


@pytest.mark.parametrize("raw", ["", "  "])
def test_empty_delay_is_null_not_an_error(raw):
    assert parse_delay(raw, "arr_delay") == ("", None)


@pytest.mark.parametrize("raw", ["abc", "1.5", "12:30", "1e3", "--1"])
def test_non_numeric_delay_rejects_the_row(raw):
    text, reason = parse_delay(raw, "dep_delay")
    assert text == ""
    assert reason.startswith("dep_delay ") and "not a whole number of minutes" in reason


def test_delay_beyond_the_sane_bound_rejects_the_row_and_the_bound_itself_loads():
    limit = MAX_ABS_DELAY_MINUTES
    assert parse_delay(str(limit), "dep_delay") == (str(limit), None)
    assert parse_delay(str(-limit), "dep_delay") == (str(-limit), None)
    text, reason = parse_delay(str(limit + 1), "dep_delay")
    assert text == "" and f"±{limit} minutes" in reason


@pytest.mark.parametrize(
    ("raw", "staged"),
    [
        ("2023-01-01", "2023-01-01"),
        ("1/1/2023 0:00", "2023-01-01"),
        ("12/1/2023 12:00:00 AM", "2023-12-01"),
        ("1/31/2023", "2023-01-31"),
        (" 2023-02-28 ", "2023-02-28"),
    ],
)
def test_bts_date_formats_are_recognised(raw, staged):
    assert parse_flight_date(raw) == (staged, None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("2023-02-30", "not a valid calendar date"),
        ("13/1/2023 0:00", "not a valid calendar date"),
        ("Jan 1 2023", "not in a recognised format"),
    ],
)
def test_unparseable_dates_reject_the_row(raw, why):
    text, reason = parse_flight_date(raw)
    assert text == "" and why in reason


def test_empty_date_takes_the_key_date_else_null():
    assert parse_flight_date("", dt.date(2023, 1, 5)) == ("2023-01-05", None)
    assert parse_flight_date("") == ("", None)


@pytest.mark.parametrize(
    ("key", "date"),
    [
        ("incoming/date=2023-01-05/flights.csv", dt.date(2023, 1, 5)),
        ("incoming/year=2023/date=2023-12-31/x.csv", dt.date(2023, 12, 31)),
        ("incoming/flights.csv", None),
        ("incoming/date=2023-02-30/x.csv", None),
        ("incoming/mydate=2023-01-05/x.csv", None),
    ],
)
def test_date_comes_from_a_date_segment_of_the_key(key, date):
    assert date_from_key(key) == date
