"""The whole pipeline through the local emulator: upload, rule, state machine, Glue, warehouse."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from e2e_support import (
    data_rows,
    execution_output,
    fact_rows_of,
    history_states,
    query,
    run_files,
    scalar,
    stack,
)

from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]


def test_sample_and_real_bts_files_load_with_every_row_accounted_for(
    stack: EmulatedStack, shared_data: Path
) -> None:
    files = [shared_data / "sample_flights.csv", shared_data / "bts_ontime_2023_01_OK.csv"]
    outcomes = run_files(stack, *files)
    for path, outcome in zip(files, outcomes):
        assert outcome.execution_status == "SUCCEEDED", outcome.error
        assert outcome.load_status == "LOADED"
        assert outcome.rows_read == data_rows(path)
        assert outcome.rows_read == outcome.rows_loaded + outcome.rows_rejected
        assert fact_rows_of(stack, outcome.key) == outcome.rows_loaded
    bts = outcomes[1]
    assert bts.rows_loaded > 6000
    assert bts.unmatched_airport_rows > 0  # newer airports missing from the dimension still load


def test_the_same_file_uploaded_twice_leaves_one_copy_of_its_rows(
    stack: EmulatedStack, shared_data: Path
) -> None:
    sample = shared_data / "sample_flights.csv"
    first, second = run_files(stack, sample, sample)
    assert first.execution_status == second.execution_status == "SUCCEEDED"
    assert fact_rows_of(stack, second.key) == data_rows(sample) == second.rows_loaded


def test_a_file_with_missing_columns_fails_with_a_notice_and_leaves_the_table_untouched(
    stack: EmulatedStack, tmp_path: Path
) -> None:
    bad = tmp_path / "missing_columns.csv"
    bad.write_text("Carrier,OriginAirportID,DepDelay\nAA,10397,5\n", encoding="utf-8")
    before = scalar(stack, "SELECT COUNT(*) FROM airlines.daily_flights_fact")
    notices_before = len(stack.notices.notices())
    (outcome,) = run_files(stack, bad)
    assert outcome.execution_status == "FAILED"
    assert outcome.load_status == "REJECTED"
    assert "DestAirportID" in (outcome.error or "") or "dest" in (outcome.error or "").lower()
    assert scalar(stack, "SELECT COUNT(*) FROM airlines.daily_flights_fact") == before
    new_notices = stack.notices.notices()[notices_before:]
    assert len(new_notices) == 1
    assert "missing_columns.csv" in new_notices[0].message


def test_a_failed_crawl_is_a_warning_in_the_notice_and_the_file_still_loads(
    stack: EmulatedStack, shared_data: Path
) -> None:
    crawlers = stack.crawlers
    assert crawlers is not None
    crawlers.fail_until_cleared(stack.crawler_name, "Internal Service Exception")
    notices_before = len(stack.notices.notices())
    try:
        (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
    finally:
        crawlers.clear_faults()
    assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")
    assert outcome.rows_loaded == data_rows(shared_data / "sample_flights.csv")
    states = history_states(stack, outcome.execution_arn or "")
    # The poll Lambda reported the crawl FAILED: recorded, then the load ran (crawl first).
    last_poll = len(states) - 1 - states[::-1].index("CrawlerDone")
    assert states[last_poll:] == [
        "CrawlerDone",
        "CrawlFailed",
        "CrawlResolved",
        "ChooseEngine",
        "RunEtlJob",
        "LoadEnded",
        "LoadOutcome",
        "ComposeSuccessNotice",
        "NotifySuccess",
        "Succeeded",
    ]
    crawl = execution_output(stack, outcome.execution_arn or "")["crawl"]
    assert (crawl["status"], crawl["before_load"]) == ("FAILED", True)
    assert crawl["warning"].endswith("ended FAILED - Internal Service Exception")
    new_notices = stack.notices.notices()[notices_before:]
    assert len(new_notices) == 1
    notice = new_notices[0].body()
    assert notice["status"] == "SUCCEEDED"
    assert notice["file"] == f"s3://{stack.bucket}/{outcome.key}"
    assert notice["warning"] == crawl["warning"]  # the crawl's own error


def test_a_job_failing_between_delete_and_insert_leaves_no_partial_rows(
    stack: EmulatedStack, shared_data: Path
) -> None:
    sample = shared_data / "sample_flights.csv"
    (loaded,) = run_files(stack, sample)
    assert loaded.execution_status == "SUCCEEDED"
    before = query(stack, "SELECT * FROM airlines.daily_flights_fact ORDER BY load_id, carrier")
    stack.data_api.inject_failure(  # type: ignore[union-attr]
        "INSERT INTO airlines.daily_flights_fact", "injected fault between delete and insert"
    )
    (failed,) = run_files(stack, sample)
    assert failed.execution_status == "FAILED"
    assert failed.load_status == "FAILED"
    assert "injected fault" in (failed.error or "")
    after = query(stack, "SELECT * FROM airlines.daily_flights_fact ORDER BY load_id, carrier")
    assert after == before


def test_five_files_uploaded_at_once_all_load_exactly_once(
    stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / "bts_ontime_2023_01_OK.csv").read_text(encoding="utf-8").splitlines()
    files = []
    for index in range(5):
        path = tmp_path / f"date=2023-01-0{index + 1}" / f"batch_{index}.csv"
        path.parent.mkdir()
        path.write_text(
            "\n".join([lines[0], *lines[1 + index * 200 : 1 + (index + 1) * 200]]) + "\n"
        )
        files.append(path)
    outcomes = run_files(stack, *files, concurrent=True)
    for outcome in outcomes:
        assert outcome.execution_status == "SUCCEEDED", outcome.error
        assert outcome.rows_read == 200 == outcome.rows_loaded + outcome.rows_rejected
        assert fact_rows_of(stack, outcome.key) == outcome.rows_loaded
        ledger = query(
            stack,
            "SELECT status FROM airlines.load_ledger WHERE source_file = "
            f"'s3://{stack.bucket}/{outcome.key}'",
        )
        assert [row["status"] for row in ledger] == ["LOADED"]


def test_executions_receive_the_rules_transformed_input(
    stack: EmulatedStack, tmp_path: Path
) -> None:
    upload = tmp_path / "rule_input.csv"
    upload.write_text(
        "Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nAA,10397,12478,5,-3\n"
    )
    (outcome,) = run_files(stack, upload)
    assert outcome.execution_arn, outcome.error
    sfn = stack.client("stepfunctions")
    document = json.loads(sfn.describe_execution(executionArn=outcome.execution_arn)["input"])
    assert set(document) == {"bucket", "key", "size", "etag", "version_id", "sequencer"}
    assert (document["bucket"], document["key"]) == (stack.bucket, outcome.key)
    assert document["key"].startswith("incoming/") and document["key"].endswith("rule_input.csv")
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key=outcome.key)
    assert document["size"] == head["ContentLength"] == upload.stat().st_size
    assert document["etag"] == head["ETag"].strip('"')


def test_glue_sdk_errors_carry_aws_names_and_a_sync_job_run_waits_for_its_end(
    stack: EmulatedStack,
) -> None:
    definition = {
        "StartAt": "Crawl",
        "States": {
            "Crawl": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:glue:startCrawler",
                "Parameters": {"Name": "no-such-crawler"},
                "Catch": [
                    {"ErrorEquals": ["Glue.EntityNotFoundException"], "Next": "Run"},
                ],
                "End": True,
            },
            "Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {
                    "JobName": stack.job_name,
                    "Arguments": {"--bucket": stack.bucket, "--key": "incoming/absent.csv"},
                },
                "End": True,
            },
        },
    }
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    glue = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["glue:StartCrawler", "glue:StartJobRun", "glue:GetJobRun"],
                "Resource": "*",
            }
        ],
    }
    iam = stack.client("iam")
    role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="probe", PolicyName="glue", PolicyDocument=json.dumps(glue))
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="glue-probe",
        definition=json.dumps(definition),
        roleArn=role["Role"]["Arn"],
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="probe", input="{}")["executionArn"]
    for _ in range(300):
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert history_states(stack, arn) == ["Crawl", "Run"]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.TaskFailed"
    run = json.loads(execution["cause"])
    assert run["JobRunState"] == "FAILED"
    assert "absent.csv" in run["ErrorMessage"]
