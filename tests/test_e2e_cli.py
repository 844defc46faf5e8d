"""``flightpipe local run --json`` and ``flightpipe local sql``: the documented contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

FILE_FIELDS = {
    "file": (str,),
    "key": (str,),
    "execution_status": (str,),
    "load_status": (str, type(None)),
    "rows_read": (int,),
    "rows_loaded": (int,),
    "rows_rejected": (int,),
    "unmatched_airport_rows": (int,),
    "error": (str, type(None)),
    "runtimes": (dict,),
    "job_peak_rss_mb": (float, type(None)),
}


def flightpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flightpipe.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_run_schema(report: dict[str, Any]) -> None:
    assert set(report) == {"files", "warehouse"}
    assert set(report["warehouse"]) == {"daily_flights_fact_rows", "airports_dim_rows"}
    assert all(isinstance(v, int) for v in report["warehouse"].values())
    for item in report["files"]:
        assert set(item) == set(FILE_FIELDS)
        for name, types in FILE_FIELDS.items():
            assert isinstance(item[name], types), (name, item[name])


def test_run_json_prints_only_the_documented_summary_and_the_state_dir_keeps_the_warehouse(
    shared_data: Path, tmp_path: Path
) -> None:
    sample = str(shared_data / "sample_flights.csv")
    state = str(tmp_path / "state")
    first = flightpipe("local", "run", "--json", "--state-dir", state, sample)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert_run_schema(report)
    (item,) = report["files"]
    assert item["key"] == "incoming/sample_flights.csv"
    assert (item["execution_status"], item["load_status"]) == ("SUCCEEDED", "LOADED")
    assert item["rows_read"] == item["rows_loaded"] == 13 and item["error"] is None
    assert report["warehouse"] == {"daily_flights_fact_rows": 13, "airports_dim_rows": 365}

    second = flightpipe("local", "run", "--json", "--state-dir", state, sample)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["warehouse"]["daily_flights_fact_rows"] == 13

    sql = flightpipe(
        "local",
        "sql",
        "--state-dir",
        state,
        "--json",
        "SELECT status, COUNT(*) AS attempts FROM airlines.load_ledger GROUP BY status",
    )
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout) == [{"status": "LOADED", "attempts": 2}]


def test_run_rejects_a_missing_file_before_starting_anything(tmp_path: Path) -> None:
    result = flightpipe("local", "run", str(tmp_path / "absent.csv"))
    assert result.returncode == 2
    assert "absent.csv" in result.stderr
    assert result.stdout == ""


def test_run_without_an_airports_file_says_how_to_give_one(tmp_path: Path) -> None:
    flights = tmp_path / "f.csv"
    flights.write_text("Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n")
    result = flightpipe("local", "run", "--airports", str(tmp_path / "none.csv"), str(flights))
    assert result.returncode == 2
    assert "--airports" in result.stderr
