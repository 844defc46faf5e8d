"""The places in moto 5.2.5 that the local stack patches are still where and what they were.

Each patch replaces a private attribute of moto. When moto moves one, these tests
fail with the name of the seam, before any end-to-end run fails obscurely.
"""

from __future__ import annotations

import inspect

import moto
import pytest

from flightpipe_local import (
    moto_events,
    moto_glue_crawler,
    moto_glue_jobs,
    moto_lambda,
    moto_redshift_data,
    moto_sfn_glue,
    moto_sfn_time,
    moto_sns,
)
from flightpipe_local._patching import PatchSet


def parameters(owner: object, name: str) -> list[str]:
    assert name in vars(owner), f"moto seam moved: {owner!r} no longer defines {name}"
    return list(inspect.signature(vars(owner)[name]).parameters)


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5"


def test_lambda_seam_invoke_lambda_takes_the_event() -> None:
    assert parameters(moto_lambda.SEAM_OWNER, moto_lambda.SEAM_NAME) == ["self", "event"]
    source = inspect.getsource(moto_lambda.SEAM_OWNER.invoke)
    assert "self._invoke_lambda(event=body)" in source


def test_events_seam_send_to_targets_takes_event_and_transform_flag() -> None:
    assert parameters(moto_events.SEAM_OWNER, moto_events.SEAM_NAME) == [
        "self",
        "original_event",
        "transform_input",
    ]
    from moto.s3 import notifications

    assert "rule.send_to_targets(event, transform_input=False)" in inspect.getsource(
        notifications._send_event_bridge_message
    )


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
    retrier_source = inspect.getsource(moto_sfn_time.RETRY_CLOCK_OWNER.RetrierDecl._eval_body)
    assert "time.sleep(interval_seconds)" in retrier_source


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
    assert "statements" in inspect.getsource(moto_redshift_data.SEAM_BACKEND.__init__)


def test_sns_seam_topic_publish_takes_message_and_subject() -> None:
    assert parameters(moto_sns.SEAM_OWNER, moto_sns.SEAM_NAME)[:3] == ["self", "message", "subject"]


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
    source = inspect.getsource(moto_glue_crawls.SEAM_OWNER.GlueResponse.list_crawls)
    assert "validate_crawl_filters(" in source
    assert parameters(moto_glue_crawls.CRAWL_OWNER, moto_glue_crawls.CRAWL_DESCRIBE) == ["self"]
    assert moto_glue_crawls.iso_from_epoch_ms("1764302400000") == "2025-11-28T04:00:00.000000"


def test_s3_multipart_seam_stores_through_put_object_then_sends_its_own_event() -> None:
    from flightpipe_local import moto_s3_multipart

    owner = moto_s3_multipart.SEAM_OWNER
    assert "disable_notification" in parameters(owner, moto_s3_multipart.PUT_NAME)
    source = inspect.getsource(vars(owner)[moto_s3_multipart.COMPLETE_NAME])
    assert "self.put_object(" in source
    assert "OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT" in source


def test_s3_sends_queue_notifications_in_s3_s_record_format_with_prefix_filters() -> None:
    """No patch: moto's S3 delivers what S3 delivers to a queue, which the crawler reads.

    The local crawler's event mode relies on it: a test event when the configuration is
    written, then one ``Records`` message per matching object, ``eventSource`` ``aws:s3``
    and the key URL-encoded (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
    """
    import json

    import boto3
    from moto import mock_aws
    from moto.s3 import notifications

    assert "_send_sqs_message(" in inspect.getsource(notifications.send_event)
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
