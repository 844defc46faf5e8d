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
"""

from __future__ import annotations

import bz2
import csv
import gzip
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
from fnmatch import fnmatch
from typing import Any, Callable, Optional

from moto.glue import models as glue_models
from moto.moto_api import state_manager

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
    chunks, size = [], 0
    while size < _SAMPLE_BYTES:
        chunk = stream.read(_SAMPLE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


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
    ) -> None:
        self._s3 = s3_client
        self._glue = glue_client
        self._min_seconds = min_crawl_seconds
        self._faults: dict[str, str] = {}
        self._lock = threading.Lock()

    def fail_next(self, crawler_name: str, message: str) -> None:
        """Make the next crawl of ``crawler_name`` fail with ``message`` (for tests)."""
        with self._lock:
            self._faults[crawler_name] = message

    def crawl(self, crawler: Any, crawl: Any) -> None:
        """Run one crawl to its end and record its outcome on ``crawl``."""
        started = time.monotonic()
        error: Optional[str] = None
        try:
            with self._lock:
                fault = self._faults.pop(crawler.name, None)
            if fault is not None:
                raise CrawlError(fault)
            for target in (crawler.targets or {}).get("S3Targets", []):
                self._crawl_target(crawler, target)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            LOG.info("crawl of %s failed: %s", crawler.name, error)
        remaining = self._min_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        crawl.error_message = error
        crawl.end_time = glue_models.utcnow()
        if crawl.status == "STOPPING":
            crawl.status = "STOPPED"
        else:
            crawl.status = "FAILED" if error else "COMPLETED"

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
