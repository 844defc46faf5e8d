"""The operations commands' pure parts: reading histories, guarding ad-hoc SQL, the input
a backfill sends, and the file a smoke run uploads."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from flightpipe.etl.job_args import JobArgs
from flightpipe.etl.layouts import resolve_columns
from flightpipe.execution_input import ExecutionInput
from flightpipe.ops import executions, runs
from flightpipe.ops.report import ReportError, read_only_statement
from flightpipe.ops.smoke import SMOKE_ROWS, declared_python, smoke_csv

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def event(number: int, kind: str, seconds: float, **details: object) -> dict:
    return {"id": number, "type": kind, "timestamp": T0 + dt.timedelta(seconds=seconds), **details}


def entered(number: int, name: str, seconds: float) -> dict:
    return event(number, "TaskStateEntered", seconds, stateEnteredEventDetails={"name": name})


def exited(number: int, name: str, seconds: float) -> dict:
    return event(number, "TaskStateExited", seconds, stateExitedEventDetails={"name": name})


def test_state_visits_time_each_state_and_the_final_fail_state_ends_with_the_execution() -> None:
    history = [
        entered(1, "RunEtlJob", 0),
        event(2, "TaskFailed", 2, taskFailedEventDetails={"error": "x", "cause": "y"}),
        exited(3, "RunEtlJob", 2.5),
        event(4, "FailStateEntered", 3, stateEnteredEventDetails={"name": "Failed"}),
        event(5, "ExecutionFailed", 3.25, executionFailedEventDetails={}),
    ]
    visits = executions.state_visits(history)
    assert [(v.name, v.seconds, v.outcome) for v in visits] == [
        ("RunEtlJob", 2.5, "caught"),
        ("Failed", 0.25, "ended the execution"),
    ]


def glue_task(number: int, job: str, run_id: str, failed: bool = False) -> list[dict]:
    """A glue:startJobRun.sync task's scheduled and finished events."""
    scheduled = {"resourceType": "glue", "parameters": json.dumps({"JobName": job})}
    run = json.dumps({"Id": run_id, "JobRunState": "FAILED" if failed else "SUCCEEDED"})
    if failed:
        finished = event(
            number + 1,
            "TaskFailed",
            1,
            taskFailedEventDetails={
                "resourceType": "glue",
                "error": "States.TaskFailed",
                "cause": run,
            },
        )
    else:
        finished = event(
            number + 1,
            "TaskSucceeded",
            1,
            taskSucceededEventDetails={"resourceType": "glue", "output": run},
        )
    return [event(number, "TaskScheduled", 0, taskScheduledEventDetails=scheduled), finished]


@pytest.mark.parametrize("failed", [False, True])
def test_the_job_run_names_the_job_the_execution_ran(failed: bool) -> None:
    history = glue_task(5, "flightpipe-dev-etl-spark", "jr_1", failed)
    run = executions.job_run(history)
    assert run == executions.GlueJobRun("flightpipe-dev-etl-spark", "jr_1")
    assert executions.job_run([]) is None


def test_the_job_name_step_functions_puts_in_the_result_is_taken_first() -> None:
    history = glue_task(5, "flightpipe-dev-etl", "jr_1")
    output = json.dumps({"Id": "jr_1", "JobName": "flightpipe-dev-etl-spark"})
    history[1]["taskSucceededEventDetails"]["output"] = output
    assert executions.job_run(history) == executions.GlueJobRun("flightpipe-dev-etl-spark", "jr_1")


@pytest.mark.parametrize(
    ("job", "python"),
    [
        ({"Command": {"Name": "pythonshell", "PythonVersion": "3.9"}}, "3.9"),
        ({"Command": {"Name": "glueetl", "PythonVersion": "3"}, "GlueVersion": "5.0"}, "3.11"),
        ({"Command": {"Name": "glueetl", "PythonVersion": "3"}, "GlueVersion": "9.9"}, ""),
    ],
)
def test_a_job_declares_the_python_of_its_command_or_of_its_glue_version(
    job: dict, python: str
) -> None:
    assert declared_python(job) == python


def test_notices_pair_each_published_message_with_its_parameters() -> None:
    parameters = {"Subject": "Flight pipeline succeeded", "Message": {"status": "SUCCEEDED"}}
    history = [
        event(
            7,
            "TaskScheduled",
            0,
            taskScheduledEventDetails={"resourceType": "sns", "parameters": json.dumps(parameters)},
        ),
        event(
            8,
            "TaskSucceeded",
            1,
            taskSucceededEventDetails={"resourceType": "sns", "output": '{"MessageId": "m-1"}'},
        ),
    ]
    assert executions.notices(history) == [
        {
            "subject": "Flight pipeline succeeded",
            "message": {"status": "SUCCEEDED"},
            "message_id": "m-1",
        }
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  with x AS (SELECT 1) SELECT * FROM x;",
        "SELECT 'a; DELETE FROM t' AS text",
        "SELECT carrier FROM airlines.daily_flights_fact -- the carriers",
    ],
)
def test_a_single_read_only_statement_is_accepted(sql: str) -> None:
    assert read_only_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM airlines.load_ledger",
        "SELECT 1; DROP TABLE airlines.daily_flights_fact",
        "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
        "CREATE TABLE x AS SELECT 1",
        "",
    ],
)
def test_anything_else_is_refused(sql: str) -> None:
    with pytest.raises(ReportError):
        read_only_statement(sql)


def test_the_backfill_input_is_what_the_rule_sends_for_the_object() -> None:
    head = {"ContentLength": 331, "ETag": '"abc"', "VersionId": "v7"}
    document = ExecutionInput.from_head("bucket", "incoming/f.csv", head)
    assert json.loads(document.to_json()) == {
        "bucket": "bucket",
        "key": "incoming/f.csv",
        "size": 331,
        "etag": "abc",
        "version_id": "v7",
        "sequencer": None,
    }
    assert document.source_file == JobArgs(bucket="bucket", key="incoming/f.csv").source_file


def test_the_smoke_file_is_in_a_layout_the_job_accepts_with_its_airports_both_ways() -> None:
    header, *rows = smoke_csv((10001, 10002), dt.date(2026, 1, 2)).splitlines()
    assert resolve_columns(header.split(",")).has_date
    assert len(rows) == SMOKE_ROWS
    routes = {tuple(row.split(",")[1:3]) for row in rows}
    assert routes == {("10001", "10002"), ("10002", "10001")}


def test_a_direct_session_that_cannot_connect_fails_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from flightpipe.cli import main

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code = main(["report", "carriers", "--host", "127.0.0.1", "--port", str(port), "--no-ssl"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("flightpipe report: ") and err.count("\n") == 1
    assert "Traceback" not in err


class EndingExecutions:
    """A Step Functions client whose executions end after a given number of describes."""

    def __init__(self, describes_until_ended: dict[str, int]) -> None:
        self._left = dict(describes_until_ended)

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self._left[executionArn] -= 1
        status = "SUCCEEDED" if self._left[executionArn] <= 0 else "RUNNING"
        return {"executionArn": executionArn, "status": status}


def test_waiting_reports_each_execution_as_it_ends_not_in_the_order_given() -> None:
    sfn = EndingExecutions({"slow": 3, "fast": 1, "middle": 2})
    ended: list[tuple[str, str]] = []
    described = runs.wait_for(
        sfn,
        ["slow", "fast", "middle"],
        timeout_s=10,
        poll_s=0,
        on_end=lambda arn, d: ended.append((arn, d["status"])),
    )
    assert ended == [("fast", "SUCCEEDED"), ("middle", "SUCCEEDED"), ("slow", "SUCCEEDED")]
    assert {arn: d["status"] for arn, d in described.items()} == {
        "slow": "SUCCEEDED",
        "fast": "SUCCEEDED",
        "middle": "SUCCEEDED",
    }
