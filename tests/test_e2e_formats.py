"""Uploads as users have them, through the local stack: loadable ones load, the rest fail loudly.

An upper-case ``.CSV``, a ``.csv.gz``, a ``.bz2`` and a zip laid out like BTS's
download load exactly what the plain CSV loads; a workbook, a JSON document, a
zip with two CSVs, a fake gzip and a folder marker each end FAILED with ledger
status REJECTED, the reason, and one failure notice.
"""

from __future__ import annotations

import bz2
import gzip
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from e2e_support import data_rows, fact_rows_of, stack

from flightpipe_local.run import FileOutcome, PipelineRunner
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]

BTS_MEMBER = "On_Time_Reporting_Carrier_On_Time_Performance_(1987_present)_2023_1.csv"
ACCEPTED = "upload .csv, .csv.gz/.gz, .bz2, or a .zip holding one CSV"
CSV_TEXT = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nDL,11433,13303,-3,1\n"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return path


def _run(stack: EmulatedStack, files: list[tuple[Path, str]]) -> dict[str, FileOutcome]:
    """Upload every (file, key) at once and wait for all their executions."""
    runner = PipelineRunner(stack, timeout_s=300)
    uploads = [runner.upload(path, key=key) for path, key in files]
    runner.wait(uploads)
    return {upload.key: runner.outcome(upload) for upload in uploads}


def _summary(stack: EmulatedStack, outcome: FileOutcome) -> dict:
    name = (outcome.execution_arn or "").rsplit(":", 1)[-1]
    body = stack.client("s3").get_object(Bucket=stack.bucket, Key=f"reports/{name}.json")
    return json.loads(body["Body"].read())


def test_upper_case_gzip_bzip2_and_bts_zip_uploads_load_the_plain_files_counts(
    stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    bts_path = shared_data / "bts_ontime_2023_01_OK.csv"
    bts = bts_path.read_bytes()
    upper = tmp_path / "UPPER.CSV"
    shutil.copyfile(shared_data / "sample_flights.csv", upper)
    gz = tmp_path / "bts.csv.gz"
    gz.write_bytes(gzip.compress(bts))
    bz = tmp_path / "bts.bz2"
    bz.write_bytes(bz2.compress(bts))
    bts_zip = _zip(
        tmp_path / "bts_2023_1.zip",
        {BTS_MEMBER: bts, "readme.html": b"<html><body>BTS readme</body></html>"},
    )
    plain_key = "incoming/bts_plain.csv"
    outcomes = _run(
        stack,
        [
            (bts_path, plain_key),
            (upper, "incoming/UPPER.CSV"),
            (gz, "incoming/bts.csv.gz"),
            (bz, "incoming/bts.bz2"),
            (bts_zip, "incoming/bts_2023_1.zip"),
        ],
    )
    for key, outcome in outcomes.items():
        assert outcome.execution_status == "SUCCEEDED", (key, outcome.error)
        assert outcome.load_status == "LOADED", key
        assert fact_rows_of(stack, key) == outcome.rows_loaded > 0
    upper_outcome = outcomes["incoming/UPPER.CSV"]
    assert upper_outcome.rows_read == upper_outcome.rows_loaded == data_rows(upper) == 13
    plain = outcomes[plain_key]
    assert plain.rows_read == data_rows(bts_path) == 6068

    def counts(outcome: FileOutcome) -> tuple:
        return (
            outcome.rows_read,
            outcome.rows_loaded,
            outcome.rows_rejected,
            outcome.unmatched_airport_rows,
        )

    for key in ("incoming/bts.csv.gz", "incoming/bts.bz2", "incoming/bts_2023_1.zip"):
        assert counts(outcomes[key]) == counts(plain), key
    summary = _summary(stack, outcomes["incoming/bts_2023_1.zip"])
    assert summary["source_format"] == "zip" and summary["source_member"] == BTS_MEMBER
    assert summary["ignored_members"] == ["readme.html"]
    assert _summary(stack, outcomes["incoming/bts.csv.gz"])["source_format"] == "gzip"
    assert _summary(stack, outcomes["incoming/bts.bz2"])["source_format"] == "bzip2"


def test_unsupported_uploads_fail_rejected_with_their_reason_and_a_notice(
    stack: EmulatedStack, tmp_path: Path
) -> None:
    xlsx = _zip(
        tmp_path / "x.xlsx",
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"},
    )
    document = tmp_path / "flights.json"
    document.write_text('{"flights": []}', encoding="utf-8")
    two = _zip(tmp_path / "two.zip", {"a.csv": CSV_TEXT, "b.csv": CSV_TEXT})
    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(CSV_TEXT)
    folder = tmp_path / "folder"
    folder.write_bytes(b"")
    cases = {
        "incoming/x.xlsx": (
            xlsx,
            f"incoming/x.xlsx: Excel workbook (zip of XML) is not accepted; {ACCEPTED}",
        ),
        "incoming/flights.json": (
            document,
            f"incoming/flights.json: JSON document is not accepted; {ACCEPTED}",
        ),
        "incoming/two.zip": (two, "incoming/two.zip: the zip holds 2 CSV members (a.csv, b.csv)"),
        "incoming/fake.csv.gz": (
            fake,
            "incoming/fake.csv.gz: the name claims gzip but the content is not gzip: it is text",
        ),
        "incoming/sub/": (folder, "incoming/sub/: a folder marker"),
    }
    facts_before = _count(stack, "SELECT COUNT(*) AS n FROM airlines.daily_flights_fact")
    notices_before = len(stack.notices.notices())
    outcomes = _run(stack, [(path, key) for key, (path, _) in cases.items()])
    for key, (_, reason) in cases.items():
        outcome = outcomes[key]
        assert outcome.execution_status == "FAILED", (key, outcome.error)
        assert outcome.load_status == "REJECTED", (key, outcome.error)
        assert reason in (outcome.error or ""), (key, outcome.error)
        assert outcome.rows_loaded == 0 and fact_rows_of(stack, key) == 0
    assert _count(stack, "SELECT COUNT(*) AS n FROM airlines.daily_flights_fact") == facts_before
    notices = [notice.body() for notice in stack.notices.notices()[notices_before:]]
    by_key: dict[str, list] = {}
    for notice in notices:
        assert isinstance(notice, dict), notice
        by_key.setdefault(notice["file"].removeprefix(f"s3://{stack.bucket}/"), []).append(notice)
    for key, (_, reason) in cases.items():
        assert len(by_key.get(key, [])) == 1, (key, notices)
        (notice,) = by_key[key]
        assert notice["status"] == "FAILED"
        assert reason.split(": ", 1)[1][:40] in json.dumps(notice, ensure_ascii=False), notice


def _count(stack: EmulatedStack, sql: str) -> int:
    assert stack.standin is not None
    return int(stack.standin.query(sql).as_dicts()[0]["n"])
