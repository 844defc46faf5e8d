"""The operations CLI against a running local stack, as a user drives it after
``flightpipe local up``: ``--state-dir`` finds the stack through the record ``local up``
writes, and every command goes through the emulated AWS APIs and the Data API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import fact_rows_of, run_files, scalar, start_stack

from flightpipe.cli import main
from flightpipe.sequencer import ordering_key
from flightpipe_local.local_commands import record_stack
from flightpipe_local.stack import EmulatedStack

pytestmark = [pytest.mark.e2e, pytest.mark.warehouse, pytest.mark.template]


@pytest.fixture(scope="module")
def stack(shared_data: Path) -> Iterator[EmulatedStack]:
    yield from start_stack(shared_data)


@pytest.fixture(scope="module")
def state_dir(stack: EmulatedStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("local-up")
    record_stack(stack, directory)
    return directory


def flightpipe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def flightpipe_json(capsys: pytest.CaptureFixture[str], state_dir: Path, *argv: str) -> Any:
    code, out, err = flightpipe(capsys, *argv, "--state-dir", str(state_dir), "--json")
    assert code == 0, err
    return json.loads(out)


def flightpipe_upload_json(
    capsys: pytest.CaptureFixture[str], state_dir: Path, *argv: str
) -> list[dict[str, Any]]:
    """``flightpipe upload --json``: one JSON object per line, a line per file."""
    code, out, err = flightpipe(capsys, "upload", *argv, "--state-dir", str(state_dir), "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def loaded(stack: EmulatedStack, shared_data: Path) -> EmulatedStack:
    """The stack with the sample loaded, so a test that reads loaded rows runs alone too."""
    (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
    assert outcome.load_status == "LOADED"
    return stack


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The sample with two broken rows (lines 4 and 16), then four more copies of its good
    rows: two rejects out of 67 rows stay under the 5% threshold, so the file loads."""
    header, *good = (shared_data / "sample_flights.csv").read_text(encoding="utf-8").splitlines()
    rows = [header, *good[:2], "DL,notanid,13303,1,2", *good[2:], "DL,11433", *good * 4]
    path = tmp_path_factory.mktemp("bad") / "ops_bad.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_upload_wait_loads_the_file_and_prints_the_contract_fields(
    capsys: pytest.CaptureFixture[str], state_dir: Path, shared_data: Path, stack: EmulatedStack
) -> None:
    result = flightpipe_upload_json(
        capsys, state_dir, str(shared_data / "sample_flights.csv"), "--wait"
    )
    assert [set(item) for item in result] == [
        {"file", "key", "execution_arn", "status", "load_status", "rows_loaded"}
    ]
    (item,) = result
    assert item["key"] == "incoming/sample_flights.csv"
    assert (item["status"], item["load_status"], item["rows_loaded"]) == ("SUCCEEDED", "LOADED", 13)
    assert fact_rows_of(stack, item["key"]) == 13


def test_upload_with_a_date_puts_the_file_in_its_dated_folder(
    capsys: pytest.CaptureFixture[str], state_dir: Path, shared_data: Path
) -> None:
    (item,) = flightpipe_upload_json(
        capsys,
        state_dir,
        str(shared_data / "sample_flights.csv"),
        "--date",
        "2024-02-29",
        "--wait",
    )
    assert item["key"] == "incoming/date=2024-02-29/sample_flights.csv"
    assert item["load_status"] == "LOADED"


def test_status_lists_runs_newest_first_with_counts(
    capsys: pytest.CaptureFixture[str], state_dir: Path, shared_data: Path
) -> None:
    sample = str(shared_data / "sample_flights.csv")
    flightpipe_upload_json(capsys, state_dir, sample, "--date", "2024-03-01", "--wait")
    flightpipe_upload_json(capsys, state_dir, sample, "--wait")
    runs = flightpipe_json(capsys, state_dir, "status", "--limit", "2")
    assert len(runs) == 2
    assert runs[0]["started"] >= runs[1]["started"]
    newest = runs[0]
    assert newest["file"] == "incoming/sample_flights.csv"
    assert (newest["status"], newest["load_status"]) == ("SUCCEEDED", "LOADED")
    assert (newest["rows_read"], newest["rows_loaded"], newest["rows_rejected"]) == (13, 13, 0)


def test_a_file_whose_execution_failed_before_the_job_shows_in_status_failed_with_why(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack, tmp_path: Path
) -> None:
    sfn = stack.client("stepfunctions")
    missing = {"bucket": stack.bucket, "key": "incoming/never-uploaded.csv", "size": 1}
    arn = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name="never-uploaded", input=json.dumps(missing)
    )["executionArn"]
    _wait_until_ended(stack, arn)
    runs = flightpipe_json(capsys, state_dir, "status", "--failed", "--limit", "50")
    failed = [run for run in runs if run["execution_arn"] == arn]
    assert failed and failed[0]["status"] == "FAILED"
    assert failed[0]["load_status"] == "FAILED"  # the ledger records it too
    assert failed[0]["error"]
    code, out, _ = flightpipe(capsys, "status", "--failed", "--state-dir", str(state_dir))
    assert code == 0 and "never-uploaded.csv" in out


def test_show_explains_a_run_with_its_states_ledger_summary_and_first_rejects(
    capsys: pytest.CaptureFixture[str], state_dir: Path, bad_file: Path
) -> None:
    (item,) = flightpipe_upload_json(capsys, state_dir, str(bad_file), "--wait")
    assert item["load_status"] == "LOADED"
    shown = flightpipe_json(capsys, state_dir, "show", "ops_bad.csv")
    assert shown["execution"]["arn"] == item["execution_arn"]
    names = [state["name"] for state in shown["states"]]
    assert names[0] == "NoteExecution" and "RunEtlJob" in names and names[-1] == "Succeeded"
    assert all(state["seconds"] is not None for state in shown["states"])
    assert shown["job_run"]["state"] == "SUCCEEDED"
    assert [row["status"] for row in shown["ledger"]] == ["LOADED"]
    assert shown["summary"]["rows_rejected"] == 2
    rejected = shown["rejected_rows"]
    assert [row["line_number"] for row in rejected[:2]] == [4, 16]
    assert rejected[1]["raw_text"] == "DL,11433"
    assert all(row["reason"] for row in rejected)
    assert shown["notices"][-1]["subject"] == "Flight file ops_bad.csv loaded: 65 rows, 2 rejected"
    by_arn = flightpipe_json(capsys, state_dir, "show", item["execution_arn"])
    assert by_arn["execution"]["name"] == shown["execution"]["name"]


def test_backfill_failed_only_restarts_the_files_that_did_not_load(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack
) -> None:
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket, Key="incoming/backfill/header-only.csv", Body=b"x,y\n1,2\n")
    arn = _execution_of(stack, "incoming/backfill/header-only.csv")
    _wait_until_ended(stack, arn)
    planned = flightpipe_json(
        capsys, state_dir, "backfill", "incoming/backfill/", "--failed-only", "--dry-run"
    )
    assert [(p["key"], p["last_status"]) for p in planned] == [
        ("incoming/backfill/header-only.csv", "REJECTED")
    ]
    started = flightpipe_json(
        capsys, state_dir, "backfill", "backfill/", "--failed-only", "--max-concurrency", "1"
    )
    assert [s["key"] for s in started] == ["incoming/backfill/header-only.csv"]
    _wait_until_ended(stack, started[0]["execution_arn"])
    described = stack.client("stepfunctions").describe_execution(
        executionArn=started[0]["execution_arn"]
    )
    rule_input = json.loads(
        stack.client("stepfunctions").describe_execution(executionArn=arn)["input"]
    )
    # The rule's input, with the sequencer its execution recorded in the ledger.
    sequencer = ordering_key(rule_input["sequencer"])
    assert json.loads(described["input"]) == {**rule_input, "sequencer": sequencer}


def test_backfill_of_a_loaded_file_records_a_duplicate_and_loads_nothing_again(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack, loaded: EmulatedStack
) -> None:
    before = fact_rows_of(stack, "incoming/sample_flights.csv")
    (started,) = flightpipe_json(capsys, state_dir, "backfill", "sample_flights.csv")
    _wait_until_ended(stack, started["execution_arn"])
    assert fact_rows_of(stack, "incoming/sample_flights.csv") == before
    status = scalar(
        stack,
        "SELECT status FROM airlines.load_ledger WHERE execution_id = "
        f"'{started['execution_arn']}'",
    )
    assert status == "DUPLICATE"


def test_named_reports_run_through_the_data_api(
    capsys: pytest.CaptureFixture[str], state_dir: Path, loaded: EmulatedStack
) -> None:
    carriers = flightpipe_json(capsys, state_dir, "report", "carriers")
    assert carriers and set(carriers[0]) == {
        "carrier",
        "flights",
        "mean_arr_delay",
        "p90_arr_delay",
        "pct_delayed_15",
    }
    for name in ("routes", "states", "daily"):
        assert isinstance(flightpipe_json(capsys, state_dir, "report", name), list)
    dated = flightpipe_json(
        capsys, state_dir, "report", "daily", "--from", "2024-02-29", "--to", "2024-02-29"
    )
    assert all(row["flight_date"] == "2024-02-29" for row in dated)


def test_report_host_runs_through_redshift_connector_against_the_local_warehouse(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack, loaded: EmulatedStack
) -> None:
    endpoint = stack.warehouse_endpoint
    direct = [
        "--host", endpoint.host, "--port", str(endpoint.port), "--user", endpoint.user,
        "--database", endpoint.database, "--no-ssl",
    ]  # fmt: skip
    through_api = flightpipe_json(capsys, state_dir, "report", "carriers")
    code, out, err = flightpipe(capsys, "report", "carriers", *direct, "--json")
    assert code == 0, err
    assert json.loads(out) == through_api
    code, out, err = flightpipe(
        capsys, "report", "--sql", "SELECT COUNT(*) AS n FROM airlines.airports_dim", *direct
    )
    assert code == 0, err
    assert out.splitlines()[0].strip() == "n"


def test_ad_hoc_sql_must_be_one_read_only_statement(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack, loaded: EmulatedStack
) -> None:
    rows = flightpipe_json(capsys, state_dir, "report", "--sql", "SELECT 1 AS one")
    assert rows == [{"one": 1}]
    for sql in ("DELETE FROM airlines.daily_flights_fact", "SELECT 1; DROP TABLE x"):
        code, out, err = flightpipe(capsys, "report", "--sql", sql, "--state-dir", str(state_dir))
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert scalar(stack, "SELECT COUNT(*) FROM airlines.daily_flights_fact") > 0


def test_smoke_passes_on_the_local_stack_and_removes_what_it_added(
    capsys: pytest.CaptureFixture[str], state_dir: Path, stack: EmulatedStack
) -> None:
    result = flightpipe_json(capsys, state_dir, "smoke")
    assert result["ok"], result["checks"]
    assert {check["name"] for check in result["checks"]} >= {
        "execution succeeded", "ledger", "fact rows", "notice", "job runtime", "lambda runtime",
    }  # fmt: skip
    assert fact_rows_of(stack, result["key"]) == 0
    versions = stack.client("s3").list_object_versions(Bucket=stack.bucket, Prefix=result["key"])
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    ledger = scalar(
        stack,
        "SELECT status FROM airlines.load_ledger WHERE source_file = "
        f"'s3://{stack.bucket}/{result['key']}'",
    )
    assert ledger == "LOADED"


@pytest.mark.parametrize("command", [["status"], ["report", "carriers"], ["smoke"]])
def test_without_a_running_local_stack_commands_fail_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    code, out, err = flightpipe(capsys, *command, "--state-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "flightpipe local up is not running" in err
    assert "Traceback" not in err


def test_a_command_without_a_target_says_where_to_act(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = flightpipe(capsys, "status")
    assert code == 2 and "--stage NAME" in err and err.count("\n") == 1


def _execution_of(stack: EmulatedStack, key: str) -> str:
    sfn = stack.client("stepfunctions")
    for item in sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]:
        described = sfn.describe_execution(executionArn=item["executionArn"])
        if json.loads(described["input"]).get("key") == key:
            return str(item["executionArn"])
    raise AssertionError(f"no execution for {key}")


def _wait_until_ended(stack: EmulatedStack, arn: str, timeout_s: float = 180.0) -> None:
    import time

    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still running"
        time.sleep(0.2)
