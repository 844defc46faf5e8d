"""Synthetic flight files look real: both layouts validate, with unknown ids and NULL delays."""

from __future__ import annotations

import csv
import io

import pytest

from flightpipe.etl.layouts import resolve_columns
from flightpipe.etl.reader import CsvRecordReader
from flightpipe.etl.validate import BlockValidator
from flightpipe_local.synthetic import generate_airports_csv, generate_flights_csv


def _validate(path, known):
    with path.open("rb") as handle:
        reader = CsvRecordReader(handle)
        _, header = reader.header()
        columns = resolve_columns(next(csv.reader([header.decode()])))
        validator = BlockValidator(columns, known)
        results = [validator.validate(block) for block in reader.data_blocks()]
    return columns, results


@pytest.mark.parametrize("layout", ["tutorial", "bts"])
def test_builtin_distribution_files_validate_with_unknown_airports_and_blank_delays(
    tmp_path, layout
):
    airports = generate_airports_csv(tmp_path / "airports.csv")
    known = {int(row["airport_id"]) for row in csv.DictReader(io.StringIO(airports.read_text()))}
    path = generate_flights_csv(tmp_path / "f.csv", 5000, seed=1, layout=layout)
    columns, results = _validate(path, known)
    assert columns.layout == layout
    assert sum(r.rows_read for r in results) == sum(r.rows_valid for r in results) == 5000
    unmatched = sum(r.unmatched_airport_rows for r in results)
    assert 0 < unmatched < 5000 * 0.05
    assert any(b",," in r.staged_bytes for r in results)  # blank delays stage as NULL


def test_resampling_the_real_sample_uses_its_carriers(tmp_path, shared_data):
    source = shared_data / "bts_ontime_2023_01_OK.csv"
    with source.open(newline="") as handle:
        carriers = {row["OP_UNIQUE_CARRIER"] for row in csv.DictReader(handle)}
    path = generate_flights_csv(
        tmp_path / "f.csv", 2000, seed=3, layout="tutorial", source=source, date_column=True
    )
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2000 and {row["Carrier"] for row in rows} <= carriers
    assert rows[0]["FlightDate"].startswith("2023-01-")


def test_same_seed_gives_the_same_file(tmp_path):
    first = generate_flights_csv(tmp_path / "a.csv", 1000, seed=9, layout="bts")
    second = generate_flights_csv(tmp_path / "b.csv", 1000, seed=9, layout="bts")
    assert first.read_bytes() == second.read_bytes()


def test_bts_dates_roll_over_month_and_year_ends(tmp_path):
    import csv
    import datetime as dt

    from flightpipe_local.synthetic import generate_flights_csv

    path = generate_flights_csv(
        tmp_path / "f.csv", 500, seed=3, layout="bts", flight_date=dt.date(2023, 12, 31)
    )
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    dates = {row["FL_DATE"] for row in rows}
    assert dates <= {"12/31/2023 12:00:00 AM", "1/1/2024 12:00:00 AM", "1/2/2024 12:00:00 AM"}
    assert {(row["YEAR"], row["MONTH"]) for row in rows} >= {("2024", "1")}
    for row in rows:
        month, day, year = row["FL_DATE"].split()[0].split("/")
        assert (row["YEAR"], row["MONTH"], row["DAY_OF_MONTH"]) == (year, month, day)
