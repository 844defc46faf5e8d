"""Warehouse adapter over the Redshift Data API (``redshift-data``).

No driver and no VPC wiring: Lambdas and the Glue job reach the Data API over
AWS's public endpoints, and the local emulator serves the same API, so this code
runs unchanged against both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import RedshiftDataApi
from flightpipe.retryable import is_throttling
from flightpipe.settings import Env
from flightpipe.warehouse.port import (
    Row,
    StatementError,
    StatementTimeoutError,
    WarehouseThrottledError,
)

_TERMINAL_STATES = ("FINISHED", "FAILED", "ABORTED")
# Time a Lambda keeps after its last statement wait: cancelling the statement, raising and
# returning the error to Step Functions must fit before the function's own timeout.
LAMBDA_RESERVE_SECONDS = 20.0
# Redshift's default database, used when the deployment names none.
DEFAULT_DATABASE = "dev"


@dataclass(frozen=True)
class WarehouseTarget:
    """Where statements run: a Serverless workgroup or a provisioned cluster."""

    database: str
    workgroup: Optional[str] = None
    cluster_id: Optional[str] = None
    secret_arn: Optional[str] = None
    db_user: Optional[str] = None

    def __post_init__(self) -> None:
        if bool(self.workgroup) == bool(self.cluster_id):
            raise ValueError("set exactly one of a Redshift workgroup or a cluster id")

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> WarehouseTarget:
        """Read the target from a function's ``REDSHIFT_*`` environment variables."""
        return cls(
            database=values.get(Env.DATABASE) or DEFAULT_DATABASE,
            workgroup=values.get(Env.WORKGROUP) or None,
            cluster_id=values.get(Env.CLUSTER_ID) or None,
            secret_arn=values.get(Env.SECRET_ARN) or None,
            db_user=values.get(Env.DB_USER) or None,
        )

    @classmethod
    def from_environment(cls) -> WarehouseTarget:
        return cls.from_mapping(os.environ)

    def as_user_of_secret(self, secret_arn: str) -> WarehouseTarget:
        """The same warehouse, signed in as the user whose credentials ``secret_arn`` holds."""
        return replace(self, secret_arn=secret_arn, db_user=None)

    def request_fields(self) -> dict[str, str]:
        """The Data API fields naming this target and its credentials."""
        fields = {"Database": self.database}
        if self.workgroup:
            fields["WorkgroupName"] = self.workgroup
        if self.cluster_id:
            fields["ClusterIdentifier"] = self.cluster_id
        if self.secret_arn:
            fields["SecretArn"] = self.secret_arn
        elif self.db_user:
            fields["DbUser"] = self.db_user
        return fields


class DataApiWarehouse:
    """The warehouse port over a ``redshift-data`` client."""

    def __init__(
        self,
        client: RedshiftDataApi,
        target: WarehouseTarget,
        *,
        poll_interval: float = 0.25,
        max_poll_interval: float = 2.0,
        timeout: float = 900.0,
        deadline: Optional[float] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``timeout`` bounds the wait for one statement; ``deadline`` (a ``time.monotonic()``
        instant) bounds every wait of this adapter, e.g. a Lambda's remaining time."""
        self._client = client
        self._target = target
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._timeout = timeout
        self._deadline = deadline
        self._sleep = sleep

    @classmethod
    def within_lambda(
        cls,
        client: RedshiftDataApi,
        target: WarehouseTarget,
        context: Any,
        *,
        reserve_seconds: float = LAMBDA_RESERVE_SECONDS,
        **kwargs: Any,
    ) -> DataApiWarehouse:
        """An adapter whose waits end ``reserve_seconds`` before the Lambda's own timeout.

        A statement still running then is cancelled and reported as a StatementError the
        state machine sees, instead of the function being killed mid-poll with the
        statement left running (the Lambda context's remaining time:
        https://docs.aws.amazon.com/lambda/latest/dg/python-context.html).
        """
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        deadline = None
        if callable(remaining):
            deadline = time.monotonic() + max(remaining() / 1000.0 - reserve_seconds, 1.0)
        return cls(client, target, deadline=deadline, **kwargs)

    def query(self, sql: str) -> list[Row]:
        response = self._call("execute_statement", Sql=sql, **self._target.request_fields())
        statement = self._wait(response["Id"])
        if not statement.get("HasResultSet"):
            return []
        return self._fetch_rows(response["Id"])

    def execute_batch(self, statements: Sequence[str]) -> None:
        if not statements:
            return
        response = self._call(
            "batch_execute_statement", Sqls=list(statements), **self._target.request_fields()
        )
        self._wait(response["Id"])

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if is_throttling(error):
                raise WarehouseThrottledError(f"{operation}: {error}") from error
            raise

    def _wait(self, statement_id: str) -> dict[str, Any]:
        """Poll until the statement is FINISHED, FAILED or ABORTED (all three end it)."""
        deadline = time.monotonic() + self._timeout
        limit = f"{self._timeout:.0f}s"
        if self._deadline is not None and self._deadline < deadline:
            deadline, limit = self._deadline, "the time left to the caller"
        interval = self._poll_interval
        while True:
            statement = self._call("describe_statement", Id=statement_id)
            status = statement["Status"]
            if status == "FINISHED":
                return statement
            if status in _TERMINAL_STATES:
                raise StatementError(_failure_message(statement))
            if time.monotonic() > deadline:
                self._call("cancel_statement", Id=statement_id)
                raise StatementTimeoutError(
                    f"statement {statement_id} still {status} at the end of {limit}; cancelled"
                )
            self._sleep(interval)
            interval = min(interval * 2, self._max_poll_interval)

    def _fetch_rows(self, statement_id: str) -> list[Row]:
        rows: list[Row] = []
        kwargs: dict[str, Any] = {"Id": statement_id}
        while True:
            page = self._call("get_statement_result", **kwargs)
            names = [column["name"] for column in page["ColumnMetadata"]]
            rows.extend(dict(zip(names, map(_field_value, record))) for record in page["Records"])
            token = page.get("NextToken")
            if not token:
                return rows
            kwargs["NextToken"] = token


def _field_value(field: Mapping[str, Any]) -> Any:
    """The Python value of one Data API result field."""
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue", "blobValue"):
        if key in field:
            return field[key]
    return None


def _failure_message(statement: Mapping[str, Any]) -> str:
    status = statement["Status"]
    error = statement.get("Error") or "no error message"
    failed = [
        sub.get("QueryString", "")
        for sub in statement.get("SubStatements", [])
        if sub.get("Status") in ("FAILED", "ABORTED")
    ]
    where = f" in: {failed[0][:200]}" if failed else ""
    return f"statement {status}: {error}{where}"
