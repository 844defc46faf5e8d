"""What a killed local stack leaves is cleared by the next start, and its workers die with it:
the worker spawner's parent-death signal, the state dir lock, the stale work directories and
record, and pgserver's list of the warehouse's users."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from flightpipe.ops.target import LOCAL_RECORD
from flightpipe_local.leftovers import (
    OWNER_FILE,
    WORK_DIR_PREFIX,
    StateDirBusy,
    StateDirLock,
    clear_leftovers,
    make_work_dir,
    remove_stale_record,
)
from flightpipe_local.processes import (
    WORKERS_FILE,
    WorkerProcesses,
    is_running,
    kill_group,
    registered_workers,
    started_at,
)
from flightpipe_local.redshift_standin import HANDLES_FILE, prune_gone_handles

REPO_ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    return False


def ended_process() -> tuple[int, float]:
    """The pid and start time of a process that has ended."""
    process = subprocess.Popen(["sleep", "0.2"])
    started = started_at(process.pid)
    process.wait()
    assert started is not None
    return process.pid, started


@linux_only
def test_a_worker_dies_with_the_stack_process_killed_by_sigkill(tmp_path: Path) -> None:
    registry = tmp_path / WORKERS_FILE
    stack = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from flightpipe_local.processes import WorkerProcesses
        workers = WorkerProcesses(Path({str(registry)!r}))
        print(workers.spawn(["sleep", "60"], "glue").pid, flush=True)
        time.sleep(60)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "emulator")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", stack], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    worker = int(process.stdout.readline())
    assert is_running(worker)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert wait_gone(worker)
    (listed,) = registered_workers(registry)
    assert (listed["pid"], listed["kind"]) == (worker, "glue")


def test_a_worker_outlives_the_thread_that_asked_for_it(tmp_path: Path) -> None:
    workers = WorkerProcesses(tmp_path / WORKERS_FILE)
    spawned: list[subprocess.Popen] = []
    asking = threading.Thread(
        target=lambda: spawned.append(workers.spawn(["sleep", "30"], "lambda"))
    )
    asking.start()
    asking.join()
    time.sleep(0.3)  # a parent-death signal bound to the asking thread would have fired
    try:
        assert spawned[0].poll() is None
    finally:
        kill_group(spawned[0])
        workers.close()
    assert spawned[0].returncode == -signal.SIGKILL


def test_a_second_stack_on_a_state_dir_is_refused_while_the_first_holds_it(
    tmp_path: Path,
) -> None:
    first = StateDirLock(tmp_path)
    first.acquire()
    with pytest.raises(StateDirBusy) as busy:
        StateDirLock(tmp_path).acquire()
    assert str(busy.value) == f"another local stack (pid {os.getpid()}) uses {tmp_path}"
    first.release()
    second = StateDirLock(tmp_path)
    second.acquire()
    second.release()


def test_the_next_start_removes_a_gone_stack_s_work_dir_and_stops_its_leftover_workers(
    tmp_path: Path,
) -> None:
    gone = tmp_path / f"{WORK_DIR_PREFIX}gone"
    (gone / "glue" / "glue-jr_1").mkdir(parents=True)
    (gone / "glue" / "glue-jr_2").mkdir()
    owner, started = ended_process()
    (gone / OWNER_FILE).write_text(json.dumps({"pid": owner, "started": started}))
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    record = {"pid": leftover.pid, "started": started_at(leftover.pid), "kind": "glue"}
    (gone / WORKERS_FILE).write_text(json.dumps(record) + "\n")
    running = make_work_dir(tmp_path)  # this process's: kept
    unowned = tmp_path / f"{WORK_DIR_PREFIX}unowned"  # no owner file: not a stack's
    unowned.mkdir()
    try:
        lines = clear_leftovers(None, tmp_path)
        assert leftover.wait(5) == -signal.SIGKILL
    finally:
        if leftover.poll() is None:
            leftover.kill()
    assert lines == [
        f"removed the work directory {gone} of a local stack that is gone (pid {owner}): "
        "2 Glue job directories, stopped 1 worker process"
    ]
    assert not gone.exists()
    assert running.is_dir() and unowned.is_dir()


def test_a_listed_worker_whose_pid_now_names_another_process_is_left_alone(
    tmp_path: Path,
) -> None:
    gone = tmp_path / f"{WORK_DIR_PREFIX}gone"
    gone.mkdir()
    owner, started = ended_process()
    (gone / OWNER_FILE).write_text(json.dumps({"pid": owner, "started": started}))
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reused = {"pid": other.pid, "started": (started_at(other.pid) or 0) - 100, "kind": "glue"}
    (gone / WORKERS_FILE).write_text(json.dumps(reused) + "\n")
    try:
        lines = clear_leftovers(None, tmp_path)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    assert lines == [
        f"removed the work directory {gone} of a local stack that is gone (pid {owner}): "
        "0 Glue job directories"
    ]


def test_a_stale_local_up_record_is_removed_and_said(tmp_path: Path) -> None:
    record = {"pid": 4242, "endpoint_url": "http://127.0.0.1:5999"}
    (tmp_path / LOCAL_RECORD).write_text(json.dumps(record))
    assert remove_stale_record(tmp_path) == (
        f"removed the stale {LOCAL_RECORD} of a local stack that is gone "
        "(pid 4242, http://127.0.0.1:5999)"
    )
    assert not (tmp_path / LOCAL_RECORD).exists()
    assert remove_stale_record(tmp_path) is None


def test_pgserver_s_list_loses_the_processes_that_are_gone_and_keeps_the_live_ones(
    tmp_path: Path,
) -> None:
    dead, _ = ended_process()
    handles = tmp_path / HANDLES_FILE
    handles.write_text(json.dumps([dead, os.getpid()]))
    assert prune_gone_handles(tmp_path) == [dead]
    assert json.loads(handles.read_text()) == [os.getpid()]
    assert prune_gone_handles(tmp_path) == []


def test_a_listed_pid_taken_by_a_process_started_after_the_list_was_written_is_pruned(
    tmp_path: Path,
) -> None:
    newer = subprocess.Popen(["sleep", "30"])
    try:
        handles = tmp_path / HANDLES_FILE
        handles.write_text(json.dumps([newer.pid]))
        an_hour_ago = time.time() - 3600
        os.utime(handles, (an_hour_ago, an_hour_ago))
        assert prune_gone_handles(tmp_path) == [newer.pid]
        assert json.loads(handles.read_text()) == []
    finally:
        newer.kill()
        newer.wait()
