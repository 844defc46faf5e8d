"""Where the stand-in must behave as Redshift does, and the production code with it.

- ``CHAR``/``VARCHAR`` limits count bytes, not characters: the stand-in rejects a
  value too long in bytes; the job rejects such a carrier as one bad row instead
  of failing the load; the ledger stores a long multibyte error cut to its column.
- Loads run under snapshot isolation (Redshift's default): two loads that replace
  the same rows really conflict, the loser fails with Redshift's 1023 error text,
  and the load path's retry makes both succeed without duplicating a row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from etl_fixtures import BUCKET, facts, ledger, load_airports, rejects_rows, run_on

from flightpipe.etl import loader
from flightpipe.warehouse import DataApiWarehouse, StatementError, WarehouseTarget
from flightpipe_local import moto_redshift_data
from flightpipe_local._patching import PatchSet
from flightpipe_local.redshift_standin import StandInSqlError, enforce_byte_lengths

pytestmark = pytest.mark.warehouse

HEADER = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
WORKGROUP = "flightpipe-fidelity"
# https://aws.amazon.com/premiumsupport/knowledge-center/redshift-serializable-isolation/
REDSHIFT_CONFLICT = re.compile(
    r"1023 DETAIL: Serializable isolation violation on table - \d+, "
    r"transactions forming the cycle are: \d+, \d+ \(pid:\d+\)"
)


# --- VARCHAR(n) counts bytes -------------------------------------------------------------


def test_create_table_gives_char_and_varchar_columns_a_byte_check():
    ddl = enforce_byte_lengths(
        'CREATE TEMP TABLE t (a VARCHAR(5) NOT NULL, "B c" CHAR(2), n INT, m VARCHAR(MAX))'
    )
    assert "a VARCHAR(5) CONSTRAINT bytes_5_varchar_a CHECK (octet_length(a) <= 5) NOT NULL" in ddl
    assert '"B c" CHAR(2) CONSTRAINT bytes_2_char_b_c CHECK (octet_length("B c") <= 2)' in ddl
    assert "m VARCHAR(65535) CONSTRAINT bytes_65535_varchar_m" in ddl
    assert "n INT," in ddl
    select = "SELECT CAST(x AS VARCHAR(5)) FROM t"
    assert enforce_byte_lengths(select) == select


def test_a_value_too_long_in_bytes_fails_as_in_redshift(redshift_standin):
    create = "CREATE TEMP TABLE narrow (c VARCHAR(5), f CHAR(5))"
    # 'ÉÉÉÉÉ' is 5 characters (fits PostgreSQL's VARCHAR(5)) but 10 bytes (not Redshift's).
    with pytest.raises(StandInSqlError, match=r"value too long for type character varying\(5\)"):
        redshift_standin.execute_batch([create, "INSERT INTO narrow (c) VALUES ('ÉÉÉÉÉ')"])
    # CHAR holds single-byte characters only: a padded 'É' is 6 bytes.
    with pytest.raises(StandInSqlError, match=r"value too long for type character\(5\)"):
        redshift_standin.execute_batch([create, "INSERT INTO narrow (f) VALUES ('É')"])
    fits = redshift_standin.execute_batch(
        [create, "INSERT INTO narrow VALUES ('ÉÉa', 'abc')", "SELECT c FROM narrow"]
    )
    assert fits[-1].rows == [("ÉÉa",)]


def test_copy_of_a_value_too_long_in_bytes_fails_the_load(redshift_standin, object_store):
    object_store.put_object(Bucket="data", Key="narrow.csv", Body="AA\nÉÉÉÉÉ\n".encode())
    with pytest.raises(StandInSqlError) as failure:
        redshift_standin.execute_batch(
            [
                "CREATE TEMP TABLE narrow (c VARCHAR(5))",
                "COPY narrow FROM 's3://data/narrow.csv' IAM_ROLE DEFAULT CSV",
            ]
        )
    assert failure.value.statement_index == 1
    message = str(failure.value)
    assert message.startswith("Load into table 'narrow' failed: value too long for type")
    assert "line 2" in message


def test_every_character_column_of_the_project_schema_is_checked_in_bytes(warehouse):
    rows = warehouse.query(
        "SELECT c.relname AS table_name, a.attname AS column_name, "
        "(SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid "
        " AND k.conname LIKE 'bytes\\_%%' AND a.attnum = ANY (k.conkey)) AS checks "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'airlines' AND c.relkind = 'r' AND a.attnum > 0 "
        "AND a.atttypid = 'varchar'::regtype"
    )
    assert len(rows) >= 20
    assert [r for r in rows if r["checks"] != 1] == []


@pytest.fixture
def airports(warehouse, object_store, shared_data, s3):
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    return warehouse, s3


def test_a_carrier_too_long_in_bytes_rejects_its_row_and_the_rest_loads(airports):
    warehouse, s3 = airports
    body = HEADER + "DL,11433,13303,1,2\nÉÉÉÉÉ,11433,13303,3,4\nÉÉÉÉ,11433,13303,5,6\n".encode()
    summary = run_on(s3, warehouse, "incoming/bytes.csv", body, threshold="0.5")
    assert summary.status == "LOADED", summary.error
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (3, 2, 1)
    assert sorted(r["carrier"] for r in facts(warehouse)) == ["DL", "ÉÉÉÉ"]
    [_, rejected] = rejects_rows(s3, summary.rejects_uri)
    assert "ÉÉÉÉÉ" in ",".join(rejected)
    assert any(
        "'ÉÉÉÉÉ' is 10 bytes long (5 characters), more than the 8 bytes" in field
        for field in rejected
    )


def test_a_long_multibyte_error_is_stored_cut_to_the_ledger_column(warehouse):
    attempt = loader.LoadAttempt(
        "long-error", "s3://b/incoming/x.csv", None, dt.datetime(2024, 1, 2), None, 3, 3, 0
    )
    error = "Zürich ✈ 東京: " + "é" * 5000  # 10,000+ bytes of UTF-8, 5,000+ characters
    loader.record_unloaded_attempt(warehouse, attempt, loader.FAILED, error)
    [entry] = ledger(warehouse)
    stored = entry["error"]
    assert len(stored.encode("utf-8")) <= loader.ERROR_MAX_BYTES
    assert len(stored.encode("utf-8")) > loader.ERROR_MAX_BYTES - 4  # cut at a character
    assert stored.startswith("Zürich ✈ 東京: éé") and stored.endswith("…[truncated]")
    assert (entry["status"], entry["rows_rejected"]) == ("FAILED", 3)


# --- Snapshot isolation: real conflicts ---------------------------------------------------


@contextlib.contextmanager
def writes_held(standin: Any, table: str) -> Iterator[None]:
    """Hold back every write to ``table`` (readers and snapshots go on) until the block ends.

    Transactions that reach a write wait with their snapshot already taken, so
    releasing them together makes them really concurrent.
    """
    with standin.connect() as connection:
        connection.execute(f"LOCK TABLE {table} IN SHARE MODE")
        yield
        connection.commit()


def wait_for_writers(standin: Any, table: str, count: int, timeout: float = 60.0) -> None:
    """Wait until ``count`` sessions are queued for a write lock on ``table``."""
    deadline = time.monotonic() + timeout
    with standin.connect() as connection:
        connection.autocommit = True
        while True:
            waiting = connection.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                (table,),
            ).fetchone()[0]
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"{waiting} of {count} writers arrived"
            time.sleep(0.05)


def _in_threads(*calls: Any) -> list:
    """Run each call in its own thread; their results (or exceptions), in order."""
    outcomes: list = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        try:
            outcomes[index] = call()
        except Exception as error:  # reported to the test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    return [outcomes, threads]


def _joined(started: list) -> list:
    outcomes, threads = started
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    return outcomes


@pytest.fixture
def keyed(redshift_standin):
    redshift_standin.execute_batch(
        [
            "CREATE TABLE IF NOT EXISTS public.keyed (k INT, v VARCHAR(16))",
            "TRUNCATE public.keyed",
            "INSERT INTO public.keyed VALUES (1, 'old'), (2, 'old')",
        ]
    )
    return redshift_standin


def _replace(standin: Any, key: int, value: str) -> Any:
    return lambda: standin.execute_batch(
        [
            f"DELETE FROM public.keyed WHERE k = {key}",
            f"INSERT INTO public.keyed VALUES ({key}, '{value}')",
        ]
    )


def test_two_transactions_replacing_the_same_rows_conflict_with_redshifts_error(keyed):
    assert keyed.isolation == "snapshot"
    with writes_held(keyed, "public.keyed"):
        started = _in_threads(_replace(keyed, 1, "first"), _replace(keyed, 1, "second"))
        wait_for_writers(keyed, "public.keyed", 2)
    outcomes = _joined(started)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failures) == 1, outcomes
    assert isinstance(failures[0], StandInSqlError)
    assert REDSHIFT_CONFLICT.fullmatch(str(failures[0])), str(failures[0])
    assert failures[0].statement_index == 0
    table_id = keyed.query("SELECT 'public.keyed'::regclass::oid").rows[0][0]
    assert f"on table - {table_id}," in str(failures[0])
    rows = keyed.query("SELECT k, v FROM public.keyed ORDER BY k").rows
    assert len(rows) == 2 and rows[0][1] in ("first", "second")  # no duplicate, nothing lost


def test_concurrent_writes_to_different_rows_of_a_table_both_commit(keyed):
    # Snapshot isolation lets concurrent transactions modify different rows of one table:
    # https://aws.amazon.com/about-aws/whats-new/2022/05/amazon-redshift-snapshot-isolation-level-support-concurrent-transactions/
    with writes_held(keyed, "public.keyed"):
        started = _in_threads(_replace(keyed, 1, "one"), _replace(keyed, 2, "two"))
        wait_for_writers(keyed, "public.keyed", 2)
    assert [not isinstance(o, Exception) for o in _joined(started)] == [True, True]
    assert keyed.query("SELECT k, v FROM public.keyed ORDER BY k").rows == [(1, "one"), (2, "two")]


class RecordingWarehouse:
    """The warehouse port, remembering the errors its batches failed with."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.errors: list[str] = []

    def query(self, sql: str) -> list:
        return self.inner.query(sql)

    def execute_batch(self, statements: Any) -> None:
        try:
            self.inner.execute_batch(statements)
        except StatementError as error:
            self.errors.append(str(error))
            raise


@pytest.fixture
def data_api_warehouse(redshift_standin, warehouse, s3):
    """The production Data API adapter, served by the emulator's Data API on the stand-in."""
    import boto3

    api = moto_redshift_data.LocalDataApi(redshift_standin, workgroups=[WORKGROUP])
    patches = PatchSet()
    moto_redshift_data.install(patches, api)
    client = boto3.client("redshift-data", region_name="us-east-1")
    try:
        yield DataApiWarehouse(
            client, WarehouseTarget(database="dev", workgroup=WORKGROUP), poll_interval=0.05
        )
    finally:
        patches.restore()
        api.close()


@pytest.mark.parametrize("reload", [False, True], ids=["first-load", "reload"])
def test_concurrent_loads_of_one_file_wait_for_each_other_and_leave_one_copy(
    redshift_standin, object_store, shared_data, s3, data_api_warehouse, reload
):
    """Two uploads of one file at once: the load's LOCK makes the second wait, then replace.

    Without it, snapshot isolation lets two first loads of a new file both delete nothing
    and both insert (a duplicate), and two reloads conflict (1023) and need the retry.
    """
    load_airports(data_api_warehouse, object_store, shared_data / "airports.csv")
    # Each upload is a new object version (the deployed bucket is versioned); the same
    # version delivered twice is a duplicate instead (tests/test_etl_load_sql.py).
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    body = (shared_data / "sample_flights.csv").read_bytes()
    key = f"incoming/same-{'reload' if reload else 'new'}.csv"
    source_file = f"s3://{BUCKET}/{key}"
    if reload:
        first = run_on(s3, data_api_warehouse, key, body)
        assert first.status == "LOADED" and len(facts(data_api_warehouse, source_file)) == 13

    recorder = RecordingWarehouse(data_api_warehouse)
    with writes_held(redshift_standin, "airlines.daily_flights_fact"):
        # Both loads queue at their LOCK before taking a snapshot; released together.
        started = _in_threads(
            lambda: run_on(s3, recorder, key, body), lambda: run_on(s3, recorder, key, body)
        )
        wait_for_writers(redshift_standin, "airlines.daily_flights_fact", 2)
    summaries = _joined(started)

    assert [getattr(s, "status", s) for s in summaries] == ["LOADED", "LOADED"]
    assert recorder.errors == []  # they ran one after the other: nothing to conflict
    rows = facts(data_api_warehouse, source_file)
    assert len(rows) == 13  # one copy of the file: no duplicate, nothing lost
    assert len({r["load_id"] for r in rows}) == 1
    entries = [e for e in ledger(data_api_warehouse) if e["source_file"] == source_file]
    assert [e["status"] for e in entries] == ["LOADED"] * (3 if reload else 2)
    assert {e["rows_loaded"] for e in entries} == {13}
