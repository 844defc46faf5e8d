"""``flightpipe upload``: put files under ``incoming/`` and find the execution each started."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

from flightpipe.bucket_layout import INCOMING_PREFIX
from flightpipe.ops import executions
from flightpipe.ops.target import Target

# An upload's execution starts within seconds (S3 -> EventBridge -> the rule); a minute
# leaves room for EventBridge's own delivery delays before an upload is reported as unstarted.
DEFAULT_START_TIMEOUT_S = 60.0


@dataclass
class UploadResult:
    """One file put under ``incoming/`` (``flightpipe upload --json`` entries)."""

    file: str
    key: str
    execution_arn: Optional[str] = None
    status: Optional[str] = None
    load_status: Optional[str] = None
    rows_loaded: Optional[int] = None
    version_id: Optional[str] = None
    etag: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("version_id")
        data.pop("etag")
        return data


def object_key(path: Path, date: Optional[dt.date]) -> str:
    """``incoming/<name>``, or ``incoming/date=YYYY-MM-DD/<name>`` for a dated upload."""
    folder = f"date={date.isoformat()}/" if date else ""
    return f"{INCOMING_PREFIX}{folder}{path.name}"


class ProgressBar:
    """Bytes sent of one file, redrawn in place on a terminal (boto3 calls it from threads)."""

    def __init__(self, name: str, total: int, stream: Optional[TextIO] = None) -> None:
        self._name, self._total = name, max(total, 1)
        self._stream = stream or sys.stderr
        self._sent = 0
        self._lock = threading.Lock()
        self._tty = self._stream.isatty()

    def __call__(self, sent: int) -> None:
        with self._lock:
            self._sent += sent
            if self._tty:
                share = self._sent / self._total
                bar = "#" * int(share * 30)
                self._stream.write(f"\r{self._name[:40]:<40} [{bar:<30}] {share:6.1%}")
                self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def upload_file(
    target: Target, s3: Any, path: Path, key: str, progress: Optional[Callable[[int], None]]
) -> UploadResult:
    """Put the file with boto3's managed transfer: multipart from 8 MB, its default
    ``multipart_threshold`` (https://boto3.amazonaws.com/v1/documentation/api/latest/
    reference/customizations/s3.html#boto3.s3.transfer.TransferConfig)."""
    s3.upload_file(str(path), target.bucket, key, Callback=progress)
    head = s3.head_object(Bucket=target.bucket, Key=key)
    return UploadResult(
        file=str(path),
        key=key,
        version_id=head.get("VersionId"),
        etag=str(head.get("ETag", "")).strip('"'),
    )


def find_started_execution(
    started: executions.StartedExecutions,
    upload: UploadResult,
    not_before: dt.datetime,
    timeout_s: float,
) -> Optional[str]:
    """The execution the upload's S3 event started, once it appears (None after the timeout).

    Only executions started at or after ``not_before`` (the upload's start, less clock skew)
    are read.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        started.match([upload], not_before)
        if upload.execution_arn is not None or time.monotonic() > deadline:
            return upload.execution_arn
        time.sleep(0.5)  # S3 -> EventBridge -> the rule takes about a second
