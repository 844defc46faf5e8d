"""One run of the flights ETL job: read, validate, stage, load, report.

``run_job`` never leaves a file half-loaded: the warehouse changes in one
transaction, and every attempt ends with a ledger row (LOADED, REJECTED or
FAILED) and a JSON summary in S3. It returns the summary; the Glue script
turns a REJECTED or FAILED outcome into a failed job run with
:class:`JobFailed`, whose message names the cause.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flightpipe.bucket_layout import summary_key
from flightpipe.etl import loader
from flightpipe.etl.errors import FileRejected
from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.layouts import ColumnMap, resolve_columns
from flightpipe.etl.reader import DEFAULT_BLOCK_BYTES, BlockPrefetcher, CsvRecordReader
from flightpipe.etl.sources import Source, open_source
from flightpipe.etl.staging import (
    RejectsFile,
    StagedRowsFile,
    rejects_key,
    remove_object,
    staging_key,
    upload,
)
from flightpipe.etl.summary import JobSummary, write_summary
from flightpipe.etl.validate import BlockValidator
from flightpipe.etl.values import date_from_key
from flightpipe.s3keys import resolve_event_key
from flightpipe.warehouse.port import Warehouse

LOG = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """The file was rejected or its load failed; the message names the cause."""

    def __init__(self, summary: JobSummary) -> None:
        where = f" (summary: {summary.summary_uri})" if summary.summary_uri else ""
        super().__init__(f"{summary.source_file}: {summary.status}: {summary.error}{where}")
        self.summary = summary


class DuplicateDelivery(Exception):
    """This version of the file was already loaded: the event was delivered twice.

    S3 events reach EventBridge at least once; the second execution for a version
    must not load it again. The load batch recorded a DUPLICATE ledger row and
    changed no fact row. The name is what the state machine matches to end the
    execution as a recorded duplicate, not a failure.
    """

    def __init__(self, source_file: str, source_version: Optional[str]) -> None:
        super().__init__(
            f"DuplicateDelivery: version {source_version} of {source_file} was already loaded;"
            " nothing changed"
        )


@dataclass
class _Read:
    """What reading and validating the whole object produced."""

    columns: Optional[ColumnMap] = None
    rows_read: int = 0
    rows_valid: int = 0
    unmatched_airport_rows: int = 0
    unknown_airport_ids: set[int] = field(default_factory=set)


def new_load_id(started_at: dt.datetime) -> str:
    return f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def run_job(
    args: JobArgs,
    s3: Any,
    warehouse: Warehouse,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    spool_dir: Optional[str] = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> JobSummary:
    """Load ``s3://bucket/key`` into the warehouse; return (and write) the summary."""
    started = clock()
    begun = time.monotonic()
    load_id = new_load_id(started)
    summary = JobSummary(
        status=loader.FAILED,
        load_id=load_id,
        source_file=args.source_file,
        source_version=args.source_version,
        execution_id=args.execution_id,
        reject_threshold=args.reject_threshold,
        started_at=started.isoformat(),
    )
    attempt = loader.LoadAttempt(
        load_id, args.source_file, args.source_version, started, args.execution_id
    )
    staged = StagedRowsFile(spool_dir)
    rejects = RejectsFile(spool_dir)
    staged_key: Optional[str] = None
    try:
        args = _resolve_source(args, s3)
        summary.source_file = args.source_file
        attempt = dataclasses.replace(attempt, source_file=args.source_file)
        attempt = _run(args, s3, warehouse, attempt, summary, staged, rejects, block_bytes)
        staged_key = staging_key(load_id)
        summary.status = loader.LOADED
    except DuplicateDelivery as duplicate:  # recorded by the load batch itself
        summary.status, summary.error = loader.DUPLICATE, str(duplicate)
        staged_key = staging_key(load_id)
    except FileRejected as rejected:
        summary.status, summary.error = loader.REJECTED, rejected.reason
        _record(warehouse, _counted(attempt, summary), loader.REJECTED, rejected.reason, summary)
    except Exception as error:  # any failure leaves a FAILED ledger row
        LOG.exception("load of %s failed", args.source_file)
        summary.status, summary.error = loader.FAILED, f"{type(error).__name__}: {error}"
        staged_key = staging_key(load_id)
        _record(warehouse, _counted(attempt, summary), loader.FAILED, summary.error, summary)
    finally:
        staged.remove()
        rejects.remove()
        if staged_key:
            _remove_staged(s3, args.work_bucket, staged_key)
    summary.finished_at = clock().isoformat()
    summary.timings_s["total"] = round(time.monotonic() - begun, 3)
    write_summary(s3, summary, args.work_bucket, args.summary_key or summary_key(load_id))
    return summary


def _resolve_source(args: JobArgs, s3: Any) -> JobArgs:
    """The arguments with the key the uploaded object really has (events may URL-encode it)."""
    resolved = resolve_event_key(s3, args.bucket, args.key, args.version_id)
    if not resolved.decoded:
        return args
    LOG.info("the event's key %r names the object %r (URL-decoded)", args.key, resolved.key)
    return dataclasses.replace(args, key=resolved.key)


def _run(
    args: JobArgs,
    s3: Any,
    warehouse: Warehouse,
    attempt: loader.LoadAttempt,
    summary: JobSummary,
    staged: StagedRowsFile,
    rejects: RejectsFile,
    block_bytes: int,
) -> loader.LoadAttempt:
    timer = time.monotonic()
    known = loader.known_airport_ids(warehouse)
    read = _read_and_validate(args, s3, known, staged, rejects, summary, block_bytes)
    summary.rows_read, summary.rows_rejected = read.rows_read, rejects.count
    summary.unmatched_airport_rows = read.unmatched_airport_rows
    summary.unknown_airport_ids = sorted(read.unknown_airport_ids)
    summary.rejects_by_reason = dict(sorted(rejects.reasons.items()))
    summary.timings_s["read_validate"] = round(time.monotonic() - timer, 3)
    attempt = _counted(attempt, summary)
    timer = time.monotonic()
    if rejects.count:
        summary.rejects_uri = upload(
            s3, rejects.path, args.work_bucket, rejects_key(attempt.load_id), "text/csv"
        )
    _check_threshold(read, rejects.count, args.reject_threshold, summary.rejects_uri)
    staged_uri = upload(
        s3, staged.path, args.work_bucket, staging_key(attempt.load_id), "application/gzip"
    )
    summary.timings_s["upload"] = round(time.monotonic() - timer, 3)
    if not args.copy_role_arn:
        raise ValueError("--copy_role_arn is required: Redshift COPY reads the staged file with it")
    timer = time.monotonic()
    status = loader.load_staged_file(warehouse, attempt, staged_uri, args.copy_role_arn)
    summary.timings_s["load"] = round(time.monotonic() - timer, 3)
    if status == loader.DUPLICATE:
        raise DuplicateDelivery(args.source_file, args.source_version)
    summary.rows_loaded = read.rows_valid
    return attempt


def _read_and_validate(
    args: JobArgs,
    s3: Any,
    known: set[int],
    staged: StagedRowsFile,
    rejects: RejectsFile,
    summary: JobSummary,
    block_bytes: int,
) -> _Read:
    read = _Read()
    source: Optional[Source] = None
    try:
        source = open_source(s3, args.bucket, args.key, args.version_id)
        summary.source_format = source.format
        summary.source_member = source.member
        summary.ignored_members = list(source.ignored_members)
        reader = CsvRecordReader(source.stream, block_bytes)
        _, header = reader.header()
        read.columns = resolve_columns(_header_fields(header))
        key_date = date_from_key(args.key)
        summary.layout = read.columns.layout
        summary.flight_date_source = _date_source(read.columns, key_date)
        validator = BlockValidator(read.columns, known, key_date)
        # Three threads overlap: reading and splitting the next block, validating this
        # one (here), gzip-compressing the staged rows of the previous one.
        with BlockPrefetcher(reader.data_blocks()) as blocks:
            for block in blocks:
                result = validator.validate(block)
                staged.write(result.staged_bytes, result.rows_valid)
                rejects.write(result.rejects)
                read.rows_read += result.rows_read
                read.rows_valid += result.rows_valid
                read.unmatched_airport_rows += result.unmatched_airport_rows
                read.unknown_airport_ids |= result.unknown_airport_ids
        summary.blank_lines = reader.blank_lines
        summary.timings_s["read_wait"] = round(blocks.waited, 3)
    finally:
        if source is not None:
            source.close()
        staged.close()
        rejects.close()
    summary.timings_s["stage_wait"] = round(staged.waited, 3)
    if read.rows_read != read.rows_valid + rejects.count:
        raise RuntimeError(
            f"row accounting broke: {read.rows_read} read, {read.rows_valid} valid, "
            f"{rejects.count} rejected"
        )
    if read.rows_read == 0:
        raise FileRejected("the file has a header but no data rows")
    return read


def _header_fields(header: bytes) -> list[str]:
    try:
        return next(csv.reader([header.decode("utf-8")], strict=True))
    except (csv.Error, UnicodeDecodeError, StopIteration) as error:
        raise FileRejected(f"the header row is not valid CSV text: {error}") from error


def _date_source(columns: ColumnMap, key_date: Optional[dt.date]) -> str:
    if columns.has_date:
        return f"column {columns.names['flight_date']}"
    if key_date:
        return f"object key date={key_date.isoformat()}"
    return "none (flight_date is NULL)"


def _check_threshold(read: _Read, rejected: int, threshold: float, where: Optional[str]) -> None:
    if rejected > threshold * read.rows_read:
        raise FileRejected(
            f"{rejected} of {read.rows_read} data rows rejected "
            f"({rejected / read.rows_read:.1%}), more than the threshold of {threshold:.1%}; "
            f"rejected rows with line numbers and reasons: {where}"
        )


def _counted(attempt: loader.LoadAttempt, summary: JobSummary) -> loader.LoadAttempt:
    return loader.LoadAttempt(
        attempt.load_id,
        attempt.source_file,
        attempt.source_version,
        attempt.started_at,
        attempt.execution_id,
        rows_read=summary.rows_read,
        rows_rejected=summary.rows_rejected,
        unmatched_airport_rows=summary.unmatched_airport_rows,
    )


def _record(
    warehouse: Warehouse,
    attempt: loader.LoadAttempt,
    status: str,
    error: str,
    summary: JobSummary,
) -> None:
    try:
        loader.record_unloaded_attempt(warehouse, attempt, status, error)
    except Exception as ledger_error:  # keep the original cause in front
        LOG.exception("could not record the %s attempt in the ledger", status)
        summary.error = f"{error} (and the ledger row could not be written: {ledger_error})"


def _remove_staged(s3: Any, bucket: str, key: str) -> None:
    try:
        remove_object(s3, bucket, key)
    except Exception:  # a leftover staged object is not worth failing for
        LOG.warning("could not remove the staged object s3://%s/%s", bucket, key)
