"""The prepare-warehouse Lambda against emulated S3 and the emulator's Redshift Data API."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from conftest import TEST_BUCKET
from test_crawler_handlers import FakeLambdaContext

from flightpipe.sql import read_sql
from flightpipe.warehouse import StatementError
from flightpipe.warehouse.data_api import LAMBDA_RESERVE_SECONDS
from flightpipe_local import moto_redshift_data
from flightpipe_local._patching import PatchSet
from handlers import prepare_warehouse

pytestmark = pytest.mark.warehouse

WORKGROUP = "flightpipe-test"
# The namespace's admin user, whose secret (RedshiftAdminSecret) the stack creates.
ADMIN_USER = "pipeline_admin"
COPY_ROLE = "arn:aws:iam::123456789012:role/copy"


class ShortLivedContext(FakeLambdaContext):
    """A Lambda context with little time left."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def data_api(redshift_standin, warehouse, s3, monkeypatch):
    """The Data API served by the embedded warehouse, and the function's environment."""
    monkeypatch.delenv("REDSHIFT_SECRET_ARN", raising=False)
    admin_secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="flightpipe-test-admin",
        SecretString=json.dumps({"username": ADMIN_USER, "password": "Admin-Passw0rd"}),
    )["ARN"]
    for name, value in {
        "DATA_BUCKET": TEST_BUCKET,
        "AIRPORTS_KEY": "dimensions/airports.csv",
        "REDSHIFT_DATABASE": "dev",
        "REDSHIFT_WORKGROUP": WORKGROUP,
        # As deployed with a created namespace: the pipeline signs in with IAM credentials
        # (no secret of its own); only this function holds the admin secret, to bootstrap.
        "REDSHIFT_ADMIN_SECRET_ARN": admin_secret,
        "REDSHIFT_COPY_ROLE_ARN": COPY_ROLE,
    }.items():
        monkeypatch.setenv(name, value)
    api = moto_redshift_data.LocalDataApi(
        redshift_standin, workgroups=[WORKGROUP], admin_users={WORKGROUP: ADMIN_USER}
    )
    patches = PatchSet()
    moto_redshift_data.install(patches, api)
    yield api
    patches.restore()
    api.close()


def test_prepare_warehouse_loads_airports_once_through_the_data_api(data_api, s3, shared_data):
    s3.put_object(
        Bucket=TEST_BUCKET,
        Key="dimensions/airports.csv",
        Body=(shared_data / "airports.csv").read_bytes(),
    )
    first = prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    second = prepare_warehouse.handler({"key": "incoming/b.csv"}, FakeLambdaContext())
    assert first["schema"] == "ready"
    assert (first["airports"]["reloaded"], first["airports"]["rows"]) == (True, 365)
    assert (second["airports"]["reloaded"], second["airports"]["rows"]) == (False, 365)


def _statements_of(data_api, call) -> list[list[str]]:
    """The Data API requests (each a statement or a batch) ``call`` made, in order."""
    before = set(data_api._statements)
    call()
    return [s.sqls for i, s in data_api._statements.items() if i not in before]


def test_an_unchanged_schema_and_airports_file_cost_one_data_api_statement(
    data_api, s3, shared_data
):
    _upload_airports(s3, shared_data)
    first = _statements_of(
        data_api, lambda: prepare_warehouse.handler({"key": "a.csv"}, FakeLambdaContext())
    )
    assert len(first) > 1  # the first run bootstraps and loads the dimension
    results = []
    again = _statements_of(
        data_api,
        lambda: results.append(prepare_warehouse.handler({"key": "b.csv"}, FakeLambdaContext())),
    )
    assert again == [[read_sql("prepare_state.sql")]]
    (result,) = results
    assert (result["bootstrap"], result["airports"]["reloaded"], result["airports"]["rows"]) == (
        "ready",
        False,
        365,
    )


def test_a_changed_airports_file_still_reloads_after_the_one_statement_check(
    data_api, s3, shared_data
):
    _upload_airports(s3, shared_data)
    prepare_warehouse.handler({"key": "a.csv"}, FakeLambdaContext())
    lines = (shared_data / "airports.csv").read_text(encoding="utf-8").splitlines()
    s3.put_object(
        Bucket=TEST_BUCKET,
        Key="dimensions/airports.csv",
        Body=("\n".join(lines[:11]) + "\n").encode("utf-8"),
    )
    results = []
    sqls = _statements_of(
        data_api,
        lambda: results.append(prepare_warehouse.handler({"key": "b.csv"}, FakeLambdaContext())),
    )
    assert sqls[0] == [read_sql("prepare_state.sql")]
    assert any(sql.startswith("COPY airlines.airports_dim") for batch in sqls for sql in batch)
    assert (results[0]["airports"]["reloaded"], results[0]["airports"]["rows"]) == (True, 10)


def test_prepare_warehouse_without_the_airports_file_fails_naming_it(data_api):
    with pytest.raises(RuntimeError, match=r"dimensions/airports\.csv does not exist"):
        prepare_warehouse.handler({}, FakeLambdaContext())


def _upload_airports(s3, shared_data):
    s3.put_object(
        Bucket=TEST_BUCKET,
        Key="dimensions/airports.csv",
        Body=(shared_data / "airports.csv").read_bytes(),
    )


def test_only_the_bootstrap_runs_as_admin_the_pipeline_statements_do_not(data_api, s3, shared_data):
    _upload_airports(s3, shared_data)
    data_api._standin.execute_batch(["DROP TABLE IF EXISTS airlines.ddl_applied"])  # DDL changed
    prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    admin_secret = os.environ["REDSHIFT_ADMIN_SECRET_ARN"]
    as_admin, as_pipeline = [], []
    for statement in data_api._statements.values():
        side = as_admin if statement.target.get("SecretArn") == admin_secret else as_pipeline
        side.extend(statement.sqls)
    admin_sql, pipeline_sql = "\n".join(as_admin), "\n".join(as_pipeline)
    assert {s.db_user for s in data_api._statements.values() if s.target.get("SecretArn")} == {
        None
    }  # the admin's secret signs in as the superuser
    assert "CREATE TABLE IF NOT EXISTS airlines.airports_dim" in admin_sql
    assert "TO ROLE flightpipe" in admin_sql
    assert "COPY airlines.airports_dim" in pipeline_sql
    assert "COPY" not in admin_sql
    assert "SecretArn" not in {
        key
        for s in data_api._statements.values()
        if s.sqls[0].startswith("COPY")
        for key in s.target
    }


def test_unattached_copy_role_fails_naming_the_role_and_how_to_attach_it(data_api, s3, shared_data):
    _upload_airports(s3, shared_data)
    data_api.inject_failure(
        "COPY airlines.airports_dim",
        f"Not authorized to get credentials of role {COPY_ROLE}",
    )
    with pytest.raises(RuntimeError) as raised:
        prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    assert type(raised.value).__name__ == "CopyRoleNotAttachedError"
    assert COPY_ROLE in str(raised.value)
    assert f"update-namespace --namespace-name <namespace of workgroup {WORKGROUP}>" in str(
        raised.value
    )


def test_statement_waits_end_before_the_lambda_timeout(data_api, s3, shared_data, monkeypatch):
    """A statement still running when the function's time is nearly spent is cancelled and
    reported, instead of the function being killed mid-poll."""
    _upload_airports(s3, shared_data)
    monkeypatch.setattr(
        moto_redshift_data.LocalDataApi, "_run", lambda self, statement: None
    )  # nothing ever finishes
    context = ShortLivedContext(remaining_ms=int((LAMBDA_RESERVE_SECONDS + 1.5) * 1000))
    started = time.monotonic()
    with pytest.raises(StatementError, match="at the end of the time left to the caller"):
        prepare_warehouse.handler({"key": "incoming/a.csv"}, context)
    assert time.monotonic() - started < context.remaining_ms / 1000


def _failure(execution: str, **fields: str) -> dict:
    """The RecordFailure step's payload for an execution whose crawl poll was refused."""
    return {
        "record_failure": {
            "bucket": TEST_BUCKET,
            "key": "incoming/gone.csv",
            "version_id": "v-gone",
            "etag": "e1",
            "sequencer": "0055AED6DCD90281E5",
            "execution_id": f"arn:aws:states:us-east-1:123456789012:execution:pipeline:{execution}",
            "error": "Lambda.Unknown",
            "cause": json.dumps(
                {"errorType": "ClientError", "errorMessage": "HeadObject: NoSuchVersion"}
            ),
            **fields,
        }
    }


def test_an_execution_failing_before_its_job_gets_one_failed_ledger_row(data_api, s3, shared_data):
    _upload_airports(s3, shared_data)
    prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())  # bootstraps
    first = prepare_warehouse.handler(_failure("gone-1"), FakeLambdaContext())
    again = prepare_warehouse.handler(_failure("gone-1"), FakeLambdaContext())  # a retried step
    assert (first["recorded"], again["recorded"]) == (True, False)
    rows = data_api._standin.query(
        "SELECT load_id, source_file, source_version, status, rows_loaded, error, "
        "source_sequencer, execution_id FROM airlines.load_ledger"
    ).as_dicts()
    assert rows == [
        {
            "load_id": first["load_id"],
            "source_file": f"s3://{TEST_BUCKET}/incoming/gone.csv",
            "source_version": "v-gone",
            "status": "FAILED",
            "rows_loaded": 0,
            "error": "Lambda.Unknown: HeadObject: NoSuchVersion",
            "source_sequencer": "0" * 46 + "0055AED6DCD90281E5",
            "execution_id": _failure("gone-1")["record_failure"]["execution_id"],
        }
    ]
    # Written as the pipeline's identity, like every statement but the bootstrap's.
    writes = [
        s
        for s in data_api._statements.values()
        if any(sql.startswith("INSERT INTO airlines.load_ledger") for sql in s.sqls)
    ]
    assert len(writes) == 2 and not any(s.target.get("SecretArn") for s in writes)


def test_an_execution_whose_job_recorded_its_attempt_gets_no_second_row(data_api, s3, shared_data):
    _upload_airports(s3, shared_data)
    prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    execution = _failure("rejected-1")["record_failure"]["execution_id"]
    data_api._standin.execute_batch(
        [
            "INSERT INTO airlines.load_ledger (load_id, source_file, status, started_at, "
            f"execution_id) VALUES ('job-row', 's3://b/incoming/x.csv', 'REJECTED', GETDATE(), "
            f"'{execution}')"
        ]
    )
    result = prepare_warehouse.handler(
        _failure("rejected-1", version_id="", etag="e2", sequencer=""), FakeLambdaContext()
    )
    assert result["recorded"] is False
    statuses = data_api._standin.query(
        f"SELECT status FROM airlines.load_ledger WHERE execution_id = '{execution}'"
    ).rows
    assert statuses == [("REJECTED",)]


def _status_change(execution: str, status: str, started_with: object, cause: str = "") -> dict:
    """The "Step Functions Execution Status Change" event the RecordAbandoned state machine
    hands on (https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html)."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:pipeline:{execution}"
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline",
            "name": execution,
            "status": status,
            "input": json.dumps(started_with),
            "error": None,
            "cause": cause or None,
        },
    }


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("ABORTED", "ExecutionAborted: stopped by hand"),
        ("TIMED_OUT", "ExecutionTimedOut: stopped by hand"),
    ],
)
def test_an_aborted_or_timed_out_execution_gets_one_failed_row_from_its_status_change_event(
    data_api, s3, shared_data, status, error
):
    _upload_airports(s3, shared_data)
    prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    started_with = {
        "bucket": TEST_BUCKET,
        "key": "incoming/stopped.csv",
        "size": 10,
        "etag": "e1",
        "version_id": "v1",
        "sequencer": "0055AED6DCD90281E5",
    }
    event = _status_change("stopped-1", status, started_with, cause="stopped by hand")
    first = prepare_warehouse.handler(event, FakeLambdaContext())
    again = prepare_warehouse.handler(event, FakeLambdaContext())  # EventBridge delivers twice
    assert (first["recorded"], again["recorded"]) == (True, False)
    rows = data_api._standin.query(
        "SELECT source_file, source_version, status, error, execution_id FROM airlines.load_ledger"
    ).as_dicts()
    assert rows == [
        {
            "source_file": f"s3://{TEST_BUCKET}/incoming/stopped.csv",
            "source_version": "v1",
            "status": "FAILED",
            "error": error,
            "execution_id": event["detail"]["executionArn"],
        }
    ]


def test_a_status_change_of_an_execution_that_named_no_file_writes_nothing(data_api, s3):
    result = prepare_warehouse.handler(
        _status_change("by-hand-1", "ABORTED", {"note": "no file"}), FakeLambdaContext()
    )
    assert result["recorded"] is False
