"""The Data API adapter's polling, result decoding and error mapping.

The Redshift Data API responses are stubbed at the botocore boundary with the
shapes AWS documents; the end-to-end tests run the same adapter against the
local emulator's Data API.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from flightpipe.warehouse import (
    DataApiWarehouse,
    StatementError,
    WarehouseTarget,
    WarehouseThrottledError,
)

TARGET = WarehouseTarget(database="dev", workgroup="flights", secret_arn="arn:secret")


@pytest.fixture
def client():
    data_api = boto3.client("redshift-data", region_name="us-east-1")
    with Stubber(data_api) as stubber:
        yield data_api, stubber
        stubber.assert_no_pending_responses()


def _warehouse(data_api) -> DataApiWarehouse:
    return DataApiWarehouse(data_api, TARGET, sleep=lambda _: None)


def test_query_polls_until_finished_and_decodes_typed_fields(client):
    data_api, stubber = client
    stubber.add_response(
        "execute_statement",
        {"Id": "s1"},
        {
            "Sql": "SELECT 1",
            "Database": "dev",
            "WorkgroupName": "flights",
            "SecretArn": "arn:secret",
        },
    )
    stubber.add_response("describe_statement", {"Id": "s1", "Status": "STARTED"}, {"Id": "s1"})
    stubber.add_response(
        "describe_statement", {"Id": "s1", "Status": "FINISHED", "HasResultSet": True}, {"Id": "s1"}
    )
    stubber.add_response(
        "get_statement_result",
        {
            "ColumnMetadata": [{"name": "n"}, {"name": "name"}, {"name": "missing"}],
            "Records": [[{"longValue": 7}, {"stringValue": "O'Hare"}, {"isNull": True}]],
            "TotalNumRows": 1,
        },
        {"Id": "s1"},
    )
    assert _warehouse(data_api).query("SELECT 1") == [{"n": 7, "name": "O'Hare", "missing": None}]


@pytest.mark.parametrize("status", ["FAILED", "ABORTED"])
def test_failed_and_aborted_statements_end_the_wait_with_an_error(client, status):
    data_api, stubber = client
    stubber.add_response("batch_execute_statement", {"Id": "b1"}, {"Sqls": ["A", "B"], **_fields()})
    stubber.add_response(
        "describe_statement", {"Id": "b1", "Status": status, "Error": "boom"}, {"Id": "b1"}
    )
    with pytest.raises(StatementError, match=f"{status}: boom"):
        _warehouse(data_api).execute_batch(["A", "B"])


def test_throttling_becomes_a_retryable_error(client):
    data_api, stubber = client
    stubber.add_client_error("execute_statement", "ThrottlingException", "slow down")
    with pytest.raises(WarehouseThrottledError):
        _warehouse(data_api).query("SELECT 1")


def test_a_statement_past_its_timeout_is_cancelled(client):
    data_api, stubber = client
    stubber.add_response("execute_statement", {"Id": "s2"}, {"Sql": "SELECT 1", **_fields()})
    stubber.add_response("describe_statement", {"Id": "s2", "Status": "STARTED"}, {"Id": "s2"})
    stubber.add_response("cancel_statement", {"Status": True}, {"Id": "s2"})
    warehouse = DataApiWarehouse(data_api, TARGET, timeout=-1, sleep=lambda _: None)
    with pytest.raises(StatementError, match="cancelled"):
        warehouse.query("SELECT 1")


def test_target_needs_exactly_one_of_workgroup_and_cluster():
    with pytest.raises(ValueError):
        WarehouseTarget(database="dev")
    with pytest.raises(ValueError):
        WarehouseTarget(database="dev", workgroup="w", cluster_id="c")
    cluster = WarehouseTarget.from_mapping(
        {"REDSHIFT_CLUSTER_ID": "c1", "REDSHIFT_DB_USER": "loader"}
    )
    assert cluster.request_fields() == {
        "Database": "dev",
        "ClusterIdentifier": "c1",
        "DbUser": "loader",
    }


def _fields() -> dict:
    return {"Database": "dev", "WorkgroupName": "flights", "SecretArn": ANY}
