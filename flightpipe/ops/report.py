"""``flightpipe report``: named reports over the fact table, and read-only ad-hoc SQL.

The reports are SQL files (``sql/report_<name>.sql``) with the date range as literals.
``--sql`` takes one read-only statement: the check here keeps a typo from changing the
warehouse; it is not a permission boundary (give report users a read-only database user).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from flightpipe.ops.warehouse import Queryable, plain, query_file
from flightpipe.sql import split_statements
from flightpipe.warehouse.port import Row

REPORTS = {
    "carriers": "flights, mean and p90 arrival delay, share delayed > 15 min, by carrier",
    "routes": "the worst routes by mean arrival delay, with airport names",
    "states": "flights and delays by departure state",
    "daily": "day by day: flights, carriers, delays",
}
_READ_ONLY_START = re.compile(r"^\s*(SELECT|WITH|SHOW|EXPLAIN|VALUES)\b", re.IGNORECASE)
_WRITES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|GRANT|REVOKE|COPY|UNLOAD|"
    r"VACUUM|ANALYZE|CALL|LOCK|COMMIT|ROLLBACK|BEGIN|SET|RESET)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"")


class ReportError(ValueError):
    """The report or query asked for cannot run."""


def named_report(
    warehouse: Queryable, name: str, date_from: Optional[dt.date], date_to: Optional[dt.date]
) -> list[Row]:
    if name not in REPORTS:
        raise ReportError(f"no report {name!r}; reports: {', '.join(REPORTS)}")
    rows = query_file(warehouse, f"report_{name}.sql", date_from=date_from, date_to=date_to)
    return [{column: plain(value) for column, value in row.items()} for row in rows]


def read_only_statement(sql: str) -> str:
    """The one statement of ``sql`` if it only reads; ReportError otherwise."""
    statements = split_statements(sql.strip().rstrip(";") + ";")
    if len(statements) != 1 or ";" in _QUOTED.sub("''", statements[0]):
        raise ReportError("--sql takes exactly one statement")
    statement = statements[0]
    unquoted = _QUOTED.sub("''", statement)
    if not _READ_ONLY_START.match(unquoted) or _WRITES.search(unquoted):
        raise ReportError("--sql runs read-only queries only (SELECT, WITH ... SELECT, SHOW)")
    return statement


def ad_hoc(warehouse: Queryable, sql: str) -> list[Row]:
    rows = warehouse.query(read_only_statement(sql))
    return [{column: plain(value) for column, value in row.items()} for row in rows]
