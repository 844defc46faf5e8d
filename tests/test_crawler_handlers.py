"""The crawler Lambdas against the emulated Glue API."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.glue.models import glue_backends

from flightpipe.crawler import CrawlerRunningException
from flightpipe.runtime_info import runtime_versions
from handlers import poll_crawler, start_crawler

CRAWLER = "flightpipe-test-incoming"


class FakeLambdaContext:
    function_name = "test-function"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def glue(monkeypatch):
    monkeypatch.setenv("CRAWLER_NAME", CRAWLER)
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": "flights"})
        client.create_crawler(
            Name=CRAWLER,
            Role="arn:aws:iam::123456789012:role/crawler",
            DatabaseName="flights",
            Targets={"S3Targets": [{"Path": "s3://data/incoming/"}]},
        )
        yield client


def test_start_crawler_starts_the_configured_crawler(glue):
    result = start_crawler.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    assert result == {"crawler": CRAWLER, "started": True, "runtime": runtime_versions()}
    assert glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "RUNNING"


def test_start_crawler_on_a_busy_crawler_raises_crawler_running_not_success(glue):
    glue.start_crawler(Name=CRAWLER)
    with pytest.raises(CrawlerRunningException, match="already running"):
        start_crawler.handler({"key": "incoming/b.csv"}, FakeLambdaContext())


def test_poll_reports_a_running_crawl(glue):
    glue.start_crawler(Name=CRAWLER)
    status = poll_crawler.handler({}, FakeLambdaContext())
    assert status["crawler"] == CRAWLER
    assert status["state"] == "RUNNING"


def test_poll_reports_a_failed_last_crawl(glue):
    glue.start_crawler(Name=CRAWLER)
    _glue_backend().crawlers[CRAWLER].crawls[-1].status = "FAILED"
    status = poll_crawler.handler({}, FakeLambdaContext())
    assert (status["state"], status["last_crawl_status"]) == ("READY", "FAILED")


def test_poll_of_a_never_run_crawler_has_no_last_crawl(glue):
    status = poll_crawler.handler({}, FakeLambdaContext())
    assert status == {
        "crawler": CRAWLER,
        "state": "READY",
        "last_crawl_status": None,
        "last_crawl_error": None,
        "runtime": runtime_versions(),
    }


def test_handlers_fail_clearly_without_their_crawler_setting(glue, monkeypatch):
    monkeypatch.delenv("CRAWLER_NAME")
    with pytest.raises(RuntimeError, match="crawler_name"):
        poll_crawler.handler({}, FakeLambdaContext())


def _glue_backend():
    """The emulated Glue service, where a test makes the running crawl fail."""
    return glue_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
