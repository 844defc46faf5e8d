"""sql/load_flights.sql on the PostgreSQL stand-in: join, replace, rollback, ledger, keys."""

from __future__ import annotations

import pytest
from etl_fixtures import BUCKET, RewritingWarehouse, facts, ledger, load_airports, run_on

from flightpipe.warehouse.port import StatementError

pytestmark = pytest.mark.warehouse
HEADER = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"


@pytest.fixture
def loaded(warehouse, object_store, shared_data, s3):
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    return warehouse, s3


def test_both_airports_are_joined_and_unknown_ids_keep_null_names(loaded):
    warehouse, s3 = loaded
    # 13930 is Chicago O'Hare (an apostrophe in the name); 99999 is unknown.
    summary = run_on(
        s3, warehouse, "incoming/join.csv", HEADER + b"UA,13930,11298,5,6\nUA,99999,13930,,1\n"
    )
    rows = {r["dep_airport_id"]: r for r in facts(warehouse)}
    ohare = warehouse.query(
        "SELECT name, city, state FROM airlines.airports_dim WHERE airport_id = 13930"
    )[0]
    dfw = warehouse.query(
        "SELECT name, city, state FROM airlines.airports_dim WHERE airport_id = 11298"
    )[0]
    assert "'" in ohare["name"]
    first = rows[13930]
    assert (first["dep_airport"], first["dep_city"], first["dep_state"]) == (
        ohare["name"],
        ohare["city"],
        ohare["state"],
    )
    assert (first["arr_airport"], first["arr_city"], first["arr_state"]) == (
        dfw["name"],
        dfw["city"],
        dfw["state"],
    )
    second = rows[99999]
    assert (second["dep_airport"], second["dep_city"], second["dep_state"]) == (None, None, None)
    assert second["arr_airport"] == ohare["name"] and second["dep_delay"] is None
    assert summary.unmatched_airport_rows == 1 and summary.unknown_airport_ids == [99999]


def test_loading_the_same_key_twice_keeps_one_copy(loaded, shared_data):
    warehouse, s3 = loaded
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    body = (shared_data / "sample_flights.csv").read_bytes()
    first = run_on(s3, warehouse, "incoming/sample.csv", body)
    second = run_on(s3, warehouse, "incoming/sample.csv", body)  # a new version: replaces
    assert first.source_version != second.source_version
    rows = facts(warehouse)
    assert len(rows) == 13 and {r["load_id"] for r in rows} == {second.load_id}
    assert [(e["load_id"], e["status"]) for e in ledger(warehouse)] == [
        (first.load_id, "LOADED"),
        (second.load_id, "LOADED"),
    ]


def test_a_version_delivered_twice_is_a_recorded_duplicate_and_changes_nothing(loaded, shared_data):
    warehouse, s3 = loaded
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    body = (shared_data / "sample_flights.csv").read_bytes()
    first = run_on(s3, warehouse, "incoming/twice.csv", body)
    again = run_on(s3, warehouse, "incoming/twice.csv", body, version_id=first.source_version or "")
    assert (first.status, again.status, again.rows_loaded) == ("LOADED", "DUPLICATE", 0)
    assert "DuplicateDelivery" in (again.error or "")
    rows = facts(warehouse, f"s3://{BUCKET}/incoming/twice.csv")
    assert len(rows) == 13 and {r["load_id"] for r in rows} == {first.load_id}
    entries = [e for e in ledger(warehouse) if e["source_file"].endswith("twice.csv")]
    assert [(e["status"], e["rows_loaded"]) for e in entries] == [("LOADED", 13), ("DUPLICATE", 0)]


def test_a_corrected_file_replaces_the_rows_of_the_bad_one_and_other_files_stay(loaded):
    warehouse, s3 = loaded
    run_on(s3, warehouse, "incoming/other.csv", HEADER + b"AA,11298,13930,0,0\n")
    bad = HEADER + b"DL,11433,13303,1,2\nDL,11433,13303,oops,2\nDL,11433,13303,3,4\n"
    assert run_on(s3, warehouse, "incoming/day.csv", bad, threshold="0.5").rows_loaded == 2
    fixed = HEADER + b"DL,11433,13303,1,2\nDL,11433,13303,2,2\nDL,11433,13303,3,4\n"
    assert run_on(s3, warehouse, "incoming/day.csv", fixed).rows_loaded == 3
    day = facts(warehouse, "s3://flightpipe-test-data/incoming/day.csv")
    assert [(r["dep_delay"], r["arr_delay"]) for r in day] == [(1, 2), (2, 2), (3, 4)]
    assert len(facts(warehouse, "s3://flightpipe-test-data/incoming/other.csv")) == 1


def _fail_between_delete_and_insert(statements: list) -> list:
    """Inject a failing statement right after the batch's DELETE of the file's rows."""
    for index, statement in enumerate(statements):
        if statement.startswith("DELETE FROM airlines.daily_flights_fact"):
            return [*statements[: index + 1], "SELECT 1 / 0", *statements[index + 1 :]]
    return statements


def test_a_failure_between_delete_and_insert_leaves_the_fact_table_unchanged(loaded, shared_data):
    warehouse, s3 = loaded
    body = (shared_data / "sample_flights.csv").read_bytes()
    good = run_on(s3, warehouse, "incoming/sample.csv", body)
    before = facts(warehouse)
    failed = run_on(
        s3,
        RewritingWarehouse(warehouse, _fail_between_delete_and_insert),
        "incoming/sample.csv",
        body,
    )
    assert failed.status == "FAILED" and "division by zero" in failed.error
    assert facts(warehouse) == before and {r["load_id"] for r in before} == {good.load_id}
    entries = ledger(warehouse)
    assert [e["status"] for e in entries] == ["LOADED", "FAILED"]
    assert "division by zero" in entries[1]["error"] and entries[1]["rows_loaded"] == 0


def test_ledger_rows_carry_counts_version_execution_and_times(loaded, shared_data):
    warehouse, s3 = loaded
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    body = (shared_data / "bts_ontime_2023_01_OK.csv").read_bytes()
    summary = run_on(s3, warehouse, "incoming/bts.csv", body)
    [entry] = ledger(warehouse)
    assert entry["load_id"] == summary.load_id
    assert entry["source_file"] == "s3://flightpipe-test-data/incoming/bts.csv"
    version = s3.head_object(Bucket=BUCKET, Key="incoming/bts.csv")["VersionId"]
    assert entry["source_version"] == summary.source_version == version
    assert entry["execution_id"].endswith(":execution:pipeline:run-1")
    assert (entry["rows_read"], entry["rows_loaded"], entry["rows_rejected"]) == (6068, 6068, 0)
    assert entry["unmatched_airport_rows"] == summary.unmatched_airport_rows
    assert entry["error"] is None and entry["started_at"] <= entry["finished_at"]


@pytest.mark.parametrize(
    "key",
    [
        "incoming/O'Hare day 1.csv",
        "incoming/a\\'; DROP TABLE x; --.csv",
        "incoming/zürich ✈ 東京.csv",
    ],
)
def test_keys_with_quotes_spaces_and_non_ascii_load_and_reload_safely(loaded, key):
    warehouse, s3 = loaded
    body = HEADER + b"DL,11433,13303,1,2\n"
    run_on(s3, warehouse, key, body)
    run_on(s3, warehouse, key, body)
    rows = facts(warehouse)
    assert [r["source_file"] for r in rows] == [f"s3://flightpipe-test-data/{key}"]
    assert [e["source_file"] for e in ledger(warehouse)] == [f"s3://flightpipe-test-data/{key}"] * 2


def test_a_load_that_loses_a_serialization_conflict_is_run_again(loaded, shared_data):
    warehouse, s3 = loaded
    conflicts = []

    def lose_the_first_load(statements: list) -> list:
        """Fail the first load batch as Redshift does when a concurrent load wins (1023)."""
        if not conflicts and any(s.startswith("COPY") for s in statements):
            conflicts.append(statements)
            raise StatementError("statement FAILED: 1023 Serializable isolation violation")
        return statements

    body = (shared_data / "sample_flights.csv").read_bytes()
    summary = run_on(s3, RewritingWarehouse(warehouse, lose_the_first_load), "incoming/c.csv", body)
    assert len(conflicts) == 1
    assert summary.status == "LOADED"
    assert len(facts(warehouse, f"s3://{BUCKET}/incoming/c.csv")) == 13
