"""``flightpipe backfill``'s plan on the embedded warehouse and moto S3: which keys
``--failed-only`` picks, and the ordering key each re-drive carries."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from etl_fixtures import BUCKET, load_airports, run_version

from flightpipe.ops import backfill
from flightpipe.sequencer import after, ordering_key
from flightpipe.warehouse.ledger import ExecutionFailure, record_failed_execution

pytestmark = pytest.mark.warehouse
HEADER = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
GOOD = HEADER + b"DL,11433,13303,1,2\n"
HEADER_ONLY = HEADER


@pytest.fixture
def bucket(warehouse, object_store, shared_data, s3):
    """A versioned data bucket whose keys have every kind of history, and the warehouse."""
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def put(key: str, body: bytes = GOOD) -> dict:
        return s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def load(key: str, version: dict, sequencer: str) -> str:
        return run_version(s3, warehouse, key, version, sequencer=sequencer).status

    key = "incoming/loaded.csv"
    assert load(key, put(key), "10") == "LOADED"
    # The bug this pins: the bad re-upload's attempt started before the good one's, so the
    # file's last attempt by start time said LOADED while the current version was REJECTED.
    key = "incoming/rejected-after-loaded.csv"
    good, bad = put(key), put(key, HEADER_ONLY)
    assert load(key, bad, "11") == "REJECTED"
    assert load(key, good, "10") == "LOADED"
    key = "incoming/superseded.csv"
    older, newer = put(key), put(key, GOOD + b"UA,14869,12478,3,4\n")
    assert load(key, newer, "20") == "LOADED"
    assert load(key, older, "1F") == "SUPERSEDED"
    key = "incoming/duplicate.csv"
    version = put(key)
    assert [load(key, version, "25"), load(key, version, "25")] == ["LOADED", "DUPLICATE"]
    key = "incoming/unrecorded.csv"
    assert load(key, put(key), "30") == "LOADED"
    put(key, GOOD + b"UA,14869,12478,3,4\n")  # its event was never delivered
    key = "incoming/failed-before-job.csv"
    version = put(key)
    failure = ExecutionFailure(
        BUCKET,
        key,
        "arn:aws:states:us-east-1:123456789012:execution:pipeline:gone",
        "Lambda.Unknown: HeadObject: NoSuchVersion",
        version_id=version["VersionId"],
        sequencer="40",
    )
    assert record_failed_execution(warehouse, failure)["recorded"]
    put("incoming/never.csv")
    put("incoming/", b"")  # a console folder marker: not a file
    return SimpleNamespace(bucket=BUCKET, client=lambda service: s3), warehouse


def _planned(bucket, failed_only: bool) -> list[tuple]:
    target, warehouse = bucket
    return [
        (document.key, status, document.sequencer)
        for document, status in backfill.plan(target, warehouse, "", failed_only)
    ]


def test_failed_only_picks_each_key_whose_current_version_nothing_settled(bucket) -> None:
    assert _planned(bucket, failed_only=True) == [
        ("incoming/failed-before-job.csv", "FAILED", ordering_key("40")),
        ("incoming/never.csv", None, after(None)),
        ("incoming/rejected-after-loaded.csv", "REJECTED", ordering_key("11")),
        ("incoming/unrecorded.csv", None, after(ordering_key("30"))),
    ]


def test_a_full_backfill_re_drives_every_file_with_its_version_s_ordering_key(bucket) -> None:
    assert _planned(bucket, failed_only=False) == [
        ("incoming/duplicate.csv", "DUPLICATE", ordering_key("25")),
        ("incoming/failed-before-job.csv", "FAILED", ordering_key("40")),
        ("incoming/loaded.csv", "LOADED", ordering_key("10")),
        ("incoming/never.csv", None, after(None)),
        ("incoming/rejected-after-loaded.csv", "REJECTED", ordering_key("11")),
        ("incoming/superseded.csv", "LOADED", ordering_key("20")),
        ("incoming/unrecorded.csv", None, after(ordering_key("30"))),
    ]


def test_the_input_of_a_re_drive_is_the_rule_s_for_the_current_version(bucket) -> None:
    target, warehouse = bucket
    s3 = target.client("s3")
    picked = {document.key: document for document, _ in backfill.plan(target, warehouse, "", True)}
    document = picked["incoming/unrecorded.csv"]
    head = s3.head_object(Bucket=BUCKET, Key="incoming/unrecorded.csv")
    assert (document.version_id, document.etag, document.size) == (
        head["VersionId"],
        head["ETag"].strip('"'),
        head["ContentLength"],
    )
