"""The notice a person reads: one JSON document with exactly the fields that apply, and a
subject naming the file and the outcome (flightpipe/notices.py)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flightpipe.notices import NOTICE_FIELDS, NoticeRequest, compose_notice, notice_subject

BUCKET = "flightpipe-dev-123456789012-us-east-1"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:flightpipe-dev-pipeline:e1"
NOW = dt.datetime(2024, 1, 2, 6, 1, 0, 500000, tzinfo=dt.timezone.utc)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def request(**overrides: Any) -> NoticeRequest:
    payload = {
        "status": "SUCCEEDED",
        "bucket": BUCKET,
        "key": "incoming/sample_flights.csv",
        "version_id": "v1",
        "execution_id": EXECUTION,
        "started": "2024-01-02T06:00:00.250Z",
        "summary_key": "reports/e1.json",
        **overrides,
    }
    return NoticeRequest.from_payload(payload)


def summary(**overrides: Any) -> dict[str, Any]:
    return {
        "status": "LOADED",
        "rows_read": 13,
        "rows_loaded": 13,
        "rows_rejected": 0,
        "unmatched_airport_rows": 0,
        "unknown_airport_ids": [],
        "rejects_uri": None,
        "runtime": {"python": "3.9.18", "engine": "pythonshell"},
        **overrides,
    }


def put_summary(s3: Any, document: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key="reports/e1.json", Body=json.dumps(document).encode())


def message_of(notice: dict[str, str]) -> dict[str, Any]:
    return json.loads(notice["message"])


def test_the_success_notice_carries_the_counts_engine_duration_and_summary(s3: Any) -> None:
    put_summary(s3, summary())
    notice = compose_notice(s3, request(), BUCKET, NOW)
    assert message_of(notice) == {
        "status": "SUCCEEDED",
        "file": f"s3://{BUCKET}/incoming/sample_flights.csv",
        "version_id": "v1",
        "execution": EXECUTION,
        "engine": "pythonshell",
        "rows_read": 13,
        "rows_loaded": 13,
        "rows_rejected": 0,
        "unmatched_airport_rows": 0,
        "duration_s": 60.2,
        "summary": f"s3://{BUCKET}/reports/e1.json",
    }
    assert notice["subject"] == "Flight file sample_flights.csv loaded: 13 rows"


def test_fields_come_in_the_documented_order(s3: Any) -> None:
    put_summary(
        s3,
        summary(
            rows_rejected=2,
            unmatched_airport_rows=3,
            unknown_airport_ids=[1, 2],
            rejects_uri="s3://b/rejected/l.csv",
        ),
    )
    message = message_of(compose_notice(s3, request(warning="crawl failed"), BUCKET, NOW))
    assert list(message) == [name for name in NOTICE_FIELDS if name not in ("error", "cause")]


def test_rejects_and_unknown_airports_appear_only_when_there_are_some_and_ids_stop_at_ten(
    s3: Any,
) -> None:
    put_summary(
        s3,
        summary(
            rows_loaded=11,
            rows_rejected=2,
            unmatched_airport_rows=12,
            unknown_airport_ids=list(range(100, 112)),
            rejects_uri=f"s3://{BUCKET}/rejected/l1.csv",
        ),
    )
    notice = compose_notice(s3, request(), BUCKET, NOW)
    message = message_of(notice)
    assert message["unknown_airport_ids"] == list(range(100, 110))
    assert message["rejects"] == f"s3://{BUCKET}/rejected/l1.csv"
    assert notice["subject"] == "Flight file sample_flights.csv loaded: 11 rows, 2 rejected"


def test_a_failure_before_the_job_has_error_and_cause_and_no_counts(s3: Any) -> None:
    cause = "crawl c1 of crawler flightpipe-dev-incoming covering this file ended FAILED - boom"
    notice = compose_notice(
        s3,
        request(status="FAILED", version_id="", error="CrawlerFailed", cause=cause),
        BUCKET,
        NOW,
    )
    assert message_of(notice) == {
        "status": "FAILED",
        "file": f"s3://{BUCKET}/incoming/sample_flights.csv",
        "execution": EXECUTION,
        "duration_s": 60.2,
        "error": "CrawlerFailed",
        "cause": cause,
    }
    assert notice["subject"] == "Flight file sample_flights.csv failed"


def test_a_rejected_file_says_so_with_the_job_s_own_error_message(s3: Any) -> None:
    put_summary(s3, summary(status="REJECTED", rows_read=0, rows_loaded=0))
    job_run = {"Id": "jr_1", "JobRunState": "FAILED", "ErrorMessage": "x.csv: REJECTED: empty"}
    notice = compose_notice(
        s3,
        request(status="FAILED", error="States.TaskFailed", cause=json.dumps(job_run)),
        BUCKET,
        NOW,
    )
    message = message_of(notice)
    assert (message["error"], message["cause"]) == ("States.TaskFailed", "x.csv: REJECTED: empty")
    assert (message["rows_read"], message["rows_loaded"]) == (0, 0)
    assert notice["subject"] == "Flight file sample_flights.csv rejected"


@pytest.mark.parametrize(
    ("status", "subject"),
    [
        ("DUPLICATE", "Flight file sample_flights.csv skipped: this version was already loaded"),
        ("SUPERSEDED", "Flight file sample_flights.csv skipped: a newer version is loaded"),
    ],
)
def test_skipped_loads_name_why_and_carry_no_error(s3: Any, status: str, subject: str) -> None:
    put_summary(s3, summary(status=status, rows_loaded=0))
    notice = compose_notice(s3, request(status=status, error="x", cause="y"), BUCKET, NOW)
    assert notice["subject"] == subject
    assert "error" not in message_of(notice) and message_of(notice)["status"] == status


def test_a_subject_is_ascii_and_under_a_hundred_characters_whatever_the_file_name() -> None:
    name = "vols-été-" + "x" * 200 + ".csv"
    subject = notice_subject(request(key=f"incoming/{name}"), None)
    assert len(subject) == 99 and subject.isascii()
    assert subject.startswith("Flight file vols-ete-xxx") and subject.endswith("... loaded")


def test_start_times_in_the_forms_step_functions_writes_give_the_duration(s3: Any) -> None:
    for started in ("2024-01-02T06:00:00Z", "2024-01-02T06:00:00.5+00:00"):
        message = message_of(compose_notice(s3, request(started=started), BUCKET, NOW))
        assert message["duration_s"] == {"2024-01-02T06:00:00Z": 60.5}.get(started, 60.0)
