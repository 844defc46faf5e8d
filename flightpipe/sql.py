"""The project's SQL files and safe rendering of them.

``sql/`` at the repository root is the only copy of the SQL. In a checkout and in
the Lambda package it sits beside this package; in the Glue wheel it is shipped
inside the package as ``flightpipe/_sql``. Values are substituted as quoted SQL
literals, never as raw text, so object keys with quotes, backslashes or non-ASCII
characters cannot change a statement.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path
from string import Template
from typing import Union

SqlValue = Union[str, int, float, bool, None, dt.date, dt.datetime]

_PACKAGE_DIR = Path(__file__).resolve().parent
_SQL_DIRS = (_PACKAGE_DIR / "_sql", _PACKAGE_DIR.parent / "sql")
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?$", re.MULTILINE)


def sql_dir() -> Path:
    """The directory holding the project's SQL files."""
    for candidate in _SQL_DIRS:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory found in {[str(d) for d in _SQL_DIRS]}")


@cache
def read_sql(name: str) -> str:
    """The text of ``sql/<name>``."""
    return (sql_dir() / name).read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    """Split a SQL file into statements at semicolons that end a line.

    Comment-only fragments are dropped. Splitting happens before values are
    substituted, so a semicolon inside a value can never split a statement.
    """
    statements = []
    for chunk in _STATEMENT_END.split(text):
        code = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if code:
            statements.append(code)
    return statements


def quote_literal(value: SqlValue) -> str:
    """Render ``value`` as a SQL literal that is safe in Redshift and PostgreSQL.

    Redshift treats a backslash in a string literal as an escape character, so
    both quotes and backslashes are doubled (the local stand-in runs with
    ``standard_conforming_strings = off`` to read them the same way).
    NUL characters cannot be stored and are rejected.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    text = str(value)
    if "\x00" in text:
        raise ValueError("a SQL string literal cannot contain a NUL character")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def render_statements(name: str, **values: SqlValue) -> list[str]:
    """The statements of ``sql/<name>`` with ``${value}`` placeholders filled as literals."""
    quoted = {key: quote_literal(value) for key, value in values.items()}
    statements = split_statements(read_sql(name))
    return [Template(statement).substitute(quoted) for statement in statements]
