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
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Optional

from flightpipe.aws_ports import ObjectStore
from flightpipe.bucket_layout import summary_key
from flightpipe.etl import loader
from flightpipe.etl.errors import FileRejected
from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.layouts import ColumnMap, resolve_columns
from flightpipe.etl.reader import DEFAULT_BLOCK_BYTES, BlockPrefetcher, CsvRecordReader
from flightpipe.etl.sources import Source, open_source
from flightpipe.etl.staging import (
    SpoolFiles,
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
class ReadResult:
    """What reading and validating the whole object produced (the rows went to the spool)."""

    columns: ColumnMap
    flight_date_source: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    unmatched_airport_rows: int = 0
    unknown_airport_ids: set[int] = field(default_factory=set)
    blank_lines: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)


def new_load_id(started_at: dt.datetime) -> str:
    return f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def run_job(
    args: JobArgs,
    s3: ObjectStore,
    warehouse: Warehouse,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    spool_dir: Optional[str] = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> JobSummary:
    """Load ``s3://bucket/key`` into the warehouse; return (and write) the summary.

    The flow reads top to bottom: check the settings, read and validate into the
    spool, stage the rejects and the rows, load in one transaction, report. Each step
    takes what it needs and returns what it made; only this function fills the summary.
    """
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
    staged_key: Optional[str] = None
    with SpoolFiles(spool_dir) as spool:
        try:
            _require_settings(args)
            args = _resolve_source(args, s3)
            summary.source_file = args.source_file
            attempt = dataclasses.replace(attempt, source_file=args.source_file)
            known = loader.known_airport_ids(warehouse)
            with closing(open_source(s3, args.bucket, args.key, args.version_id)) as source:
                _describe_source(summary, source)
                read = read_and_validate(source, args.key, known, spool, block_bytes)
            _record_read(summary, read)
            attempt = attempt.counted(
                read.rows_read, read.rows_rejected, read.unmatched_airport_rows
            )
            _check_rows(read)
            timer = time.monotonic()
            summary.rejects_uri = _stage_rejects(s3, spool, args.work_bucket, load_id)
            _check_threshold(read, args.reject_threshold, summary.rejects_uri)
            staged_key = staging_key(load_id)
            staged_uri = upload(
                s3, spool.staged.path, args.work_bucket, staged_key, "application/gzip"
            )
            summary.timings_s["upload"] = round(time.monotonic() - timer, 3)
            summary.status = _load(warehouse, attempt, staged_uri, args, summary)
            summary.rows_loaded = read.rows_valid
        except DuplicateDelivery as duplicate:  # recorded by the load batch itself
            summary.status, summary.error = loader.DUPLICATE, str(duplicate)
        except FileRejected as rejected:
            summary.status, summary.error = loader.REJECTED, rejected.reason
            _record(warehouse, attempt, loader.REJECTED, rejected.reason, summary)
        except Exception as error:  # any failure leaves a FAILED ledger row
            LOG.exception("load of %s failed", args.source_file)
            summary.status, summary.error = loader.FAILED, f"{type(error).__name__}: {error}"
            _record(warehouse, attempt, loader.FAILED, summary.error, summary)
        finally:
            if staged_key:
                _remove_staged(s3, args.work_bucket, staged_key)
    summary.finished_at = clock().isoformat()
    summary.timings_s["total"] = round(time.monotonic() - begun, 3)
    write_summary(s3, summary, args.work_bucket, args.summary_key or summary_key(load_id))
    return summary


def _require_settings(args: JobArgs) -> None:
    """Fail before reading a byte when the load could not run anyway."""
    if not args.copy_role_arn:
        raise ValueError("--copy_role_arn is required: Redshift COPY reads the staged file with it")


def _resolve_source(args: JobArgs, s3: ObjectStore) -> JobArgs:
    """The arguments with the key the uploaded object really has (events may URL-encode it)."""
    resolved = resolve_event_key(s3, args.bucket, args.key, args.version_id)
    if not resolved.decoded:
        return args
    LOG.info("the event's key %r names the object %r (URL-decoded)", args.key, resolved.key)
    return dataclasses.replace(args, key=resolved.key)


def _describe_source(summary: JobSummary, source: Source) -> None:
    summary.source_format = source.format
    summary.source_member = source.member
    summary.ignored_members = list(source.ignored_members)


def read_and_validate(
    source: Source, key: str, known: set[int], spool: SpoolFiles, block_bytes: int
) -> ReadResult:
    """Validate every record of the source: valid rows to the staged file, rejects (with
    line number, raw text and reason) to the rejects file; the counts, which must add up."""
    timer = time.monotonic()
    reader = CsvRecordReader(source.stream, block_bytes)
    _, header = reader.header()
    columns = resolve_columns(_header_fields(header))
    key_date = date_from_key(key)
    read = ReadResult(columns, _date_source(columns, key_date))
    validator = BlockValidator(columns, known, key_date)
    # Three threads overlap: reading and splitting the next block, validating this one
    # (here), gzip-compressing the staged rows of the previous one.
    with BlockPrefetcher(reader.data_blocks()) as blocks:
        for block in blocks:
            result = validator.validate(block)
            spool.staged.write(result.staged_bytes)
            spool.rejects.write(result.rejects)
            read.rows_read += result.rows_read
            read.rows_valid += result.rows_valid
            read.unmatched_airport_rows += result.unmatched_airport_rows
            read.unknown_airport_ids |= result.unknown_airport_ids
    spool.close()
    read.blank_lines = reader.blank_lines
    read.rows_rejected = spool.rejects.count
    read.rejects_by_reason = dict(sorted(spool.rejects.reasons.items()))
    read.timings_s = {
        "read_validate": round(time.monotonic() - timer, 3),
        "read_wait": round(blocks.waited, 3),
        "stage_wait": round(spool.staged.waited, 3),
    }
    if read.rows_read != read.rows_valid + read.rows_rejected:
        raise RuntimeError(
            f"row accounting broke: {read.rows_read} read, {read.rows_valid} valid, "
            f"{read.rows_rejected} rejected"
        )
    return read


def _record_read(summary: JobSummary, read: ReadResult) -> None:
    summary.layout = read.columns.layout
    summary.flight_date_source = read.flight_date_source
    summary.blank_lines = read.blank_lines
    summary.rows_read, summary.rows_rejected = read.rows_read, read.rows_rejected
    summary.unmatched_airport_rows = read.unmatched_airport_rows
    summary.unknown_airport_ids = sorted(read.unknown_airport_ids)
    summary.rejects_by_reason = read.rejects_by_reason
    summary.timings_s.update(read.timings_s)


def _check_rows(read: ReadResult) -> None:
    if read.rows_read == 0:
        raise FileRejected("the file has a header but no data rows")


def _stage_rejects(s3: ObjectStore, spool: SpoolFiles, bucket: str, load_id: str) -> Optional[str]:
    """Upload the rejects file, when there are rejects; its ``s3://`` URI."""
    if not spool.rejects.count:
        return None
    return upload(s3, spool.rejects.path, bucket, rejects_key(load_id), "text/csv")


def _load(
    warehouse: Warehouse,
    attempt: loader.LoadAttempt,
    staged_uri: str,
    args: JobArgs,
    summary: JobSummary,
) -> str:
    """Run the load batch; LOADED, or :class:`DuplicateDelivery` for a version loaded before."""
    timer = time.monotonic()
    assert args.copy_role_arn is not None  # _require_settings
    status = loader.load_staged_file(warehouse, attempt, staged_uri, args.copy_role_arn)
    summary.timings_s["load"] = round(time.monotonic() - timer, 3)
    if status == loader.DUPLICATE:
        raise DuplicateDelivery(args.source_file, args.source_version)
    return loader.LOADED


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


def _check_threshold(read: ReadResult, threshold: float, where: Optional[str]) -> None:
    rejected = read.rows_rejected
    if rejected > threshold * read.rows_read:
        raise FileRejected(
            f"{rejected} of {read.rows_read} data rows rejected "
            f"({rejected / read.rows_read:.1%}), more than the threshold of {threshold:.1%}; "
            f"rejected rows with line numbers and reasons: {where}"
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


def _remove_staged(s3: ObjectStore, bucket: str, key: str) -> None:
    try:
        remove_object(s3, bucket, key)
    except Exception:  # a leftover staged object is not worth failing for
        LOG.warning("could not remove the staged object s3://%s/%s", bucket, key)
