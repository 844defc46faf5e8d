"""Lambda: the notice of an execution, a subject and one JSON document, from its outcome and
the job's summary (the state machine's Compose*Notice steps; the Notify* steps publish it)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flightpipe.logs import with_run_keys
from flightpipe.notices import NoticeRequest, compose_notice
from flightpipe.runtime_info import runtime_versions
from flightpipe.settings import FunctionSettings

logger = Logger()


@logger.inject_lambda_context
@with_run_keys(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = FunctionSettings.from_environment()
    settings.require("data_bucket")
    request = NoticeRequest.from_payload(event)
    notice = compose_notice(boto3.client("s3"), request, settings.data_bucket)
    logger.info("notice composed", extra={"subject": notice["subject"]})
    return {**notice, "runtime": runtime_versions()}
