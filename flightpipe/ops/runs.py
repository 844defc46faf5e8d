"""A run: one execution of the state machine for one file, with what the ledger says of it.

``flightpipe status`` lists runs, ``flightpipe upload --wait`` and ``flightpipe smoke``
follow them; each reads the execution from Step Functions and the load attempt from
the warehouse's ledger, so a file whose execution failed before the job ran still has
a run, with the execution's own error.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from flightpipe.ops import executions
from flightpipe.ops.warehouse import Queryable, optional_int, query_ledger
from flightpipe.warehouse.port import Row


@dataclass
class Run:
    """One execution and its load attempt (``flightpipe status --json`` entries)."""

    file: str
    execution_arn: str
    execution_name: str
    status: str
    load_status: Optional[str]
    started: str
    duration_s: Optional[float]
    # From the object's upload (S3's LastModified, to the second) to its load's commit (the
    # ledger's finished_at): what a user waits for the file to be queryable. None for a run
    # that loaded nothing, or whose object version is gone.
    upload_to_loaded_s: Optional[float]
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    unmatched_airport_rows: int
    error: Optional[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def build_run(
    sfn: Any,
    described: Mapping[str, Any],
    ledger_row: Optional[Row],
    uploaded_at: Optional[datetime] = None,
) -> Run:
    """A run from ``DescribeExecution``, the execution's ledger row (if the job wrote one) and
    when its object was written (if known)."""
    document = executions.execution_input(dict(described))
    started: datetime = described["startDate"]
    stopped: Optional[datetime] = described.get("stopDate")
    row = ledger_row or {}
    error = row.get("error")
    if error is None and described["status"] not in ("SUCCEEDED", "RUNNING"):
        events = executions.history(sfn, described["executionArn"])
        error = executions.execution_error(events, dict(described))
    return Run(
        file=document.key or "",
        execution_arn=described["executionArn"],
        execution_name=described["name"],
        status=described["status"],
        load_status=row.get("status"),
        started=started.isoformat(timespec="seconds"),
        duration_s=round((stopped - started).total_seconds(), 1) if stopped else None,
        upload_to_loaded_s=upload_to_loaded_seconds(uploaded_at, row),
        rows_read=optional_int(row.get("rows_read")),
        rows_loaded=optional_int(row.get("rows_loaded")),
        rows_rejected=optional_int(row.get("rows_rejected")),
        unmatched_airport_rows=optional_int(row.get("unmatched_airport_rows")),
        error=error,
    )


def upload_to_loaded_seconds(uploaded_at: Optional[datetime], row: Row) -> Optional[float]:
    """Seconds from the upload to the commit of a LOADED attempt (the ledger keeps UTC
    without a zone); None when either is unknown."""
    finished = row.get("finished_at")
    if uploaded_at is None or row.get("status") != "LOADED" or finished is None:
        return None
    if isinstance(finished, str):
        finished = datetime.fromisoformat(finished)
    return round((utc_naive(finished) - utc_naive(uploaded_at)).total_seconds(), 1)


def object_written_at(s3: Any, source_file: str, version_id: Optional[str]) -> Optional[datetime]:
    """The write time S3 gives the version of ``s3://bucket/key`` (None when gone)."""
    from flightpipe.ops.show import uploaded_at

    bucket, _, key = source_file.removeprefix("s3://").partition("/")
    return uploaded_at(s3, bucket, key, version_id) if bucket and key else None


def utc_naive(moment: datetime) -> datetime:
    """A time as the ledger stores it: UTC without a zone (Redshift's ``GETDATE()``)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def ledger_by_execution(warehouse: Queryable, since: datetime) -> dict[str, Row]:
    """The latest ledger row of each execution whose attempt started at or after ``since``."""
    rows = query_ledger(warehouse, "ops_ledger_since.sql", since=utc_naive(since))
    latest: dict[str, Row] = {}
    for row in rows:  # newest first: keep the first seen
        latest.setdefault(str(row.get("execution_id")), row)
    return latest


def recent_runs(
    sfn: Any,
    warehouse: Queryable,
    state_machine_arn: str,
    limit: int,
    failed_only: bool = False,
    s3: Optional[Any] = None,
) -> list[Run]:
    """The newest ``limit`` runs (of the failed ones, with ``failed_only``), newest first;
    with ``s3``, each loaded run with its upload-to-loaded seconds.

    A rejected or failed load fails its execution, so the failed runs are the executions
    ``ListExecutions`` returns for the failed statuses: nothing older is read.
    """
    if failed_only:
        picked = [
            item
            for status in executions.FAILED_STATUSES
            for item in itertools.islice(
                executions.executions(sfn, state_machine_arn, status), limit
            )
        ]
        picked = sorted(picked, key=lambda item: item["startDate"], reverse=True)[:limit]
    else:
        picked = list(itertools.islice(executions.executions(sfn, state_machine_arn), limit))
    if not picked:
        return []
    earliest = min(item["startDate"] for item in picked) - timedelta(minutes=5)
    ledger = ledger_by_execution(warehouse, utc_naive(earliest))
    found = []
    for item in picked:
        described = sfn.describe_execution(executionArn=item["executionArn"])
        row = ledger.get(item["executionArn"])
        written = None
        if s3 is not None and row and row.get("status") == "LOADED":
            version = executions.execution_input(dict(described)).version_id
            written = object_written_at(s3, str(row.get("source_file") or ""), version)
        found.append(build_run(sfn, described, row, written))
    return found


def wait_for(
    sfn: Any,
    execution_arns: Sequence[str],
    timeout_s: float,
    on_event: Optional[Callable[[str, str], None]] = None,
    poll_s: float = 1.0,
    on_end: Optional[Callable[[str, Mapping[str, Any]], None]] = None,
) -> dict[str, Mapping[str, Any]]:
    """Follow executions until each has ended (or the time is up); their last descriptions.
    ``on_event`` gets each new history line, ``on_end`` each execution as it ends."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, int] = dict.fromkeys(execution_arns, 0)
    described: dict[str, Mapping[str, Any]] = {}
    pending = list(execution_arns)
    while pending:
        for arn in list(pending):
            described[arn] = sfn.describe_execution(executionArn=arn)
            if on_event is not None:
                events = executions.history(sfn, arn)
                for event in events[seen[arn] :]:
                    line = executions.describe_event(event)
                    if line:
                        on_event(arn, line)
                seen[arn] = len(events)
            if described[arn]["status"] in executions.TERMINAL:
                pending.remove(arn)
                if on_end is not None:
                    on_end(arn, described[arn])
        if pending and time.monotonic() < deadline:
            time.sleep(poll_s)
        elif pending:
            break
    return described


def ledger_row_of(warehouse: Queryable, execution_arn: str, since: datetime) -> Optional[Row]:
    return ledger_by_execution(warehouse, since).get(execution_arn)
