"""The crawler Lambdas against the emulated Glue and S3 APIs: crawls are shared, never fought."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.glue.models import FakeCrawl, glue_backends
from moto.moto_api import state_manager

from flightpipe import crawler
from flightpipe.retryable import ServiceThrottledError
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


def add_crawl(
    status: str, started: dt.datetime, error: str = "", seconds: float | None = None
) -> FakeCrawl:
    """A crawl in the crawler's history, as Glue records it (ended after ``seconds``)."""
    crawl = FakeCrawl(CRAWLER)
    crawl.status, crawl.start_time = status, started
    if seconds is not None:
        crawl.end_time = started + dt.timedelta(seconds=seconds)
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
    assert result == {
        "crawler": CRAWLER,
        "started": True,
        "status": "STARTED",
        "error": None,
        "runtime": runtime_versions(),
    }
    assert glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "RUNNING"


def test_start_crawler_on_a_busy_crawler_is_not_an_error(glue):
    glue.start_crawler(Name=CRAWLER)
    result = start_crawler.handler({"key": KEY}, FakeLambdaContext())
    assert (result["started"], result["status"], result["error"]) == (False, "BUSY", None)


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


def test_a_deleted_crawler_is_reported_unavailable_with_glues_own_message(glue):
    event, _ = upload()
    glue.delete_crawler(Name=CRAWLER)
    started = start_crawler.handler({"key": KEY}, FakeLambdaContext())
    polled = poll(event)
    for result in (started, polled):
        assert result["status"] == "UNAVAILABLE"
        assert result["error"].startswith("EntityNotFoundException on ")
        assert CRAWLER in result["error"]
    assert started["error"].startswith("EntityNotFoundException on StartCrawler: ")
    assert polled["error"].startswith("EntityNotFoundException on ListCrawls: ")


class RefusingGlue:
    """Glue as a role without the grant sees it: every call refused."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def _refuse(self, **kwargs: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": f"User: arn:aws:sts::1:assumed-role/r/s is not authorized to "
                    f"perform: glue:{self.operation}",
                }
            },
            self.operation,
        )

    start_crawler = list_crawls = _refuse


def test_a_refused_call_is_reported_unavailable_not_raised(glue):
    upload()
    s3 = boto3.client("s3", region_name="us-east-1")
    started = crawler.request_crawl(RefusingGlue("StartCrawler"), CRAWLER)
    polled = crawler.crawl_for_object(RefusingGlue("ListCrawls"), s3, CRAWLER, BUCKET, KEY)
    assert (started["status"], started["started"]) == ("UNAVAILABLE", False)
    assert started["error"] == (
        "AccessDeniedException on StartCrawler: User: arn:aws:sts::1:assumed-role/r/s is not "
        "authorized to perform: glue:StartCrawler"
    )
    assert (polled["status"], polled["crawl_id"]) == ("UNAVAILABLE", None)
    assert polled["error"].endswith("not authorized to perform: glue:ListCrawls")


def test_throttling_is_still_raised_for_the_state_machine_to_retry(glue):
    class Throttled(RefusingGlue):
        def _refuse(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "StartCrawler")

        start_crawler = _refuse

    with pytest.raises(ServiceThrottledError):
        crawler.request_crawl(Throttled("StartCrawler"), CRAWLER)


def _poll_at(event: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name="us-east-1")
    aware = now.replace(tzinfo=dt.timezone.utc)
    return crawler.crawl_for_object(
        boto3.client("glue", region_name="us-east-1"),
        s3,
        CRAWLER,
        event["bucket"],
        event["key"],
        now=lambda: aware,
    )


def test_the_next_poll_comes_when_the_running_crawl_should_end_by_measured_durations(glue):
    event, written = upload()
    for minutes, seconds in ((50, 70), (40, 80), (30, 200)):  # median 80 s
        add_crawl("COMPLETED", written - dt.timedelta(minutes=minutes), seconds=seconds)
    add_crawl("RUNNING", written + dt.timedelta(seconds=2))
    result = _poll_at(event, written + dt.timedelta(seconds=32))
    # started 30 s before the poll, crawls take 80 s: 50 s to go
    assert (result["status"], result["next_poll_s"]) == ("WAITING", 50)


def test_a_crawl_past_its_expected_end_is_polled_every_ten_seconds(glue):
    event, written = upload()
    add_crawl("COMPLETED", written - dt.timedelta(minutes=10), seconds=30)
    add_crawl("RUNNING", written + dt.timedelta(seconds=2))
    result = _poll_at(event, written + dt.timedelta(seconds=100))
    assert result["next_poll_s"] == crawler.MIN_POLL_SECONDS == 10


def test_a_crawl_just_started_without_history_is_polled_within_a_minute(glue):
    event, written = upload()
    result = _poll_at(event, written + dt.timedelta(seconds=3))
    assert (result["status"], result["started_crawl"]) == ("WAITING", True)
    # no measured crawl: 90 s expected, but never more than a minute between polls
    assert result["next_poll_s"] == crawler.MAX_POLL_SECONDS == 60


def test_a_file_behind_an_earlier_crawl_polls_when_that_crawl_should_end(glue):
    event, written = upload()
    add_crawl("COMPLETED", written - dt.timedelta(minutes=20), seconds=40)
    add_crawl("RUNNING", written - dt.timedelta(seconds=25))  # began before the file
    result = _poll_at(event, written + dt.timedelta(seconds=1))
    assert (result["status"], result["started_crawl"], result["crawl_id"]) == (
        "WAITING",
        False,
        None,
    )
    assert result["next_poll_s"] == 14  # 40 s crawls, 26 s in


@pytest.mark.parametrize(
    ("crawls", "expected"),
    [
        ([], crawler.DEFAULT_CRAWL_SECONDS),
        ([("COMPLETED", 60.0), ("FAILED", 5.0), ("RUNNING", None)], 60.0),
        ([("COMPLETED", float(s)) for s in range(1, 13)], 7.5),  # the last ten: 3..12
    ],
)
def test_measured_crawl_seconds_is_the_median_of_the_last_ten_completed(crawls, expected):
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    listed = []
    for number, (state, seconds) in enumerate(crawls):
        begun = start + dt.timedelta(hours=number)
        item: dict[str, Any] = {"State": state, "StartTime": begun}
        if seconds is not None:
            item["EndTime"] = begun + dt.timedelta(seconds=seconds)
        listed.append(item)
    assert crawler.measured_crawl_seconds(listed) == expected
