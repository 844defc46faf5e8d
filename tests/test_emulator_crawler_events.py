"""The emulator's crawler in S3 event mode crawls what changed, not the target's history.

Glue: "The first crawl lists all Amazon S3 objects from the target. After the first
successful crawl ... The crawler will list only the objects from those events", "listing
all the files from the subfolder which triggered the event", "There will be no cost if
there are no events in the queue"
(https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-event-notifications.html).

These tests count the S3 requests a crawl makes (botocore's parameter-build hook on the
crawler's own client): which objects it reads and which prefixes it lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flightpipe_local.deploy import Deployer, bucket_notification
from flightpipe_local.moto_glue_crawler import CrawlerEmulator, folder_of, s3_changes

REGION = "us-east-1"
BUCKET = "data"
DATABASE = "flights"
QUEUE = "crawler-events"
DLQ = "crawler-events-dlq"
ARN = f"arn:aws:sqs:{REGION}:123456789012:"
CSV = b"Carrier,OriginAirportID,DestAirportID,DepDelay\nAA,10397,11298,-3\n"
WIDER_CSV = b"Carrier,OriginAirportID,DestAirportID,DepDelay\nAA,10397,11298,-3.5\n"
OTHER_CSV = b"Airport,Name\n10397,Atlanta\n"


class World(SimpleNamespace):
    """The moto clients, the crawler under test and the S3 requests of each crawl."""

    s3: Any
    glue: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    crawler: Any
    requests: list[tuple[str, dict[str, Any]]]

    def put(self, key: str, body: bytes = CSV) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def crawl(self) -> Any:
        """Run one crawl; the crawl (status, event_mode). ``requests`` holds its S3 calls."""
        self.requests.clear()
        run = SimpleNamespace(status="RUNNING")
        self.crawler.crawls.append(run)
        emulator = CrawlerEmulator(
            lambda: self.crawler_s3, lambda: self.glue, 0, sqs_client=lambda: self.sqs
        )
        emulator.crawl(self.crawler, run)
        return run

    def reads(self) -> list[str]:
        return sorted(p["Key"] for op, p in self.requests if op == "GetObject")

    def listings(self) -> list[tuple[str, str]]:
        return [
            (p.get("Prefix", ""), p.get("Delimiter", ""))
            for op, p in self.requests
            if op == "ListObjectsV2"
        ]

    def tables(self) -> dict[str, dict[str, Any]]:
        listed = self.glue.get_tables(DatabaseName=DATABASE)["TableList"]
        return {table["Name"]: table for table in listed}

    def queued(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        counts = attributes["Attributes"]
        return int(counts["ApproximateNumberOfMessages"]) + int(
            counts["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        glue = boto3.client("glue", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        s3.create_bucket(Bucket=BUCKET)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration=bucket_notification(
                {
                    "EventBridgeConfiguration": {"EventBridgeEnabled": True},
                    "QueueConfigurations": [
                        {
                            "Event": event,
                            "Queue": ARN + QUEUE,
                            "Filter": {
                                "S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}
                            },
                        }
                        for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
                    ],
                }
            ),
        )
        crawler_s3 = boto3.client("s3", region_name=REGION)
        requests: list[tuple[str, dict[str, Any]]] = []

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            requests.append((model.name, dict(params)))

        crawler_s3.meta.events.register("before-parameter-build.s3", record)
        crawler = SimpleNamespace(
            name="incoming",
            targets={
                "S3Targets": [
                    {
                        "Path": f"s3://{BUCKET}/incoming/",
                        "EventQueueArn": ARN + QUEUE,
                        "DlqEventQueueArn": ARN + DLQ,
                    }
                ]
            },
            recrawl_policy={"RecrawlBehavior": "CRAWL_EVENT_MODE"},
            table_prefix="",
            database_name=DATABASE,
            crawls=[],
        )
        yield World(
            s3=s3,
            glue=glue,
            sqs=sqs,
            crawler_s3=crawler_s3,
            queue_url=queue_url,
            dlq_url=dlq_url,
            crawler=crawler,
            requests=requests,
        )


def test_the_first_crawl_lists_the_whole_target_and_consumes_the_queued_events(world):
    for day in range(1, 6):
        world.put(f"incoming/2024/01/{day:02d}/flights.csv")
    assert world.queued(world.queue_url) == 6  # S3's test event and five uploads

    run = world.crawl()

    assert (run.status, run.event_mode) == ("COMPLETED", "LISTING")
    assert len(world.reads()) == 5
    assert world.listings() == [("incoming/", "")]
    assert world.tables()["incoming"]["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/incoming/"
    assert world.queued(world.queue_url) == 0


def test_a_later_crawl_reads_only_the_objects_its_events_name_and_lists_only_their_folders(world):
    for day in range(1, 29):
        world.put(f"incoming/2024/01/{day:02d}/flights.csv")
    assert world.crawl().status == "COMPLETED"

    world.put("incoming/2024/02/01/flights.csv")
    world.put("incoming/2024/02/01/late.csv")
    run = world.crawl()

    assert (run.status, run.event_mode) == ("COMPLETED", "EVENTS")
    assert world.reads() == ["incoming/2024/02/01/flights.csv", "incoming/2024/02/01/late.csv"]
    assert world.listings() == [("incoming/2024/02/01/", "/")]
    assert world.queued(world.queue_url) == 0
    # Same columns: the new files join the target's table; no table of their own.
    assert set(world.tables()) == {"incoming"}


def test_the_cost_of_an_event_crawl_does_not_grow_with_the_history_of_incoming(world):
    counts = []
    for history in (3, 30):
        for n in range(history):
            world.put(f"incoming/old/{len(counts)}-{n}.csv")
        world.crawl()  # the first lists everything; later ones consume these events
        world.put(f"incoming/new/{len(counts)}.csv")
        assert world.crawl().event_mode == "EVENTS"
        counts.append((len(world.reads()), len(world.listings())))
    assert counts == [(1, 1), (1, 1)]


def test_flat_keys_are_read_alone_though_their_folder_is_incoming_itself(world):
    for n in range(20):
        world.put(f"incoming/{n}.csv")
    world.crawl()

    world.put("incoming/today.csv")
    world.crawl()

    assert world.reads() == ["incoming/today.csv"]
    # Glue lists the folder the event came from; for flat keys that is incoming/ itself.
    assert world.listings() == [("incoming/", "/")]


def test_a_crawl_with_no_queued_events_completes_without_a_single_s3_request(world):
    world.put("incoming/2024/01/01/flights.csv")
    world.crawl()

    run = world.crawl()

    assert (run.status, run.event_mode) == ("COMPLETED", "EVENTS")
    assert world.requests == []


def test_a_removed_object_is_not_read_and_its_event_is_consumed(world):
    world.put("incoming/a.csv")
    world.crawl()
    world.s3.delete_object(Bucket=BUCKET, Key="incoming/a.csv")

    run = world.crawl()

    assert run.status == "COMPLETED"
    assert world.reads() == []
    assert world.queued(world.queue_url) == 0
    assert "incoming" in world.tables()  # DeleteBehavior LOG: the table stays


def test_url_encoded_keys_in_events_are_read_by_their_real_names(world):
    world.crawl()
    world.put("incoming/daily flights+1.csv")

    world.crawl()

    assert world.reads() == ["incoming/daily flights+1.csv"]


def test_a_new_layout_gets_its_own_table_and_wider_values_widen_the_target_table(world):
    world.put("incoming/a.csv")
    world.crawl()

    world.put("incoming/b.csv", WIDER_CSV)
    world.put("incoming/airports.csv", OTHER_CSV)
    world.crawl()

    tables = world.tables()
    assert set(tables) == {"incoming", "airports"}
    columns = {c["Name"]: c["Type"] for c in tables["incoming"]["StorageDescriptor"]["Columns"]}
    assert columns["depdelay"] == "double"
    assert tables["airports"]["StorageDescriptor"]["Location"] == (
        f"s3://{BUCKET}/incoming/airports.csv"
    )


def test_messages_that_are_not_s3_notifications_go_to_the_dead_letter_queue(world):
    world.crawl()
    eventbridge_event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": "incoming/x.csv"}},
    }
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(eventbridge_event))

    run = world.crawl()

    assert run.status == "COMPLETED"
    assert world.requests == []
    assert world.queued(world.queue_url) == 0
    (moved,) = world.sqs.receive_message(QueueUrl=world.dlq_url)["Messages"]
    assert json.loads(moved["Body"]) == eventbridge_event


def test_a_failed_crawl_leaves_its_events_in_the_queue(world):
    world.crawl()
    world.put("incoming/a.csv")
    world.glue.delete_database(Name=DATABASE)

    run = world.crawl()

    assert run.status == "FAILED"
    assert world.queued(world.queue_url) == 1


def test_a_crawl_fails_naming_an_event_queue_that_does_not_exist(world):
    world.sqs.delete_queue(QueueUrl=world.queue_url)

    run = world.crawl()

    assert run.status == "FAILED"
    assert f"{ARN}{QUEUE} does not exist" in run.error_message


def test_a_crawler_not_in_event_mode_lists_its_whole_target_every_time(world):
    world.crawler.recrawl_policy = {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    world.put("incoming/a.csv")
    world.crawl()
    world.put("incoming/b.csv")

    world.crawl()

    assert world.reads() == ["incoming/a.csv", "incoming/b.csv"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"data"}', []),
        (
            json.dumps(
                {
                    "Type": "Notification",
                    "Message": json.dumps(
                        {
                            "Records": [
                                {
                                    "eventSource": "aws:s3",
                                    "eventName": "ObjectRemoved:Delete",
                                    "s3": {"bucket": {"name": "b"}, "object": {"key": "a%2Bb+c"}},
                                }
                            ]
                        }
                    ),
                }
            ),
            [("b", "a+b c", True)],
        ),
        ('{"detail-type":"Object Created"}', None),
        ("not json", None),
    ],
)
def test_queue_messages_are_read_as_s3_notifications_also_through_sns(body, expected):
    changes = s3_changes(body)
    assert (None if changes is None else [(c.bucket, c.key, c.removed) for c in changes]) == (
        expected
    )


def test_folder_of_a_key():
    assert folder_of("incoming/2024/a.csv") == "incoming/2024/"
    assert folder_of("a.csv") == ""


def test_the_deployer_creates_the_queues_their_policy_and_the_bucket_queue_notification():
    template = {
        "Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True}},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": "events",
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]},
                        "maxReceiveCount": 10,
                    },
                },
            },
            "Policy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "Queue"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                            }
                        ],
                    },
                },
            },
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "DependsOn": "Policy",
                "Properties": {
                    "BucketName": {"Fn::Sub": "data-${AWS::AccountId}"},
                    "NotificationConfiguration": {
                        "QueueConfigurations": [
                            {
                                "Event": "s3:ObjectCreated:*",
                                "Queue": {"Fn::GetAtt": ["Queue", "Arn"]},
                                "Filter": {
                                    "S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}
                                },
                            }
                        ]
                    },
                },
            },
        }
    }
    with mock_aws():
        deployment = Deployer(
            template, lambda service: boto3.client(service, region_name=REGION), "stack", REGION
        ).deploy()
        sqs = boto3.client("sqs", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        url = deployment.resources["Queue"].ref
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true"
        assert (
            json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
            == (deployment.resources["Dlq"].attributes["Arn"])
        )
        (statement,) = json.loads(attributes["Policy"])["Statement"]
        assert statement["Resource"] == deployment.resources["Queue"].attributes["Arn"]
        sqs.purge_queue(QueueUrl=url)  # S3's test event
        s3.put_object(Bucket="data-123456789012", Key="incoming/a.csv", Body=CSV)
        s3.put_object(Bucket="data-123456789012", Key="dimensions/b.csv", Body=CSV)
        (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [(c.bucket, c.key) for c in s3_changes(message["Body"])] == [
            ("data-123456789012", "incoming/a.csv")
        ]
