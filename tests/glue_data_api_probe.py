"""Run on the Glue runtime: every Data API call the job makes, validated by that runtime's botocore.

Invoked by tests/test_glue_runtime_data_api.py as
``<glue python> glue_data_api_probe.py`` with ``PYTHONPATH`` holding the job's
libraries (the wheel and ``--additional-python-modules`` as Glue installs them).
It builds the real ``redshift-data`` client the job builds and drives the
product's adapter through each of its calls with botocore's Stubber: parameters
are validated against the client's service model before the stub answers, so a
parameter that this botocore does not know fails here as it fails on Glue.
Prints one JSON document: the SDK versions and, per target mode, "ok" or the error.
"""

import json
import sys

import boto3
import botocore
from botocore.stub import Stubber

from flightpipe.warehouse.data_api import DataApiWarehouse, StatementError, WarehouseTarget

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pipeline-AbCdEf"
TARGETS = {
    "serverless": WarehouseTarget(database="dev", workgroup="flightpipe-dev", secret_arn=SECRET),
    "workgroup": WarehouseTarget(database="dev", workgroup="analytics"),
    "cluster-secret": WarehouseTarget(database="dev", cluster_id="prod", secret_arn=SECRET),
    "cluster-iam": WarehouseTarget(database="dev", cluster_id="prod", db_user="flightpipe"),
}
FINISHED = {"Id": "s-1", "Status": "FINISHED", "HasResultSet": True}


def exercise(target):
    """query, execute_batch and a cancelled wait: every operation the adapter calls."""
    client = boto3.client("redshift-data", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("execute_statement", {"Id": "s-1"})
        stub.add_response("describe_statement", FINISHED)
        stub.add_response(
            "get_statement_result",
            {"ColumnMetadata": [{"name": "n"}], "Records": [[{"longValue": 1}]], "TotalNumRows": 1},
        )
        stub.add_response("batch_execute_statement", {"Id": "s-2"})
        stub.add_response("describe_statement", {**FINISHED, "Id": "s-2", "HasResultSet": False})
        stub.add_response("batch_execute_statement", {"Id": "s-3"})
        stub.add_response("describe_statement", {"Id": "s-3", "Status": "STARTED"})
        stub.add_response("cancel_statement", {"Status": True})
        assert DataApiWarehouse(client, target).query("SELECT 1 AS n") == [{"n": 1}]
        DataApiWarehouse(client, target).execute_batch(["SELECT 1", "SELECT 2"])
        try:
            DataApiWarehouse(client, target, timeout=-1).execute_batch(["SELECT 3"])
            raise AssertionError("a statement still running past the timeout must be cancelled")
        except StatementError:
            pass  # cancelled, as it must be
        stub.assert_no_pending_responses()


def main():
    results = {}
    for mode, target in TARGETS.items():
        try:
            exercise(target)
            results[mode] = "ok"
        except Exception as error:
            results[mode] = f"{type(error).__name__}: {error}"
    report = {
        "python": sys.version.split()[0],
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "modes": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
