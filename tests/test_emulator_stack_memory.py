"""The stack's memory replays into a fresh moto what an earlier one recorded, also when the
earlier one was killed (nothing written on the way out): S3 versions as they were, finished
executions with their histories, unfinished ones ABORTED with the reason, crawls and job runs
cut off, SNS notices."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.glue import models as glue_models
from moto.moto_api import state_manager

from flightpipe_local import moto_glue_crawls
from flightpipe_local._patching import PatchSet
from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.moto_glue_crawler import BEFORE_RESTART
from flightpipe_local.moto_glue_jobs import RUN_MODEL
from flightpipe_local.moto_sns import Notice, NoticeBoard
from flightpipe_local.stack_memory import (
    JOURNAL_FILE,
    STOPPED_CAUSE,
    STOPPED_ERROR,
    STOPPED_MESSAGE,
    StackMemory,
)

REGION = "us-east-1"
BUCKET = "data"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/machine"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
WAIT = json.dumps(
    {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}},
    }
)
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


@pytest.fixture
def memory_dir(tmp_path: Path) -> Path:
    return tmp_path / "aws"


class Stack:
    """One life of a stack: a fresh moto with the deployment, its memory recording."""

    def __init__(self, directory: Path) -> None:
        self.patches = PatchSet()
        self.memory = StackMemory(directory, ACCOUNT_ID, REGION)
        self.notices = NoticeBoard()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def deploy(self) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sfn = self.client("stepfunctions")
        for name, definition in (("pass", PASS), ("wait", WAIT)):
            sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)
        glue = self.client("glue")
        glue.create_database(DatabaseInput={"Name": "db"})
        glue.create_crawler(
            Name="crawler",
            Role=ROLE,
            DatabaseName="db",
            Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/incoming/"}]},
        )
        glue.create_job(Name="etl", Role=ROLE, Command={"Name": "pythonshell"})

    def start(self) -> Any:
        self.deploy()
        moto_glue_crawls.install(self.patches)  # crawls report their ErrorMessage
        # Job runs end when the stack says so (moto_glue_jobs), never by moto's transitions.
        state_manager.set_transition(RUN_MODEL, {"progression": "manual", "times": sys.maxsize})
        self.patches.on_restore(lambda: state_manager.unset_transition(RUN_MODEL))
        self.memory.install(self.patches)
        restored = self.memory.restore(self.notices)
        self.memory.resume()
        return restored

    def kill(self) -> None:
        """What a SIGKILL leaves: the journal as written, nothing more."""
        self.memory._file = None
        self.patches.restore()


@pytest.fixture
def lives(memory_dir: Path) -> Iterator[Any]:
    def life() -> Any:
        return mock_aws(config=SFN_CONFIG)

    yield life


def machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"


def described(sfn: Any, arn: str) -> dict[str, Any]:
    document = sfn.describe_execution(executionArn=arn)
    document.pop("ResponseMetadata")
    return document


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=arn)["events"]


def listing(s3: Any) -> dict[str, Any]:
    listed = s3.list_object_versions(Bucket=BUCKET)
    return {
        "versions": [
            (v["Key"], v["VersionId"], v["ETag"], v["LastModified"], v["IsLatest"])
            for v in listed.get("Versions", [])
        ],
        "markers": [(m["Key"], m["VersionId"]) for m in listed.get("DeleteMarkers", [])],
    }


def test_s3_versions_come_back_after_a_kill_with_their_ids_times_bodies_and_types(
    memory_dir: Path, lives: Any
) -> None:
    with lives():
        first = Stack(memory_dir)
        first.start()
        s3 = first.client("s3")
        s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"one")
        time.sleep(1.1)  # LastModified is kept to the second
        s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"two", ContentType="text/csv")
        s3.put_object(Bucket=BUCKET, Key="staging/x", Body=b"gone soon")
        s3.delete_object(Bucket=BUCKET, Key="staging/x")
        before = listing(s3)
        first.kill()
    with lives():
        second = Stack(memory_dir)
        restored = second.start()
        s3 = second.client("s3")
        assert listing(s3) == before
        latest = s3.get_object(Bucket=BUCKET, Key="incoming/a.csv")
        assert (latest["Body"].read(), latest["ContentType"]) == (b"two", "text/csv")
        (older,) = [v for v in before["versions"] if v[0] == "incoming/a.csv" and not v[4]]
        body = s3.get_object(Bucket=BUCKET, Key="incoming/a.csv", VersionId=older[1])
        assert body["Body"].read() == b"one"
        assert (restored.objects, restored.versions) == (1, 4)
        second.kill()


def test_a_restored_object_starts_nothing_and_the_journal_is_rewritten_compact(
    memory_dir: Path, lives: Any
) -> None:
    with lives():
        first = Stack(memory_dir)
        first.start()
        s3 = first.client("s3")
        for body in (b"1", b"2", b"3"):
            s3.put_object(Bucket=BUCKET, Key="k", Body=body)
        s3.put_object(Bucket=BUCKET, Key="deleted", Body=b"x")
        s3.delete_object(Bucket=BUCKET, Key="deleted")
        first.kill()
    bodies_before = sorted(p.name for p in (memory_dir / "objects").iterdir())
    with lives():
        second = Stack(memory_dir)
        second.start()
        lines = (memory_dir / JOURNAL_FILE).read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert [(r["kind"], r["key"], len(r["versions"])) for r in records] == [
            ("s3", "k", 3),
            ("s3", "deleted", 2),
        ]
        assert sorted(p.name for p in (memory_dir / "objects").iterdir()) == bodies_before
        second.kill()


def test_a_finished_execution_comes_back_whole_and_a_running_one_aborted_with_the_reason(
    memory_dir: Path, lives: Any
) -> None:
    with lives():
        first = Stack(memory_dir)
        first.start()
        sfn = first.client("stepfunctions")
        done = sfn.start_execution(stateMachineArn=machine_arn("pass"), name="done", input="{}")
        held = sfn.start_execution(stateMachineArn=machine_arn("wait"), name="held", input="{}")
        deadline = time.monotonic() + 10
        while sfn.describe_execution(executionArn=done["executionArn"])["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while len(sfn.get_execution_history(executionArn=held["executionArn"])["events"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        done_before = described(sfn, done["executionArn"])
        done_history = history(sfn, done["executionArn"])
        held_history = history(sfn, held["executionArn"])
        first.kill()
    with lives():
        second = Stack(memory_dir)
        restored = second.start()
        sfn = second.client("stepfunctions")
        assert (restored.executions, restored.unfinished_executions) == (2, 1)
        assert described(sfn, done["executionArn"]) == done_before
        assert history(sfn, done["executionArn"]) == done_history
        aborted = described(sfn, held["executionArn"])
        assert (aborted["status"], aborted["error"], aborted["cause"]) == (
            "ABORTED",
            STOPPED_ERROR,
            STOPPED_CAUSE,
        )
        events = history(sfn, held["executionArn"])
        assert events[:-1] == held_history
        assert events[-1] == {
            "id": held_history[-1]["id"] + 1,
            "previousEventId": held_history[-1]["id"],
            "type": "ExecutionAborted",
            "timestamp": held_history[-1]["timestamp"],  # its last sign of life
            "executionAbortedEventDetails": {"error": STOPPED_ERROR, "cause": STOPPED_CAUSE},
        }
        assert aborted["stopDate"] == held_history[-1]["timestamp"]
        listed = sfn.list_executions(stateMachineArn=machine_arn("wait"), statusFilter="ABORTED")
        assert [e["name"] for e in listed["executions"]] == ["held"]
        second.kill()


def test_crawls_and_job_runs_cut_off_by_a_clean_stop_end_then_and_notices_come_back_unshown(
    memory_dir: Path, lives: Any
) -> None:
    with lives():
        first = Stack(memory_dir)
        first.start()
        backend = glue_models.glue_backends[ACCOUNT_ID][REGION]
        crawler = backend.crawlers["crawler"]
        crawler.start_crawler()
        crawl = crawler.crawls[-1]
        crawl.status = "RUNNING"
        first.memory.crawl_changed(crawler, crawl)
        job = backend.jobs["etl"]
        glue = first.client("glue")
        run_id = glue.start_job_run(JobName="etl", Arguments={"--a": "1"})["JobRunId"]
        (run,) = job.job_runs
        run.status = "RUNNING"
        first.memory.job_run_changed(job, run)
        first.memory.notice_published(Notice("arn:topic", "Loaded", '{"ok": true}', 1.5))
        first.memory.close()
        stopped = dt.datetime.now(dt.timezone.utc)
        first.patches.restore()
    with lives():
        second = Stack(memory_dir)
        shown: list[Notice] = []
        second.notices.on_notice = shown.append
        restored = second.start()
        assert (restored.crawls, restored.job_runs, restored.notices) == (1, 1, 1)
        glue = second.client("glue")
        (crawl_after,) = glue.list_crawls(CrawlerName="crawler")["Crawls"]
        assert (crawl_after["CrawlId"], crawl_after["State"], crawl_after["ErrorMessage"]) == (
            crawl.crawl_id,
            "STOPPED",
            STOPPED_MESSAGE.format("crawl"),
        )
        assert abs((crawl_after["EndTime"] - stopped).total_seconds()) < 2
        backend = glue_models.glue_backends[ACCOUNT_ID][REGION]
        assert getattr(backend.crawlers["crawler"].crawls[-1], BEFORE_RESTART) is True
        run_after = glue.get_job_run(JobName="etl", RunId=run_id)["JobRun"]
        assert (run_after["JobRunState"], run_after["Arguments"]) == ("FAILED", {"--a": "1"})
        assert backend.jobs["etl"].job_runs[-1].error_message == STOPPED_MESSAGE.format("job run")
        assert second.notices.notices() == [Notice("arn:topic", "Loaded", '{"ok": true}', 1.5)]
        assert shown == []
        second.kill()
