"""Lambda: start a crawl of incoming/ now if the crawler is idle (a busy crawler is fine); a
crawler that is missing or refuses the call is reported (status UNAVAILABLE), not raised."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.crawler import request_crawl
from flightpipe.logs import with_run_keys
from flightpipe.runtime_info import runtime_versions
from flightpipe.settings import FunctionSettings

logger = Logger()


@logger.inject_lambda_context
@with_run_keys(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = FunctionSettings.from_environment()
    settings.require("crawler_name")
    result = request_crawl(boto3.client("glue"), settings.crawler_name)
    if result["status"] == "UNAVAILABLE":
        logger.warning("crawler unavailable", extra=result)
    else:
        logger.info("crawl requested", extra=result)
    return {**result, "runtime": runtime_versions()}
