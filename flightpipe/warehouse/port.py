"""The warehouse port: what the pipeline needs from Redshift, and nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from flightpipe.retryable import ServiceThrottledError

Row = dict[str, Any]


class StatementError(RuntimeError):
    """A statement or batch ended FAILED or ABORTED in the warehouse."""


class StatementTimeoutError(StatementError):
    """A statement was still running when the caller's time ran out; it was cancelled."""


class WarehouseThrottledError(ServiceThrottledError):
    """The warehouse API throttled the call; the caller may retry with backoff.

    Step Functions sees this class name as the Lambda error and retries it.
    """


class Warehouse(Protocol):
    """Runs SQL in the warehouse.

    ``query`` runs one statement in its own session and returns its rows.
    ``execute_batch`` runs statements in order in ONE transaction and one
    session: all of them take effect or none does, and a temporary table lives
    until the batch ends.
    """

    def query(self, sql: str) -> list[Row]: ...

    def execute_batch(self, statements: Sequence[str]) -> None: ...
