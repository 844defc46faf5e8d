"""``flightpipe smoke``: prove a deployment works end to end, then leave it as it was.

A small file is generated from two airports of the deployed dimension and uploaded
under a unique key in ``incoming/_smoke/``. Its execution must succeed; the ledger
must hold its LOADED attempt with every row counted; the fact table its rows with the
joined airport names; the execution must have published its success notice; and the
runtimes the job and the Lambdas report must be the ones the stack declares. Then the
object (every version), the fact rows and the job's summary are removed; the ledger
rows stay, as the record of the smoke run (their file is under ``incoming/_smoke/``).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY, INCOMING_PREFIX, summary_key
from flightpipe.etl.summary import read_summary
from flightpipe.ops import executions, runs, upload
from flightpipe.ops.target import Target
from flightpipe.ops.warehouse import data_api_warehouse, query_file
from flightpipe.sql import render_statements
from flightpipe.warehouse.data_api import DataApiWarehouse

SMOKE_PREFIX = f"{INCOMING_PREFIX}_smoke/"
SMOKE_CARRIER = "ZZ"
SMOKE_ROWS = 4
# The Python a Spark job (glueetl) runs on, by Glue version: its Command.PythonVersion says
# only "3" (AWS Glue versions: https://docs.aws.amazon.com/glue/latest/dg/release-notes.html).
SPARK_PYTHON = {"5.0": "3.11"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeResult:
    key: str
    execution_arn: Optional[str] = None
    checks: list[Check] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def smoke_csv(airport_ids: tuple[int, int], day: dt.date) -> str:
    """``SMOKE_ROWS`` flights between two known airports, in the tutorial layout."""
    first, second = airport_ids
    lines = ["Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay,FlightDate"]
    for number in range(SMOKE_ROWS):
        origin, dest = (first, second) if number % 2 == 0 else (second, first)
        lines.append(f"{SMOKE_CARRIER},{origin},{dest},{number * 5 - 3},{number * 7 - 5},{day}")
    return "\n".join(lines) + "\n"


def dimension_airports(target: Target, wanted: int = 2) -> list[int]:
    """The first airport ids of the dimension's source file, which the pipeline loads into
    ``airlines.airports_dim`` before any flights (so a first run finds them too)."""
    s3 = target.client("s3")
    try:
        body = s3.get_object(Bucket=target.bucket, Key=DEFAULT_AIRPORTS_KEY, Range="bytes=0-65535")
    except s3.exceptions.NoSuchKey:
        return []
    lines = body["Body"].read().decode("utf-8-sig", errors="replace").splitlines()[:-1]
    ids = []
    for row in csv.DictReader(lines):
        if str(row.get("airport_id", "")).strip().isdigit():
            ids.append(int(row["airport_id"]))
        if len(ids) == wanted:
            break
    return ids


def run_smoke(
    target: Target, timeout_s: float = 600.0, progress: Callable[[str], None] = lambda _: None
) -> SmokeResult:
    warehouse = data_api_warehouse(target)
    key = f"{SMOKE_PREFIX}smoke-{uuid.uuid4().hex[:12]}.csv"
    result = SmokeResult(key=key)
    airports = dimension_airports(target)
    found = f"{len(airports)} airports in s3://{target.bucket}/{DEFAULT_AIRPORTS_KEY}"
    if not result.check("airports", len(airports) == 2, found):
        return result
    try:
        _load_and_check(target, warehouse, result, (airports[0], airports[1]), timeout_s, progress)
    finally:
        _clean_up(target, warehouse, result)
    return result


def _load_and_check(
    target: Target,
    warehouse: DataApiWarehouse,
    result: SmokeResult,
    airports: tuple[int, int],
    timeout_s: float,
    progress: Callable[[str], None],
) -> None:
    sfn = target.client("stepfunctions")
    with tempfile.TemporaryDirectory(prefix="flightpipe-smoke-") as directory:
        path = Path(directory) / Path(result.key).name
        path.write_text(smoke_csv(airports, dt.date.today()), encoding="utf-8")
        not_before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
        uploaded = upload.upload_file(target, target.client("s3"), path, result.key, None)
    progress(f"uploaded s3://{target.bucket}/{result.key}")
    arn = upload.find_started_execution(
        executions.StartedExecutions(sfn, target.state_machine_arn),
        uploaded,
        not_before,
        upload.DEFAULT_START_TIMEOUT_S,
    )
    result.execution_arn = arn
    if not result.check("execution started", arn is not None, arn or "no execution started"):
        return
    assert arn is not None
    progress(f"execution {arn.rsplit(':', 1)[-1]} started; waiting for it")
    described = runs.wait_for(sfn, [arn], timeout_s)[arn]
    events = executions.history(sfn, arn)
    status = described["status"]
    detail = (
        status if status == "SUCCEEDED" else executions.execution_error(events, dict(described))
    )
    result.check("execution succeeded", status == "SUCCEEDED", detail)
    source_file = f"s3://{target.bucket}/{result.key}"
    _check_ledger(warehouse, result, arn, described["startDate"])
    _check_fact_rows(warehouse, result, source_file)
    _check_notice(result, events)
    _check_runtimes(target, result, events, described["name"])


def _check_ledger(warehouse: Any, result: SmokeResult, arn: str, started: dt.datetime) -> None:
    row = runs.ledger_row_of(warehouse, arn, started - dt.timedelta(minutes=5)) or {}
    counts = {n: int(row.get(n) or 0) for n in ("rows_read", "rows_loaded", "rows_rejected")}
    ok = row.get("status") == "LOADED" and counts == {
        "rows_read": SMOKE_ROWS,
        "rows_loaded": SMOKE_ROWS,
        "rows_rejected": 0,
    }
    result.check("ledger", ok, f"status {row.get('status')}, {counts}")


def _check_fact_rows(warehouse: Any, result: SmokeResult, source_file: str) -> None:
    rows = query_file(warehouse, "ops_fact_rows_for_file.sql", source_file=source_file)
    named = [r for r in rows if r.get("dep_airport") and r.get("arr_airport")]
    result.check(
        "fact rows",
        len(rows) == SMOKE_ROWS and len(named) == SMOKE_ROWS,
        f"{len(rows)} rows, {len(named)} with both airport names",
    )


def _check_notice(result: SmokeResult, events: list[dict[str, Any]]) -> None:
    sent = [n for n in executions.notices(events) if _status(n["message"]) == "SUCCEEDED"]
    ok = bool(sent) and bool(sent[-1]["message_id"])
    result.check("notice", ok, f"SNS message {sent[-1]['message_id']}" if ok else "none published")


def _status(message: Any) -> Optional[str]:
    """The ``status`` of a notice's message (flightpipe/notices.py: one JSON document)."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    return message.get("status") if isinstance(message, dict) else None


def _check_runtimes(
    target: Target, result: SmokeResult, events: list[dict[str, Any]], execution_name: str
) -> None:
    # The job the execution ran (ChooseEngine picks the Python shell or the Spark job).
    run = executions.job_run(events)
    job_name = run.job_name if run and run.job_name else target.job_name
    job = target.client("glue").get_job(JobName=job_name)["Job"]
    declared_job = declared_python(job)
    summary = read_summary(target.client("s3"), target.bucket, summary_key(execution_name)) or {}
    job_python = str((summary.get("runtime") or {}).get("python", ""))
    result.check(
        "job runtime",
        bool(declared_job and job_python) and job_python.startswith(declared_job + "."),
        f"job {job_name} ran Python {job_python or '?'}, declared {declared_job or '?'}",
    )
    function = _first_function(events)
    declared = ""
    if function:
        runtime = target.client("lambda").get_function_configuration(FunctionName=function)
        declared = str(runtime.get("Runtime", "")).removeprefix("python")
    reported = str((executions.lambda_runtime(events) or {}).get("python", ""))
    result.check(
        "lambda runtime",
        bool(declared) and reported.startswith(declared + "."),
        f"Lambdas ran Python {reported or '?'}, declared {declared or '?'}",
    )


def declared_python(job: dict[str, Any]) -> str:
    """The Python version a Glue job (``GetJob``'s ``Job``) declares it runs on: a Python
    shell job's ``Command.PythonVersion`` ("3.9"); a Spark job's from its ``GlueVersion``
    (:data:`SPARK_PYTHON`; "" for a version not listed there)."""
    command = job.get("Command") or {}
    if command.get("Name") == "glueetl":
        return SPARK_PYTHON.get(str(job.get("GlueVersion") or ""), "")
    return str(command.get("PythonVersion") or "")


def _first_function(events: list[dict[str, Any]]) -> Optional[str]:
    for event in events:
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resourceType") == "lambda":
            name = json.loads(details.get("parameters") or "{}").get("FunctionName")
            if name:
                return str(name)
    return None


def _clean_up(target: Target, warehouse: DataApiWarehouse, result: SmokeResult) -> None:
    """Remove exactly what the smoke run added: every version of its object, its fact
    rows and the job's summary; the ledger keeps its attempts under ``incoming/_smoke/``."""
    s3 = target.client("s3")
    versions = s3.list_object_versions(Bucket=target.bucket, Prefix=result.key)
    for item in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
        if item["Key"] == result.key:
            s3.delete_object(Bucket=target.bucket, Key=result.key, VersionId=item["VersionId"])
    result.cleaned.append(f"s3://{target.bucket}/{result.key}")
    source_file = f"s3://{target.bucket}/{result.key}"
    warehouse.execute_batch(render_statements("ops_smoke_cleanup.sql", source_file=source_file))
    result.cleaned.append(f"fact rows of {source_file}")
    if result.execution_arn:
        name = result.execution_arn.rsplit(":", 1)[-1]
        s3.delete_object(Bucket=target.bucket, Key=summary_key(name))
        result.cleaned.append(f"s3://{target.bucket}/{summary_key(name)}")
