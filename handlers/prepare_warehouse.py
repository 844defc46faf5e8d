"""Lambda: bootstrap the warehouse schema and load the airports dimension when it changed;
given ``{"record_failure": {...}}`` (the state machine's RecordFailure step), or the status
change event of an execution that was aborted or timed out (the RecordAbandonedExecution
state machine), record instead the FAILED ledger row of an execution whose job wrote none."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.logs import with_run_keys
from flightpipe.runtime_info import runtime_versions
from flightpipe.settings import FunctionSettings
from flightpipe.warehouse import DataApiWarehouse, WarehouseTarget
from flightpipe.warehouse.ledger import failure_to_record, record_failed_execution
from flightpipe.warehouse.setup import prepare_warehouse

logger = Logger()


@logger.inject_lambda_context
@with_run_keys(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records_failure, failure = failure_to_record(event)
    settings = FunctionSettings.from_environment()
    client = boto3.client("redshift-data")
    target = WarehouseTarget.from_environment()
    # Statement waits end before the function's own timeout (serverless.yml), whatever it is.
    warehouse = DataApiWarehouse.within_lambda(client, target, context)
    if records_failure:
        if failure is None:
            logger.warning("the execution's input names no file: no ledger row to write")
            return {"recorded": False, "runtime": runtime_versions()}
        recorded = record_failed_execution(warehouse, failure)
        logger.info("execution failure recorded", extra=recorded)
        return {**recorded, "runtime": runtime_versions()}
    settings.require("data_bucket", "copy_role_arn")
    admin = None
    if settings.admin_secret_arn:
        admin = DataApiWarehouse.within_lambda(
            client, target.as_user_of_secret(settings.admin_secret_arn), context
        )
    result = prepare_warehouse(
        warehouse,
        boto3.client("s3"),
        bucket=settings.data_bucket,
        airports_key=settings.airports_key,
        copy_role_arn=settings.copy_role_arn,
        admin=admin,
        target=target,
    )
    logger.info("warehouse ready", extra=result)
    return {**result, "runtime": runtime_versions()}
