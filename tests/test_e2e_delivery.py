"""Events arrive at least once: a version delivered twice loads once; one event per multipart."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from e2e_support import fact_rows_of, query, stack

from flightpipe_local.run import PipelineRunner, Upload
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]
PART = 5 * 1024 * 1024  # S3's minimum part size, all parts but the last


def executions_for(stack: EmulatedStack, key: str) -> list[str]:
    sfn = stack.client("stepfunctions")
    arns = []
    for item in sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]:
        document = json.loads(sfn.describe_execution(executionArn=item["executionArn"])["input"])
        if document.get("key") == key:
            arns.append(item["executionArn"])
    return arns


def test_two_executions_for_one_version_load_it_once_and_record_the_duplicate(
    stack: EmulatedStack, shared_data: Path
) -> None:
    runner = PipelineRunner(stack, timeout_s=180)
    sample = shared_data / "sample_flights.csv"
    upload = runner.upload(sample, key="incoming/delivered-twice.csv")
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key=upload.key)
    event_input = {
        "bucket": stack.bucket,
        "key": upload.key,
        "size": head["ContentLength"],
        "etag": upload.etag,
        "version_id": upload.version_id,
    }
    deadline = time.monotonic() + 30
    while not executions_for(stack, upload.key) and time.monotonic() < deadline:
        time.sleep(0.05)
    (upload.execution_arn,) = executions_for(stack, upload.key)  # the rule's, still running
    second = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn,
        name="redelivery-of-delivered-twice",
        input=json.dumps(event_input),
    )["executionArn"]
    redelivery = Upload(sample, upload.key, upload.version_id, upload.etag, second)
    runner.wait([upload, redelivery])
    outcomes = [runner.outcome(upload), runner.outcome(redelivery)]
    assert [o.execution_status for o in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    assert sorted(o.load_status or "" for o in outcomes) == ["DUPLICATE", "LOADED"]
    assert fact_rows_of(stack, upload.key) == 13
    ledger = query(
        stack,
        "SELECT status, rows_loaded FROM airlines.load_ledger "
        f"WHERE source_file = 's3://{stack.bucket}/{upload.key}' ORDER BY status",
    )
    assert [(r["status"], r["rows_loaded"]) for r in ledger] == [("DUPLICATE", 0), ("LOADED", 13)]
    duplicate_notices = [n for n in stack.notices.notices() if '"DUPLICATE"' in n.message]
    assert any(upload.key in n.message for n in duplicate_notices)


def test_a_multipart_upload_starts_one_execution(stack: EmulatedStack, shared_data: Path) -> None:
    header, *rows = (shared_data / "sample_flights.csv").read_text().splitlines()
    body = (header + "\n" + "\n".join(rows * (PART // 250)) + "\n").encode()
    assert PART < len(body) < 2 * PART
    s3, key = stack.client("s3"), "incoming/multipart.csv"
    upload_id = s3.create_multipart_upload(Bucket=stack.bucket, Key=key)["UploadId"]
    parts = []
    for number, chunk in enumerate((body[:PART], body[PART:]), start=1):
        etag = s3.upload_part(
            Bucket=stack.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(
        Bucket=stack.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    runner = PipelineRunner(stack, timeout_s=300)
    upload = Upload(Path("multipart.csv"), key, done.get("VersionId"), done["ETag"].strip('"'))
    runner.wait([upload])
    assert runner.outcome(upload).load_status == "LOADED"
    assert len(executions_for(stack, key)) == 1
