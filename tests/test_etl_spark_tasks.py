"""The Spark job's task functions, called directly: what they read and what they refuse."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import TEST_BUCKET

from flightpipe.etl.layouts import resolve_columns
from flightpipe.etl.read import FileLayout
from flightpipe.etl.spark_engine import ObjectVersion, SplitJob, scan_split_interval, stage_split
from flightpipe.etl.splits import Split

HEADER = "Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay"


def _job(s3, etag: str, size: int) -> SplitJob:
    layout = FileLayout(resolve_columns(HEADER.split(",")), None)
    version = ObjectVersion(TEST_BUCKET, "incoming/f.csv", None, etag, "csv", size)
    return SplitJob(version, layout, frozenset({11433}), TEST_BUCKET, "load-1", 1 << 16, lambda: s3)


def test_a_task_refuses_an_object_replaced_after_the_driver_opened_it(s3):
    first = s3.put_object(Bucket=TEST_BUCKET, Key="incoming/f.csv", Body=b"a\nb\n")
    s3.put_object(Bucket=TEST_BUCKET, Key="incoming/f.csv", Body=b"c\nd\n")
    job = _job(s3, first["ETag"], 4)
    with pytest.raises(ClientError, match=r"PreconditionFailed|412"):
        scan_split_interval(job, (0, 3))


def test_a_task_stages_its_split_rows_and_rejects_with_the_files_line_numbers(s3):
    body = f"{HEADER}\nDL,11433,13303,1,2\nDL,x,13303,1,2\nUA,11433,13303,3,4\n".encode()
    put = s3.put_object(Bucket=TEST_BUCKET, Key="incoming/f.csv", Body=body)
    second = body.index(b"DL,x")
    result = stage_split(_job(s3, put["ETag"], len(body)), Split(1, second, len(body), 3))
    assert (result.counts.rows_read, result.counts.rows_valid, result.rows_rejected) == (2, 1, 1)
    rejects = s3.get_object(Bucket=TEST_BUCKET, Key=result.rejects_key)["Body"].read()
    assert rejects.startswith(b"3,") and b"dep_airport_id 'x'" in rejects
    assert result.staged_key == "staging/load-1/part-00001.csv.gz"
