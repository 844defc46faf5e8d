"""Local spool files for the validated rows (gzip CSV) and the rejects (CSV), and their upload.

Both are written to temporary files as blocks are validated, so memory stays
flat, then uploaded with boto3's managed (multipart) transfer. The staged parts
are what Redshift ``COPY``s: no header, columns in the order of
``flightpipe.etl.validate.STAGED_COLUMNS``, empty fields for NULL.

Their keys, and every other key a load stages, are in :mod:`flightpipe.bucket_layout`.
"""

from __future__ import annotations

import csv
import gzip
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Union

from flightpipe.aws_ports import ObjectStore
from flightpipe.etl.validate import Reject

REJECTS_HEADER = ("line_number", "reason", "raw_text")
# Level 1: the staged file is read once by COPY; speed matters more than size.
_GZIP_LEVEL = 1
_VALUES = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[-+]?\d+")


class _SpoolFile:
    def __init__(self, directory: Optional[str], suffix: str) -> None:
        handle, name = tempfile.mkstemp(prefix="flightpipe-", suffix=suffix, dir=directory)
        os.close(handle)
        self.path = Path(name)

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish writing; later calls do nothing."""


class StagedRowsFile(_SpoolFile):
    """The validated rows as a gzip-compressed CSV spool file.

    Compression runs on a background thread (zlib releases the GIL), so it
    overlaps with parsing the next block; at most two blocks wait in the queue,
    which keeps memory flat.
    """

    def __init__(self, directory: Optional[str] = None) -> None:
        super().__init__(directory, ".csv.gz")
        self._raw = self.path.open("wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=_GZIP_LEVEL)
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._compress, name="stage-gzip", daemon=True)
        self._thread.start()
        self.waited = 0.0  # seconds the writer spent waiting for the compressor

    def write(self, csv_data: Union[bytes, str]) -> None:
        """Queue rows of CSV (UTF-8 bytes, or text) for compression."""
        self._raise_if_failed()
        if csv_data:
            asked = time.monotonic()
            self._queue.put(csv_data.encode("utf-8") if isinstance(csv_data, str) else csv_data)
            self.waited += time.monotonic() - asked

    def close(self) -> None:
        if self._thread.is_alive():
            asked = time.monotonic()
            self._queue.put(None)
            self._thread.join()
            self.waited += time.monotonic() - asked
        if not self._raw.closed:
            self._gzip.close()
            self._raw.close()
        self._raise_if_failed()

    def _compress(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._gzip.write(data)
                except BaseException as error:  # re-raised on the writing thread
                    self._error = error

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise OSError(f"writing the staged file failed: {error}") from error


class RejectsFile(_SpoolFile):
    """Rejected rows as CSV: line number, reason, raw text of the record."""

    def __init__(self, directory: Optional[str] = None, *, header: bool = True) -> None:
        super().__init__(directory, ".rejects.csv")
        self._handle = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        if header:
            self._writer.writerow(REJECTS_HEADER)
        self.count = 0
        self.reasons: dict[str, int] = {}

    def write(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            raw = reject.raw.decode("utf-8", errors="replace").replace("\x00", "\\x00")
            self._writer.writerow((reject.line, reject.reason, raw))
            self.count += 1
            kind = reason_kind(reject.reason)
            self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def append_part(self, chunks: Iterable[bytes], count: int, reasons: dict[str, int]) -> None:
        """Append the rows another RejectsFile wrote without header (a Spark task's part)."""
        self._handle.flush()
        with self.path.open("ab") as raw:
            for chunk in chunks:
                raw.write(chunk)
        self.count += count
        for kind, number in reasons.items():
            self.reasons[kind] = self.reasons.get(kind, 0) + number

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class SpoolFiles:
    """The two local files one run writes: the staged rows and the rejects.

    Both are removed when the block ends, whatever happened.
    """

    def __init__(self, directory: Optional[str] = None, *, rejects_header: bool = True) -> None:
        self.staged = StagedRowsFile(directory)
        self.rejects = RejectsFile(directory, header=rejects_header)

    def close(self) -> None:
        """Finish writing both (the staged file flushes its last compressed block)."""
        self.staged.close()
        self.rejects.close()

    def __enter__(self) -> SpoolFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.staged.remove()
        self.rejects.remove()


def upload(s3: ObjectStore, path: Path, bucket: str, key: str, content_type: str) -> str:
    """Upload a spool file (multipart when large); return its ``s3://`` URI."""
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
    return f"s3://{bucket}/{key}"


def remove_object(s3: ObjectStore, bucket: str, key: str) -> None:
    s3.delete_object(Bucket=bucket, Key=key)


def reason_kind(reason: str) -> str:
    """A reason with its values blanked out, to count rejects by kind in the summary."""
    return _VALUES.sub("…", reason)
