"""sql/load_flights.sql on the PostgreSQL stand-in: join, replace, rollback, ledger, keys."""

from __future__ import annotations

import threading
import time

import pytest
from etl_fixtures import (
    BUCKET,
    RewritingWarehouse,
    facts,
    ledger,
    load_airports,
    run_on,
    run_version,
)

from flightpipe.sequencer import after, ordering_key
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
    assert entry["source_sequencer"] is None  # run without one
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


# ------------------------------------------------------------------ versions of one key
OLDER_ROWS = HEADER + b"AA,11298,13930,1,1\nAA,11298,13930,2,2\nAA,11298,13930,3,3\n"
NEWER_ROWS = HEADER + b"DL,11433,13303,9,9\n"


@pytest.fixture
def versioned(loaded):
    warehouse, s3 = loaded
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return warehouse, s3


def _two_versions(s3, key: str) -> tuple[dict, dict]:
    """Upload an older and then a newer version of ``key``."""
    older = s3.put_object(Bucket=BUCKET, Key=key, Body=OLDER_ROWS)
    newer = s3.put_object(Bucket=BUCKET, Key=key, Body=NEWER_ROWS)
    return older, newer


def _entries(warehouse, key: str) -> list[tuple[str, str, int]]:
    """(version, status, rows_loaded) of each attempt at ``key``, in the order they finished."""
    rows = warehouse.query(
        "SELECT source_version, status, rows_loaded FROM airlines.load_ledger "
        f"WHERE source_file = 's3://{BUCKET}/{key}' ORDER BY finished_at"
    )
    return [(r["source_version"], r["status"], r["rows_loaded"]) for r in rows]


def test_an_older_version_loaded_after_a_newer_one_is_superseded_and_changes_nothing(versioned):
    warehouse, s3 = versioned
    key = "incoming/y.csv"
    older, newer = _two_versions(s3, key)
    # S3's sequencers: the newer upload's is greater; lengths differ, as S3's may.
    loaded = run_version(s3, warehouse, key, newer, sequencer="0100000000000000000")
    late = run_version(s3, warehouse, key, older, sequencer="FFFFFFFFFFFFFFFF")
    assert (loaded.status, late.status, late.rows_loaded) == ("LOADED", "SUPERSEDED", 0)
    assert late.error.startswith("SupersededVersion: version " + older["VersionId"])
    assert [(r["carrier"], r["load_id"]) for r in facts(warehouse)] == [("DL", loaded.load_id)]
    assert _entries(warehouse, key) == [
        (newer["VersionId"], "LOADED", 1),
        (older["VersionId"], "SUPERSEDED", 0),
    ]
    [superseded] = [e for e in ledger(warehouse) if e["status"] == "SUPERSEDED"]
    assert superseded["source_sequencer"] == ordering_key("FFFFFFFFFFFFFFFF")
    assert superseded["error"] == (
        f"a newer version of this file is already loaded (sequencer "
        f"{ordering_key('0100000000000000000')}): its rows were left alone"
    )


def test_a_newer_version_loaded_after_an_older_one_replaces_its_rows(versioned):
    warehouse, s3 = versioned
    key = "incoming/in-order.csv"
    older, newer = _two_versions(s3, key)
    first = run_version(s3, warehouse, key, older, sequencer="617f08299329d189")
    second = run_version(s3, warehouse, key, newer, sequencer="617F08299329D18A")
    assert (first.status, second.status) == ("LOADED", "LOADED")
    assert [r["load_id"] for r in facts(warehouse)] == [second.load_id]
    assert second.source_sequencer == ordering_key("617F08299329D18A")


def test_a_load_without_a_sequencer_takes_no_part_in_the_order(versioned):
    """An execution started by hand without a sequencer replaces the rows as it comes, and
    what it loaded supersedes nothing."""
    warehouse, s3 = versioned
    key = "incoming/by-hand.csv"
    older, newer = _two_versions(s3, key)
    assert run_version(s3, warehouse, key, newer, sequencer="20").status == "LOADED"
    assert run_version(s3, warehouse, key, older).status == "LOADED"
    assert run_version(s3, warehouse, key, newer, sequencer="20").status == "DUPLICATE"
    third = s3.put_object(Bucket=BUCKET, Key=key, Body=OLDER_ROWS)
    assert run_version(s3, warehouse, key, third, sequencer="10").status == "SUPERSEDED"


def test_a_redrive_after_the_greatest_recorded_key_wins_over_older_loads_not_newer_ones(
    versioned,
):
    """backfill re-drives the current version v2, which no event recorded, with the key just
    after the greatest one recorded (v1's): v0 and v1 are older, v3 (uploaded after the
    backfill read the ledger) is newer, whichever load commits last."""
    warehouse, s3 = versioned
    redrive = after(ordering_key("5000"))
    for key, expected in (
        (
            "incoming/redrive-after-newer.csv",
            {"v1": "LOADED", "v3": "LOADED", "v2": "SUPERSEDED", "v0": "SUPERSEDED"},
        ),
        (
            "incoming/redrive-before-newer.csv",
            {"v1": "LOADED", "v2": "LOADED", "v0": "SUPERSEDED", "v3": "LOADED"},
        ),
    ):
        puts = {
            name: s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            for name, body in (
                ("v0", OLDER_ROWS),
                ("v1", OLDER_ROWS + b"AA,11298,13930,4,4\n"),
                ("v2", NEWER_ROWS),
                ("v3", NEWER_ROWS + b"DL,11433,13303,8,8\n"),
            )
        }
        sequencers = {"v0": "4FFF", "v1": "5000", "v2": redrive, "v3": "5001"}
        statuses = {  # loaded in the order of ``expected``
            name: run_version(s3, warehouse, key, puts[name], sequencer=sequencers[name]).status
            for name in expected
        }
        assert list(statuses.items()) == list(expected.items()), key
        rows = facts(warehouse, f"s3://{BUCKET}/{key}")
        assert len(rows) == 2 and {r["carrier"] for r in rows} == {"DL"}, key


def _wait_for(condition, what: str, timeout_s: float = 30.0) -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    begun = time.monotonic()
    while not condition():
        assert time.monotonic() - begun < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - begun


def test_the_older_version_s_load_committing_last_leaves_the_newer_rows_and_is_superseded(
    versioned, redshift_standin
):
    """Both loads in flight, the older one forced to commit last: the newer load holds the
    fact table's LOCK (its batch waits on an advisory lock the test holds, right after its
    LOCK); the older load's batch starts and waits on that LOCK; then the newer commits."""
    warehouse, s3 = versioned
    key = "incoming/raced.csv"
    older, newer = _two_versions(s3, key)
    gate = redshift_standin.connect()
    gate.autocommit = True
    gate.execute("SELECT pg_advisory_lock(18)")

    def held_after_the_lock(statements: list) -> list:
        if statements and statements[0].startswith("LOCK airlines.daily_flights_fact"):
            return [statements[0], "SELECT pg_advisory_xact_lock(18)", *statements[1:]]
        return statements

    def waiting(lock: str) -> bool:
        rows = redshift_standin.query(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted AND "
            + (
                "locktype = 'advisory'"
                if lock == "advisory"
                else "relation = 'airlines.daily_flights_fact'::regclass"
            )
        ).rows
        return bool(rows[0][0])

    summaries: dict[str, object] = {}

    def load(name: str, target, put, sequencer: str) -> None:
        summaries[name] = run_version(s3, target, key, put, sequencer=sequencer)

    newer_load = threading.Thread(
        target=load,
        args=("newer", RewritingWarehouse(warehouse, held_after_the_lock), newer, "0200"),
    )
    older_load = threading.Thread(target=load, args=("older", warehouse, older, "0100"))
    try:
        newer_load.start()
        _wait_for(lambda: waiting("advisory"), "the newer load to hold the LOCK")
        older_load.start()
        waited = _wait_for(lambda: waiting("relation"), "the older load to wait on the LOCK")
    finally:
        gate.execute("SELECT pg_advisory_unlock(18)")
        gate.close()
        newer_load.join(60)
        older_load.join(60)
    newer_summary, older_summary = summaries["newer"], summaries["older"]
    assert (newer_summary.status, older_summary.status) == ("LOADED", "SUPERSEDED")
    assert [(r["carrier"], r["load_id"]) for r in facts(warehouse)] == [
        ("DL", newer_summary.load_id)
    ]
    assert _entries(warehouse, key) == [
        (newer["VersionId"], "LOADED", 1),
        (older["VersionId"], "SUPERSEDED", 0),
    ]
    assert waited < 30.0
