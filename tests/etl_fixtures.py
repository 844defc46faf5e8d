"""Helpers shared by the ETL job tests: airports in the warehouse, running the job on a file."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Optional

from conftest import TEST_BUCKET

from flightpipe.etl.job import run_job
from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.summary import JobSummary
from flightpipe.sql import render_statements
from flightpipe.warehouse.setup import write_airports_manifest

BUCKET = TEST_BUCKET
COPY_ROLE = "arn:aws:iam::123456789012:role/flightpipe-copy"
DIM_BUCKET = "flightpipe-test-dimensions"
# What a summary counts: equal for two loads of the same rows, whatever wrapped or read them.
SUMMARY_COUNTS = (
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "blank_lines",
    "unmatched_airport_rows",
    "unknown_airport_ids",
    "rejects_by_reason",
    "layout",
)


def load_airports(warehouse: Any, object_store: Any, airports_csv: Path) -> None:
    """Load the airports dimension with the project's own manifest and COPY statements."""
    key = "dimensions/airports.csv"
    object_store.put_object(Bucket=DIM_BUCKET, Key=key, Body=airports_csv.read_bytes())
    manifest_uri = write_airports_manifest(object_store, DIM_BUCKET, key)
    warehouse.execute_batch(
        render_statements(
            "load_airports.sql",
            manifest_uri=manifest_uri,
            source_uri=f"s3://{DIM_BUCKET}/{key}",
            source_version="v1",
            iam_role=COPY_ROLE,
        )
    )


def run_on(
    s3: Any,
    warehouse: Any,
    key: str,
    body: bytes,
    threshold: Optional[str] = None,
    engine: Any = None,
    **extra: str,
) -> JobSummary:
    """Upload ``body`` as ``key`` and run the job on it."""
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return run_version(s3, warehouse, key, put, threshold, engine, **extra)


def run_version(
    s3: Any,
    warehouse: Any,
    key: str,
    put: dict[str, Any],
    threshold: Optional[str] = None,
    engine: Any = None,
    **extra: str,
) -> JobSummary:
    """Run the job on the version of ``key`` that ``put`` (a PutObject response) wrote."""
    values = {
        "bucket": BUCKET,
        "key": key,
        "etag": put["ETag"].strip('"'),
        "execution_id": "arn:aws:states:us-east-1:123456789012:execution:pipeline:run-1",
        "copy_role_arn": COPY_ROLE,
        "summary_key": "reports/run-1.json",
        **extra,
    }
    if put.get("VersionId"):
        values.setdefault("version_id", put["VersionId"])
    if threshold is not None:
        values["reject_threshold"] = threshold
    args = JobArgs.from_mapping(values)
    return run_job(args, s3, warehouse, engine=engine, block_bytes=64 << 10)


def facts(warehouse: Any, source_file: Optional[str] = None) -> list[dict]:
    where = "" if source_file is None else f" WHERE source_file = '{source_file}'"
    return warehouse.query(
        "SELECT carrier, dep_airport_id, arr_airport_id, dep_airport, dep_city, dep_state, "
        "arr_airport, arr_city, arr_state, dep_delay, arr_delay, flight_date, source_file, "
        f"load_id FROM airlines.daily_flights_fact{where} ORDER BY load_id, carrier, "
        "dep_airport_id, arr_airport_id, dep_delay, arr_delay"
    )


def ledger(warehouse: Any) -> list[dict]:
    return warehouse.query("SELECT * FROM airlines.load_ledger ORDER BY started_at, finished_at")


def read_object(s3: Any, key: str, bucket: str = BUCKET) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def rejects_rows(s3: Any, uri: str) -> list[list[str]]:
    key = uri.split("/", 3)[3]
    return list(csv.reader(io.StringIO(read_object(s3, key).decode("utf-8"))))


class RewritingWarehouse:
    """The warehouse port with every batch passed through ``rewrite`` first.

    Tests inject faults with it: ``rewrite`` may change the statements or raise.
    """

    def __init__(self, inner: Any, rewrite: Callable[[list], list]) -> None:
        self.inner = inner
        self.rewrite = rewrite

    def query(self, sql: str) -> list:
        return self.inner.query(sql)

    def execute_batch(self, statements: Any) -> None:
        self.inner.execute_batch(self.rewrite(list(statements)))
