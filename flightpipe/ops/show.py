"""``flightpipe show``: one run in depth — its timeline from the upload to the load (each state
with its start, duration and waits, the critical path marked), what became of its crawl, its
job run, every load attempt at its file, the job's summary and the first rejected rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.bucket_layout import INCOMING_PREFIX, summary_key
from flightpipe.etl.summary import read_summary
from flightpipe.ops import executions, timeline
from flightpipe.ops.target import Target, TargetError
from flightpipe.ops.warehouse import Queryable, plain, query_ledger
from flightpipe.s3keys import candidate_keys

# Executions read, newest first, to find the last one of a file named by its key.
SEARCH_DEPTH = 2000


def resolve_execution(
    sfn: Any, target: Target, file_or_execution: str
) -> tuple[Optional[str], str]:
    """The execution named (an ARN), or the newest one of the file named (its event may carry
    the key URL-encoded); and the file's key."""
    if file_or_execution.startswith("arn:"):
        described = sfn.describe_execution(executionArn=file_or_execution)
        return file_or_execution, executions.execution_input(described).key
    key = file_key(target, file_or_execution)
    for number, item in enumerate(executions.executions(sfn, target.state_machine_arn)):
        if number >= SEARCH_DEPTH:
            break
        described = sfn.describe_execution(executionArn=item["executionArn"])
        if key in candidate_keys(executions.execution_input(described).key or ""):
            return str(item["executionArn"]), key
    return None, key


def file_key(target: Target, name: str) -> str:
    """A file as the user names it: ``s3://bucket/key``, a key, or a name under incoming/."""
    prefix = f"s3://{target.bucket}/"
    if name.startswith(prefix):
        return name[len(prefix) :]
    if name.startswith("s3://"):
        raise TargetError(f"{name} is not in the pipeline's bucket {target.bucket}")
    return name if name.startswith(INCOMING_PREFIX) else INCOMING_PREFIX + name


def show(target: Target, warehouse: Queryable, file_or_execution: str, rejects: int = 10) -> dict:
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    arn, key = resolve_execution(sfn, target, file_or_execution)
    source_file = f"s3://{target.bucket}/{key}"
    ledger = [
        {name: plain(value) for name, value in row.items()}
        for row in query_ledger(warehouse, "ops_ledger_for_file.sql", source_file=source_file)
    ]
    if arn is None and not ledger:
        raise TargetError(f"no execution and no load attempt found for {file_or_execution}")
    report: dict[str, Any] = {"file": key, "execution": None, "states": [], "job_run": None}
    report["timeline"], report["crawl"] = None, None
    report["ledger"] = ledger
    report["summary"], report["rejected_rows"], report["notices"] = None, [], []
    if arn is None:
        return report
    described = sfn.describe_execution(executionArn=arn)
    events = executions.history(sfn, arn)
    report["execution"] = _execution(described, events)
    report["states"] = [
        {
            "name": visit.name,
            "entered": visit.entered.isoformat(timespec="milliseconds"),
            "seconds": None if visit.seconds is None else round(visit.seconds, 3),
            "outcome": visit.outcome,
        }
        for visit in executions.state_visits(events)
    ]
    report["crawl"] = timeline.crawl_outcome(events)
    crawl_id = (report["crawl"] or {}).get("crawl_id")
    crawler = target.outputs.get("CrawlerName") or ""
    crawl = timeline.crawl_of(target.client("glue"), crawler, crawl_id) if crawler else None
    document = executions.execution_input(described)
    uploaded = uploaded_at(s3, target.bucket, key, document.version_id)
    report["timeline"] = timeline.build(events, uploaded, crawl).as_json()
    report["job_run"] = _job_run(target, executions.job_run(events))
    report["notices"] = executions.notices(events)
    summary = read_summary(s3, target.bucket, summary_key(described["name"]))
    report["summary"] = summary
    if summary and summary.get("rejects_uri"):
        report["rejected_rows"] = first_rejects(s3, summary["rejects_uri"], rejects)
    return report


def uploaded_at(s3: Any, bucket: str, key: str, version_id: Optional[str]) -> Optional[datetime]:
    """When the object (at ``version_id``) was written, as S3 says (to the second); None when
    it is gone or cannot be read."""
    request = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        modified = s3.head_object(**request)["LastModified"]
    except ClientError:
        return None
    return modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)


def _execution(described: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    stopped = described.get("stopDate")
    return {
        "arn": described["executionArn"],
        "name": described["name"],
        "status": described["status"],
        "started": described["startDate"].isoformat(timespec="seconds"),
        "stopped": stopped.isoformat(timespec="seconds") if stopped else None,
        "input": json.loads(described.get("input") or "{}"),
        "error": None
        if described["status"] in ("SUCCEEDED", "RUNNING")
        else executions.execution_error(events, described),
        "lambda_runtime": executions.lambda_runtime(events),
    }


def _job_run(target: Target, job_run: Optional[executions.GlueJobRun]) -> Optional[dict[str, Any]]:
    """The run of whichever job the execution ran (the history names it)."""
    if job_run is None:
        return None
    run_id = job_run.run_id
    job_name = job_run.job_name or target.job_name
    run = target.client("glue").get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
    started, completed = run.get("StartedOn"), run.get("CompletedOn")
    return {
        "id": run_id,
        "job": job_name,
        "state": run.get("JobRunState"),
        "started": started.isoformat(timespec="seconds") if started else None,
        "completed": completed.isoformat(timespec="seconds") if completed else None,
        "execution_time_s": run.get("ExecutionTime"),
        "error": run.get("ErrorMessage"),
    }


REJECTS_READ_BYTES = 256 * 1024


def first_rejects(s3: Any, uri: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a rejects file (line number, reason, raw text), read from
    its first :data:`REJECTS_READ_BYTES` bytes; a row that range cut short is left out."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{REJECTS_READ_BYTES - 1}")
    data = body["Body"].read()
    if len(data) == REJECTS_READ_BYTES:  # cut: keep whole lines only
        data = data[: data.rfind(b"\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace"))):
        if len(rows) >= limit or None in row.values():
            break
        rows.append(
            {
                "line_number": int(row["line_number"]),
                "reason": row["reason"],
                "raw_text": row["raw_text"],
            }
        )
    return rows
