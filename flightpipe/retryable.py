"""Errors a caller may retry with backoff, named so Step Functions can match them."""

from __future__ import annotations

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)


class ServiceThrottledError(RuntimeError):
    """An AWS API throttled the call. The state machine retries this error type."""


def is_throttling(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code", "") in THROTTLING_CODES


def raise_if_throttled(error: ClientError) -> None:
    """Re-raise a throttling ``ClientError`` as :class:`ServiceThrottledError`."""
    if is_throttling(error):
        raise ServiceThrottledError(str(error)) from error
