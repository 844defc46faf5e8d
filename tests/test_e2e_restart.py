"""``flightpipe local up --state-dir`` killed with SIGKILL and started again: the new stack
remembers every file the old one took in, re-drives those without an outcome to one load
each, and leaks nothing (no PostgreSQL, Glue job or Lambda worker process outlives it)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import boto3
import pytest
from botocore.config import Config
from e2e_support import data_rows
from test_e2e_cli_signals import alive, children, command_line, end, processes_naming, start

from flightpipe.ops.target import LOCAL_RECORD
from flightpipe_local.leftovers import WORK_DIR_PREFIX
from flightpipe_local.moto_lambda import BOOTSTRAP
from flightpipe_local.stack_memory import STOPPED_CAUSE, STOPPED_ERROR

pytestmark = [pytest.mark.e2e, pytest.mark.warehouse, pytest.mark.template]

BURST = 10
PREFIX = "incoming/restart/"
# Uploads keep coming while the first files load: the kill cuts the burst.
UPLOAD_SPACING_S = 1.0
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def flightpipe(*args: str) -> Any:
    """``flightpipe ARGS --json`` against the running local stack: its parsed output."""
    result = subprocess.run(
        [sys.executable, "-m", "flightpipe.cli", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60),
    )


def postmaster_pid(state_dir: Path) -> int:
    """The warehouse's PostgreSQL server, as its data directory names it."""
    return int((state_dir / "warehouse" / "postmaster.pid").read_text().splitlines()[0])


def handle_pids(state_dir: Path) -> list[int]:
    """pgserver's list of the processes using the warehouse."""
    path = state_dir / "warehouse" / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


def wait_until_gone(pids: set[int], seconds: float) -> list[int]:
    """The pids still running after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return sorted(pid for pid in pids if alive(pid))


class WorkerWatch:
    """Records the pid of every Lambda worker and Glue job process the stack runs."""

    def __init__(self, stack_pid: int) -> None:
        self.stack_pid = stack_pid
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in children(self.stack_pid):
                line = command_line(pid)
                if str(BOOTSTRAP) in line or "--JOB_RUN_ID" in line:
                    self.pids.add(pid)
            self._stop.wait(0.1)

    def glue_pids(self) -> set[int]:
        return {pid for pid in self.pids if "--JOB_RUN_ID" in command_line(pid)}

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.pids


class Uploader:
    """Puts the burst's files one after another until all are in or the stack is gone."""

    def __init__(self, endpoint: str, bucket: str, files: list[Path]) -> None:
        self.s3 = client("s3", endpoint)
        self.bucket = bucket
        self.files = files
        self.uploaded: list[str] = []
        self.cut: Optional[str] = None  # the key whose put failed (the stack died under it)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for path in self.files:
            key = PREFIX + path.name
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            except Exception:
                self.cut = key
                return
            self.uploaded.append(key)
            time.sleep(UPLOAD_SPACING_S)


def ledger(state_dir: Path, bucket: str) -> list[dict[str, Any]]:
    source = f"s3://{bucket}/{PREFIX}"
    return flightpipe(
        "report",
        "--sql",
        f"SELECT source_file, status FROM airlines.load_ledger WHERE source_file LIKE '{source}%'",
        "--state-dir",
        str(state_dir),
    )


def fact_rows(state_dir: Path, bucket: str) -> dict[str, int]:
    source = f"s3://{bucket}/{PREFIX}"
    rows = flightpipe(
        "report",
        "--sql",
        "SELECT source_file, COUNT(*) AS n FROM airlines.daily_flights_fact "
        f"WHERE source_file LIKE '{source}%' GROUP BY source_file",
        "--state-dir",
        str(state_dir),
    )
    return {row["source_file"][len(f"s3://{bucket}/") :]: int(row["n"]) for row in rows}


def wait_for_executions(sfn: Any, arns: list[str], seconds: float) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in arns}
        if all(status != "RUNNING" for status in statuses.values()):
            return statuses
        time.sleep(2)
    pytest.fail(f"executions still running after {seconds:.0f}s: {statuses}")


def burst_files(sample: Path, directory: Path) -> list[Path]:
    directory.mkdir()
    files = []
    for number in range(BURST):
        copy = directory / f"burst-{number:02d}.csv"
        shutil.copyfile(sample, copy)
        files.append(copy)
    return files


@pytest.fixture
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the test's own for the stacks it starts: a stack's start
    clears the work directories of every gone stack it finds there, so in the shared one
    another session's start could clear this test's before its second start sees it."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


def test_a_stack_killed_mid_burst_restarts_remembering_every_file_and_backfill_loads_each_once(
    tmp_path: Path, shared_data: Path, own_temp_dir: Path
) -> None:
    state_dir = (tmp_path / "state").resolve()
    sample = shared_data / "sample_flights.csv"
    files = burst_files(sample, tmp_path / "burst")
    airports = str(shared_data / "airports.csv")
    up = ("up", "--state-dir", str(state_dir), "--airports", airports)

    first, endpoint, first_lines = start(*up)
    try:
        record = json.loads((state_dir / LOCAL_RECORD).read_text())
        bucket = record["outputs"]["DataBucketName"]
        job = record["outputs"]["GlueJobName"]
        first_workers = WorkerWatch(first.pid)
        uploader = Uploader(endpoint, bucket, files)
        glue = client("glue", endpoint)
        deadline = time.monotonic() + 300
        # The kill comes as soon as one job run has loaded its file: the rest are in flight.
        while not any(
            run["JobRunState"] == "SUCCEEDED" for run in glue.get_job_runs(JobName=job)["JobRuns"]
        ):
            assert time.monotonic() < deadline, "no file loaded in 300s:\n" + "".join(first_lines)
            time.sleep(0.2)
        glue_at_kill = first_workers.glue_pids()
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        end(first)
    uploader.thread.join(120)
    killed_workers = first_workers.stop()
    assert killed_workers, "no Lambda or Glue worker process was seen"
    # The kernel ends the workers with the stack (parent-death signal), at once.
    assert wait_until_gone(killed_workers, 10) == []
    warehouse = postmaster_pid(state_dir)
    assert alive(warehouse)  # a SIGKILL stops no detached PostgreSQL: the next start deals
    assert first.pid in handle_pids(state_dir)
    assert (state_dir / LOCAL_RECORD).exists()

    second, endpoint, second_lines = start(*up)
    try:
        second_workers = WorkerWatch(second.pid)
        said = "".join(second_lines)
        assert (
            f"removed the stale {LOCAL_RECORD} of a local stack that is gone (pid {first.pid}"
            in said
        )
        assert f"of a local stack that is gone (pid {first.pid}): " in said  # its work dir
        assert f"process {first.pid} as its user, which is gone: dropped from its list" in said
        assert "restored from " in said
        assert first.pid not in handle_pids(state_dir)

        s3 = client("s3", endpoint)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX).get("Contents", [])
        present = {item["Key"] for item in listed}
        # Every acknowledged upload is there; the one the kill cut may or may not be.
        assert set(uploader.uploaded) <= present <= {*uploader.uploaded, uploader.cut}
        loaded = {
            row["source_file"][len(f"s3://{bucket}/") :]
            for row in ledger(state_dir, bucket)
            if row["status"] == "LOADED"
        }
        assert loaded and loaded <= present
        runs = flightpipe("status", "--state-dir", str(state_dir), "--limit", "100")
        unfinished = {
            run["file"]: run
            for run in runs
            if run["file"].startswith(PREFIX) and run["load_status"] != "LOADED"
        }
        assert set(uploader.uploaded) - loaded <= set(unfinished) <= present - loaded
        assert {run["status"] for run in unfinished.values()} <= set(FAILED_STATUSES)
        sfn = client("stepfunctions", endpoint)
        aborted = [run for run in unfinished.values() if run["status"] == "ABORTED"]
        assert aborted
        for run in aborted:  # (status names a task's failure first, when the history has one)
            described = sfn.describe_execution(executionArn=run["execution_arn"])
            assert (described["error"], described["cause"]) == (STOPPED_ERROR, STOPPED_CAUSE)
        assert not [run for run in runs if run["status"] == "RUNNING"]

        started = flightpipe("backfill", PREFIX, "--failed-only", "--state-dir", str(state_dir))
        redriven = [item["key"] for item in started]
        assert sorted(redriven) == sorted(present - loaded)
        statuses = wait_for_executions(sfn, [item["execution_arn"] for item in started], 900)
        assert set(statuses.values()) == {"SUCCEEDED"}, statuses
        after = ledger(state_dir, bucket)
        loads = {key: 0 for key in present}
        for row in after:
            if row["status"] == "LOADED":
                loads[row["source_file"][len(f"s3://{bucket}/") :]] += 1
        assert loads == dict.fromkeys(present, 1)
        assert fact_rows(state_dir, bucket) == dict.fromkeys(present, data_rows(sample))
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, "".join(second_lines)
    finally:
        end(second)
    workers = killed_workers | second_workers.stop()
    assert wait_until_gone(workers | {warehouse}, 15) == []
    assert processes_naming(str(state_dir)) == []
    assert list(own_temp_dir.glob(f"{WORK_DIR_PREFIX}*")) == []
    print(
        f"\nrestart figures: {len(present)} files uploaded before the kill "
        f"({len(uploader.uploaded)} acknowledged), {len(loaded)} loaded before the kill, "
        f"{len(unfinished)} shown unfinished by status after the restart, "
        f"{len(redriven)} re-driven by backfill --failed-only, each loaded once; "
        f"Glue job processes running at the kill: {len(glue_at_kill)}, "
        f"worker processes seen: {len(killed_workers)} before the kill, {len(workers)} in all"
    )


def test_a_clean_stop_after_an_earlier_sigkill_stops_the_warehouse(
    tmp_path: Path, own_temp_dir: Path
) -> None:
    state_dir = (tmp_path / "state").resolve()
    first, _, _ = start("up", "--state-dir", str(state_dir))
    try:
        warehouse = postmaster_pid(state_dir)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        end(first)
    assert alive(warehouse)
    assert handle_pids(state_dir) == [first.pid]

    second, _, lines = start("up", "--state-dir", str(state_dir))
    try:
        assert postmaster_pid(state_dir) == warehouse  # the running server is reused
        assert handle_pids(state_dir) == [second.pid]
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, "".join(lines)
    finally:
        end(second)
    assert wait_until_gone({warehouse}, 15) == []
    assert handle_pids(state_dir) == []
    assert f"process {first.pid} as its user, which is gone: dropped from its list" in "".join(
        lines
    )
