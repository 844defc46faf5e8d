"""The warehouse as the operations commands reach it: through the Redshift Data API with
the ETL job's own target and sign-in, or through a direct ``redshift_connector`` session."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, Optional, Protocol

from flightpipe.ops.target import Target
from flightpipe.sql import SqlValue, render_statements
from flightpipe.warehouse.data_api import DataApiWarehouse
from flightpipe.warehouse.port import Row, StatementError


class Queryable(Protocol):
    """What reading commands need of the warehouse: one statement, its rows."""

    def query(self, sql: str) -> list[Row]: ...


def data_api_warehouse(target: Target) -> DataApiWarehouse:
    return DataApiWarehouse(target.client("redshift-data"), target.warehouse_target(), timeout=300)


def query_file(warehouse: Queryable, name: str, **values: SqlValue) -> list[Row]:
    """The rows of the single statement in ``sql/<name>``, its placeholders filled as literals."""
    (statement,) = render_statements(name, **values)
    return warehouse.query(statement)


def query_ledger(warehouse: Queryable, name: str, **values: SqlValue) -> list[Row]:
    """Like :func:`query_file` for the pipeline's own tables, which the first execution
    creates: before it, there are no runs to read, not an error."""
    try:
        return query_file(warehouse, name, **values)
    except StatementError as error:
        if "does not exist" in str(error):
            return []
        raise


class DirectSession:
    """A ``redshift_connector`` session (host, port, user) serving :meth:`query`.

    One connection for the command; each query commits or rolls back on its own.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        database: str,
        password: str = "",
        ssl: bool = True,
    ) -> None:
        import redshift_connector

        self._connection = redshift_connector.connect(
            host=host, port=port, user=user, password=password, database=database, ssl=ssl
        )

    def query(self, sql: str) -> list[Row]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            columns = [column[0] for column in cursor.description or ()]
            rows = cursor.fetchall() if columns else ()
            self._connection.commit()
        except Exception:
            self._connection.rollback()
            raise
        finally:
            cursor.close()
        return [dict(zip(columns, (plain(value) for value in row))) for row in rows]

    def close(self) -> None:
        self._connection.close()


def plain(value: Any) -> Any:
    """A value as JSON holds it: dates as ISO text, decimals as numbers."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def optional_int(value: Optional[Any]) -> int:
    return int(value) if value not in (None, "") else 0
