"""The whole job on moto S3 and the embedded warehouse: every row and outcome accounted for."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import gzip
import importlib.util
import json
import logging
import subprocess
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from etl_fixtures import (
    BUCKET,
    COPY_ROLE,
    RewritingWarehouse,
    facts,
    ledger,
    load_airports,
    read_object,
    rejects_rows,
    run_on,
)

from flightpipe.etl.job import JobFailed

pytestmark = pytest.mark.warehouse
REPO = Path(__file__).resolve().parents[1]
GLUE_SCRIPT = REPO / "glue_scripts" / "flight_etl.py"


# The job's cases, also run through both engines by tests/test_engine_contract.py.
VARIANTS = (  # BOM, CRLF, quoting, a quoted line break, any column order and case
    b'\xef\xbb\xbf"ArrDelay ", Note ,DESTAIRPORTID,carrier,DepDelay,originAirportId\r\n'
    b'7,"multi\r\nline, note",13303,DL,-3.00,11433\r\n'
    b'"",plain,12478,"AA",,14869'
)
SOME_BAD = (
    b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
    b"DL,11433,13303,1,2\n"
    b"DL,11433,13303,1\n"
    b"DL,11433,13303,9999,2\n"
    b"UA,14869,12478,3,4\n"
)
TOO_MANY_BAD = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n" + (
    b"DL,11433,13303,1,2\n" * 18 + b"DL,x,13303,1,2\n" * 2
)
WHOLE_FILE_REJECTIONS = {
    "empty": (b"", "the object is empty"),
    "no-header": (b"DL,11433,13303,-3,1\nDL,14869,12478,0,-8\n", "no header row"),
    "missing-columns": (
        b"Carrier,OriginAirportID,DepDelay\nDL,1,2\n",
        "required columns missing: arr_airport_id (accepted names: DestAirportID, "
        "DEST_AIRPORT_ID); arr_delay (accepted names: ArrDelay, ARR_DELAY)",
    ),
    "not-text": (gzip.compress(b"Carrier,OriginAirportID\n" * 50), "not text"),
    "header-only": (b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n", "no data rows"),
}


def _glue_script() -> ModuleType:
    """``glue_scripts/flight_etl.py`` loaded as Glue loads it: a file, not a package module."""
    spec = importlib.util.spec_from_file_location("flight_etl", GLUE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_glue_script(
    monkeypatch, s3, warehouse, key: str, body: bytes, extra: Sequence[str] = ()
) -> list:
    """Upload ``body`` as ``key`` and run the Glue script's ``main`` on Glue's argument list
    (and the ``extra`` arguments).

    S3 is the test's moto (the script's own ``boto3.client("s3")``); only the Data API
    adapter is swapped for ``warehouse``. Returns the warehouse targets the script built.
    """
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    script = _glue_script()
    targets = []

    def data_api_warehouse(client, target):
        targets.append(target)
        return warehouse

    monkeypatch.setattr(script, "DataApiWarehouse", data_api_warehouse)
    _keep_logging_of_the_test_process(monkeypatch)
    script.main(
        [
            "--JOB_ID", "j_1",  # Glue's own arguments come first and are ignored
            "--bucket", BUCKET,
            "--key", key,
            "--etag", put["ETag"].strip('"'),
            "--execution_id", "arn:aws:states:us-east-1:123456789012:execution:pipeline:run-1",
            "--copy_role_arn", COPY_ROLE,
            "--summary_key", "reports/run-1.json",
            "--redshift_database", "dev",
            "--redshift_workgroup", "flightpipe-wg",
            *extra,
        ]
    )  # fmt: skip
    return targets


def _keep_logging_of_the_test_process(monkeypatch) -> None:
    """The script makes its process log JSON (flightpipe/logs.py: the root logger, warnings,
    uncaught errors); here its process is the test's, which gets its own back afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)


@pytest.fixture
def loaded(warehouse, object_store, shared_data, s3):
    """The warehouse with the real airports dimension, and the S3 client."""
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    return warehouse, s3


def _keys(s3, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_sample_file_loads_all_13_rows_with_the_input_values(loaded, shared_data):
    warehouse, s3 = loaded
    body = (shared_data / "sample_flights.csv").read_bytes()
    assert not body.endswith(b"\n")
    summary = run_on(s3, warehouse, "incoming/date=2023-01-01/sample_flights.csv", body)
    assert summary.status == "LOADED", summary.error
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (13, 13, 0)
    expected = sorted(
        (
            row["Carrier"],
            int(row["OriginAirportID"]),
            int(row["DestAirportID"]),
            int(row["DepDelay"]),
            int(row["ArrDelay"]),
        )
        for row in csv.DictReader(body.decode().splitlines())
    )
    rows = facts(warehouse)
    got = sorted(
        (r["carrier"], r["dep_airport_id"], r["arr_airport_id"], r["dep_delay"], r["arr_delay"])
        for r in rows
    )
    assert got == expected
    assert {r["flight_date"] for r in rows} == {dt.date(2023, 1, 1)}
    assert summary.flight_date_source == "object key date=2023-01-01"
    assert summary.layout == "tutorial" and summary.rejects_uri is None


def test_bts_file_accounts_for_every_row_and_keeps_unknown_airports(loaded, shared_data):
    warehouse, s3 = loaded
    path = shared_data / "bts_ontime_2023_01_OK.csv"
    summary = run_on(s3, warehouse, "incoming/bts_ontime_2023_01_OK.csv", path.read_bytes())
    assert summary.status == "LOADED", summary.error
    assert summary.rows_read == 6068 == summary.rows_loaded + summary.rows_rejected
    rows = facts(warehouse)
    assert len(rows) == summary.rows_loaded
    unmatched = [r for r in rows if r["dep_city"] is None or r["arr_city"] is None]
    assert len(unmatched) == summary.unmatched_airport_rows > 0
    unknown = {r["dep_airport_id"] for r in rows if r["dep_city"] is None}
    unknown |= {r["arr_airport_id"] for r in rows if r["arr_city"] is None}
    assert sorted(unknown) == summary.unknown_airport_ids
    [entry] = ledger(warehouse)
    assert entry["status"] == "LOADED"
    assert entry["rows_read"] == 6068 and entry["rows_loaded"] == summary.rows_loaded
    assert entry["unmatched_airport_rows"] == summary.unmatched_airport_rows


def test_bts_rows_match_the_input_for_a_sample_of_rows(loaded, shared_data):
    warehouse, s3 = loaded
    path = shared_data / "bts_ontime_2023_01_OK.csv"
    run_on(s3, warehouse, "incoming/bts.csv", path.read_bytes())
    with path.open(newline="") as handle:
        source = list(csv.DictReader(handle))
    loaded_rows = {}
    for r in facts(warehouse):
        key = (
            r["carrier"],
            r["dep_airport_id"],
            r["arr_airport_id"],
            r["flight_date"],
            r["dep_delay"],
            r["arr_delay"],
        )
        loaded_rows[key] = loaded_rows.get(key, 0) + 1

    def delay(text):
        return int(float(text)) if text else None

    for row in source[::97]:
        month, day, year = row["FL_DATE"].split()[0].split("/")
        key = (
            row["OP_UNIQUE_CARRIER"],
            int(row["ORIGIN_AIRPORT_ID"]),
            int(row["DEST_AIRPORT_ID"]),
            dt.date(int(year), int(month), int(day)),
            delay(row["DEP_DELAY"]),
            delay(row["ARR_DELAY"]),
        )
        assert loaded_rows.get(key, 0) >= 1, key
    assert any(r["dep_delay"] is None for r in facts(warehouse))  # cancelled flights: NULL


def test_summary_json_is_written_and_the_staged_file_removed(loaded, shared_data):
    warehouse, s3 = loaded
    summary = run_on(
        s3, warehouse, "incoming/s.csv", (shared_data / "sample_flights.csv").read_bytes()
    )
    document = json.loads(read_object(s3, "reports/run-1.json"))
    assert document["status"] == "LOADED" and document["rows_loaded"] == 13
    assert document["load_id"] == summary.load_id
    assert set(document["timings_s"]) >= {"read_validate", "upload", "load", "total"}
    assert _keys(s3, "staging/") == []


def test_header_variants_bom_crlf_quoting_and_column_order_all_load(loaded):
    warehouse, s3 = loaded
    summary = run_on(s3, warehouse, "incoming/variants.csv", VARIANTS)
    assert summary.status == "LOADED", summary.error
    got = sorted(
        (r["carrier"], r["dep_airport_id"], r["arr_airport_id"], r["dep_delay"], r["arr_delay"])
        for r in facts(warehouse)
    )
    assert got == [("AA", 14869, 12478, None, None), ("DL", 11433, 13303, -3, 7)]


def test_rejected_rows_go_to_a_rejects_file_with_line_raw_text_and_reason(loaded):
    warehouse, s3 = loaded
    summary = run_on(s3, warehouse, "incoming/some-bad.csv", SOME_BAD, threshold="0.5")
    assert summary.status == "LOADED"
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (4, 2, 2)
    assert summary.rejects_uri == f"s3://{BUCKET}/rejected/{summary.load_id}.csv"
    assert rejects_rows(s3, summary.rejects_uri) == [
        ["line_number", "reason", "raw_text"],
        ["3", "wrong number of fields: expected 5, found 4", "DL,11433,13303,1"],
        ["4", "dep_delay 9999 is outside the sane bound of ±4000 minutes", "DL,11433,13303,9999,2"],
    ]
    assert len(facts(warehouse)) == 2


@pytest.mark.parametrize(
    ("body", "cause"),
    list(WHOLE_FILE_REJECTIONS.values()),
    ids=list(WHOLE_FILE_REJECTIONS),
)
def test_whole_file_rejections_fail_the_glue_run_load_nothing_and_record_the_cause(
    loaded, monkeypatch, body, cause
):
    warehouse, s3 = loaded
    with pytest.raises(JobFailed, match="REJECTED: .*" + cause.split(":")[0]) as raised:
        run_glue_script(monkeypatch, s3, warehouse, "incoming/bad.csv", body)
    summary = raised.value.summary
    assert summary.status == "REJECTED"
    assert cause in summary.error
    assert facts(warehouse) == []
    [entry] = ledger(warehouse)
    assert entry["status"] == "REJECTED" and cause in entry["error"]
    assert entry["rows_loaded"] == 0
    assert json.loads(read_object(s3, "reports/run-1.json"))["status"] == "REJECTED"


def test_glue_script_returns_normally_for_a_loaded_file_on_the_warehouse_its_arguments_name(
    loaded, monkeypatch, capsys
):
    warehouse, s3 = loaded
    body = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nDL,11433,13303,1,2\n"
    [target] = run_glue_script(monkeypatch, s3, warehouse, "incoming/one.csv", body)
    assert (target.database, target.workgroup) == ("dev", "flightpipe-wg")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (summary,) = [record["summary"] for record in records if "summary" in record]
    assert summary["status"] == "LOADED"
    assert {record["file_key"] for record in records} == {"incoming/one.csv"}
    assert len(facts(warehouse)) == 1


def test_more_rejects_than_the_threshold_reject_the_file_but_keep_the_rejects(loaded):
    warehouse, s3 = loaded
    body = TOO_MANY_BAD
    summary = run_on(s3, warehouse, "incoming/too-many.csv", body)  # default threshold 5%
    assert summary.status == "REJECTED"
    assert "2 of 20 data rows rejected (10.0%), more than the threshold of 5.0%" in summary.error
    assert len(rejects_rows(s3, summary.rejects_uri)) == 3
    assert facts(warehouse) == []
    assert ledger(warehouse)[0]["rows_rejected"] == 2
    assert run_on(s3, warehouse, "incoming/too-many.csv", body, threshold="0.1").status == "LOADED"


def _unreadable_staged_file(statements: list) -> list:
    """Make the load batch's COPY point at a staged file that does not exist."""
    if any(s.startswith("COPY flights_stage") for s in statements):
        return [s.replace("staging/", "staging/missing-") for s in statements]
    return statements


def test_a_failed_load_fails_the_glue_run_records_failed_and_removes_the_staged_file(
    loaded, shared_data, monkeypatch
):
    warehouse, s3 = loaded
    with pytest.raises(JobFailed, match=r"FAILED: .*StatementError") as raised:
        run_glue_script(
            monkeypatch,
            s3,
            RewritingWarehouse(warehouse, _unreadable_staged_file),
            "incoming/s.csv",
            (shared_data / "sample_flights.csv").read_bytes(),
        )
    summary = raised.value.summary
    assert summary.status == "FAILED" and "StatementError" in summary.error
    [entry] = ledger(warehouse)
    assert entry["status"] == "FAILED" and entry["rows_read"] == 13 and entry["rows_loaded"] == 0
    assert facts(warehouse) == [] and _keys(s3, "staging/") == []


def test_the_glue_run_of_an_older_version_after_a_newer_one_fails_naming_the_superseded_skip(
    loaded, monkeypatch
):
    warehouse, s3 = loaded
    header = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
    newer, older = header + b"DL,11433,13303,1,2\n", header + b"UA,14869,12478,3,4\n"
    key = "incoming/twice.csv"
    run_glue_script(monkeypatch, s3, warehouse, key, newer, ["--sequencer", "0200"])
    with pytest.raises(JobFailed, match=r": SUPERSEDED: SupersededVersion: version ") as raised:
        run_glue_script(monkeypatch, s3, warehouse, key, older, ["--sequencer", "0100"])
    summary = raised.value.summary
    assert (summary.status, summary.rows_loaded, summary.rows_read) == ("SUPERSEDED", 0, 1)
    assert summary.source_sequencer == "0" * 60 + "0100"
    assert [r["carrier"] for r in facts(warehouse)] == ["DL"]
    assert [(e["status"], e["source_sequencer"]) for e in ledger(warehouse)] == [
        ("LOADED", "0" * 60 + "0200"),
        ("SUPERSEDED", "0" * 60 + "0100"),
    ]
    assert json.loads(read_object(s3, "reports/run-1.json"))["status"] == "SUPERSEDED"


def test_a_sequencer_that_is_not_hexadecimal_fails_the_attempt_before_reading_the_file(loaded):
    warehouse, s3 = loaded
    body = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nDL,11433,13303,1,2\n"
    summary = run_on(s3, warehouse, "incoming/odd.csv", body, sequencer="not-hex")
    assert summary.status == "FAILED"
    assert summary.error.startswith("SequencerError: sequencer 'not-hex' is not a hexadecimal")
    [entry] = ledger(warehouse)
    assert (entry["status"], entry["rows_read"], entry["source_sequencer"]) == (
        "FAILED",
        None,
        None,
    )
    assert facts(warehouse) == []


def _imported_names(tree: ast.AST) -> set:
    """Every module name an import statement names, in full (``from a import b`` gives
    ``a`` and ``a.b``: ``b`` may be a submodule)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "relative import in the Glue script"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _outside_the_library(name: str) -> bool:
    if name in {"__future__", "__future__.annotations", "logging", "sys", "boto3"}:
        return False
    if name != "flightpipe" and not name.startswith("flightpipe."):
        return True
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # ``flightpipe.etl.job.JobFailed``: a name, not a module
        return False
    return spec is not None and not Path(spec.origin).is_relative_to(REPO / "flightpipe")


def test_glue_script_imports_only_the_library_and_boto3():
    names = _imported_names(ast.parse(GLUE_SCRIPT.read_text()))
    assert "flightpipe.etl.job" in names  # the parse sees the script's imports
    assert [name for name in sorted(names) if _outside_the_library(name)] == []


def test_glue_script_pulls_in_neither_the_emulator_nor_moto():
    """What importing the script loads, transitively, in a fresh interpreter."""
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('flight_etl', {str(GLUE_SCRIPT)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=REPO
    ).stdout.split()
    assert "flightpipe.etl.job" in loaded
    assert [
        name
        for name in loaded
        if name.split(".")[0] in {"flightpipe_local", "moto"} or name.startswith("flightpipe.local")
    ] == []
