"""The job's JSON summary: what the CLI, the success notice and a person read after a run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import ObjectStore
from flightpipe.runtime_info import runtime_versions


@dataclass
class JobSummary:
    """Counts, unknown airport ids, where the rejects went, timings and the outcome."""

    status: str
    load_id: str
    source_file: str
    source_version: Optional[str] = None
    # The version's ordering key (flightpipe/sequencer.py), as the ledger records it.
    source_sequencer: Optional[str] = None
    execution_id: Optional[str] = None
    # What the object was (csv, gzip, bzip2, zip), the zip's CSV member, its other files.
    source_format: Optional[str] = None
    source_member: Optional[str] = None
    ignored_members: list[str] = field(default_factory=list)
    layout: Optional[str] = None
    flight_date_source: Optional[str] = None
    splits: int = 1  # the parts the object was read in: 1, or the Spark job's tasks
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    unmatched_airport_rows: int = 0
    unknown_airport_ids: list[int] = field(default_factory=list)
    rejects_uri: Optional[str] = None
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    reject_threshold: Optional[float] = None
    error: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    # Wall seconds per phase. read_validate: reading, validating and gzip-staging the file,
    # which overlap (a reader thread, the validating thread, a compressing thread); of it,
    # read_wait is the validating thread waiting for blocks (reading or decompressing the
    # upload is the bottleneck) and stage_wait waiting for the compressor. upload: the
    # staged (and rejects) file to S3. load: the one-transaction load batch. total: all.
    timings_s: dict[str, float] = field(default_factory=dict)
    summary_uri: Optional[str] = None
    # The engine (pythonshell or spark) and the interpreter and SDK the job ran on (Glue's
    # runtime plus --additional-python-modules; the Spark version on the Spark job).
    runtime: dict[str, str] = field(default_factory=runtime_versions)
    # The job process's own peak resident memory so far, in MiB (set when the summary is
    # written; VmHWM on Linux, not ru_maxrss, which includes the launcher's: see peak_rss_mb).
    peak_rss_mb: Optional[float] = None

    @property
    def succeeded(self) -> bool:
        return self.status == "LOADED"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False)


def peak_rss_mb() -> Optional[float]:
    """This process's own peak resident set size in MiB.

    On Linux that is ``VmHWM`` of ``/proc/self/status``: the high-water mark of the memory
    this program has had since it started (``execve`` gives it a fresh address space).
    ``ru_maxrss`` is not: Linux keeps it across ``execve``, so a process starts with its
    launcher's resident size (at a fork; its lifetime peak at a vfork or posix_spawn) — the
    local stack holding the file just uploaded, a bench parent, Glue's own launcher — and
    reports that whenever it is larger than its own peak. ``ru_maxrss`` (KiB on Linux) is
    the fallback where there is no ``/proc``.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # "VmHWM:  123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_summary(s3: ObjectStore, summary: JobSummary, bucket: str, key: str) -> str:
    """Put the summary as JSON at ``s3://bucket/key``; return that URI."""
    uri = f"s3://{bucket}/{key}"
    summary.summary_uri = uri
    summary.peak_rss_mb = peak_rss_mb()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=summary.to_json().encode("utf-8"),
        ContentType="application/json",
    )
    return uri


def read_summary(s3: ObjectStore, bucket: str, key: str) -> Optional[dict[str, Any]]:
    """The summary at ``s3://bucket/key`` as a dict; None when there is none (the job did
    not run, or failed before writing it)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return dict(json.loads(body.read()))
