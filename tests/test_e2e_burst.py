"""A burst of uploads through the local stack: every file loads, and crawls are shared."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e_support import data_rows, fact_rows_of, run_files, stack

from flightpipe_local.run import PipelineRunner
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]
BURST = 12  # more than the job's MaxConcurrentRuns (10)


def covering_crawl_id(stack: EmulatedStack, execution_arn: str) -> str:
    """The crawl the execution's last poll found covering its file."""
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    payloads = [
        json.loads(e["taskSucceededEventDetails"]["output"]).get("Payload")
        for e in events
        if e["type"] == "TaskSucceeded"
    ]
    polls = [p for p in payloads if isinstance(p, dict) and "crawl_id" in p]
    assert polls and polls[-1]["status"] == "CRAWLED", polls
    return polls[-1]["crawl_id"]


def crawls(stack: EmulatedStack) -> dict[str, Any]:
    listed = stack.client("glue").list_crawls(CrawlerName=stack.crawler_name, MaxResults=1000)
    return {crawl["CrawlId"]: crawl for crawl in listed["Crawls"]}


def written_at(stack: EmulatedStack, key: str) -> dt.datetime:
    return stack.client("s3").head_object(Bucket=stack.bucket, Key=key)["LastModified"]


def test_a_burst_loads_every_file_once_and_shares_a_few_crawls(
    stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    sample = shared_data / "sample_flights.csv"
    files = []
    for number in range(BURST):
        copy = tmp_path / f"burst-{number:02d}.csv"
        shutil.copyfile(sample, copy)
        files.append(copy)
    before = len(crawls(stack))
    outcomes = run_files(stack, *files, concurrent=True)
    assert [o.execution_status for o in outcomes] == ["SUCCEEDED"] * BURST, [
        o.error for o in outcomes
    ]
    assert [o.load_status for o in outcomes] == ["LOADED"] * BURST
    for outcome in outcomes:
        assert fact_rows_of(stack, outcome.key) == data_rows(sample) == outcome.rows_loaded
    all_crawls = crawls(stack)
    assert len(all_crawls) - before < BURST
    for outcome in outcomes:
        crawl = all_crawls[covering_crawl_id(stack, outcome.execution_arn or "")]
        assert crawl["State"] == "COMPLETED"
        assert crawl["StartTime"] > written_at(stack, outcome.key)


def test_a_file_uploaded_during_a_running_crawl_is_crawled_again_before_it_loads(
    stack: EmulatedStack, shared_data: Path
) -> None:
    glue = stack.client("glue")
    glue.start_crawler(Name=stack.crawler_name)  # another upload's crawl, running now
    runner = PipelineRunner(stack, timeout_s=180)
    upload = runner.upload(shared_data / "sample_flights.csv", key="incoming/during-crawl.csv")
    running = [c for c in crawls(stack).values() if c["State"] == "RUNNING"]
    runner.wait([upload])
    outcome = runner.outcome(upload)
    assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")
    covering = crawls(stack)[covering_crawl_id(stack, outcome.execution_arn or "")]
    assert covering["CrawlId"] not in {c["CrawlId"] for c in running}
    assert covering["StartTime"] > written_at(stack, upload.key)
