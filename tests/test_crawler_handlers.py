"""The crawler Lambdas against the emulated Glue and S3 APIs: crawls are shared, never fought."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.glue.models import FakeCrawl, glue_backends
from moto.moto_api import state_manager

from flightpipe.runtime_info import runtime_versions
from flightpipe_local import moto_glue_crawls
from flightpipe_local._patching import PatchSet
from handlers import poll_crawler, start_crawler

CRAWLER = "flightpipe-test-incoming"
BUCKET = "flightpipe-test-crawls"
KEY = "incoming/day.csv"


class FakeLambdaContext:
    function_name = "test-function"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def glue(monkeypatch) -> Iterator[Any]:
    monkeypatch.setenv("CRAWLER_NAME", CRAWLER)
    patches = PatchSet()
    moto_glue_crawls.install(patches)  # AWS's epoch-millisecond time filters, crawl errors
    # Crawls end when the test says so, never by moto's own state transitions.
    state_manager.set_transition("glue::crawl", {"progression": "manual", "times": sys.maxsize})
    try:
        with mock_aws():
            client = boto3.client("glue", region_name="us-east-1")
            client.create_database(DatabaseInput={"Name": "flights"})
            client.create_crawler(
                Name=CRAWLER,
                Role="arn:aws:iam::123456789012:role/crawler",
                DatabaseName="flights",
                Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/incoming/"}]},
            )
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        state_manager.unset_transition("glue::crawl")
        patches.restore()


def upload() -> tuple[dict[str, Any], dt.datetime]:
    """Put the file; the poll event and when S3 says it was written (naive UTC)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"Carrier\nAA\n")
    written = s3.head_object(Bucket=BUCKET, Key=KEY)["LastModified"]
    event = {"bucket": BUCKET, "key": KEY, "version_id": ""}
    return event, written.astimezone(dt.timezone.utc).replace(tzinfo=None)


def add_crawl(status: str, started: dt.datetime, error: str = "") -> FakeCrawl:
    """A crawl in the crawler's history, as Glue records it."""
    crawl = FakeCrawl(CRAWLER)
    crawl.status, crawl.start_time = status, started
    if error:
        crawl.error_message = error
    glue_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].crawlers[CRAWLER].crawls.append(crawl)
    return crawl


def poll(event: dict[str, Any]) -> dict[str, Any]:
    result = poll_crawler.handler(event, FakeLambdaContext())
    assert result.pop("runtime") == runtime_versions()
    return result


def test_start_crawler_starts_an_idle_crawler(glue):
    result = start_crawler.handler({"key": KEY}, FakeLambdaContext())
    assert result == {"crawler": CRAWLER, "started": True, "runtime": runtime_versions()}
    assert glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "RUNNING"


def test_start_crawler_on_a_busy_crawler_is_not_an_error(glue):
    glue.start_crawler(Name=CRAWLER)
    result = start_crawler.handler({"key": KEY}, FakeLambdaContext())
    assert result["started"] is False


def test_a_file_no_crawl_has_seen_waits_and_the_poll_starts_a_crawl(glue):
    event, _ = upload()
    result = poll(event)
    assert (result["status"], result["started_crawl"]) == ("WAITING", True)
    assert glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "RUNNING"


def test_a_crawl_that_started_before_the_file_was_written_does_not_cover_it(glue):
    event, written = upload()
    add_crawl("COMPLETED", written - dt.timedelta(minutes=5))
    add_crawl("RUNNING", written - dt.timedelta(seconds=30))
    result = poll(event)
    # The running crawl began before the file: wait for it, then the next one.
    assert (result["status"], result["started_crawl"], result["crawl_id"]) == (
        "WAITING",
        False,
        None,
    )


def test_a_running_crawl_that_started_after_the_file_is_waited_for(glue):
    event, written = upload()
    crawl = add_crawl("RUNNING", written + dt.timedelta(seconds=2))
    result = poll(event)
    assert (result["status"], result["crawl_id"]) == ("WAITING", crawl.crawl_id)


def test_one_completed_crawl_covers_every_file_written_before_it_started(glue):
    event, written = upload()
    crawl = add_crawl("COMPLETED", written + dt.timedelta(seconds=2))
    add_crawl("RUNNING", written + dt.timedelta(seconds=40))  # a later file's crawl
    result = poll(event)
    assert (result["status"], result["crawl_id"]) == ("CRAWLED", crawl.crawl_id)


def test_a_covering_crawl_that_failed_fails_the_file_with_its_error(glue):
    event, written = upload()
    add_crawl("FAILED", written + dt.timedelta(seconds=2), error="Insufficient Lake Formation")
    result = poll(event)
    assert (result["status"], result["error"]) == ("FAILED", "Insufficient Lake Formation")


def test_handlers_fail_clearly_without_their_crawler_setting(glue, monkeypatch):
    monkeypatch.delenv("CRAWLER_NAME")
    with pytest.raises(RuntimeError, match="crawler_name"):
        poll_crawler.handler({"bucket": BUCKET, "key": KEY}, FakeLambdaContext())
