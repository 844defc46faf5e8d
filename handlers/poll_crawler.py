"""Lambda: report the crawler's state and its last crawl's outcome."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.crawler import crawler_status
from flightpipe.runtime_info import runtime_versions
from flightpipe.settings import FunctionSettings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(source_key=event.get("key"))
    settings = FunctionSettings.from_environment()
    settings.require("crawler_name")
    status = crawler_status(boto3.client("glue"), settings.crawler_name)
    logger.info("crawler polled", extra=status)
    return {**status, "runtime": runtime_versions()}
