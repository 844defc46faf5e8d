"""Versions of one key and failures before the job, through the whole local stack: the newest
upload wins whatever order the loads commit in, and every execution leaves a ledger row that
``status``, ``show`` and ``backfill --failed-only`` agree on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from e2e_support import fact_rows_of, query, run_files, start_stack

from flightpipe.cli import main
from flightpipe.sequencer import ordering_key
from flightpipe_local.local_commands import record_stack
from flightpipe_local.run import PipelineRunner, Upload
from flightpipe_local.stack import EmulatedStack

pytestmark = [pytest.mark.e2e, pytest.mark.warehouse, pytest.mark.template]
LOAD_BATCH = "LOCK airlines.daily_flights_fact"


@pytest.fixture(scope="module")
def stack(shared_data: Path) -> Iterator[EmulatedStack]:
    yield from start_stack(shared_data)


@pytest.fixture(scope="module")
def state_dir(stack: EmulatedStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("local-up")
    record_stack(stack, directory)
    return directory


def flightpipe_json(capsys: pytest.CaptureFixture[str], state_dir: Path, *argv: str) -> Any:
    capsys.readouterr()
    code = main([*argv, "--state-dir", str(state_dir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def execution_input(stack: EmulatedStack, arn: str) -> dict[str, Any]:
    described = stack.client("stepfunctions").describe_execution(executionArn=arn)
    return dict(json.loads(described["input"]))


def ledger_of(stack: EmulatedStack, key: str) -> list[tuple[Any, ...]]:
    """(version, status, rows_loaded, sequencer) of each attempt at ``key``, as they finished."""
    source = f"s3://{stack.bucket}/{key}"
    rows = query(
        stack,
        "SELECT source_version, status, rows_loaded, source_sequencer FROM airlines.load_ledger "
        f"WHERE source_file = '{source}' ORDER BY finished_at",
    )
    return [tuple(row.values()) for row in rows]


def the_load_of(version_id: str):
    """Matches the load batch (sql/load_flights.sql) of one object version."""

    def matches(statements: Sequence[str]) -> bool:
        return statements[0].startswith(LOAD_BATCH) and any(version_id in s for s in statements)

    return matches


def test_the_older_upload_committing_last_leaves_the_newer_rows_and_is_recorded_superseded(
    stack: EmulatedStack,
    shared_data: Path,
    tmp_path: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    header, *rows = (shared_data / "sample_flights.csv").read_text(encoding="utf-8").splitlines()
    older_file, newer_file = tmp_path / "a.csv", tmp_path / "b.csv"
    older_file.write_text("\n".join([header, *rows * 154]) + "\n", encoding="utf-8")  # 2,002 rows
    newer_file.write_text("\n".join([header, *rows[:5]]) + "\n", encoding="utf-8")
    assert stack.data_api is not None
    runner = PipelineRunner(stack, timeout_s=300)
    key = "incoming/y.csv"
    older = runner.upload(older_file, key)
    older_load = stack.data_api.hold(the_load_of(older.version_id or ""))
    time.sleep(0.1)
    newer = runner.upload(newer_file, key)
    newer_load = stack.data_api.hold(the_load_of(newer.version_id or ""))
    try:
        # Both loads in flight; the newer one commits, then the older one.
        assert older_load.reached.wait(240) and newer_load.reached.wait(240)
        newer_load.release()
        runner.wait([newer])
        assert runner.outcome(newer).load_status == "LOADED"
        assert not older_load.released.is_set()
    finally:
        newer_load.release()
        older_load.release()
    runner.wait([older])
    outcome = runner.outcome(older)
    assert (outcome.execution_status, outcome.load_status, outcome.rows_loaded) == (
        "SUCCEEDED",
        "SUPERSEDED",
        0,
    )
    assert outcome.rows_read == 2002
    assert fact_rows_of(stack, key) == 5
    sequencers = [
        execution_input(stack, upload.execution_arn or "")["sequencer"] for upload in (older, newer)
    ]
    assert int(sequencers[0], 16) < int(sequencers[1], 16)  # S3's order of the two events
    assert ledger_of(stack, key) == [
        (newer.version_id, "LOADED", 5, ordering_key(sequencers[1])),
        (older.version_id, "SUPERSEDED", 0, ordering_key(sequencers[0])),
    ]
    notices = [n for n in stack.notices.notices() if '"SUPERSEDED"' in n.message]
    assert [json.loads(n.message)["version_id"] for n in notices] == [older.version_id]
    runs = {run["execution_arn"]: run for run in flightpipe_json(capsys, state_dir, "status")}
    assert (runs[older.execution_arn]["status"], runs[older.execution_arn]["load_status"]) == (
        "SUCCEEDED",
        "SUPERSEDED",
    )
    planned = flightpipe_json(capsys, state_dir, "backfill", "y.csv", "--failed-only", "--dry-run")
    assert planned == []  # the current version is loaded: nothing failed


def test_a_failure_before_the_job_is_recorded_and_backfill_re_drives_it_in_its_place(
    stack: EmulatedStack,
    shared_data: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert stack.data_api is not None
    refusal = "permission denied for relation dimension_loads"
    # The one-statement check fails (so the prepare step takes its slow path), then the slow
    # path's read of the loaded airports version is refused: the execution fails before its job.
    stack.data_api.inject_failure("AS airports_version", "the check's refusal")
    stack.data_api.inject_failure("FROM airlines.dimension_loads d", refusal)
    runner = PipelineRunner(stack, timeout_s=300)
    key = "incoming/refused.csv"
    upload = runner.upload(shared_data / "sample_flights.csv", key)
    runner.wait([upload])
    outcome = runner.outcome(upload)
    assert (outcome.execution_status, outcome.load_status) == ("FAILED", "FAILED")
    sequencer = ordering_key(execution_input(stack, upload.execution_arn or "")["sequencer"])
    assert ledger_of(stack, key) == [(upload.version_id, "FAILED", 0, sequencer)]
    failed = flightpipe_json(capsys, state_dir, "status", "--failed", "--limit", "50")
    (run,) = [run for run in failed if run["execution_arn"] == upload.execution_arn]
    assert run["load_status"] == "FAILED" and refusal in run["error"]
    shown = flightpipe_json(capsys, state_dir, "show", key)
    assert [(row["status"], row["source_sequencer"]) for row in shown["ledger"]] == [
        ("FAILED", sequencer)
    ]
    assert shown["notices"][-1]["subject"] == "Flight file refused.csv failed"
    planned = flightpipe_json(
        capsys, state_dir, "backfill", "refused.csv", "--failed-only", "--dry-run"
    )
    assert [(p["key"], p["version_id"], p["last_status"]) for p in planned] == [
        (key, upload.version_id, "FAILED")
    ]
    (started,) = flightpipe_json(capsys, state_dir, "backfill", "refused.csv", "--failed-only")
    redrive = Upload(upload.file, key, upload.version_id, upload.etag, started["execution_arn"])
    runner.wait([redrive])
    assert runner.outcome(redrive).load_status == "LOADED"
    assert execution_input(stack, started["execution_arn"])["sequencer"] == sequencer
    assert [entry[1:] for entry in ledger_of(stack, key)] == [
        ("FAILED", 0, sequencer),
        ("LOADED", 13, sequencer),
    ]
    assert fact_rows_of(stack, key) == 13
    assert flightpipe_json(capsys, state_dir, "backfill", "refused.csv", "--failed-only") == []


def running_execution_of(stack: EmulatedStack, key: str) -> str:
    """The ARN of the running execution whose input names ``key``."""
    sfn = stack.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")
    (arn,) = [
        e["executionArn"]
        for e in listed["executions"]
        if execution_input(stack, e["executionArn"]).get("key") == key
    ]
    return str(arn)


def test_an_aborted_execution_leaves_a_failed_ledger_row_and_backfill_re_drives_its_file(
    stack: EmulatedStack, shared_data: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.data_api is not None
    (first,) = run_files(stack, shared_data / "sample_flights.csv")  # the schema exists
    assert first.load_status == "LOADED"
    prepare = stack.data_api.hold(lambda statements: "AS airports_version" in statements[0])
    runner = PipelineRunner(stack, timeout_s=300)
    key = "incoming/aborted.csv"
    upload = runner.upload(shared_data / "sample_flights.csv", key)
    try:
        assert prepare.reached.wait(120)  # the execution is inside its prepare step
        arn = running_execution_of(stack, key)
        stack.client("stepfunctions").stop_execution(executionArn=arn, cause="stopped by hand")
    finally:
        prepare.release()
    sequencer = ordering_key(execution_input(stack, arn)["sequencer"])
    deadline = time.monotonic() + 120
    while not ledger_of(stack, key) and time.monotonic() < deadline:
        time.sleep(0.5)  # the status change event starts the recorder
    assert ledger_of(stack, key) == [(upload.version_id, "FAILED", 0, sequencer)]
    failed = flightpipe_json(capsys, state_dir, "status", "--failed", "--limit", "50")
    (run,) = [run for run in failed if run["execution_arn"] == arn]
    assert (run["status"], run["load_status"]) == ("ABORTED", "FAILED")
    (error,) = query(stack, f"SELECT error FROM airlines.load_ledger WHERE execution_id = '{arn}'")
    assert error["error"] == "ExecutionAborted: stopped by hand"
    planned = flightpipe_json(
        capsys, state_dir, "backfill", "aborted.csv", "--failed-only", "--dry-run"
    )
    assert [(p["key"], p["version_id"], p["last_status"]) for p in planned] == [
        (key, upload.version_id, "FAILED")
    ]
    (started,) = flightpipe_json(capsys, state_dir, "backfill", "aborted.csv", "--failed-only")
    redrive = Upload(upload.file, key, upload.version_id, upload.etag, started["execution_arn"])
    runner.wait([redrive])
    assert runner.outcome(redrive).load_status == "LOADED"
    assert fact_rows_of(stack, key) == 13
    recorder = stack.client("stepfunctions").list_state_machines()["stateMachines"]
    (machine,) = [m for m in recorder if m["name"].endswith("-record-abandoned")]
    ran = stack.client("stepfunctions").list_executions(stateMachineArn=machine["stateMachineArn"])
    assert [e["status"] for e in ran["executions"]] == ["SUCCEEDED"]  # the abort alone


def test_an_execution_naming_a_version_that_is_gone_leaves_a_failed_ledger_row(
    stack: EmulatedStack, shared_data: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = PipelineRunner(stack, timeout_s=300)
    key = "incoming/replaced.csv"
    upload = runner.upload(shared_data / "sample_flights.csv", key)
    runner.wait([upload])
    s3 = stack.client("s3")
    s3.delete_object(Bucket=stack.bucket, Key=key, VersionId=upload.version_id)
    gone = {**execution_input(stack, upload.execution_arn or ""), "sequencer": None}
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn, name="version-gone", input=json.dumps(gone)
    )["executionArn"]
    redelivered = Upload(upload.file, key, upload.version_id, upload.etag, arn)
    runner.wait([redelivered])
    outcome = runner.outcome(redelivered)
    assert (outcome.execution_status, outcome.load_status) == ("FAILED", "FAILED")
    shown = flightpipe_json(capsys, state_dir, "show", arn)
    assert [(row["status"], row["execution_id"]) for row in shown["ledger"]][-1] == (
        "FAILED",
        arn,
    )
    assert shown["ledger"][-1]["error"] == outcome.error
