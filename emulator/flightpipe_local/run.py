"""Run the pipeline on files through the local stack, as an upload to S3 runs it on AWS.

Files are uploaded with ``PutObject`` to ``incoming/<name>``; the bucket's
EventBridge notification, the rule and the state machine do the rest. Nothing
here starts an execution. Each upload's execution is found by its input (key and
object version), followed event by event, and summarised from the execution and
the warehouse's load ledger. An upload that starts no execution within a bound
(the rule did not match it) is reported as such, and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY, INCOMING_PREFIX, summary_key
from flightpipe.etl.summary import read_summary
from flightpipe.ops.executions import (
    TERMINAL,
    StartedExecutions,
    describe_event,
    execution_error,
    history,
    lambda_runtime,
)
from flightpipe.ops.warehouse import query_file as ops_query_file
from flightpipe.ops.warehouse import query_ledger
from flightpipe.sql import SqlValue
from flightpipe_local.redshift_standin import StandInWarehouse
from flightpipe_local.stack import EmulatedStack

# How long an upload may take to start its execution (the S3 event and the rule are
# synchronous in the emulator: a second is plenty; more than this means none will start).
DEFAULT_START_TIMEOUT_S = 30.0

Progress = Callable[[str], None]


class RunError(RuntimeError):
    """An upload did not start an execution, or an execution did not end in time."""


@dataclass
class FileOutcome:
    """One uploaded file's result: the ``files[]`` entry of ``flightpipe local run --json``."""

    file: str
    key: str
    execution_status: Optional[str] = None
    load_status: Optional[str] = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    unmatched_airport_rows: int = 0
    error: Optional[str] = None
    # What the job and the Lambdas ran on, as each recorded it: the job in its summary
    # (reports/<execution>.json), each Lambda in its result.
    runtimes: dict[str, Optional[dict[str, str]]] = field(
        default_factory=lambda: {"job": None, "lambda": None}
    )
    # The job process's peak RSS as its summary recorded it (None when it wrote none).
    job_peak_rss_mb: Optional[float] = None
    execution_arn: Optional[str] = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("execution_arn")
        return data


@dataclass
class Upload:
    """A file put under ``incoming/`` and the execution it started."""

    file: Path
    key: str
    version_id: Optional[str]
    etag: str
    execution_arn: Optional[str] = None
    seen_events: int = 0
    uploaded_at: float = field(default_factory=time.monotonic)
    # Why the upload has no execution (none started within the bound), once given up on.
    no_execution: Optional[str] = None


class PipelineRunner:
    """Uploads files to a running :class:`EmulatedStack` and follows their executions."""

    def __init__(
        self,
        stack: EmulatedStack,
        progress: Optional[Progress] = None,
        timeout_s: float = 300.0,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self.stack = stack
        self._reports_progress = progress is not None
        self._progress = progress or (lambda message: None)
        self._timeout = timeout_s
        self._start_timeout = start_timeout_s
        self._s3 = stack.client("s3")
        self._sfn = stack.client("stepfunctions")
        self._started = StartedExecutions(self._sfn, stack.state_machine_arn)

    def upload_airports(self, path: Path) -> None:
        self._s3.upload_file(str(path), self.stack.bucket, DEFAULT_AIRPORTS_KEY)
        self._progress(f"uploaded {path.name} -> s3://{self.stack.bucket}/{DEFAULT_AIRPORTS_KEY}")

    def upload(self, path: Path, key: Optional[str] = None) -> Upload:
        """Put ``path`` at ``incoming/<name>`` (or ``key``); the S3 event starts the pipeline."""
        key = key or INCOMING_PREFIX + path.name
        with path.open("rb") as body:
            response = self._s3.put_object(Bucket=self.stack.bucket, Key=key, Body=body)
        upload = Upload(path, key, response.get("VersionId"), response["ETag"].strip('"'))
        self._progress(f"uploaded {path.name} -> s3://{self.stack.bucket}/{key}")
        return upload

    def run_files(
        self,
        paths: Sequence[Path],
        concurrent: bool = False,
        keys: Optional[Sequence[Optional[str]]] = None,
    ) -> list[FileOutcome]:
        """Upload each file and wait for its execution: in order, or all at once.

        ``keys`` puts each file at that key instead of ``incoming/<name>``.
        """
        targets = list(keys) if keys is not None else [None] * len(paths)
        if len(targets) != len(paths):
            raise ValueError("one key per file")
        outcomes = []
        if concurrent:
            uploads = [self.upload(path, key) for path, key in zip(paths, targets)]
            self.wait(uploads)
            return [self.outcome(upload) for upload in uploads]
        for path, key in zip(paths, targets):
            upload = self.upload(path, key)
            self.wait([upload])
            outcomes.append(self.outcome(upload))
        return outcomes

    def wait(self, uploads: Sequence[Upload]) -> None:
        """Follow the uploads' executions until all have ended, reporting each state.

        An upload whose execution has not started within the start bound is given up on
        (:attr:`Upload.no_execution` says so); the others are still followed.
        """
        deadline = time.monotonic() + self._timeout
        pending = list(uploads)
        while pending:
            statuses = self._find_executions([u for u in pending if u.execution_arn is None])
            for upload in pending:
                if upload.execution_arn is not None:
                    self._follow(upload)
                elif time.monotonic() - upload.uploaded_at > self._start_timeout:
                    upload.no_execution = (
                        f"no execution started within {self._start_timeout:g}s for {upload.key}"
                    )
                    self._progress(f"{upload.file.name}: {upload.no_execution}")
            pending = [
                u
                for u in pending
                if u.no_execution is None
                and (u.execution_arn is None or not self._ended(u, statuses))
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(u.key for u in pending)
                raise RunError(f"executions did not end within {self._timeout:.0f}s: {names}")
            time.sleep(min(1.0, 0.1 + 0.005 * len(pending)))  # a burst: list less often

    def _find_executions(self, uploads: Sequence[Upload]) -> dict[str, str]:
        """Match the uploads to the executions they started, listing the executions once;
        every execution's status, by ARN."""
        statuses = self._started.match(uploads)
        for upload in uploads:
            if upload.execution_arn is not None:
                name = upload.execution_arn.rsplit(":", 1)[-1]
                self._progress(f"{upload.file.name}: execution {name} started")
        return statuses

    def _follow(self, upload: Upload) -> None:
        """Report the execution's new history events (only when someone reads the progress)."""
        if not self._reports_progress:
            return
        events = self._history(upload.execution_arn or "")
        for event in events[upload.seen_events :]:
            line = describe_event(event)
            if line:
                self._progress(f"{upload.file.name}: {line}")
        upload.seen_events = len(events)

    def _history(self, arn: str) -> list[dict[str, Any]]:
        return history(self._sfn, arn)

    def _ended(self, upload: Upload, statuses: dict[str, str]) -> bool:
        status = statuses.get(upload.execution_arn or "")
        if status is None:  # started after the listing
            return False
        if status in TERMINAL:
            self._follow(upload)
            return True
        return False

    def outcome(self, upload: Upload) -> FileOutcome:
        """What became of one upload: the execution's status and the ledger's counts."""
        result = FileOutcome(file=str(upload.file), key=upload.key)
        if upload.execution_arn is None:
            result.error = upload.no_execution or f"no execution started for {upload.key}"
            return result
        result.execution_arn = upload.execution_arn
        execution = self._sfn.describe_execution(executionArn=upload.execution_arn)
        result.execution_status = execution["status"]
        ledger = self.ledger_row(upload.execution_arn)
        if ledger:
            result.load_status = ledger["status"]
            for name in ("rows_read", "rows_loaded", "rows_rejected", "unmatched_airport_rows"):
                setattr(result, name, int(ledger[name] or 0))
            result.error = ledger["error"]
        history = self._history(upload.execution_arn)
        if result.error is None and execution["status"] != "SUCCEEDED":
            result.error = execution_error(history, execution)
        summary = self.job_summary(execution["name"])
        result.runtimes = {"job": summary.get("runtime"), "lambda": lambda_runtime(history)}
        result.job_peak_rss_mb = summary.get("peak_rss_mb")
        return result

    def job_summary(self, execution_name: str) -> dict[str, Any]:
        """The summary the job wrote for an execution (empty when it wrote none)."""
        return read_summary(self._s3, self.stack.bucket, summary_key(execution_name)) or {}

    def ledger_row(self, execution_arn: str) -> Optional[dict[str, Any]]:
        if self.stack.standin is None:
            return None
        warehouse = StandInWarehouse(self.stack.standin)
        rows = query_ledger(warehouse, "ops_ledger_for_execution.sql", execution_id=execution_arn)
        return rows[0] if rows else None


def query_file(stack: EmulatedStack, name: str, **values: SqlValue) -> list[dict[str, Any]]:
    """The rows of the one statement of ``sql/<name>``, run in the local warehouse."""
    if stack.standin is None:
        return []
    return ops_query_file(StandInWarehouse(stack.standin), name, **values)


def table_exists(stack: EmulatedStack, table: str) -> bool:
    """Whether ``airlines.<table>`` exists yet (the first execution creates the tables)."""
    return table in {row["table_name"] for row in query_file(stack, "ops_pipeline_tables.sql")}


def warehouse_counts(stack: EmulatedStack) -> dict[str, int]:
    """Row counts of the fact table and the airports dimension (0 when not created yet)."""
    if not (table_exists(stack, "daily_flights_fact") and table_exists(stack, "airports_dim")):
        return {"daily_flights_fact_rows": 0, "airports_dim_rows": 0}
    (counts,) = query_file(stack, "ops_warehouse_counts.sql")
    return {name: int(value) for name, value in counts.items()}


def run_report(outcomes: Sequence[FileOutcome], stack: EmulatedStack) -> dict[str, Any]:
    """The document ``flightpipe local run --json`` prints."""
    return {
        "files": [outcome.as_json() for outcome in outcomes],
        "warehouse": warehouse_counts(stack),
    }


def resolve_files(paths: Iterable[str]) -> list[Path]:
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file: {', '.join(missing)}")
    return files
