"""Operating the pipeline as a person does, against one local stack: uploading several files,
loading a new airports dimension, reading the notices from a queue subscribed to the topic,
reading the logs, and running the functions with `sls invoke local`."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO_ROOT, data_rows, fact_rows_of, query, run_files, start_stack

from flightpipe.cli import main
from flightpipe.ops.executions import history, job_run
from flightpipe.ops.runs import wait_for
from flightpipe_local.local_commands import record_stack
from flightpipe_local.stack import EmulatedStack

pytestmark = [pytest.mark.e2e, pytest.mark.warehouse, pytest.mark.template]

NEW_AIRPORT = "99999,Example City,OK,Example Regional Field"
RENAMED_ID = 13303  # Miami International: every sample flight to or from it carries its name


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


def copy_of(source: Path, directory: Path, name: str) -> Path:
    target = directory / name
    shutil.copyfile(source, target)
    return target


# ---------------------------------------------------------------- upload


def test_upload_of_two_files_in_table_mode_prints_a_line_for_each_and_loads_both(
    capsys: pytest.CaptureFixture[str],
    stack: EmulatedStack,
    state_dir: Path,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    first = copy_of(shared_data / "sample_flights.csv", tmp_path, "table_a.csv")
    second = copy_of(shared_data / "sample_flights.csv", tmp_path, "table_b.csv")
    code, out, err = flightpipe(
        capsys, "upload", str(first), str(second), "--wait", "--state-dir", str(state_dir)
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    prefix = "arn:aws:states:us-east-1:123456789012:execution:flightpipe-dev-pipeline:"
    for line, path in zip(lines[:2], (first, second)):
        head, execution = line.split(": ", 1)
        assert head == f"{path} -> s3://{stack.bucket}/incoming/{path.name}"
        assert execution.startswith(prefix)
    header = lines.index(next(line for line in lines if line.startswith("file ")))
    assert lines[header].split() == [
        "file",
        "key",
        "execution_arn",
        "status",
        "load_status",
        "rows_loaded",
    ]
    table = [line.split() for line in lines[header + 1 :]]
    assert [(row[1], row[3], row[4], row[5]) for row in table] == [
        ("incoming/table_a.csv", "SUCCEEDED", "LOADED", "13"),
        ("incoming/table_b.csv", "SUCCEEDED", "LOADED", "13"),
    ]
    assert fact_rows_of(stack, "incoming/table_a.csv") == 13
    assert fact_rows_of(stack, "incoming/table_b.csv") == 13


def test_upload_of_two_files_with_json_prints_one_json_line_for_each_as_it_ends(
    capsys: pytest.CaptureFixture[str],
    stack: EmulatedStack,
    state_dir: Path,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    first = copy_of(shared_data / "sample_flights.csv", tmp_path, "lines_a.csv")
    second = copy_of(shared_data / "sample_flights.csv", tmp_path, "lines_b.csv")
    argv = ["upload", str(first), str(second), "--state-dir", str(state_dir), "--json"]
    code, out, err = flightpipe(capsys, *argv, "--wait")
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted((line["key"], line["load_status"], line["rows_loaded"]) for line in lines) == [
        ("incoming/lines_a.csv", "LOADED", 13),
        ("incoming/lines_b.csv", "LOADED", 13),
    ]
    code, out, err = flightpipe(capsys, *argv)  # without --wait: a line as each upload ends
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["key"], line["load_status"]) for line in lines] == [
        ("incoming/lines_a.csv", None),
        ("incoming/lines_b.csv", None),
    ]
    arns = [line["execution_arn"] for line in lines]
    assert all(arns)
    ended = wait_for(stack.client("stepfunctions"), arns, timeout_s=300)
    assert [ended[arn]["status"] for arn in arns] == ["SUCCEEDED", "SUCCEEDED"]


# ---------------------------------------------------------------- airports load


def airports_file(shared_data: Path, directory: Path, renamed_to: str) -> Path:
    """The shared dimension with one airport more and Miami International renamed."""
    rows = list(csv.reader(io.StringIO((shared_data / "airports.csv").read_text("utf-8"))))
    for row in rows[1:]:
        if row[0] == str(RENAMED_ID):
            row[3] = renamed_to
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = directory / "airports_new.csv"
    path.write_text(out.getvalue() + NEW_AIRPORT + "\n", encoding="utf-8")
    return path


def names_of_miami_flights(stack: EmulatedStack) -> set[Any]:
    rows = query(
        stack,
        "SELECT DISTINCT CASE WHEN dep_airport_id = 13303 THEN dep_airport ELSE arr_airport END"
        " AS name FROM airlines.daily_flights_fact"
        " WHERE dep_airport_id = 13303 OR arr_airport_id = 13303",
    )
    return {row["name"] for row in rows}


def test_airports_load_adds_an_airport_prints_the_differences_and_refresh_rejoins_the_facts(
    capsys: pytest.CaptureFixture[str],
    stack: EmulatedStack,
    state_dir: Path,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    run_files(stack, copy_of(shared_data / "sample_flights.csv", tmp_path, "airports_case.csv"))
    miami_rows = int(
        query(
            stack,
            "SELECT COUNT(*) AS n FROM airlines.daily_flights_fact"
            " WHERE dep_airport_id = 13303 OR arr_airport_id = 13303",
        )[0]["n"]
    )
    assert miami_rows > 0 and names_of_miami_flights(stack) == {"Miami International"}
    new = airports_file(shared_data, tmp_path, "Miami International Airport (MIA)")
    code, out, err = flightpipe(capsys, "airports", "load", str(new), "--state-dir", str(state_dir))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1].endswith(": 365 rows before, 366 after")
    assert lines[2:6] == [
        "added (1): 99999",
        "removed (0): -",
        "renamed (1):",
        "  13303: Miami International (Miami, FL) -> Miami International Airport (MIA) (Miami, FL)",
    ]
    assert lines[6:] == [
        f"fact rows whose airport names differ from the new dimension: {miami_rows}",
        "they keep the names they were loaded with (--refresh-facts re-joins them)",
    ]
    added = query(stack, "SELECT * FROM airlines.airports_dim WHERE airport_id = 99999")
    assert [(r["city"], r["state"], r["name"]) for r in added] == [
        ("Example City", "OK", "Example Regional Field")
    ]
    assert names_of_miami_flights(stack) == {"Miami International"}

    code, out, err = flightpipe(
        capsys,
        "airports",
        "load",
        str(new),
        "--refresh-facts",
        "--state-dir",
        str(state_dir),
        "--json",
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert (result["rows_before"], result["rows_after"]) == (366, 366)
    assert (result["added"], result["removed"], result["renamed"]) == ([], [], [])
    assert (result["fact_rows_differing"], result["fact_rows_differing_after"]) == (miami_rows, 0)
    assert names_of_miami_flights(stack) == {"Miami International Airport (MIA)"}
    assert result["key"] == "dimensions/airports.csv"


def test_airports_load_refuses_a_file_the_reload_could_not_load_before_uploading_it(
    capsys: pytest.CaptureFixture[str], stack: EmulatedStack, state_dir: Path, tmp_path: Path
) -> None:
    s3 = stack.client("s3")
    before = s3.head_object(Bucket=stack.bucket, Key="dimensions/airports.csv")["VersionId"]
    bad = tmp_path / "airports_bad.csv"
    bad.write_text("airport_id,name\n1,Somewhere\n", encoding="utf-8")
    code, out, err = flightpipe(capsys, "airports", "load", str(bad), "--state-dir", str(state_dir))
    assert (code, out) == (2, "")
    assert err == (
        f"flightpipe airports load: {bad}: header airport_id,name; the reload loads the columns "
        "airport_id,city,state,name in that order\n"
    )
    after = s3.head_object(Bucket=stack.bucket, Key="dimensions/airports.csv")["VersionId"]
    assert after == before


# ---------------------------------------------------------------- notices


@pytest.fixture(scope="module")
def notice_queue(stack: EmulatedStack) -> str:
    """A queue subscribed to the notices topic, its policy letting SNS send for the topic."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    topic = stack.deployment.outputs["NotificationsTopicArn"]  # type: ignore[union-attr]
    url = sqs.create_queue(QueueName="notices-reader")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def received_notice(stack: EmulatedStack, queue_url: str, file_uri: str) -> dict[str, Any]:
    """The SNS envelope the queue received for the file (its Message parsed)."""
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            envelope = json.loads(message["Body"])
            notice = json.loads(envelope["Message"])
            if notice.get("file") == file_uri:
                return {**envelope, "Message": notice}
    raise AssertionError(f"no notice for {file_uri} reached the queue")


def test_the_success_notice_reaches_a_subscribed_queue_as_json_with_the_rows_loaded(
    stack: EmulatedStack, notice_queue: str, shared_data: Path, tmp_path: Path
) -> None:
    path = copy_of(shared_data / "sample_flights.csv", tmp_path, "notice_a.csv")
    (outcome,) = run_files(stack, path)
    assert outcome.load_status == "LOADED"
    envelope = received_notice(stack, notice_queue, f"s3://{stack.bucket}/incoming/notice_a.csv")
    assert envelope["Subject"] == "Flight file notice_a.csv loaded: 13 rows"
    notice = envelope["Message"]
    assert list(notice) == [
        "status",
        "file",
        "version_id",
        "execution",
        "engine",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "unmatched_airport_rows",
        "duration_s",
        "summary",
    ]
    assert notice["rows_loaded"] == notice["rows_read"] == data_rows(path) == 13
    assert (notice["status"], notice["execution"], notice["engine"]) == (
        "SUCCEEDED",
        outcome.execution_arn,
        "pythonshell",
    )
    name = (outcome.execution_arn or "").rsplit(":", 1)[-1]
    assert notice["summary"] == f"s3://{stack.bucket}/reports/{name}.json"
    assert notice["rows_rejected"] == notice["unmatched_airport_rows"] == 0
    assert notice["duration_s"] > 0


def test_a_rejected_file_s_notice_names_the_error_and_its_cause(
    stack: EmulatedStack, notice_queue: str, tmp_path: Path
) -> None:
    path = tmp_path / "notice_header_only.csv"
    path.write_text("Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n", encoding="utf-8")
    (outcome,) = run_files(stack, path)
    assert (outcome.execution_status, outcome.load_status) == ("FAILED", "REJECTED")
    uri = f"s3://{stack.bucket}/incoming/notice_header_only.csv"
    envelope = received_notice(stack, notice_queue, uri)
    assert envelope["Subject"] == "Flight file notice_header_only.csv rejected"
    notice = envelope["Message"]
    assert (notice["status"], notice["rows_read"], notice["rows_loaded"]) == ("FAILED", 0, 0)
    assert notice["error"] == "States.TaskFailed"
    summary = f"s3://{stack.bucket}/reports/{(outcome.execution_arn or '').rsplit(':', 1)[-1]}.json"
    assert notice["cause"] == (
        f"{uri}: REJECTED: the file has a header but no data rows (summary: {summary})"
    )
    assert notice["summary"] == summary
    assert "rejects" not in notice and "unknown_airport_ids" not in notice


# ---------------------------------------------------------------- logs


def test_every_log_line_of_the_functions_and_the_job_names_the_execution_and_the_file(
    stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    functions = ("prepareWarehouse", "startCrawler", "pollCrawler", "composeNotice")
    logs = {name: stack.log_dir / "lambda" / f"flightpipe-dev-{name}.log" for name in functions}
    offsets = {name: log.stat().st_size if log.exists() else 0 for name, log in logs.items()}
    path = copy_of(shared_data / "sample_flights.csv", tmp_path, "logs_a.csv")
    (outcome,) = run_files(stack, path)
    assert outcome.load_status == "LOADED"
    expected = {"execution_id": outcome.execution_arn, "file_key": "incoming/logs_a.csv"}
    for name, log in logs.items():
        with log.open("rb") as handle:
            handle.seek(offsets[name])
            lines = handle.read().decode("utf-8").splitlines()
        assert lines, f"{name} logged nothing"
        for line in lines:
            record = json.loads(line)
            assert {key: record.get(key) for key in expected} == expected, (name, line)
    run = job_run(history(stack.client("stepfunctions"), outcome.execution_arn or ""))
    assert run is not None and run.job_name == stack.job_name
    job_log = stack.log_dir / "glue" / run.job_name / f"{run.run_id}.log"
    records = [json.loads(line) for line in job_log.read_text("utf-8").splitlines()]
    assert records and all(
        {key: record.get(key) for key in expected} == expected for record in records
    )
    assert records[-1]["summary"]["rows_loaded"] == 13


def test_a_function_that_fails_logs_its_error_as_json_with_the_execution_and_the_file(
    stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    log = stack.log_dir / "lambda" / "flightpipe-dev-prepareWarehouse.log"
    offset = log.stat().st_size if log.exists() else 0
    assert stack.data_api is not None
    stack.data_api.inject_failure("AS airports_version", "the check's refusal")
    stack.data_api.inject_failure("FROM airlines.dimension_loads d", "permission denied (test)")
    (outcome,) = run_files(stack, copy_of(shared_data / "sample_flights.csv", tmp_path, "e.csv"))
    assert outcome.execution_status == "FAILED"
    with log.open("rb") as handle:
        handle.seek(offset)
        records = [json.loads(line) for line in handle.read().decode("utf-8").splitlines()]
    keyed = [r for r in records if r.get("execution_id") == outcome.execution_arn]
    (failed,) = [r for r in keyed if r.get("message") == "invocation failed"]
    assert failed["file_key"] == "incoming/e.csv" and failed["level"] == "ERROR"
    assert "permission denied (test)" in failed["exception"]
    # The runtime's own record of the uncaught error: JSON too, tied by its request id.
    (runtime,) = [r for r in records if r.get("requestId") == failed["function_request_id"]]
    assert (runtime["level"], runtime["errorType"]) == ("ERROR", "StatementError")
    assert "permission denied (test)" in runtime["errorMessage"] and runtime["stackTrace"]
    assert all(r["file_key"] == "incoming/e.csv" for r in keyed)
    assert len(keyed) + 1 == len(records), records  # nothing else, nothing without its keys


# ---------------------------------------------------------------- sls invoke local


@pytest.fixture(scope="module")
def sample_uploaded(stack: EmulatedStack, shared_data: Path) -> EmulatedStack:
    """incoming/sample_flights.csv, the object events/*.json name, loaded once."""
    (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
    assert outcome.load_status == "LOADED"
    return stack


def invoke_local(stack: EmulatedStack, function: str, event: str) -> subprocess.CompletedProcess:
    """`npx sls invoke local` as a person runs it after exporting what `local up` prints,
    with the project's virtualenv active (its python3 runs the handler)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(stack.environment)
    environment["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{environment['PATH']}"
    environment.update(SLS_TELEMETRY_DISABLED="1", SLS_NOTIFICATIONS_MODE="off")
    return subprocess.run(
        ["npx", "--no-install", "sls", "invoke", "local", "-f", function, "--path", event],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def invoke_result(process: subprocess.CompletedProcess) -> dict[str, Any]:
    """The handler's result: the JSON document invoke local prints after the log lines."""
    out = process.stdout
    start = out.index("\n{\n") + 1 if not out.startswith("{\n") else 0
    return json.loads(out[start : out.index("\n}", start) + 2])


@pytest.mark.parametrize(
    ("function", "event", "expected"),
    [
        ("prepareWarehouse", "events/prepare_warehouse.json", {"schema": "ready"}),
        ("startCrawler", "events/start_crawler.json", {"crawler": "flightpipe-dev-incoming"}),
        ("pollCrawler", "events/poll_crawler.json", {"crawler": "flightpipe-dev-incoming"}),
    ],
)
def test_sls_invoke_local_runs_each_function_against_the_local_stack(
    sample_uploaded: EmulatedStack, function: str, event: str, expected: dict[str, Any]
) -> None:
    event_bucket = json.loads((REPO_ROOT / event).read_text(encoding="utf-8"))["bucket"]
    assert event_bucket == sample_uploaded.bucket
    process = invoke_local(sample_uploaded, function, event)
    assert process.returncode == 0, process.stdout + process.stderr
    result = invoke_result(process)
    assert {name: result[name] for name in expected} == expected
    assert result["runtime"]["python"]
    log = json.loads(process.stdout.splitlines()[0])
    assert (log["function_name"], log["file_key"]) == (
        f"flightpipe-dev-{function}",
        "incoming/sample_flights.csv",
    )
