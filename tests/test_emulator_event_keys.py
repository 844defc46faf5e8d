"""The emulator's switch for URL-encoded keys in S3 events; the runner finds their executions."""

from __future__ import annotations

import copy
import json

from flightpipe.execution_input import ExecutionInput
from flightpipe.ops.executions import is_execution_of
from flightpipe_local.moto_events import apply_input_transformer, encode_s3_key, normalise_s3_event

KEY = "incoming/my flights+1 (copy) ✈.csv"
S3_EVENT = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {
        "bucket": {"name": "data"},
        "object": {"key": KEY, "size": 10, "eTag": "abc", "version-id": "v1"},
    },
}
# The rule's input transformer in serverless.yml, in short.
TRANSFORMER = {
    "InputPathsMap": {"key": "$.detail.object.key", "etag": "$.detail.object.etag"},
    "InputTemplate": '{"key": "<key>", "etag": "<etag>"}',
}


def test_keys_are_encoded_as_s3_classic_notifications_encode_them() -> None:
    assert encode_s3_key("red flower.jpg") == "red+flower.jpg"  # AWS's documented example
    assert encode_s3_key(KEY) == "incoming/my+flights%2B1+%28copy%29+%E2%9C%88.csv"


def test_the_switch_off_leaves_the_key_as_s3_stored_it() -> None:
    event = normalise_s3_event(S3_EVENT)
    assert event["detail"]["object"]["key"] == KEY
    assert event["detail"]["object"]["etag"] == "abc"


def test_the_switch_on_encodes_the_key_the_rule_passes_on_without_touching_the_original() -> None:
    original = copy.deepcopy(S3_EVENT)
    event = normalise_s3_event(S3_EVENT, encode_keys=True)
    assert event["detail"]["object"]["key"] == encode_s3_key(KEY)
    assert event["detail"]["object"]["etag"] == "abc"
    assert original == S3_EVENT  # moto hands the same event to every rule: never encoded twice
    rendered = json.loads(apply_input_transformer(TRANSFORMER, event))
    assert rendered == {"key": encode_s3_key(KEY), "etag": "abc"}


def test_events_from_other_sources_are_not_encoded() -> None:
    event = {"source": "custom", "detail": {"object": {"key": "a b"}}}
    assert normalise_s3_event(event, encode_keys=True) is event


def test_the_runner_finds_an_execution_by_its_literal_or_encoded_key() -> None:
    def names_the_upload(key: object) -> bool:
        document = ExecutionInput(bucket="b", key=key, version_id="v1")  # type: ignore[arg-type]
        return is_execution_of(document, KEY, "v1", "abc")

    assert names_the_upload(KEY)
    assert names_the_upload(encode_s3_key(KEY))
    assert not names_the_upload("incoming/other.csv")
    assert not names_the_upload(None)
