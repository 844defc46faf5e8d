"""Which S3 keys start the pipeline: one table for the packaged rule and the emulator's matching.

Every object created under ``incoming/`` of the data bucket starts an execution, whatever its
name, case, compression or depth, so that each ends as a recorded outcome; nothing outside
``incoming/`` starts one. EventBridge matching is case-sensitive.

:func:`documented_match` evaluates an event pattern with the EventBridge operators as AWS
documents them (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html): written from
the documentation, independent of moto, so the template test checks the pattern itself and the
emulator test checks that moto matches as EventBridge does.
"""

from __future__ import annotations

import re
from typing import Any

BUCKET = "flightpipe-data-bucket"

# (object key, starts an execution)
KEYS: list[tuple[str, bool]] = [
    ("incoming/flights.csv", True),
    ("incoming/UPPER.CSV", True),
    ("incoming/Mixed.Csv", True),
    ("incoming/zipped.csv.gz", True),
    ("incoming/FLIGHTS.CSV.GZ", True),
    ("incoming/flights.csv.bz2", True),
    ("incoming/flights.zip", True),
    ("incoming/flights.txt", True),
    ("incoming/flights", True),
    ("incoming/.hidden", True),
    ("incoming/2024/01/flights.csv", True),
    ("incoming/my flights+1 (copy) ✈.csv", True),
    ("incoming/my+flights%2B1+%28copy%29.csv", True),
    ("incoming/", True),  # a console "folder": recorded as rejected, never ignored in silence
    ("incoming//double-slash.csv", True),
    ("dimensions/airports.csv", False),
    ("staging/incoming/flights.csv", False),
    ("rejected/incoming/flights.csv", False),
    ("reports/exec-1.json", False),
    ("glue/flight_etl.py", False),
    ("Incoming/flights.csv", False),
    ("INCOMING/FLIGHTS.CSV", False),
    ("incoming", False),
    ("incoming.csv", False),
    ("incomingx/flights.csv", False),
    ("x/incoming/flights.csv", False),
    ("flights.csv", False),
    (" incoming/flights.csv", False),
]


def object_created(key: str, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict:
    """An S3 ``Object Created`` event on the default bus, as EventBridge receives it from S3."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2021-11-12T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def documented_match(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern``: every field of the pattern (AND), each field's
    list of values and operators (OR); strings compare case-sensitively."""
    for name, expected in pattern.items():
        if name == "$or":
            if not any(documented_match(branch, event) for branch in expected):
                return False
            continue
        present = isinstance(event, dict) and name in event
        value = event.get(name) if present else None
        if isinstance(expected, dict):
            if not present or not documented_match(expected, value):
                return False
            continue
        values = value if isinstance(value, list) else [value]
        if not any(_matches_one(item, present, v) for item in expected for v in values):
            return False
    return True


def _matches_one(matcher: Any, present: bool, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return present and value == matcher and type(value) is type(matcher)
    ((operator, operand),) = matcher.items()
    if operator == "exists":
        return present == operand
    if not present:
        return False
    if operator == "anything-but":
        if isinstance(operand, dict):
            return isinstance(value, str) and not _string_operator(operand, value)
        operands = operand if isinstance(operand, list) else [operand]
        return value not in operands
    return isinstance(value, str) and _string_operator(matcher, value)


def _string_operator(matcher: dict[str, Any], value: str) -> bool:
    ((operator, operand),) = matcher.items()
    ignore_case = isinstance(operand, dict) and "equals-ignore-case" in operand
    text = operand["equals-ignore-case"] if ignore_case else operand
    subject, text = (value.casefold(), text.casefold()) if ignore_case else (value, text)
    if operator == "prefix":
        return subject.startswith(text)
    if operator == "suffix":
        return subject.endswith(text)
    if operator == "equals-ignore-case":
        return value.casefold() == operand.casefold()
    if operator == "wildcard":
        parts = re.split(r"(?<!\\)\*", operand)
        regex = ".*".join(re.escape(part.replace("\\*", "*")) for part in parts)
        return re.fullmatch(regex, value, flags=re.DOTALL) is not None
    raise AssertionError(f"operator not covered by this evaluator: {matcher}")
