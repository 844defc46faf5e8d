"""Lambda: apply the warehouse DDL and load the airports dimension when it changed."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.settings import FunctionSettings
from flightpipe.warehouse import DataApiWarehouse, WarehouseTarget
from flightpipe.warehouse_setup import prepare_warehouse

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(source_key=event.get("key"))
    settings = FunctionSettings.from_environment()
    settings.require("data_bucket", "copy_role_arn")
    warehouse = DataApiWarehouse(boto3.client("redshift-data"), WarehouseTarget.from_environment())
    result = prepare_warehouse(
        warehouse,
        boto3.client("s3"),
        bucket=settings.data_bucket,
        airports_key=settings.airports_key,
        copy_role_arn=settings.copy_role_arn,
    )
    logger.info("warehouse ready", extra=result)
    return result
