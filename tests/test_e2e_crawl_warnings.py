"""A crawl never costs a load: whatever becomes of the crawler, the file loads and the notice
says what became of the crawl.

Each case runs the real state machine on its own local stack: a crawler whose role cannot
read the bucket (its grant cut from the packaged template, as tests/test_e2e_permissions.py
cuts grants), a crawler deleted after the deploy, and the crawl beside the load
(``flightpipe local run --param crawlBeforeLoad=false``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO_ROOT, data_rows, execution_output, fact_rows_of, history_states
from test_e2e_permissions import without_action

from flightpipe.cli import main
from flightpipe_local.local_commands import record_stack
from flightpipe_local.run import FileOutcome, PipelineRunner
from flightpipe_local.stack import EmulatedStack
from flightpipe_local.template import package

pytestmark = pytest.mark.e2e


def _run_sample(stack: EmulatedStack, shared_data: Path) -> FileOutcome:
    PipelineRunner(stack).upload_airports(shared_data / "airports.csv")
    (outcome,) = PipelineRunner(stack, timeout_s=180).run_files(
        [shared_data / "sample_flights.csv"]
    )
    return outcome


def _assert_loaded(stack: EmulatedStack, outcome: FileOutcome, shared_data: Path) -> None:
    assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")
    assert outcome.error is None
    rows = data_rows(shared_data / "sample_flights.csv")
    assert outcome.rows_loaded == fact_rows_of(stack, outcome.key) == rows


def _ops(
    capsys: pytest.CaptureFixture[str], stack: EmulatedStack, state_dir: Path, *argv: str
) -> str:
    """``flightpipe ARGV --state-dir DIR`` against ``stack``; its standard output."""
    record_stack(stack, state_dir)
    capsys.readouterr()
    code = main([*argv, "--state-dir", str(state_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _notice(stack: EmulatedStack) -> dict[str, Any]:
    (notice,) = stack.notices.notices()
    body = notice.body()
    assert isinstance(body, dict)
    return body


def test_a_crawler_that_cannot_read_the_bucket_fails_its_crawl_and_the_file_still_loads(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packaged = package(REPO_ROOT)
    cut = dataclasses.replace(
        packaged, template=without_action(packaged.template, "CrawlerRole", "s3:GetObject")
    )
    with EmulatedStack(REPO_ROOT, packaged=cut) as stack:
        outcome = _run_sample(stack, shared_data)
        _assert_loaded(stack, outcome, shared_data)
        crawl = execution_output(stack, outcome.execution_arn or "")["crawl"]
        assert (crawl["status"], crawl["before_load"]) == ("FAILED", True)
        # The crawler's own message: S3 refused its read of the uploaded file.
        assert re.fullmatch(
            rf"crawl \S+ of crawler {stack.crawler_name} covering this file ended FAILED - "
            r"An error occurred \(403\) when calling the HeadObject operation: Forbidden",
            crawl["warning"],
        ), crawl["warning"]
        assert [c["State"] for c in _crawls(stack)] == ["FAILED"]
        notice = _notice(stack)
        assert (notice["status"], notice["file"]) == (
            "SUCCEEDED",
            f"s3://{stack.bucket}/{outcome.key}",
        )
        assert notice["warning"] == crawl["warning"]
        # show: the crawl came first, so its polls are on the critical path to loaded.
        shown = json.loads(_ops(capsys, stack, tmp_path, "show", "sample_flights.csv", "--json"))
        assert shown["crawl"] == crawl
        line = shown["timeline"]
        assert line["origin"] == "upload" and 0 < line["loaded_s"] <= line["ended_s"]
        names = [step["name"] for step in line["steps"]]
        on_path = [s["name"] for s in line["steps"] if s["critical"]]
        assert on_path[0] == "(upload to execution start)" and on_path[-1] == "RunEtlJob"
        assert "PollCrawler" in on_path and "NotifySuccess" not in on_path
        assert f"crawl {crawl['crawl_id']}" in names  # the crawl itself, beside the states
        printed = _ops(capsys, stack, tmp_path, "show", "sample_flights.csv")
        assert f"  crawl: FAILED - {crawl['warning']}" in printed.splitlines()


def test_a_deleted_crawler_is_a_warning_in_the_notice_and_the_file_still_loads(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatedStack(REPO_ROOT) as stack:
        stack.client("glue").delete_crawler(Name=stack.crawler_name)
        outcome = _run_sample(stack, shared_data)
        _assert_loaded(stack, outcome, shared_data)
        states = history_states(stack, outcome.execution_arn or "")
        assert "PollCrawler" not in states  # StartCrawler found no crawler: nothing to poll
        assert states[states.index("StartCrawler") :] == [
            "StartCrawler",
            "CrawlFirst",
            "CrawlerUnavailable",
            "CrawlResolved",
            "ChooseEngine",
            "RunEtlJob",
            "LoadEnded",
            "LoadOutcome",
            "ComposeSuccessNotice",
            "NotifySuccess",
            "Succeeded",
        ]
        crawl = execution_output(stack, outcome.execution_arn or "")["crawl"]
        assert crawl["status"] == "UNAVAILABLE"
        assert crawl["warning"].startswith(
            f"crawler {stack.crawler_name} unavailable - EntityNotFoundException on StartCrawler: "
        )
        notice = _notice(stack)
        assert notice["status"] == "SUCCEEDED"
        assert notice["warning"] == crawl["warning"]
        # status: the run's seconds from the upload to its load's commit.
        (run,) = json.loads(_ops(capsys, stack, tmp_path, "status", "--json"))
        assert run["load_status"] == "LOADED"
        assert 0 < run["upload_to_loaded_s"] <= run["duration_s"] + 1  # S3 time: to the second
        printed = _ops(capsys, stack, tmp_path, "status")
        assert "upload_to_loaded_s" in printed.splitlines()[0]


def _crawls(stack: EmulatedStack) -> list[dict[str, Any]]:
    glue = stack.client("glue")
    return list(glue.list_crawls(CrawlerName=stack.crawler_name, MaxResults=100)["Crawls"])


def test_local_run_with_the_crawl_beside_the_load_loads_both_files_and_still_crawls(
    shared_data: Path, tmp_path: Path
) -> None:
    files = [shared_data / "sample_flights.csv", shared_data / "bts_ontime_2023_01_OK.csv"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flightpipe.cli",
            "local",
            "run",
            "--state-dir",
            str(tmp_path / "state"),
            "--param",
            "crawlBeforeLoad=false",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for path in files:
        row = next(line for line in out.splitlines() if line.split()[:1] == [path.name[:32]])
        assert row.split()[1:3] == ["SUCCEEDED", "LOADED"], row
        # Each execution loaded first and polled the crawl after its load.
        states = [
            line.split("-> ", 1)[1]
            for line in out.splitlines()
            if line.startswith(f"{path.name}: -> ")
        ]
        assert states.index("PollCrawler") > states.index("LoadEnded"), states
        assert states[-4:] == [
            "LoadOutcome",
            "ComposeSuccessNotice",
            "NotifySuccess",
            "Succeeded",
        ], states
    assert "warehouse: 6081 fact rows" in out  # 13 + 6,068
    crawls = re.search(r"^crawler \S+: (\d+) crawls? \(ListCrawls\): (.*)$", out, re.M)
    assert crawls is not None, out
    assert int(crawls.group(1)) >= 1 and "COMPLETED" in crawls.group(2)
