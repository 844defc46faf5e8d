"""The warehouse side of a load: the one-transaction batch and the ledger rows.

All SQL comes from ``sql/`` and goes through the Warehouse port (the Redshift
Data API in production); values are only ever substituted as quoted literals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from typing import Callable, Optional

from flightpipe.sql import render_statements
from flightpipe.warehouse.ledger import ERROR_MAX_BYTES, FAILED, truncate_utf8
from flightpipe.warehouse.port import StatementError, Warehouse

LOADED, REJECTED = "LOADED", "REJECTED"
# The version was already loaded: a second delivery of the same S3 event.
DUPLICATE = "DUPLICATE"
# A newer version of the file was already loaded: this older one's rows were left alone.
SUPERSEDED = "SUPERSEDED"
LOAD_ATTEMPTS = 4
# Redshift aborts a transaction that loses a write conflict with error 1023 ("ERROR: 1023
# DETAIL: Serializable isolation violation on table - <id>, ..."), under snapshot and
# serializable isolation alike; the whole batch was rolled back, so running it again is safe.
# https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation-serializable-isolation-troubleshooting.html
_SERIALIZATION_CONFLICT = "serializable isolation violation"


@dataclass(frozen=True)
class LoadAttempt:
    """One attempt to load one file, as the ledger records it."""

    load_id: str
    source_file: str
    source_version: Optional[str]
    started_at: dt.datetime
    execution_id: Optional[str]
    rows_read: Optional[int] = None
    rows_rejected: Optional[int] = None
    unmatched_airport_rows: Optional[int] = None
    # The version's ordering key (flightpipe/sequencer.py); None when the execution has none.
    source_sequencer: Optional[str] = None

    def counted(
        self, rows_read: int, rows_rejected: int, unmatched_airport_rows: int
    ) -> LoadAttempt:
        """This attempt with the counts reading the file produced."""
        return dataclasses.replace(
            self,
            rows_read=rows_read,
            rows_rejected=rows_rejected,
            unmatched_airport_rows=unmatched_airport_rows,
        )


def known_airport_ids(warehouse: Warehouse) -> set[int]:
    """The airport ids of ``airlines.airports_dim``, to find unknown ids while validating."""
    (statement,) = render_statements("known_airport_ids.sql")
    rows = warehouse.query(statement)
    return {int(row["airport_id"]) for row in rows}


def load_statements(attempt: LoadAttempt, manifest_uri: str, iam_role: str) -> list[str]:
    """The batch of ``sql/load_flights.sql`` for this attempt: COPY of the manifest's parts."""
    return render_statements(
        "load_flights.sql",
        manifest_uri=manifest_uri,
        iam_role=iam_role,
        source_file=attempt.source_file,
        source_version=attempt.source_version,
        source_sequencer=attempt.source_sequencer,
        load_id=attempt.load_id,
        rows_read=attempt.rows_read,
        rows_rejected=attempt.rows_rejected,
        unmatched_airport_rows=attempt.unmatched_airport_rows,
        started_at=attempt.started_at,
        execution_id=attempt.execution_id,
    )


def load_staged_rows(
    warehouse: Warehouse,
    attempt: LoadAttempt,
    manifest_uri: str,
    iam_role: str,
    *,
    attempts: int = LOAD_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Replace the file's fact rows and write its LOADED ledger row, all or nothing.

    Returns the status the batch recorded: LOADED; DUPLICATE when this version of the file
    was already loaded, or SUPERSEDED when a newer version of it was (then no fact row
    changed).

    Concurrent uploads load into the same fact table: the batch locks it first, so loads
    run one after the other. A batch that still loses a serialization conflict (a writer
    outside the pipeline, a cluster on serializable isolation) is run again with backoff.
    """
    statements = load_statements(attempt, manifest_uri, iam_role)
    for number in range(1, attempts + 1):
        try:
            warehouse.execute_batch(statements)
            return recorded_status(warehouse, attempt.load_id)
        except StatementError as error:
            if number == attempts or _SERIALIZATION_CONFLICT not in str(error).lower():
                raise
            sleep(2.0**number)


def recorded_status(warehouse: Warehouse, load_id: str) -> str:
    """The status the ledger holds for the attempt ``load_id``."""
    (statement,) = render_statements("load_status.sql", load_id=load_id)
    rows = warehouse.query(statement)
    if not rows:
        raise StatementError(f"the load batch recorded no ledger row for load {load_id}")
    return str(rows[0]["status"])


def record_unloaded_attempt(
    warehouse: Warehouse, attempt: LoadAttempt, status: str, error: str
) -> None:
    """Write a REJECTED or FAILED ledger row (its own transaction: nothing else to undo)."""
    if status not in (REJECTED, FAILED):
        raise ValueError(f"not an unloaded status: {status}")
    warehouse.execute_batch(
        render_statements(
            "record_load_attempt.sql",
            load_id=attempt.load_id,
            source_file=attempt.source_file,
            source_version=attempt.source_version,
            source_sequencer=attempt.source_sequencer,
            status=status,
            rows_read=attempt.rows_read,
            rows_rejected=attempt.rows_rejected,
            unmatched_airport_rows=attempt.unmatched_airport_rows,
            error=truncate_utf8(error, ERROR_MAX_BYTES),
            started_at=attempt.started_at,
            execution_id=attempt.execution_id,
        )
    )
