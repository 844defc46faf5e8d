"""Lambda: where the crawl covering the uploaded file stands (CRAWLED, WAITING, FAILED or
UNAVAILABLE) and, while WAITING, when to poll again (next_poll_s)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.crawler import crawl_for_object
from flightpipe.logs import with_run_keys
from flightpipe.runtime_info import runtime_versions
from flightpipe.settings import FunctionSettings

logger = Logger()


@logger.inject_lambda_context
@with_run_keys(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = FunctionSettings.from_environment()
    settings.require("crawler_name")
    status = crawl_for_object(
        boto3.client("glue"),
        boto3.client("s3"),
        settings.crawler_name,
        bucket=event["bucket"],
        key=event["key"],
        version_id=event.get("version_id") or None,
    )
    if status["status"] == "UNAVAILABLE":
        logger.warning("crawler unavailable", extra=status)
    else:
        logger.info("crawl polled", extra=status)
    return {**status, "runtime": runtime_versions()}
