"""The notice a person reads for each execution: one JSON document, and a subject line.

The state machine's Compose*Notice steps send the execution's outcome (status, the file,
its version, the execution and when it started, the error of a failure); the job's summary
(``reports/<execution>.json``, :mod:`flightpipe.etl.summary`) adds the counts when the job
ran. The message holds exactly the fields of :data:`NOTICE_FIELDS` that apply, in that
order: the counts and the engine only when the job wrote a summary, ``unknown_airport_ids``
(the first ten) only when some ids were unknown, ``rejects`` only when rows were rejected,
``error`` and ``cause`` only for a failure; ``warning`` when the crawl could not confirm the
file is in the Data Catalog (the crawler's own message). The subject names the file and the
outcome within SNS's limits ("ASCII text ... must be less than 100 characters long":
https://docs.aws.amazon.com/sns/latest/api/API_Publish.html).
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import ObjectStore
from flightpipe.retryable import raise_if_throttled

SUCCEEDED, FAILED, DUPLICATE, SUPERSEDED = "SUCCEEDED", "FAILED", "DUPLICATE", "SUPERSEDED"
NOTICE_FIELDS = (
    "status",
    "file",
    "version_id",
    "execution",
    "engine",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "unmatched_airport_rows",
    "unknown_airport_ids",
    "rejects",
    "duration_s",
    "summary",
    "error",
    "cause",
    "warning",
)
COUNTS = ("rows_read", "rows_loaded", "rows_rejected", "unmatched_airport_rows")
UNKNOWN_IDS_SHOWN = 10
SUBJECT_PREFIX = "Flight file "
SUBJECT_MAX = 99
_FRACTION = re.compile(r"\.(\d+)")
_NO_SUMMARY = ("NoSuchKey", "404", "AccessDenied", "403")


@dataclass(frozen=True)
class NoticeRequest:
    """What the state machine knows of the execution when it sends its notice."""

    status: str
    bucket: str
    key: str
    execution_id: str
    version_id: Optional[str] = None
    started: Optional[str] = None  # $$.Execution.StartTime (ISO 8601)
    summary_key: Optional[str] = None
    error: Optional[str] = None
    cause: Optional[str] = None
    warning: Optional[str] = None  # the crawl's, when it did not succeed

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> NoticeRequest:
        def text(name: str) -> Optional[str]:
            value = payload.get(name)
            return str(value) if value not in (None, "") else None

        return cls(
            status=str(payload["status"]),
            bucket=str(payload["bucket"]),
            key=str(payload["key"]),
            execution_id=str(payload["execution_id"]),
            version_id=text("version_id"),
            started=text("started"),
            summary_key=text("summary_key"),
            error=text("error"),
            cause=text("cause"),
            warning=text("warning"),
        )


def read_job_summary(s3: ObjectStore, bucket: str, key: str) -> Optional[dict[str, Any]]:
    """The job's summary, or None when the job wrote none (it never ran, or failed first).

    The function may read ``reports/*`` but not list the bucket, so S3 answers a missing
    summary with 403, not 404 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
    "Permissions"): both mean no summary to report.
    """
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise_if_throttled(error)
        if error.response.get("Error", {}).get("Code") in _NO_SUMMARY:
            return None
        raise
    document = json.loads(body)
    return dict(document) if isinstance(document, Mapping) else None


def notice_message(
    request: NoticeRequest,
    summary: Optional[Mapping[str, Any]],
    summary_uri: Optional[str],
    now: dt.datetime,
) -> dict[str, Any]:
    """The fields of :data:`NOTICE_FIELDS` that apply to this execution, in that order."""
    fields: dict[str, Any] = {
        "status": request.status,
        "file": f"s3://{request.bucket}/{request.key}",
        "version_id": request.version_id,
        "execution": request.execution_id,
    }
    if summary is not None:
        fields["engine"] = (summary.get("runtime") or {}).get("engine")
        fields.update({name: int(summary.get(name) or 0) for name in COUNTS})
        unknown = list(summary.get("unknown_airport_ids") or [])
        fields["unknown_airport_ids"] = unknown[:UNKNOWN_IDS_SHOWN] or None
        if fields["rows_rejected"]:
            fields["rejects"] = summary.get("rejects_uri")
    fields["duration_s"] = _seconds_since(request.started, now)
    fields["summary"] = summary_uri if summary is not None else None
    if request.status == FAILED:
        fields["error"] = request.error
        fields["cause"] = readable_cause(request.cause)
    fields["warning"] = request.warning
    return {name: fields[name] for name in NOTICE_FIELDS if fields.get(name) is not None}


def readable_cause(cause: Optional[str]) -> Optional[str]:
    """A failed job step's cause is the job run as JSON: its ``ErrorMessage`` is what a
    person needs. Any other cause (a crawl's, a Lambda's error) is kept as it is."""
    if not cause:
        return cause
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, Mapping) and document.get("ErrorMessage"):
        return str(document["ErrorMessage"])
    if isinstance(document, Mapping) and document.get("errorMessage"):  # a Lambda's error
        return str(document["errorMessage"])
    return cause


def notice_subject(request: NoticeRequest, summary: Optional[Mapping[str, Any]]) -> str:
    """``Flight file <name> <outcome>``: ASCII, under 100 characters, the name shortened
    to fit."""
    outcome = _outcome(request.status, summary)
    name = _ascii(posixpath.basename(request.key.rstrip("/")) or request.key)
    room = SUBJECT_MAX - len(SUBJECT_PREFIX) - len(outcome) - 1
    if len(name) > room:
        name = name[: max(room - 3, 0)] + "..."
    return f"{SUBJECT_PREFIX}{name} {outcome}"


def compose_notice(
    s3: ObjectStore,
    request: NoticeRequest,
    data_bucket: str,
    now: Optional[dt.datetime] = None,
) -> dict[str, str]:
    """``{"subject", "message"}`` for SNS: the message is the JSON document as text."""
    now = now or dt.datetime.now(dt.timezone.utc)
    summary = None
    if request.summary_key:
        summary = read_job_summary(s3, data_bucket, request.summary_key)
    uri = f"s3://{data_bucket}/{request.summary_key}" if request.summary_key else None
    message = notice_message(request, summary, uri, now)
    return {
        "subject": notice_subject(request, summary),
        "message": json.dumps(message, ensure_ascii=False),
    }


def _outcome(status: str, summary: Optional[Mapping[str, Any]]) -> str:
    if status == SUCCEEDED:
        loaded = int((summary or {}).get("rows_loaded") or 0)
        rejected = int((summary or {}).get("rows_rejected") or 0)
        counts = f": {loaded} rows" if summary is not None else ""
        return f"loaded{counts}" + (f", {rejected} rejected" if rejected else "")
    if status == DUPLICATE:
        return "skipped: this version was already loaded"
    if status == SUPERSEDED:
        return "skipped: a newer version is loaded"
    if (summary or {}).get("status") == "REJECTED":
        return "rejected"
    return "failed"


def _ascii(text: str) -> str:
    """Text SNS takes in a subject: ASCII, no control characters."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch if ch.isprintable() else "?" for ch in plain) or "?"


def _seconds_since(started: Optional[str], now: dt.datetime) -> Optional[float]:
    """Seconds from an ISO 8601 instant (``2024-01-02T06:00:00.123Z``) to ``now``."""
    if not started:
        return None
    # Python 3.9's fromisoformat takes neither "Z" nor fractions other than 3 or 6 digits.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), started)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return round(max((now - moment).total_seconds(), 0.0), 1)
