"""The job loads the uploaded object whether the event's key is literal or URL-encoded."""

from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import quote_plus

import pytest
from etl_fixtures import BUCKET, COPY_ROLE, facts, ledger, load_airports, read_object

from flightpipe.etl.job import run_job
from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.summary import JobSummary

pytestmark = pytest.mark.warehouse

KEY = "incoming/date=2023-01-02/my flights+1 (copy) 100% ✈.csv"
BODY = (
    b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
    b"AA,10397,12892,5,7\nDL,10397,13930,-2,0\n"
)


@pytest.fixture
def loaded(warehouse, object_store, shared_data, s3):
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    return warehouse, s3


def run_event(
    s3: Any, warehouse: Any, event_key: str, version_id: Optional[str] = None
) -> JobSummary:
    values = {
        "bucket": BUCKET,
        "key": event_key,
        "execution_id": "arn:aws:states:us-east-1:123456789012:execution:pipeline:keys",
        "copy_role_arn": COPY_ROLE,
        "summary_key": "reports/keys.json",
    }
    if version_id:
        values["version_id"] = version_id
    return run_job(JobArgs.from_mapping(values), s3, warehouse, block_bytes=64 << 10)


@pytest.mark.parametrize("encode", [False, True], ids=["literal", "encoded"])
def test_the_object_loads_once_under_its_real_key(loaded, encode: bool) -> None:
    warehouse, s3 = loaded
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    event_key = quote_plus(KEY, safe="/") if encode else KEY
    for _ in range(2):  # a repeated event replaces the file's rows
        summary = run_event(s3, warehouse, event_key)
        assert summary.status == "LOADED", summary.error
    real = f"s3://{BUCKET}/{KEY}"
    assert summary.source_file == real and summary.rows_loaded == 2
    assert summary.flight_date_source == "object key date=2023-01-02"
    rows = facts(warehouse)
    assert len(rows) == 2 and {row["source_file"] for row in rows} == {real}
    assert {entry["source_file"] for entry in ledger(warehouse)} == {real}
    assert json.loads(read_object(s3, "reports/keys.json"))["source_file"] == real


def test_a_literal_plus_file_wins_over_the_space_file(loaded) -> None:
    warehouse, s3 = loaded
    s3.put_object(Bucket=BUCKET, Key="incoming/a+b.csv", Body=BODY)
    s3.put_object(Bucket=BUCKET, Key="incoming/a b.csv", Body=BODY.replace(b"AA", b"UA"))
    summary = run_event(s3, warehouse, "incoming/a+b.csv")
    assert summary.status == "LOADED", summary.error
    assert summary.source_file == f"s3://{BUCKET}/incoming/a+b.csv"
    assert {row["carrier"] for row in facts(warehouse)} == {"AA", "DL"}


def test_an_encoded_key_with_a_version_reads_that_version(loaded) -> None:
    warehouse, s3 = loaded
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY.replace(b"AA", b"UA"))
    summary = run_event(s3, warehouse, quote_plus(KEY, safe="/"), first)
    assert summary.status == "LOADED", summary.error
    assert summary.source_version == first
    assert {row["carrier"] for row in facts(warehouse)} == {"AA", "DL"}


def test_no_object_under_either_key_fails_with_both_keys_in_ledger_and_summary(loaded) -> None:
    warehouse, s3 = loaded
    s3.put_object(Bucket=BUCKET, Key="incoming/something else.csv", Body=BODY)
    encoded = quote_plus(KEY, safe="/")
    summary = run_event(s3, warehouse, encoded)
    assert summary.status == "FAILED"
    assert "SourceObjectNotFound" in summary.error
    assert encoded in summary.error and KEY in summary.error
    [entry] = ledger(warehouse)
    assert entry["status"] == "FAILED" and entry["error"] == summary.error
    assert entry["source_file"] == f"s3://{BUCKET}/{encoded}"
    assert facts(warehouse) == []
    assert json.loads(read_object(s3, "reports/keys.json"))["error"] == summary.error
