"""The places in moto 5.2.5 that the local stack patches are still where and what they were.

Each patch replaces a private attribute of moto. When moto moves one, these tests
fail with the name of the seam, before any end-to-end run fails obscurely.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import moto
import pytest
from moto import mock_aws

from flightpipe_local import (
    moto_events,
    moto_glue_crawler,
    moto_glue_jobs,
    moto_iam,
    moto_lambda,
    moto_redshift_data,
    moto_sfn_credentials,
    moto_sfn_glue,
    moto_sfn_overheads,
    moto_sfn_status_events,
    moto_sfn_time,
    moto_sns,
)
from flightpipe_local._patching import PatchSet
from flightpipe_local.iam.enforcement import Authorizer
from flightpipe_local.iam.sessions import AssumeRoleRefused, RoleSessions

REGION = "us-east-1"


@contextmanager
def patched() -> Iterator[PatchSet]:
    """A patch set restored when the block ends, so later tests see moto unchanged."""
    patches = PatchSet()
    try:
        yield patches
    finally:
        patches.restore()


def parameters(owner: object, name: str) -> list[str]:
    assert name in vars(owner), f"moto seam moved: {owner!r} no longer defines {name}"
    return list(inspect.signature(vars(owner)[name]).parameters)


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5"


class _RecordingRuntimes:
    """The runtimes the Lambda patch hands invocations to: records them, answers an echo."""

    def __init__(self) -> None:
        self.invocations: list[tuple[str, object]] = []

    def invoke(self, function: object, document: object) -> tuple[str, bool, str]:
        self.invocations.append((function.function_name, document))
        return json.dumps({"echo": document}), False, ""


def test_lambda_seam_an_invoke_reaches_the_patched_invocation_with_its_payload() -> None:
    assert parameters(moto_lambda.SEAM_OWNER, moto_lambda.SEAM_NAME) == ["self", "event"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def main(event, context):\n    return event\n")
    runtimes = _RecordingRuntimes()
    with mock_aws(), patched() as patches:
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="fn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        client.create_function(
            FunctionName="fn",
            Runtime="python3.12",
            Role=role,
            Handler="handler.main",
            Code={"ZipFile": code.getvalue()},
        )
        moto_lambda.install(patches, runtimes)
        answer = client.invoke(FunctionName="fn", Payload=json.dumps({"key": "incoming/a.csv"}))
    assert runtimes.invocations == [("fn", {"key": "incoming/a.csv"})]
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"echo": {"key": "incoming/a.csv"}}


def test_lambda_seam_a_function_keeps_its_logging_config_and_reports_it() -> None:
    assert parameters(moto_lambda.SEAM_OWNER, "__init__")[:3] == ["self", "account_id", "spec"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def main(event, context):\n    return event\n")
    with mock_aws(), patched() as patches:
        moto_lambda.install(patches, _RecordingRuntimes())
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="fn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        for name, logging_config in (("json", {"LogFormat": "JSON"}), ("text", None)):
            client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="handler.main",
                Code={"ZipFile": code.getvalue()},
                **({"LoggingConfig": logging_config} if logging_config else {}),
            )
        as_json = client.get_function_configuration(FunctionName="json")["LoggingConfig"]
        as_text = client.get_function_configuration(FunctionName="text")["LoggingConfig"]
    assert as_json == {
        "LogFormat": "JSON",
        "LogGroup": "/aws/lambda/json",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
    }
    assert as_text == {"LogFormat": "Text", "LogGroup": "/aws/lambda/text"}
    assert moto_lambda.logging_environment(as_json) == {
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
    }
    assert moto_lambda.logging_environment(as_text) == {}


def test_events_seam_send_to_targets_takes_event_and_transform_flag() -> None:
    assert parameters(moto_events.SEAM_OWNER, moto_events.SEAM_NAME) == [
        "self",
        "original_event",
        "transform_input",
    ]


def test_events_seam_s3_hands_each_rule_its_event_untransformed() -> None:
    """S3's EventBridge delivery calls ``Rule.send_to_targets`` with the raw event and
    ``transform_input=False``; the patch applies a state machine target's transformer itself."""
    delivered = []

    def send_to_targets(self, original_event, transform_input=True):
        detail = original_event["detail"]
        delivered.append((self.name, detail["reason"], detail["object"]["key"], transform_input))

    with mock_aws(), patched() as patches:
        patches.replace(moto_events.SEAM_OWNER, moto_events.SEAM_NAME, send_to_targets)
        boto3.client("events", region_name=REGION).put_rule(
            Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"]})
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data")
        s3.put_bucket_notification_configuration(
            Bucket="data", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        s3.put_object(Bucket="data", Key="incoming/a.csv", Body=b"x\n1\n")
    # moto also sends an ObjectTagging event for a put, which no rule of the pipeline matches.
    assert [d for d in delivered if d[1] == "ObjectCreated"] == [
        ("uploads", "ObjectCreated", "incoming/a.csv", False)
    ]
    assert {d[3] for d in delivered} == {False}


def test_step_functions_glue_seam_is_the_callback_integration_pattern() -> None:
    assert parameters(moto_sfn_glue.SEAM_OWNER.__mro__[1], moto_sfn_glue.SEAM_NAME) == [
        "self",
        "env",
        "resource_runtime_part",
        "normalised_parameters",
        "state_credentials",
    ]
    assert "_sync_to_start_job_run" in vars(moto_sfn_glue.SEAM_OWNER)
    names = getattr(moto_sfn_glue.ERROR_NAMES_OWNER, moto_sfn_glue.ERROR_NAMES_NAME)
    assert isinstance(names, dict)
    assert "_normalise_service_error_name" in vars(
        moto_sfn_glue.ERROR_NAMES_OWNER.StateTaskServiceAwsSdk
    )


def test_step_functions_clock_seams_are_wait_interval_and_retrier_sleep() -> None:
    assert parameters(moto_sfn_time.WAIT_OWNER, moto_sfn_time.WAIT_NAME) == [
        "self",
        "env",
        "wait_seconds",
    ]


def test_step_functions_clock_patch_shortens_a_wait_state_and_a_retry_interval() -> None:
    """A 1000 s Wait and a 1000 s Retry interval: unpatched, the execution would take 2000 s."""
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 1000, "Next": "Read"},
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": "no-such-bucket", "Key": "k"},
                "Retry": [
                    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1000, "MaxAttempts": 1}
                ],
                "End": True,
            },
        },
    }
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config), patched() as patches:
        moto_sfn_time.install(patches, scale=1e-4, retry_scale=1e-4)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="clock",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/clock",
        )["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline, "Wait or Retry ran on moto's own clock"
            time.sleep(0.05)
        events = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in events if e["type"] == "TaskScheduled"] == ["TaskScheduled"] * 2


def test_step_functions_status_event_seams_are_termination_and_the_stop_handler() -> None:
    owner, name = moto_sfn_status_events.SEAM_OWNER, moto_sfn_status_events.SEAM_NAME
    assert parameters(owner, name) == ["self"]
    stop_owner, stop_name = (
        moto_sfn_status_events.STOP_SEAM_OWNER,
        moto_sfn_status_events.STOP_SEAM_NAME,
    )
    assert parameters(stop_owner, stop_name) == ["self"]
    # moto's handler still drops StopExecution's error and cause: the patch is still needed.
    assert '_get_param("cause")' not in inspect.getsource(stop_owner.__dict__[stop_name])


def test_a_status_change_detail_has_the_fields_aws_documents() -> None:
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    detail = moto_sfn_status_events.status_change_detail(
        {
            "executionArn": "arn:exec",
            "stateMachineArn": "arn:machine",
            "name": "run-1",
            "status": "ABORTED",
            "startDate": start,
            "stopDate": start + dt.timedelta(seconds=2),
            "input": '{"key": "incoming/a.csv"}',
            "cause": "stopped by hand",
        }
    )
    assert detail == {
        "executionArn": "arn:exec",
        "stateMachineArn": "arn:machine",
        "name": "run-1",
        "status": "ABORTED",
        "startDate": 1767323045000,
        "stopDate": 1767323047000,
        "input": '{"key": "incoming/a.csv"}',
        "output": None,
        "inputDetails": {"included": True},
        "outputDetails": None,
        "error": None,
        "cause": "stopped by hand",
    }


def test_glue_crawler_seams_start_and_describe() -> None:
    assert parameters(moto_glue_crawler.SEAM_OWNER, moto_glue_crawler.START_NAME) == ["self"]
    assert parameters(moto_glue_crawler.SEAM_OWNER, moto_glue_crawler.DESCRIBE_NAME) == ["self"]
    crawl = moto_glue_crawler.glue_models.FakeCrawl("c")
    assert crawl.model_name == moto_glue_crawler.CRAWL_MODEL


def test_glue_job_seams_start_run_and_describe_run() -> None:
    assert parameters(moto_glue_jobs.SEAM_OWNER, moto_glue_jobs.START_NAME)[:3] == [
        "self",
        "allocated_capacity",
        "max_capacity",
    ]
    assert "arguments" in parameters(moto_glue_jobs.SEAM_OWNER, moto_glue_jobs.START_NAME)
    assert parameters(moto_glue_jobs.RUN_OWNER, moto_glue_jobs.DESCRIBE_NAME) == ["self"]
    run = moto_glue_jobs.RUN_OWNER("job")
    assert run.model_name == moto_glue_jobs.RUN_MODEL


def test_redshift_data_seams_are_the_response_handlers() -> None:
    for name in moto_redshift_data.REPLACED:
        assert parameters(moto_redshift_data.SEAM_OWNER, name) == ["self"]
    for name in moto_redshift_data.ADDED:
        assert name not in vars(moto_redshift_data.SEAM_OWNER), f"moto now implements {name}"


def test_redshift_data_operations_are_served_by_the_handlers_of_those_names() -> None:
    def handler(name):
        return lambda self: (200, {}, json.dumps({"Id": name, "Status": True}))

    target = {"Database": "dev", "WorkgroupName": "flightpipe-wg"}
    with mock_aws(), patched() as patches:
        for name in moto_redshift_data.REPLACED:
            patches.replace(moto_redshift_data.SEAM_OWNER, name, handler(name))
        for name in moto_redshift_data.ADDED:
            patches.add(moto_redshift_data.SEAM_OWNER, name, handler(name))
        client = boto3.client("redshift-data", region_name=REGION)
        answered = [
            client.execute_statement(Sql="SELECT 1", **target)["Id"],
            client.batch_execute_statement(Sqls=["SELECT 1"], **target)["Id"],
            client.describe_statement(Id="s")["Id"],
            client.get_statement_result(Id="s")["ResponseMetadata"]["HTTPStatusCode"],
            client.cancel_statement(Id="s")["Status"],
        ]
    assert answered == [
        "execute_statement",
        "batch_execute_statement",
        "describe_statement",
        200,
        True,
    ]


def test_sns_seam_topic_publish_takes_message_and_subject() -> None:
    assert parameters(moto_sns.SEAM_OWNER, moto_sns.SEAM_NAME)[:3] == ["self", "message", "subject"]


def test_sns_delivers_to_a_queue_only_when_its_policy_lets_sns_send_for_the_topic() -> None:
    assert parameters(moto_sns.DELIVERY_OWNER, moto_sns.DELIVERY_NAME)[:2] == ["self", "message"]
    with mock_aws(), patched() as patches:
        moto_sns.install(patches, moto_sns.NoticeBoard())
        sns, sqs = boto3.client("sns", REGION), boto3.client("sqs", REGION)
        topic = sns.create_topic(Name="notices")["TopicArn"]
        urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("open", "shut")}
        arns = {
            name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            for name, url in urls.items()
        }
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arns["open"],
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
        }
        policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        sqs.set_queue_attributes(QueueUrl=urls["open"], Attributes={"Policy": policy})
        for arn in arns.values():
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        sns.publish(TopicArn=topic, Subject="s", Message='{"status": "SUCCEEDED"}')
        received = {
            name: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
            for name, url in urls.items()
        }
    assert [json.loads(m["Body"])["Message"] for m in received["open"]] == [
        '{"status": "SUCCEEDED"}'
    ]
    assert received["shut"] == []


def test_patch_set_restores_what_it_replaced_and_removes_what_it_added() -> None:
    class Owner:
        def method(self) -> str:
            return "original"

    patches = PatchSet()
    patches.replace(Owner, "method", lambda self: "patched")
    patches.add(Owner, "extra", 1)
    assert Owner().method() == "patched" and Owner.extra == 1
    patches.restore()
    assert Owner().method() == "original"
    assert not hasattr(Owner, "extra")


def test_patch_set_refuses_a_seam_that_is_not_defined_there() -> None:
    class Owner:
        pass

    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        PatchSet().replace(Owner, "missing", None)


def test_glue_crawls_seams_parse_filters_and_describe_crawls() -> None:
    from flightpipe_local import moto_glue_crawls

    assert parameters(moto_glue_crawls.SEAM_OWNER, moto_glue_crawls.SEAM_NAME) == ["filters"]
    parsed = []
    original = vars(moto_glue_crawls.SEAM_OWNER)[moto_glue_crawls.SEAM_NAME]

    def validate_crawl_filters(filters):
        parsed.append([(f["FieldName"], f["FieldValue"]) for f in filters])
        return original(filters)

    start_after = {"FieldName": "START_TIME", "FilterOperator": "GT", "FieldValue": "0"}
    with mock_aws(), patched() as patches:
        patches.replace(
            moto_glue_crawls.SEAM_OWNER, moto_glue_crawls.SEAM_NAME, validate_crawl_filters
        )
        glue = boto3.client("glue", region_name=REGION)
        glue.create_crawler(
            Name="c", Role="r", Targets={"S3Targets": [{"Path": "s3://data/incoming/"}]}
        )
        glue.list_crawls(CrawlerName="c", Filters=[start_after])
    assert parsed == [[("START_TIME", "0")]]  # ListCrawls parses its filters there
    assert parameters(moto_glue_crawls.CRAWL_OWNER, moto_glue_crawls.CRAWL_DESCRIBE) == ["self"]
    assert moto_glue_crawls.iso_from_epoch_ms("1764302400000") == "2025-11-28T04:00:00.000000"


def _multipart_upload_events(patch: bool) -> list[str]:
    """The ``eventName`` of each S3 notification one multipart upload sends to a queue."""
    from flightpipe_local import moto_s3_multipart

    with mock_aws(), patched() as patches:
        if patch:
            moto_s3_multipart.install(patches)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="events")["QueueUrl"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data")
        s3.put_bucket_notification_configuration(
            Bucket="data",
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": "arn:aws:sqs:us-east-1:123456789012:events",
                        "Events": ["s3:ObjectCreated:*"],
                    }
                ]
            },
        )
        upload = s3.create_multipart_upload(Bucket="data", Key="incoming/big.csv")["UploadId"]
        part = s3.upload_part(
            Bucket="data", Key="incoming/big.csv", UploadId=upload, PartNumber=1, Body=b"x\n1\n"
        )
        s3.complete_multipart_upload(
            Bucket="data",
            Key="incoming/big.csv",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    records = [record for m in messages for record in json.loads(m["Body"]).get("Records", [])]
    return sorted(record["eventName"] for record in records)


def test_s3_multipart_completion_sends_one_event_only_with_the_patch() -> None:
    # moto stores the assembled object through put_object (an ObjectCreated:Put event)
    # and then sends its own: the patch silences the first, as S3 sends only the second.
    assert _multipart_upload_events(patch=False) == [
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Put",
    ]
    assert _multipart_upload_events(patch=True) == ["ObjectCreated:CompleteMultipartUpload"]


def test_s3_sends_queue_notifications_in_s3_s_record_format_with_prefix_filters() -> None:
    """No patch: moto's S3 delivers what S3 delivers to a queue, which the crawler reads.

    The local crawler's event mode relies on it: a test event when the configuration is
    written, then one ``Records`` message per matching object, ``eventSource`` ``aws:s3``
    and the key URL-encoded (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
    """
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        url = sqs.create_queue(QueueName="events")["QueueUrl"]
        s3.create_bucket(Bucket="data")
        s3.put_bucket_notification_configuration(
            Bucket="data",
            NotificationConfiguration={
                "EventBridgeConfiguration": {},
                "QueueConfigurations": [
                    {
                        "QueueArn": "arn:aws:sqs:us-east-1:123456789012:events",
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}
                        },
                    }
                ],
            },
        )
        s3.put_object(Bucket="data", Key="incoming/a b.csv", Body=b"x\n1\n")
        s3.put_object(Bucket="data", Key="dimensions/a.csv", Body=b"x\n1\n")
        bodies = [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        ]
    assert [body.get("Event") for body in bodies] == ["s3:TestEvent", None]
    (record,) = bodies[1]["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "data"
    # URL-encoded as S3 encodes keys ("red flower.jpg" becomes "red+flower.jpg"); moto
    # encodes "/" too, which S3 leaves as it is. The crawler decodes either form
    # (moto_glue_crawler.s3_changes), so the prefix filter and the crawl see the real key.
    assert record["s3"]["object"]["key"] == "incoming%2Fa+b.csv"


def test_step_functions_overheads_patch_memoises_json_paths_and_shares_clients() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    with patched() as patches:
        moto_sfn_overheads.install(patches)
        assert json_path.parse("$.a.b") is json_path.parse("$.a.b")
        assert json_path.extract_json("$.a.b", {"a": {"b": 7}}) == 7
        with pytest.raises(json_path.NoSuchJsonPathError):
            json_path.extract_json("$.a.c", {"a": {"b": 7}})
        users = [importlib.import_module(name) for name in moto_sfn_overheads.CLIENT_USERS]
        factories = {module.boto_client_for for module in users}
        assert len(factories) == 1  # every task type gets its client from the shared factory
        (factory,) = factories
        assert factory(REGION, "glue") is factory(REGION, "glue")
        assert factory(REGION, "glue") is not factory(REGION, "sns")
    assert json_path.parse("$.a.b") is not json_path.parse("$.a.b")  # restored


def test_the_iam_hooks_are_moto_authorization_methods_with_their_arguments() -> None:
    assert parameters(moto_iam.SEAM_OWNER, moto_iam.NORMAL_SEAM) == ["self", "resource"]
    assert parameters(moto_iam.SEAM_OWNER, moto_iam.S3_SEAM) == ["self", "bucket_name", "key_name"]
    assert parameters(moto_iam.BUCKET_SEAM_OWNER, moto_iam.BUCKET_SEAM) == [
        "self",
        "action",
        "resource",
    ]
    assert parameters(moto_iam.s3_notifications, moto_iam.QUEUE_DELIVERY_SEAM) == [
        "account_id",
        "event_body",
        "queue_name",
        "region_name",
    ]


def test_the_sfn_client_seam_is_imported_by_name_by_every_listed_module() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    assert parameters(boto_client, moto_sfn_credentials.SEAM_NAME) == [
        "region",
        "service",
        "state_credentials",
    ]
    original = vars(boto_client)[moto_sfn_credentials.SEAM_NAME]
    for name in moto_sfn_credentials.USER_MODULES:
        module = importlib.import_module(name)
        assert vars(module)[moto_sfn_credentials.SEAM_NAME] is original, name


@mock_aws
def test_a_role_session_from_moto_sts_is_found_by_its_access_key() -> None:
    from moto.sts.models import sts_backends

    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    credentials = RoleSessions(REGION).assume(arn, "lambda.amazonaws.com", "s")
    backend = sts_backends["123456789012"]["aws"]
    session = backend.get_assumed_role_from_access_key(credentials.access_key_id)
    assert (session.role_arn, session.session_name) == (arn, "s")
    assert session.arn == "arn:aws:sts::123456789012:assumed-role/r/s"
    with pytest.raises(AssumeRoleRefused):
        RoleSessions(REGION).assume(arn, "glue.amazonaws.com", "s")


@mock_aws
def test_a_session_call_is_refused_with_the_services_error_and_allowed_once_granted() -> None:
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName="j", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    boto3.client("glue", region_name=REGION).create_crawler(
        Name="c", Role=arn, Targets={"S3Targets": [{"Path": "s3://b/"}]}
    )
    credentials = RoleSessions(REGION).assume(arn, "glue.amazonaws.com", "s")
    session_glue = boto3.client("glue", region_name=REGION, **credentials.client_arguments())
    authorizer = Authorizer()
    with patched() as patches:
        moto_iam.install(patches, authorizer)
        with pytest.raises(session_glue.exceptions.ClientError) as refused:
            session_glue.get_crawler(Name="c")
        allow = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "glue:GetCrawler",
                    "Resource": "arn:aws:glue:us-east-1:123456789012:crawler/c",
                }
            ],
        }
        iam.put_role_policy(RoleName="j", PolicyName="p", PolicyDocument=json.dumps(allow))
        assert session_glue.get_crawler(Name="c")["Crawler"]["Name"] == "c"
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "glue:GetCrawler on resource: arn:aws:glue:us-east-1:123456789012:crawler/c" in str(
        refused.value
    )
    assert [(c.action, c.allowed) for c in authorizer.log.calls] == [
        ("glue:GetCrawler", False),
        ("glue:GetCrawler", True),
    ]


@mock_aws
def test_a_missing_key_is_403_without_list_bucket_and_404_with_it() -> None:
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    read = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
        ],
    }
    arn = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="r", PolicyName="read", PolicyDocument=json.dumps(read))
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="bkt")
    credentials = RoleSessions(REGION).assume(arn, "lambda.amazonaws.com", "s")
    s3 = boto3.client("s3", region_name=REGION, **credentials.client_arguments())
    with patched() as patches:
        moto_iam.install(patches, Authorizer())
        with pytest.raises(s3.exceptions.ClientError) as without_list:
            s3.get_object(Bucket="bkt", Key="missing.csv")
        listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bkt"}
        read["Statement"].append(listing)
        iam.put_role_policy(RoleName="r", PolicyName="read", PolicyDocument=json.dumps(read))
        with pytest.raises(s3.exceptions.ClientError) as with_list:
            s3.get_object(Bucket="bkt", Key="missing.csv")
    assert without_list.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert without_list.value.response["Error"]["Code"] == "AccessDenied"
    assert with_list.value.response["Error"]["Code"] == "NoSuchKey"


def test_shared_integration_clients_are_one_per_role_never_shared_between_roles() -> None:
    made: list[tuple[str, str, object]] = []

    def create(region: str, service: str, state_credentials: object = None) -> object:
        made.append((region, service, state_credentials))
        return object()

    class Credentials:
        def __init__(self, role_arn: str) -> None:
            self.role_arn = role_arn

    client_for = moto_sfn_overheads.shared_clients(create)
    first = client_for(REGION, "glue", Credentials("arn:aws:iam::123456789012:role/a"))
    again = client_for(REGION, "glue", Credentials("arn:aws:iam::123456789012:role/a"))
    other = client_for(REGION, "glue", Credentials("arn:aws:iam::123456789012:role/b"))
    assert first is again and other is not first
    assert len(made) == 2
