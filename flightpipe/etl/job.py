"""One run of the flights ETL job: read, validate, stage, load, report.

``run_job`` never leaves a file half-loaded: the warehouse changes in one
transaction, and every attempt ends with a ledger row (LOADED, REJECTED, FAILED,
DUPLICATE or SUPERSEDED) and a JSON summary in S3. It returns the summary; the Glue
script turns any outcome but LOADED into a failed job run with :class:`JobFailed`,
whose message names the cause (the state machine tells a DUPLICATE or SUPERSEDED
outcome from a failure by it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from contextlib import closing
from typing import Callable, Optional

from flightpipe.aws_ports import ObjectStore
from flightpipe.bucket_layout import manifest_key, rejects_key, staged_part_key, summary_key
from flightpipe.etl import loader
from flightpipe.etl.engine import PythonShellEngine, ReadEngine, ReadRequest
from flightpipe.etl.errors import FileRejected
from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.read import ReadResult
from flightpipe.etl.reader import DEFAULT_BLOCK_BYTES
from flightpipe.etl.sources import Source, open_source
from flightpipe.etl.staging import SpoolFiles, remove_object, upload
from flightpipe.etl.summary import JobSummary, write_summary
from flightpipe.s3keys import resolve_event_key
from flightpipe.sequencer import ordering_key
from flightpipe.warehouse.ledger import new_load_id
from flightpipe.warehouse.manifest import write_copy_manifest
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


class SupersededVersion(Exception):
    """A newer version of the file was already loaded: this older one's rows are left alone.

    S3 does not deliver events in order and the loads of one key race, so an upload's load
    can commit after the load of a later upload of the same key. The load batch recorded a
    SUPERSEDED ledger row and changed no fact row. The name is what the state machine
    matches to end the execution with a notice of its own, not a failure.
    """

    def __init__(
        self, source_file: str, source_version: Optional[str], sequencer: Optional[str]
    ) -> None:
        super().__init__(
            f"SupersededVersion: version {source_version} (sequencer {sequencer}) of "
            f"{source_file} is older than the version already loaded; its rows were left alone"
        )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def run_job(
    args: JobArgs,
    s3: ObjectStore,
    warehouse: Warehouse,
    *,
    engine: Optional[ReadEngine] = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    spool_dir: Optional[str] = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> JobSummary:
    """Load ``s3://bucket/key`` into the warehouse; return (and write) the summary.

    The flow reads top to bottom: check the settings, read and validate (the engine's
    part, into the spool or staged parts), stage the rejects and the rows, load in one
    transaction, report. Each step takes what it needs and returns what it made; only
    this function fills the summary, whichever engine read the file.
    """
    engine = engine or PythonShellEngine()
    started = clock()
    begun = time.monotonic()
    load_id = new_load_id(started)
    summary = JobSummary(
        status=loader.FAILED,
        load_id=load_id,
        source_file=args.source_file,
        source_version=args.source_version,
        source_sequencer=args.sequencer,
        execution_id=args.execution_id,
        reject_threshold=args.reject_threshold,
        started_at=started.isoformat(),
    )
    summary.runtime.update(engine.runtime())
    attempt = loader.LoadAttempt(
        load_id, args.source_file, args.source_version, started, args.execution_id
    )
    staged: list[str] = []
    with SpoolFiles(spool_dir) as spool:
        try:
            sequencer = ordering_key(args.sequencer)
            summary.source_sequencer = sequencer
            attempt = dataclasses.replace(attempt, source_sequencer=sequencer)
            _require_settings(args)
            args = _resolve_source(args, s3)
            summary.source_file = args.source_file
            attempt = dataclasses.replace(attempt, source_file=args.source_file)
            request = ReadRequest(
                args.bucket,
                args.key,
                args.version_id,
                frozenset(loader.known_airport_ids(warehouse)),
                args.work_bucket,
                load_id,
                block_bytes,
            )
            with closing(open_source(s3, args.bucket, args.key, args.version_id)) as source:
                _describe_source(summary, source)
                read = engine.read(source, request, spool, staged)
            _record_read(summary, read)
            attempt = attempt.counted(
                read.rows_read, read.rows_rejected, read.counts.unmatched_airport_rows
            )
            _check_rows(read)
            timer = time.monotonic()
            summary.rejects_uri = _stage_rejects(s3, spool, args.work_bucket, load_id)
            _check_threshold(read, args.reject_threshold, summary.rejects_uri)
            manifest_uri = _stage_rows(s3, spool, read, args.work_bucket, load_id, staged)
            summary.timings_s["upload"] = round(time.monotonic() - timer, 3)
            summary.status = _load(warehouse, attempt, manifest_uri, args, summary)
            summary.rows_loaded = read.rows_valid
        except DuplicateDelivery as duplicate:  # recorded by the load batch itself
            summary.status, summary.error = loader.DUPLICATE, str(duplicate)
        except SupersededVersion as superseded:  # recorded by the load batch itself
            summary.status, summary.error = loader.SUPERSEDED, str(superseded)
        except FileRejected as rejected:
            summary.status, summary.error = loader.REJECTED, rejected.reason
            _record(warehouse, attempt, loader.REJECTED, rejected.reason, summary)
        except Exception as error:  # any failure leaves a FAILED ledger row
            LOG.exception("load of %s failed", args.source_file)
            summary.status, summary.error = loader.FAILED, f"{type(error).__name__}: {error}"
            _record(warehouse, attempt, loader.FAILED, summary.error, summary)
        finally:
            _remove_staged(s3, args.work_bucket, staged)
    summary.finished_at = clock().isoformat()
    summary.timings_s["total"] = round(time.monotonic() - begun, 3)
    write_summary(s3, summary, args.work_bucket, args.summary_key or summary_key(load_id))
    return summary


def log_summary(summary: JobSummary) -> None:
    """The run's outcome as one log line, the whole summary in its ``summary`` field."""
    LOG.info(
        "%s: %s %s, %d of %d rows loaded, %d rejected",
        summary.source_file,
        summary.runtime.get("engine", "job"),
        summary.status,
        summary.rows_loaded,
        summary.rows_read,
        summary.rows_rejected,
        extra={"summary": summary.to_dict()},
    )


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


def _record_read(summary: JobSummary, read: ReadResult) -> None:
    summary.layout = read.columns.layout
    summary.flight_date_source = read.flight_date_source
    summary.blank_lines = read.counts.blank_lines
    summary.splits = read.splits
    summary.rows_read, summary.rows_rejected = read.rows_read, read.rows_rejected
    summary.unmatched_airport_rows = read.counts.unmatched_airport_rows
    summary.unknown_airport_ids = sorted(read.counts.unknown_airport_ids)
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


def _stage_rows(
    s3: ObjectStore,
    spool: SpoolFiles,
    read: ReadResult,
    bucket: str,
    load_id: str,
    staged: list[str],
) -> str:
    """Upload the spooled rows as the one part (unless the engine wrote its parts), then
    the COPY manifest naming exactly the parts; the manifest's URI."""
    parts = read.staged_keys
    if not parts:
        parts = [staged_part_key(load_id, 0)]
        staged.extend(parts)
        upload(s3, spool.staged.path, bucket, parts[0], "application/gzip")
    key = manifest_key(load_id)
    staged.append(key)
    return write_copy_manifest(s3, bucket, key, [f"s3://{bucket}/{part}" for part in parts])


def _load(
    warehouse: Warehouse,
    attempt: loader.LoadAttempt,
    manifest_uri: str,
    args: JobArgs,
    summary: JobSummary,
) -> str:
    """Run the load batch; LOADED, :class:`DuplicateDelivery` for a version loaded before, or
    :class:`SupersededVersion` when a newer version was."""
    timer = time.monotonic()
    assert args.copy_role_arn is not None  # _require_settings
    status = loader.load_staged_rows(warehouse, attempt, manifest_uri, args.copy_role_arn)
    summary.timings_s["load"] = round(time.monotonic() - timer, 3)
    if status == loader.DUPLICATE:
        raise DuplicateDelivery(args.source_file, args.source_version)
    if status == loader.SUPERSEDED:
        raise SupersededVersion(args.source_file, args.source_version, attempt.source_sequencer)
    return loader.LOADED


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


def _remove_staged(s3: ObjectStore, bucket: str, keys: list[str]) -> None:
    for key in dict.fromkeys(keys):
        try:
            remove_object(s3, bucket, key)
        except Exception:  # a leftover staged object is not worth failing for
            LOG.warning("could not remove the staged object s3://%s/%s", bucket, key)
