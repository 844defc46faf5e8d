"""The load ledger (``airlines.load_ledger``): what every attempt row shares, and the row of an
execution that failed before its job recorded one.

Every execution of the state machine leaves a ledger row, so that the ledger, the executions
(``flightpipe status``, ``show``) and ``flightpipe backfill --failed-only`` agree. The job
writes the row of each attempt it makes (LOADED, REJECTED, FAILED, DUPLICATE, SUPERSEDED);
an execution that fails before the job ran, or whose job failed without writing one (the
object's version is gone, a refused call, a crawl that failed), passes the state machine's
RecordFailure step, which records a FAILED row for it here unless one exists.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from flightpipe.execution_input import input_of_status_change
from flightpipe.sequencer import SequencerError, ordering_key
from flightpipe.sql import render_statements
from flightpipe.warehouse.port import Warehouse

FAILED = "FAILED"
# airlines.load_ledger.error is VARCHAR(4096): 4096 bytes in Redshift, not characters
# (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html).
ERROR_MAX_BYTES = 4096


def new_load_id(started_at: dt.datetime) -> str:
    """A ledger row's id: when the attempt started, then random hex."""
    return f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


def truncate_utf8(text: str, max_bytes: int, marker: str = " …[truncated]") -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, never inside a character.

    When it has to cut, it ends with ``marker`` (within the limit), so a reader
    knows the text goes on. Characters UTF-8 cannot encode (lone surrogates)
    become ``?``, as the warehouse could not store them either.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8")
    tail = marker.encode("utf-8")
    if len(tail) >= max_bytes:
        tail = b""
    # A cut inside a multibyte character leaves an incomplete sequence at the end:
    # "ignore" drops just those bytes, as the prefix before them is valid UTF-8.
    return data[: max_bytes - len(tail)].decode("utf-8", "ignore") + tail.decode("utf-8")


def cause_message(cause: str) -> str:
    """The human message inside a Step Functions cause (Lambda error or Glue job run JSON)."""
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, dict):
        for key in ("ErrorMessage", "errorMessage", "error", "Error", "cause", "Cause"):
            value = document.get(key)
            if isinstance(value, str) and value:
                return cause_message(value)
    return cause


@dataclass(frozen=True)
class ExecutionFailure:
    """An execution that ended in the state machine's failure path, as RecordFailure passes it:
    the execution's input (which object version), its id and the caught error. Its ledger row
    starts and finishes when it is recorded."""

    bucket: str
    key: str
    execution_id: str
    error: str
    version_id: Optional[str] = None
    etag: Optional[str] = None
    sequencer: Optional[str] = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ExecutionFailure:
        """From ``{"bucket", "key", "version_id", "etag", "sequencer", "execution_id", "error",
        "cause"}`` (the error and cause a Catch put in the execution's state)."""
        name = str(payload.get("error") or "States.TaskFailed")
        cause = cause_message(str(payload.get("cause") or ""))
        return cls(
            bucket=str(payload["bucket"]),
            key=str(payload["key"]),
            execution_id=str(payload["execution_id"]),
            error=f"{name}: {cause}" if cause else name,
            version_id=payload.get("version_id") or None,
            etag=payload.get("etag") or None,
            sequencer=payload.get("sequencer") or None,
        )

    @classmethod
    def from_status_change(cls, detail: Mapping[str, Any]) -> Optional[ExecutionFailure]:
        """From the detail of a "Step Functions Execution Status Change" event of an
        execution that ended without running its own RecordFailure step (ABORTED, TIMED_OUT):
        the file comes from the execution's input. None when that input names no file (an
        execution started by hand with some other input): there is no row to write."""
        started_with = input_of_status_change(detail)
        if not started_with.get("bucket") or not started_with.get("key"):
            return None
        return cls.from_payload(
            {
                **started_with,
                "execution_id": detail["executionArn"],
                "error": f"Execution{str(detail.get('status', '')).title().replace('_', '')}",
                "cause": detail.get("cause") or detail.get("error") or "",
            }
        )

    @property
    def source_file(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def source_version(self) -> Optional[str]:
        """As the job names the version: its version id, else its ETag."""
        return self.version_id or self.etag


EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def failure_to_record(event: Mapping[str, Any]) -> tuple[bool, Optional[ExecutionFailure]]:
    """Whether ``event`` asks for a failure to be recorded, and which: the state machine's
    RecordFailure step sends ``{"record_failure": {...}}``; an aborted or timed-out execution
    arrives as its "Step Functions Execution Status Change" event (None when its input names
    no file)."""
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        return True, ExecutionFailure.from_status_change(event.get("detail") or {})
    if event.get("record_failure") is not None:
        return True, ExecutionFailure.from_payload(event["record_failure"])
    return False, None


def record_failed_execution(warehouse: Warehouse, failure: ExecutionFailure) -> dict[str, Any]:
    """Write a FAILED ledger row for the execution unless it has one (its job wrote it).

    Returns ``{"recorded", "load_id", "source_file"}``; ``recorded`` is False when the
    execution already had a row.
    """
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    load_id = new_load_id(now)
    try:
        sequencer = ordering_key(failure.sequencer)
    except SequencerError:
        sequencer = None  # the failure is recorded all the same, unordered
    warehouse.execute_batch(
        render_statements(
            "record_execution_failure.sql",
            load_id=load_id,
            source_file=failure.source_file,
            source_version=failure.source_version,
            source_sequencer=sequencer,
            error=truncate_utf8(failure.error, ERROR_MAX_BYTES),
            started_at=now,
            execution_id=failure.execution_id,
        )
    )
    (statement,) = render_statements("load_status.sql", load_id=load_id)
    recorded = bool(warehouse.query(statement))
    return {"recorded": recorded, "load_id": load_id, "source_file": failure.source_file}
