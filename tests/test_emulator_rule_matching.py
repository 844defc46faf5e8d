"""The emulator starts the pipeline for exactly the keys EventBridge would: the rule_keys table.

The rule's pattern comes from the packaged template; uploads go through moto's S3, its
EventBridge notification and the emulator's rule delivery (moto_events), as in the local
stack. moto's matcher is also checked against the documented semantics of each operator
the rule may use, case included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import rule_keys
from moto import mock_aws
from moto.events.models import EventPattern

from flightpipe_local import moto_events
from flightpipe_local._patching import PatchSet
from flightpipe_local.template import package

REPO_ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture(scope="module")
def packaged_rule() -> dict[str, Any]:
    """The rule's properties as packaged, the data bucket's name in place of its Ref."""
    resources = package(REPO_ROOT).template["Resources"]
    # The rule that starts the state machine (the others watch the Glue jobs for alarms).
    (rule,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and {"Ref": "PipelineStateMachine"} in [t["Arn"] for t in r["Properties"]["Targets"]]
    ]
    text = json.dumps(rule["Properties"])
    return json.loads(text.replace(json.dumps({"Ref": "DataBucket"}), json.dumps(rule_keys.BUCKET)))


def started_keys(rule: dict[str, Any], keys: list[str], encode_keys: bool = False) -> list[str]:
    """The keys whose upload started an execution through the emulator's rule delivery."""
    started: list[str] = []
    patches = PatchSet()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=rule_keys.BUCKET)
        s3.put_bucket_notification_configuration(
            Bucket=rule_keys.BUCKET,
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="pipeline",
            definition=PASS_MACHINE,
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="incoming", EventPattern=json.dumps(rule["EventPattern"]))
        (target,) = rule["Targets"]
        events.put_targets(
            Rule="incoming",
            Targets=[
                {
                    "Id": "pipeline",
                    "Arn": machine,
                    "InputTransformer": target["InputTransformer"],
                }
            ],
        )
        moto_events.install(
            patches,
            on_start=lambda _rule, _arn, document: started.append(document["key"]),
            encode_keys=encode_keys,
        )
        try:
            for key in keys:
                s3.put_object(Bucket=rule_keys.BUCKET, Key=key, Body=b"a,b\n1,2\n")
        finally:
            patches.restore()
    return started


@pytest.mark.template
@pytest.mark.parametrize("encode_keys", [False, True], ids=["keys-as-stored", "encoded-keys"])
def test_uploads_start_the_pipeline_for_exactly_the_keys_eventbridge_matches(
    packaged_rule: dict[str, Any], encode_keys: bool
) -> None:
    keys = [key for key, _ in rule_keys.KEYS if key]
    started = started_keys(packaged_rule, keys, encode_keys)
    expected = [key for key, starts in rule_keys.KEYS if starts]
    if encode_keys:
        expected = [moto_events.encode_s3_key(key) for key in expected]
    assert started == expected


@pytest.mark.template
@pytest.mark.parametrize(("key", "starts"), rule_keys.KEYS, ids=[k for k, _ in rule_keys.KEYS])
def test_moto_matches_the_packaged_pattern_as_eventbridge_does(
    packaged_rule: dict[str, Any], key: str, starts: bool
) -> None:
    pattern = EventPattern.load(json.dumps(packaged_rule["EventPattern"]))
    assert pattern.matches_event(rule_keys.object_created(key)) is starts


# Every string operator of https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
# the rule could use to say "under incoming/" or "a CSV, whatever its case".
OPERATORS = [
    {"prefix": "incoming/"},
    {"prefix": {"equals-ignore-case": "INCOMING/"}},
    {"suffix": ".csv"},
    {"suffix": {"equals-ignore-case": ".CSV"}},
    {"equals-ignore-case": "incoming/flights.csv"},
    {"wildcard": "incoming/*"},
    {"wildcard": "incoming/*.csv"},
    {"anything-but": {"prefix": "incoming/"}},
    {"anything-but": {"suffix": ".csv"}},
    {"anything-but": {"wildcard": "incoming/*"}},
    {"anything-but": {"equals-ignore-case": "incoming/flights.csv"}},
]


@pytest.mark.parametrize("operator", OPERATORS, ids=[json.dumps(o) for o in OPERATORS])
def test_moto_evaluates_each_string_operator_as_documented_case_included(
    operator: dict[str, Any],
) -> None:
    pattern = {"detail": {"object": {"key": [operator]}}}
    matcher = EventPattern.load(json.dumps(pattern))
    disagreements = [
        key
        for key, _ in rule_keys.KEYS
        if matcher.matches_event(rule_keys.object_created(key))
        != rule_keys.documented_match(pattern, rule_keys.object_created(key))
    ]
    assert disagreements == []
