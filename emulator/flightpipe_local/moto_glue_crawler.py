"""Glue patch: the crawler really crawls its S3 targets into the Data Catalog.

moto's crawler creates no tables and stays RUNNING until someone lists its
crawls. Here ``FakeCrawler.start_crawler`` starts a worker that reads the CSV
objects under each S3 target, infers their columns (header names, lower-cased,
typed ``bigint``/``double``/``string`` from a sample of rows) into a catalog table
and ends the crawl COMPLETED, or FAILED with an error message when the target
cannot be read. Objects that are not readable CSV are skipped, as Glue's CSV
classifier does: rejecting such files is the ETL job's business.

Compressed objects are classified as Glue's built-in classifiers classify them:
"Files in the following compressed formats can be classified: ZIP (supported for
archives containing only a single file) ..., BZIP, GZIP, LZ4, Snappy"
(https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html), and "if the file
that is crawled is compressed, the crawler must download it to process it ... it
interrogates files to determine their format and compression type and writes these
properties into the Data Catalog" (https://docs.aws.amazon.com/glue/latest/dg/crawler-running.html).
So the compression is recognised from the object's first bytes, never its name: gzip
(also several members), bzip2 and a ZIP archive holding one file are decompressed and
their CSV inferred, and the table records ``compressionType`` (``gzip``, ``bzip2``,
``zip``, or ``none``). A ZIP archive of several files is skipped, as Glue leaves it
unclassified; LZ4 and Snappy, which Glue reads but this emulator does not, are skipped
too (logged), as is anything else that is not CSV text — never failing the crawl.
``GetCrawler``
then shows ``READY`` and a ``LastCrawl`` with AWS's status names
(``SUCCEEDED``/``FAILED``/``CANCELLED``) and ``ErrorMessage``. Tests make the next
crawl of a crawler fail with :meth:`CrawlerEmulator.fail_next`.

A crawler whose ``RecrawlPolicy`` is ``CRAWL_EVENT_MODE`` crawls from the S3 event
notifications queued in its target's ``EventQueueArn``, as Glue documents
(https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-event-notifications.html): "The
first crawl lists all Amazon S3 objects from the target", and after a successful crawl
"the crawler will list only the objects from those events", "listing all the files from
the subfolder which triggered the event instead of listing the full" target; "There will
be no cost if there are no events in the queue"; "The maximum number of messages to
consume per crawl is 100,000". So here a crawl receives the messages queued when it
starts (S3's notification records, also inside an SNS envelope; S3's test event is
consumed and ignored); the first crawl of the crawler (no earlier crawl completed) lists
the whole target, later ones list only the folders of the objects the events name and
read only those objects, and a crawl with no events touches S3 not at all. Messages the
crawl consumed are deleted when it succeeds; a failed crawl leaves them to the queue
(visible again after its visibility timeout). A message that is not an S3 event
notification (an EventBridge event, say) is moved to the target's ``DlqEventQueueArn``,
or left in the queue (whose own redrive policy then moves it) when there is none.
After a restart of a stack that keeps its state, the crawls of the earlier stack are
history (see :mod:`flightpipe_local.stack_memory`) but its queue, and the events queued
in it, are not: the first crawl after the restart lists the whole target again.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any, Callable, Optional
from urllib.parse import unquote_plus

from moto.glue import models as glue_models
from moto.moto_api import state_manager

from flightpipe.etl.sources import read_at_least
from flightpipe_local._patching import PatchSet

SEAM_OWNER = glue_models.FakeCrawler
START_NAME = "start_crawler"
DESCRIBE_NAME = "as_dict"
CRAWL_MODEL = "glue::crawl"

LOG = logging.getLogger(__name__)
_SAMPLE_BYTES = 256 * 1024
_SAMPLE_ROWS = 500
_LAST_CRAWL_STATUS = {"COMPLETED": "SUCCEEDED", "FAILED": "FAILED", "STOPPED": "CANCELLED"}
# Compression by the object's first bytes: Glue interrogates the file, not its name.
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\xff\x06\x00\x00sNaPpY", "snappy"),
)
_MAGIC_BYTES = max(len(magic) for magic, _ in _MAGIC)
EVENT_MODE = "CRAWL_EVENT_MODE"
# Set on a crawl restored from the stack's state directory after a restart.
BEFORE_RESTART = "before_restart"
MAX_EVENTS_PER_CRAWL = 100_000
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class CrawlError(RuntimeError):
    """An object under a crawler target cannot be catalogued."""


def infer_type(values: Iterable[str]) -> str:
    """The Glue type of a CSV column from sample values (blank values say nothing)."""
    seen = [value.strip() for value in values if value.strip()]
    if not seen:
        return "string"
    if all(_INTEGER.match(value) for value in seen):
        return "bigint"
    if all(_DECIMAL.match(value) for value in seen):
        return "double"
    return "string"


def infer_columns(head: bytes, name: str) -> list[dict[str, str]]:
    """Catalog columns of a CSV object from its first bytes."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if len(head) >= _SAMPLE_BYTES and error.start >= len(head) - 4:
            text = head[: error.start].decode("utf-8-sig")
        else:
            raise CrawlError(f"{name}: not UTF-8 text ({error.reason})") from error
    if "\x00" in text:
        raise CrawlError(f"{name}: binary data, not a CSV file")
    lines = text.splitlines()
    if len(head) >= _SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    rows = list(csv.reader(lines[: _SAMPLE_ROWS + 1]))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise CrawlError(f"{name}: empty file or no header row")
    header = [cell.strip().lower() or f"col{index}" for index, cell in enumerate(rows[0])]
    columns = []
    for index, column in enumerate(header):
        sample = (row[index] for row in rows[1:] if index < len(row))
        columns.append({"Name": column, "Type": infer_type(sample)})
    return columns


def compression_of(head: bytes) -> str:
    """The compression an object's first bytes show: ``gzip``, ``bzip2``, ``zip``, ``lz4``,
    ``snappy`` (framed), else ``none``."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def decompressed_sample(body: Any, compression: str, name: str) -> bytes:
    """The first bytes (up to the sample size) of a ``gzip`` or ``bzip2`` stream, or of the
    one file in a ``zip`` archive; ``body`` is a binary file object (seekable for ``zip``).

    Raises :class:`CrawlError` when the object cannot be classified: a damaged stream, an
    archive of several files (Glue classifies single-file archives only), a compression
    this emulator does not read.
    """
    try:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=body, mode="rb") as stream:
                return _read_sample(stream)
        if compression == "bzip2":
            with bz2.BZ2File(body, mode="rb") as stream:
                return _read_sample(stream)
        if compression == "zip":
            with zipfile.ZipFile(body) as archive:
                files = [info for info in archive.infolist() if not info.is_dir()]
                if len(files) != 1:
                    raise CrawlError(
                        f"{name}: ZIP archive of {len(files)} files; Glue classifies ZIP "
                        "archives containing only a single file"
                    )
                with archive.open(files[0]) as stream:
                    return _read_sample(stream)
    except CrawlError:
        raise
    except (
        OSError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
        RuntimeError,
        NotImplementedError,
    ) as error:
        raise CrawlError(f"{name}: unreadable {compression} data ({error})") from error
    raise CrawlError(f"{name}: {compression} compression is not read by the local crawler")


def _read_sample(stream: Any) -> bytes:
    return read_at_least(stream, _SAMPLE_BYTES)


def widest_type(first: str, second: str) -> str:
    """The catalog type that holds values of both ``first`` and ``second``."""
    if first == second:
        return first
    if {first, second} == {"bigint", "double"}:
        return "double"
    return "string"


@dataclass(frozen=True)
class S3Change:
    """An object an S3 event notification names: created, or removed."""

    bucket: str
    key: str
    removed: bool = False


def s3_changes(body: str) -> Optional[list[S3Change]]:
    """The object changes an event queue message reports, in order.

    ``[]`` for S3's ``s3:TestEvent`` (sent when a notification is configured); ``None``
    when the message is no S3 event notification (an SNS envelope is opened first).
    Keys arrive URL-encoded, as S3 notifications encode them.
    """
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return s3_changes(document["Message"])
    if document.get("Event") == "s3:TestEvent":
        return []
    records = document.get("Records")
    if not isinstance(records, list):
        return None
    changes = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            return None
        try:
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            return None
        removed = str(record.get("eventName", "")).startswith("ObjectRemoved")
        changes.append(S3Change(bucket, key, removed))
    return changes


def folder_of(key: str) -> str:
    """The folder (prefix ending in ``/``) an object is in; ``""`` at the bucket's root."""
    return key[: key.rfind("/") + 1]


def table_name(path: str) -> str:
    """A catalog table name for an S3 path, as the crawler derives it."""
    last = [part for part in path.rstrip("/").split("/") if part][-1]
    last = re.sub(r"\.(gz|gzip|bz2|zip)$", "", last, flags=re.I)
    last = re.sub(r"\.csv$", "", last, flags=re.I)
    return re.sub(r"[^a-z0-9_]", "_", last.lower())


class CrawlerEmulator:
    """Crawls S3 targets through a boto3 S3 client and writes tables with a Glue client."""

    def __init__(
        self,
        s3_client: Callable[[], Any],
        glue_client: Callable[[], Any],
        min_crawl_seconds: float = 0.3,
        sqs_client: Optional[Callable[[], Any]] = None,
    ) -> None:
        self._s3 = s3_client
        self._glue = glue_client
        self._sqs = sqs_client
        # A crawl lasts at least this long (seconds of this machine's clock): `make stress`
        # sets it to a crawl's duration on AWS on the emulator's scaled clock.
        self.min_crawl_seconds = min_crawl_seconds
        self._faults: dict[str, str] = {}
        self._lasting_faults: dict[str, str] = {}
        self._lock = threading.Lock()
        # Told of a crawl when it starts and when it ends (the stack's memory records crawls).
        self.on_crawl: Optional[Callable[[Any, Any], None]] = None

    def fail_next(self, crawler_name: str, message: str) -> None:
        """Make the next crawl of ``crawler_name`` fail with ``message`` (for tests)."""
        with self._lock:
            self._faults[crawler_name] = message

    def fail_until_cleared(self, crawler_name: str, message: str) -> None:
        """Make every crawl of ``crawler_name`` fail with ``message`` until :meth:`clear_faults`.

        For tests of a failed crawl: the crawl that covers a file is not always the next one
        (one that starts within the second the file was written does not cover it).
        """
        with self._lock:
            self._lasting_faults[crawler_name] = message

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._lasting_faults.clear()

    def crawl(self, crawler: Any, crawl: Any) -> None:
        """Run one crawl to its end and record its outcome on ``crawl``."""
        started = time.monotonic()
        error: Optional[str] = None
        try:
            with self._lock:
                fault = self._faults.pop(crawler.name, None) or self._lasting_faults.get(
                    crawler.name
                )
            if fault is not None:
                raise CrawlError(fault)
            event_mode = (getattr(crawler, "recrawl_policy", None) or {}).get(
                "RecrawlBehavior"
            ) == EVENT_MODE
            for target in (crawler.targets or {}).get("S3Targets", []):
                if event_mode and target.get("EventQueueArn"):
                    self._crawl_target_from_events(crawler, crawl, target)
                else:
                    self._crawl_target(crawler, target)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            LOG.info("crawl of %s failed: %s", crawler.name, error)
        remaining = self.min_crawl_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        crawl.error_message = error
        crawl.end_time = glue_models.utcnow()
        if crawl.status == "STOPPING":
            crawl.status = "STOPPED"
        else:
            crawl.status = "FAILED" if error else "COMPLETED"
        self.crawled(crawler, crawl)

    def crawled(self, crawler: Any, crawl: Any) -> None:
        """Tell :attr:`on_crawl` that ``crawl`` started or ended."""
        if self.on_crawl is not None:
            self.on_crawl(crawler, crawl)

    def _crawl_target_from_events(self, crawler: Any, crawl: Any, target: dict[str, Any]) -> None:
        """One S3 target of an event mode crawler: its queued events, or its first full listing."""
        if self._sqs is None:
            raise CrawlError("the local crawler has no SQS client for event mode")
        sqs = self._sqs()
        queue_url = self._queue_url(sqs, target["EventQueueArn"])
        consumed, unreadable, changes = [], [], []
        for message in self._receive(sqs, queue_url):
            found = s3_changes(message.get("Body", ""))
            if found is None:
                unreadable.append(message)
            else:
                consumed.append(message)
                changes.extend(found)
        # Crawls restored from before a restart of the stack do not count: the queue they
        # consumed, and the events it held then, went with the earlier stack.
        listing = not any(
            other is not crawl
            and other.status == "COMPLETED"
            and not getattr(other, BEFORE_RESTART, False)
            for other in getattr(crawler, "crawls", [])
        )
        crawl.event_mode = "LISTING" if listing else "EVENTS"
        if listing:
            # "The first crawl lists all Amazon S3 objects from the target": it covers the
            # events queued before it began too.
            LOG.info("crawl of %s lists its whole target (its first crawl)", crawler.name)
            self._crawl_target(crawler, target)
        else:
            LOG.info("crawl of %s runs from %d S3 events", crawler.name, len(changes))
            self._crawl_changes(crawler, target, changes)
        self._set_aside(sqs, queue_url, target.get("DlqEventQueueArn"), unreadable)
        self._delete(sqs, queue_url, consumed)

    def _queue_url(self, sqs: Any, queue_arn: str) -> str:
        parts = queue_arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise CrawlError(f"{queue_arn} is not an SQS queue ARN")
        try:
            return sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
                "QueueUrl"
            ]
        except sqs.exceptions.QueueDoesNotExist as error:
            raise CrawlError(f"SQS queue {queue_arn} does not exist") from error

    def _receive(self, sqs: Any, queue_url: str) -> list[dict[str, Any]]:
        """The messages visible in the queue now, at most :data:`MAX_EVENTS_PER_CRAWL`."""
        messages: list[dict[str, Any]] = []
        while len(messages) < MAX_EVENTS_PER_CRAWL:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, MAX_EVENTS_PER_CRAWL - len(messages)),
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def _delete(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)

    def _set_aside(
        self, sqs: Any, queue_url: str, dlq_arn: Optional[str], messages: list[dict[str, Any]]
    ) -> None:
        """Move messages that are no S3 event notification to the dead-letter queue."""
        if not messages:
            return
        LOG.warning("%d queued messages are not S3 event notifications", len(messages))
        if not dlq_arn:
            return
        dlq_url = self._queue_url(sqs, dlq_arn)
        for message in messages:
            sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])
        self._delete(sqs, queue_url, messages)

    def _crawl_changes(self, crawler: Any, target: dict[str, Any], changes: list[S3Change]) -> None:
        """Catalog the objects the events name: list their folders, read only them."""
        bucket, _, prefix = target["Path"][len("s3://") :].partition("/")
        exclusions = target.get("Exclusions") or []
        named: dict[str, bool] = {}
        for change in changes:
            key = change.key
            if change.bucket != bucket or not key.startswith(prefix) or key.endswith("/"):
                continue
            if any(fnmatch(key[len(prefix) :], pattern) for pattern in exclusions):
                continue
            named[key] = change.removed
        if not named:
            return
        present: set[str] = set()
        for folder in sorted({folder_of(key) for key in named}):
            present.update(self._folder_keys(bucket, folder))
        schemas: dict[str, list[dict[str, str]]] = {}
        compressions: dict[str, str] = {}
        for key in sorted(named):
            if key not in present:
                # DeleteBehavior LOG: a removed object is only logged.
                LOG.info("crawler %s: s3://%s/%s was removed", crawler.name, bucket, key)
                continue
            try:
                sample, compressions[key] = self._sample(bucket, key)
                schemas[key] = infer_columns(sample, f"s3://{bucket}/{key}")
            except CrawlError as skipped:
                LOG.info("crawler %s skips %s", crawler.name, skipped)
        if schemas:
            self._merge_tables(crawler, target, bucket, prefix, schemas, compressions)

    def _folder_keys(self, bucket: str, folder: str) -> list[str]:
        """The objects directly in ``folder`` (not in its subfolders)."""
        paginator = self._s3().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/")
            for item in page.get("Contents", [])
        ]

    def _merge_tables(
        self,
        crawler: Any,
        target: dict[str, Any],
        bucket: str,
        prefix: str,
        schemas: dict[str, list[dict[str, str]]],
        compressions: dict[str, str],
    ) -> None:
        """Fold newly read objects into the target's table, as a full crawl would have.

        Objects of the target table's columns join it (types widened, compression kept
        only while all agree); objects of another layout get a table of their own. With no
        target table yet, one is made when the new objects agree and no table of the
        target exists; else each object gets its own, as a full crawl of mixed layouts does.
        """
        glue = self._glue()
        database = crawler.database_name
        name = table_name(target["Path"])
        location = f"s3://{bucket}/{prefix}"
        try:
            table = glue.get_table(DatabaseName=database, Name=(crawler.table_prefix or "") + name)[
                "Table"
            ]
        except glue.exceptions.EntityNotFoundException:
            table = None
        layouts = {tuple(c["Name"] for c in columns) for columns in schemas.values()}
        if table is None:
            if len(layouts) == 1 and not self._tables_under(database, location):
                kinds = set(compressions[key] for key in schemas)
                self._write_table(
                    crawler,
                    name,
                    location,
                    _merged_columns(list(schemas.values())),
                    kinds.pop() if len(kinds) == 1 else None,
                )
                return
            joining: list[str] = []
        else:
            columns = table["StorageDescriptor"]["Columns"]
            layout = tuple(c["Name"] for c in columns)
            joining = [
                key for key, found in schemas.items() if tuple(c["Name"] for c in found) == layout
            ]
            if joining:
                recorded = (table.get("Parameters") or {}).get("compressionType")
                kinds = {compressions[key] for key in joining} | {recorded}
                merged = _merged_columns([columns] + [schemas[key] for key in joining])
                compression = kinds.pop() if len(kinds) == 1 else None
                if merged != columns or compression != recorded:
                    self._write_table(crawler, name, location, merged, compression)
        for key, found in schemas.items():
            if key not in joining:
                self._write_table(
                    crawler, table_name(key), f"s3://{bucket}/{key}", found, compressions[key]
                )

    def _tables_under(self, database: str, location: str) -> bool:
        paginator = self._glue().get_paginator("get_tables")
        return any(
            (table.get("StorageDescriptor") or {}).get("Location", "").startswith(location)
            for page in paginator.paginate(DatabaseName=database)
            for table in page.get("TableList", [])
        )

    def _crawl_target(self, crawler: Any, target: dict[str, Any]) -> None:
        bucket, _, prefix = target["Path"][len("s3://") :].partition("/")
        exclusions = target.get("Exclusions") or []
        objects = [
            key
            for key in self._keys(bucket, prefix)
            if not any(fnmatch(key[len(prefix) :], pattern) for pattern in exclusions)
        ]
        schemas: dict[str, list[dict[str, str]]] = {}
        compressions: dict[str, str] = {}
        for key in objects:
            try:
                sample, compressions[key] = self._sample(bucket, key)
                schemas[key] = infer_columns(sample, f"s3://{bucket}/{key}")
            except CrawlError as skipped:
                LOG.info("crawler %s skips %s", crawler.name, skipped)
        if not schemas:
            return
        layouts = {tuple(c["Name"] for c in columns) for columns in schemas.values()}
        if len(layouts) == 1:
            kinds = {compressions[key] for key in schemas}
            self._write_table(
                crawler,
                table_name(target["Path"]),
                f"s3://{bucket}/{prefix}",
                next(iter(schemas.values())),
                kinds.pop() if len(kinds) == 1 else None,
            )
            return
        for key, columns in schemas.items():
            self._write_table(
                crawler, table_name(key), f"s3://{bucket}/{key}", columns, compressions[key]
            )

    def _sample(self, bucket: str, key: str) -> tuple[bytes, str]:
        """The first bytes of an object's CSV text, decompressed, and its compression."""
        name = f"s3://{bucket}/{key}"
        s3 = self._s3()
        if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 0:
            return b"", "none"
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_SAMPLE_BYTES - 1}")
        head = response["Body"].read()
        compression = compression_of(head[:_MAGIC_BYTES])
        if compression == "none":
            return head, compression
        # A compressed object is downloaded to be read (a ZIP archive's directory is at its end).
        with tempfile.TemporaryFile() as local:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            shutil.copyfileobj(body, local, 1024 * 1024)
            local.seek(0)
            return decompressed_sample(local, compression, name), compression

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        paginator = self._s3().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]

    def _write_table(
        self,
        crawler: Any,
        name: str,
        location: str,
        columns: list[dict[str, str]],
        compression: Optional[str] = "none",
    ) -> None:
        parameters = {"classification": "csv", "skip.header.line.count": "1"}
        if compression is not None:  # objects of one table compressed differently: not recorded
            parameters["compressionType"] = compression
        table = {
            "Name": (crawler.table_prefix or "") + name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
            "StorageDescriptor": {
                "Columns": columns,
                "Location": location,
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                    "Parameters": {"field.delim": ","},
                },
            },
        }
        glue = self._glue()
        try:
            glue.create_table(DatabaseName=crawler.database_name, TableInput=table)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=crawler.database_name, TableInput=table)


def _merged_columns(layouts: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    """Columns of one layout seen several times, each of the widest type seen."""
    merged = [dict(column) for column in layouts[0]]
    for columns in layouts[1:]:
        for column, other in zip(merged, columns):
            column["Type"] = widest_type(column["Type"], other["Type"])
    return merged


def last_crawl(crawler: Any) -> Optional[dict[str, Any]]:
    """``LastCrawl`` as AWS reports it: the latest crawl that has ended."""
    for crawl in reversed(crawler.crawls):
        status = _LAST_CRAWL_STATUS.get(crawl.status)
        if status is None:
            continue
        info = {
            "Status": status,
            "LogGroup": crawl.log_group,
            "LogStream": crawl.log_stream,
            "MessagePrefix": crawl.message_prefix,
            "StartTime": crawl.start_time,
        }
        if getattr(crawl, "error_message", None):
            info["ErrorMessage"] = crawl.error_message
        return info
    return None


def install(patches: PatchSet, emulator: CrawlerEmulator) -> None:
    """Make ``StartCrawler`` crawl for real and ``GetCrawler`` report it as AWS does."""
    original_start = SEAM_OWNER.__dict__[START_NAME]
    original_describe = SEAM_OWNER.__dict__[DESCRIBE_NAME]

    def start_crawler(self: Any) -> None:
        original_start(self)
        crawl = self.crawls[-1]
        emulator.crawled(self, crawl)
        worker = threading.Thread(
            target=emulator.crawl, args=(self, crawl), name=f"crawl-{self.name}", daemon=True
        )
        worker.start()

    def as_dict(self: Any) -> dict[str, Any]:
        data = original_describe(self)
        data.pop("LastCrawl", None)
        info = last_crawl(self)
        if info is not None:
            data["LastCrawl"] = info
        return data

    patches.replace(SEAM_OWNER, START_NAME, start_crawler)
    patches.replace(SEAM_OWNER, DESCRIBE_NAME, as_dict)
    # Crawls end when the worker says so, never by moto's own state transitions.
    state_manager.set_transition(CRAWL_MODEL, {"progression": "manual", "times": sys.maxsize})
    patches.on_restore(lambda: state_manager.unset_transition(CRAWL_MODEL))
