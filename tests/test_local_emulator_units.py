"""Pure pieces of the local emulator: input transformer, crawl inference, template resolver."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pytest

from flightpipe.ops.executions import cause_message, describe_event
from flightpipe_local._patching import PatchSet
from flightpipe_local.deploy import Deployment, DeploymentError, Resolver, Resource, creation_order
from flightpipe_local.moto_events import (
    Sequencers,
    apply_input_transformer,
    install,
    normalise_s3_event,
    target_input,
)
from flightpipe_local.moto_glue_crawler import infer_columns, infer_type, table_name
from flightpipe_local.moto_glue_jobs import error_message, script_argv
from flightpipe_local.moto_redshift_data import field_value

S3_EVENT = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {
        "bucket": {"name": "data"},
        "object": {"key": 'incoming/it\'s "q".csv', "size": 12, "eTag": "abc", "version-id": "v1"},
    },
}


def test_input_transformer_inserts_json_outside_strings_and_escaped_text_inside() -> None:
    transformer = {
        "InputPathsMap": {"key": "$.detail.object.key", "size": "$.detail.object.size"},
        "InputTemplate": '{"key": <key>, "uri": "s3://b/<key>", "size": <size>, "n": "<size>"}',
    }
    document = json.loads(apply_input_transformer(transformer, S3_EVENT))
    assert document == {
        "key": 'incoming/it\'s "q".csv',
        "uri": 's3://b/incoming/it\'s "q".csv',
        "size": 12,
        "n": "12",
    }


def test_input_transformer_renders_a_missing_path_as_null() -> None:
    transformer = {"InputPathsMap": {"v": "$.detail.object.nope"}, "InputTemplate": '{"v": <v>}'}
    assert json.loads(apply_input_transformer(transformer, S3_EVENT)) == {"v": None}


def test_s3_events_carry_etag_spelled_as_aws_spells_it() -> None:
    event = normalise_s3_event(S3_EVENT)
    assert event["detail"]["object"]["etag"] == "abc"
    assert "eTag" not in event["detail"]["object"]
    assert "eTag" in S3_EVENT["detail"]["object"]  # the original is left alone


def test_s3_sequencers_increase_per_key_even_when_the_clock_does_not_move() -> None:
    frozen = 0x0017D2B3E1A2B3C4D5  # a moment in 2021, in nanoseconds
    sequencers = Sequencers(clock=lambda: frozen)
    first = sequencers.next("data", "incoming/a.csv")
    second = sequencers.next("data", "incoming/a.csv")
    other = sequencers.next("data", "incoming/b.csv")
    assert (first, second, other) == ("0017D2B3E1A2B3C4D5", "0017D2B3E1A2B3C4D6", first)
    later = Sequencers()  # a restarted stack: the clock has moved on
    assert int(later.next("data", "incoming/a.csv"), 16) > int(second, 16)


def test_a_given_sequencer_replaces_moto_s_constant_one_in_a_copy() -> None:
    original = {**S3_EVENT, "detail": {**S3_EVENT["detail"]}}
    original["detail"]["object"] = {**S3_EVENT["detail"]["object"], "sequencer": "617f08299329d189"}
    event = normalise_s3_event(original, sequencer="0055AED6DCD90281E5")
    assert event["detail"]["object"]["sequencer"] == "0055AED6DCD90281E5"
    assert original["detail"]["object"]["sequencer"] == "617f08299329d189"


def test_each_s3_event_reaching_eventbridge_carries_its_own_increasing_sequencer() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        patches = PatchSet()
        install(patches)
        try:
            s3 = boto3.client("s3", region_name="us-east-1")
            sqs = boto3.client("sqs", region_name="us-east-1")
            events = boto3.client("events", region_name="us-east-1")
            s3.create_bucket(Bucket="data")
            s3.put_bucket_notification_configuration(
                Bucket="data",
                NotificationConfiguration={"EventBridgeConfiguration": {}},
            )
            queue = sqs.create_queue(QueueName="events")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
            events.put_rule(Name="s3", EventPattern=json.dumps({"source": ["aws.s3"]}))
            events.put_targets(
                Rule="s3", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}]
            )
            for body in (b"1", b"2", b"3"):
                s3.put_object(Bucket="data", Key="incoming/a.csv", Body=body)
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        finally:
            patches.restore()
    created = [json.loads(m["Body"]) for m in messages]
    sequencers = [
        event["detail"]["object"]["sequencer"]
        for event in created
        if event["detail-type"] == "Object Created"
    ]
    assert len(sequencers) == 3 and "617f08299329d189" not in sequencers
    assert sorted(sequencers, key=lambda text: int(text, 16)) == sequencers
    assert len(set(sequencers)) == 3 and all(len(text) == 18 for text in sequencers)


def test_target_without_input_settings_receives_the_whole_event() -> None:
    assert json.loads(target_input({"Arn": "x"}, S3_EVENT)) == S3_EVENT
    assert json.loads(target_input({"InputPath": "$.detail.bucket"}, S3_EVENT)) == {"name": "data"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", ""], "bigint"),
        (["1.5", "2"], "double"),
        (["AA", "1"], "string"),
        ([""], "string"),
    ],
)
def test_crawler_types_columns_from_sample_values(values: list[str], expected: str) -> None:
    assert infer_type(values) == expected


def test_crawler_infers_lower_cased_columns_from_the_header() -> None:
    columns = infer_columns(b"\xef\xbb\xbfCarrier,DepDelay, Note \nAA,-11.00,x\nDL,,y\n", "f.csv")
    assert columns == [
        {"Name": "carrier", "Type": "string"},
        {"Name": "depdelay", "Type": "double"},
        {"Name": "note", "Type": "string"},
    ]
    assert table_name("s3://b/incoming/") == "incoming"
    assert table_name("incoming/My-File.CSV") == "my_file"


def test_job_scripts_get_glue_style_arguments_without_glue_s_own_settings(tmp_path: Path) -> None:
    script = tmp_path / "flight_etl.py"
    arguments = {
        "library-set": "analytics",
        "--additional-python-modules": "boto3==1.42.97",
        "--bucket": "b",
        "--key": "k",
    }
    argv = script_argv(script, "job", "jr_1", arguments)
    assert argv == [
        str(script),
        "--bucket",
        "b",
        "--key",
        "k",
        "--JOB_RUN_ID",
        "jr_1",
        "--JOB_NAME",
        "job",
    ]


def test_data_api_records_use_the_documented_value_fields() -> None:
    assert field_value(None) == {"isNull": True}
    assert field_value(True) == {"booleanValue": True}
    assert field_value(7) == {"longValue": 7}
    assert field_value(1.5) == {"doubleValue": 1.5}
    assert field_value(decimal.Decimal("1.50")) == {"stringValue": "1.50"}
    assert field_value(dt.date(2023, 1, 2)) == {"stringValue": "2023-01-02"}
    assert field_value(dt.datetime(2023, 1, 2, 3, 4, 5)) == {"stringValue": "2023-01-02 03:04:05"}


def resolver(template: dict) -> Resolver:
    deployment = Deployment("stack-dev", "us-east-1")
    deployment.resources["Bucket"] = Resource(
        "Bucket", "AWS::S3::Bucket", "data", {"Arn": "arn:aws:s3:::data"}
    )
    return Resolver(template, deployment, {})


def test_resolver_evaluates_sub_getatt_join_if_and_novalue() -> None:
    template = {
        "Parameters": {"Existing": {"Type": "String", "Default": ""}},
        "Conditions": {"Create": {"Fn::Equals": [{"Ref": "Existing"}, ""]}},
    }
    r = resolver(template)
    assert r.resolve({"Fn::Sub": "s3://${Bucket}/x ${AWS::Region} ${!Literal}"}) == (
        "s3://data/x us-east-1 ${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${A}-${Bucket.Arn}", {"A": {"Ref": "AWS::StackName"}}]}) == (
        "stack-dev-arn:aws:s3:::data"
    )
    assert r.resolve({"Fn::Join": ["/", ["a", {"Ref": "Bucket"}]]}) == "a/data"
    assert r.resolve({"Fn::If": ["Create", "new", {"Ref": "Existing"}]}) == "new"
    assert r.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {
        "b": [1]
    }


def test_resolver_names_what_it_cannot_resolve() -> None:
    with pytest.raises(DeploymentError, match="Nowhere"):
        resolver({}).resolve({"Ref": "Nowhere"})
    with pytest.raises(DeploymentError, match="attributes known locally"):
        resolver({}).resolve({"Fn::GetAtt": ["Bucket", "Missing"]})


def test_resources_are_created_after_what_they_refer_to() -> None:
    resources = {
        "Rule": {"Properties": {"Targets": [{"Arn": {"Ref": "Machine"}}]}},
        "Machine": {"Properties": {"DefinitionString": {"Fn::Sub": "${Fn.Arn}"}}},
        "Fn": {"Properties": {}, "DependsOn": "Role"},
        "Role": {"Properties": {}},
    }
    order = creation_order(resources)
    assert order.index("Role") < order.index("Fn") < order.index("Machine") < order.index("Rule")


def test_progress_lines_name_states_and_failure_causes() -> None:
    entered = {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "RunEtl"}}
    assert describe_event(entered) == "-> RunEtl"
    glue_cause = json.dumps({"JobRunState": "FAILED", "ErrorMessage": "JobFailed: missing columns"})
    assert cause_message(glue_cause) == "JobFailed: missing columns"
    lambda_cause = json.dumps({"errorType": "X", "errorMessage": "boom"})
    assert cause_message(lambda_cause) == "boom"


def test_a_failed_job_run_reports_the_message_of_the_script_s_last_exception() -> None:
    output = (
        'INFO loading\nTraceback (most recent call last):\n  File "x.py", line 3\n'
        "botocore.exceptions.ParamValidationError: Parameter validation failed:\n"
        "flightpipe.etl.job.JobFailed: file rejected: no header\n"
    )
    assert error_message(output, 1) == "file rejected: no header"
    assert error_message("Killed\n", 137) == "script exited with status 137"
