"""Preparing the warehouse before a load: schema DDL and the airports dimension.

Runs at the start of every execution, so it must be cheap when nothing changed
and safe when several uploads start at once: the DDL is idempotent (and retried
when concurrent executions race to create the same table), and the airports
reload takes a table lock so two reloads can never interleave.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from botocore.exceptions import ClientError

from flightpipe.retryable import raise_if_throttled
from flightpipe.sql import read_sql, render_statements, split_statements
from flightpipe.warehouse.port import StatementError, Warehouse

DDL_ATTEMPTS = 3


class AirportsDimensionMissingError(RuntimeError):
    """The airports file is not in the bucket, so flights cannot be enriched."""


def apply_schema(
    warehouse: Warehouse,
    *,
    attempts: int = DDL_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the schema and tables if they do not exist.

    Concurrent ``CREATE … IF NOT EXISTS`` can still collide in the catalog;
    the statements are idempotent, so a failed attempt is simply run again.
    """
    statements = split_statements(read_sql("schema.sql"))
    for attempt in range(1, attempts + 1):
        try:
            warehouse.execute_batch(statements)
            return
        except StatementError:
            if attempt == attempts:
                raise
            sleep(0.5 * attempt)


def airports_source_version(s3: Any, bucket: str, key: str) -> str:
    """The version of the airports object: its version id when versioned, else its ETag."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise AirportsDimensionMissingError(
                f"s3://{bucket}/{key} does not exist: upload the airports CSV "
                "(airport_id,city,state,name) there before loading flights"
            ) from error
        raise_if_throttled(error)
        raise
    return head.get("VersionId") or head["ETag"].strip('"')


def loaded_airports_version(warehouse: Warehouse) -> Optional[str]:
    """The source version of the loaded airports, or None when the table is empty or unknown."""
    rows = warehouse.query(read_sql("airports_loaded_version.sql"))
    if not rows or not rows[0]["row_count"]:
        return None
    return rows[0]["source_version"]


def prepare_warehouse(
    warehouse: Warehouse, s3: Any, *, bucket: str, airports_key: str, copy_role_arn: str
) -> dict[str, Any]:
    """Apply the DDL and (re)load ``airlines.airports_dim`` when it is empty or stale."""
    apply_schema(warehouse)
    version = airports_source_version(s3, bucket, airports_key)
    reloaded = loaded_airports_version(warehouse) != version
    if reloaded:
        warehouse.execute_batch(
            render_statements(
                "load_airports.sql",
                source_uri=f"s3://{bucket}/{airports_key}",
                source_version=version,
                iam_role=copy_role_arn,
            )
        )
    rows = warehouse.query("SELECT COUNT(*) AS row_count FROM airlines.airports_dim")
    return {
        "schema": "ready",
        "airports": {
            "reloaded": reloaded,
            "rows": int(rows[0]["row_count"]),
            "source_version": version,
        },
    }
