"""The Spark engine: the same read and validation, split over Spark tasks (Glue 5.0 job).

The driver reads the header (the file's layout and every whole-file rejection
come from the same code as in the Python shell job), cuts a plain CSV into
record-aligned splits (:mod:`flightpipe.etl.splits`, two parallel passes of
ranged GETs) and runs one task per split. Each task reads its bytes with the
same record reader, validates them with the same :func:`validate_records`, and
writes its valid rows as one gzip part and its rejects as one rejects part
under ``staging/<load_id>/`` — the parts are written in parallel. The driver
adds the counts up and gathers the rejects parts, in line order, into the one
rejects file; the job then loads exactly those parts through a COPY manifest,
with the same SQL as the Python shell job. A compressed object cannot be cut:
it is one task.

Only the task functions and plain data travel to the executors, and nothing
here imports pyspark: the job script hands in a :class:`TaskRunner` over its
``SparkContext`` (:class:`SparkTasks`), so the rules stay testable anywhere.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, TypeVar

from flightpipe.aws_ports import ObjectStore
from flightpipe.bucket_layout import load_staging_keys, rejects_part_key, staged_part_key
from flightpipe.etl.engine import ReadRequest
from flightpipe.etl.errors import FileRejected
from flightpipe.etl.read import FileLayout, ReadResult, RecordCounts, read_layout, validate_records
from flightpipe.etl.reader import CsvRecordReader
from flightpipe.etl.sources import CSV, Source, open_source
from flightpipe.etl.splits import (
    IntervalScan,
    Split,
    intervals,
    plan_splits,
    scan_interval,
    split_bytes,
    whole_object,
)
from flightpipe.etl.staging import SpoolFiles, upload

T = TypeVar("T")
R = TypeVar("R")
_RANGE_CHUNK_BYTES = 8 << 20


class TaskRunner(Protocol):
    """Runs a function over items as parallel tasks and returns the results in item order."""

    parallelism: int

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class TaskFailed(RuntimeError):
    """A Spark task raised: the message is the task's own Python error, not the JVM's trace."""


class SparkTasks:
    """A :class:`TaskRunner` over a ``SparkContext``: one partition, one task, per item."""

    def __init__(self, spark_context: Any) -> None:
        self._context = spark_context
        self.parallelism = int(spark_context.defaultParallelism)

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        rdd = self._context.parallelize(list(items), len(items)).map(function)
        try:
            return rdd.collect()
        except Exception as error:  # py4j's Py4JJavaError wraps the task's Python traceback
            raise TaskFailed(task_error(str(error))) from error


_PYTHON_ERROR = re.compile(
    r"^(?:[\w.]+\.)?\w+(?:Error|Exception|Failed|Exit)\w*: .+$", re.MULTILINE
)


def task_error(text: str) -> str:
    """The last Python error line of a failed Spark job's message (its first line otherwise).

    A task's exception reaches the driver as the JVM's ``PythonException``, whose text holds
    the task's Python traceback and then Java stack frames; the ledger and the notice should
    say what went wrong in the task, in one line.
    """
    python = text.split("\n\tat ", 1)[0]
    lines = [
        match.group(0).strip()
        for match in _PYTHON_ERROR.finditer(python)
        if not match.group(0).startswith(("org.", "py4j.", "java."))
    ]
    if lines:
        return lines[-1]
    return text.strip().splitlines()[0] if text.strip() else "a Spark task failed"


def default_object_store() -> ObjectStore:
    """The S3 client a task makes on its executor (credentials come from the job's role)."""
    import boto3

    return boto3.client("s3")


@dataclass(frozen=True)
class ObjectVersion:
    """The object every task reads: the same version the driver opened.

    Without a version id (an unversioned bucket) the tasks' ranged GETs carry the
    driver's ETag as ``If-Match``, which S3 answers with 412 Precondition Failed when the
    object's ETag differs (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html),
    so an object replaced meanwhile fails the load instead of mixing two files.
    """

    bucket: str
    key: str
    version_id: Optional[str]
    etag: Optional[str]
    format: str
    size: int

    @classmethod
    def of(cls, source: Source, request: ReadRequest) -> ObjectVersion:
        return cls(
            request.bucket,
            request.key,
            request.version_id,
            None if request.version_id else source.etag,
            source.format,
            source.size or 0,
        )


@dataclass(frozen=True)
class SplitJob:
    """Everything a task needs besides its split: plain data, sent to each executor."""

    source: ObjectVersion
    layout: FileLayout
    known_airport_ids: frozenset[int]
    work_bucket: str
    load_id: str
    block_bytes: int
    object_store: Callable[[], ObjectStore] = default_object_store


@dataclass
class SplitResult:
    """What one task staged, and its counts."""

    index: int
    counts: RecordCounts
    staged_key: str
    rejects_key: Optional[str] = None
    rows_rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    # Why the whole file is turned away (corrupt compressed data, a runaway quoted field):
    # raised by the driver, as the Python shell job raises it, instead of failing the task.
    file_rejected: Optional[str] = None


class SparkEngine:
    """Reads an object with Spark tasks: splits in parallel, the same rules in each."""

    name = "spark"

    def __init__(
        self,
        tasks: TaskRunner,
        object_store: Callable[[], ObjectStore] = default_object_store,
        spark_version: Optional[str] = None,
        split_size: Callable[[int, int], int] = split_bytes,
    ) -> None:
        """``split_size(object size, parallelism)`` is the bytes per split; tests make it
        small to cut even small files at every kind of boundary."""
        self._tasks = tasks
        self._object_store = object_store
        self._spark_version = spark_version
        self._split_size = split_size

    def runtime(self) -> dict[str, str]:
        runtime = {"engine": self.name}
        if self._spark_version:
            runtime["spark"] = self._spark_version
        return runtime

    def read(
        self, source: Source, request: ReadRequest, spool: SpoolFiles, staged: list[str]
    ) -> ReadResult:
        timer = time.monotonic()
        layout = read_layout(CsvRecordReader(source.stream, request.block_bytes), request.key)
        job = SplitJob(
            ObjectVersion.of(source, request),
            layout,
            request.known_airport_ids,
            request.work_bucket,
            request.load_id,
            request.block_bytes,
            self._object_store,
        )
        splits = self._plan(job)
        scanned = time.monotonic()
        staged.extend(load_staging_keys(request.load_id, len(splits)))
        results = self._tasks.map(functools.partial(stage_split, job), splits)
        read = self._gather(sorted(results, key=lambda result: result.index), job, spool)
        read.timings_s = {
            "split_scan": round(scanned - timer, 3),
            "read_validate": round(time.monotonic() - timer, 3),
        }
        read.check_accounting()
        return read

    def _gather(self, results: list[SplitResult], job: SplitJob, spool: SpoolFiles) -> ReadResult:
        """The tasks' results added up, their rejects parts appended in line order."""
        for result in results:
            if result.file_rejected:  # the first in the file, where one reader would stop
                raise FileRejected(result.file_rejected)
        read = ReadResult(job.layout.columns, job.layout.flight_date_source, splits=len(results))
        s3 = self._object_store()
        for result in results:
            read.counts.add(result.counts)
            read.staged_keys.append(result.staged_key)
            if result.rejects_key:
                part = _chunks(s3, job.work_bucket, result.rejects_key)
                spool.rejects.append_part(part, result.rows_rejected, result.rejects_by_reason)
        spool.close()
        read.rows_rejected = spool.rejects.count
        read.rejects_by_reason = dict(sorted(spool.rejects.reasons.items()))
        return read

    def _plan(self, job: SplitJob) -> list[Split]:
        size = job.source.size
        bytes_per_split = self._split_size(size, self._tasks.parallelism)
        if job.source.format != CSV or size <= bytes_per_split + 1:
            return whole_object(size)
        bounds = intervals(size, bytes_per_split)
        scans = self._tasks.map(functools.partial(scan_split_interval, job), bounds)
        return plan_splits(size, scans)


def scan_split_interval(job: SplitJob, bounds: tuple[int, int]) -> IntervalScan:
    """Task: scan one byte interval of the object for where records may start."""
    start, end = bounds
    s3 = job.object_store()
    return scan_interval(start, end, _ranged_chunks(s3, job.source, start, end))


def stage_split(job: SplitJob, split: Split) -> SplitResult:
    """Task: read, validate and stage one split; the rows and the rejects go to S3 as parts."""
    try:
        return _stage_split(job, split)
    except FileRejected as rejected:
        return SplitResult(split.index, RecordCounts(), "", file_rejected=rejected.reason)


def _stage_split(job: SplitJob, split: Split) -> SplitResult:
    s3 = job.object_store()
    with SpoolFiles(rejects_header=False) as spool:
        with closing(_open_split(s3, job, split)) as stream:
            reader = CsvRecordReader(
                stream,
                job.block_bytes,
                first_line=split.first_line,
                at_object_start=split.at_object_start,
            )
            if split.at_object_start:
                read_layout(reader, job.source.key)  # the driver read it; skip it here
            counts = validate_records(reader, job.layout, job.known_airport_ids, spool)
        result = SplitResult(split.index, counts, staged_part_key(job.load_id, split.index))
        upload(s3, spool.staged.path, job.work_bucket, result.staged_key, "application/gzip")
        if spool.rejects.count:
            result.rejects_key = rejects_part_key(job.load_id, split.index)
            result.rows_rejected = spool.rejects.count
            result.rejects_by_reason = dict(spool.rejects.reasons)
            upload(s3, spool.rejects.path, job.work_bucket, result.rejects_key, "text/csv")
    return result


class _Stream:
    """A readable stream with a ``close``: what the record reader and ``closing`` need."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None]) -> None:
        self.read = read
        self.close = close


def _open_split(s3: ObjectStore, job: SplitJob, split: Split) -> _Stream:
    source = job.source
    if source.format != CSV:  # one split: the whole decompressed object
        opened = open_source(s3, source.bucket, source.key, source.version_id)
        return _Stream(opened.stream.read, opened.close)
    body = _get_range(s3, source, split.start, split.end)
    return _Stream(body.read, body.close)


def _get_range(s3: ObjectStore, source: ObjectVersion, start: int, end: int) -> Any:
    request: dict[str, Any] = {
        "Bucket": source.bucket,
        "Key": source.key,
        "Range": f"bytes={start}-{end - 1}",
    }
    if source.version_id:
        request["VersionId"] = source.version_id
    elif source.etag:
        request["IfMatch"] = source.etag
    return s3.get_object(**request)["Body"]


def _ranged_chunks(s3: ObjectStore, source: ObjectVersion, start: int, end: int) -> Iterator[bytes]:
    if end <= start:
        return
    yield from _read_body(_get_range(s3, source, start, end))


def _chunks(s3: ObjectStore, bucket: str, key: str) -> Iterator[bytes]:
    yield from _read_body(s3.get_object(Bucket=bucket, Key=key)["Body"])


def _read_body(body: Any) -> Iterator[bytes]:
    try:
        while True:
            chunk = body.read(_RANGE_CHUNK_BYTES)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
