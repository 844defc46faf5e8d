"""``flightpipe local up`` and ``local run`` stopped by SIGTERM or SIGHUP leave nothing running.

Python's default for both signals ends the process without any cleanup, which left the
embedded PostgreSQL (detached by ``pg_ctl``) running, orphaned.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from flightpipe_local.moto_lambda import BOOTSTRAP

pytestmark = pytest.mark.e2e

READY = re.compile(r"local stack up at (http://\S+)")
PROMPT_EXIT_S = 20


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone meanwhile
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def processes_naming(text: str) -> list[tuple[int, str]]:
    """Running processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            line = command_line(int(entry.name))
            if text in line and alive(int(entry.name)):
                found.append((int(entry.name), line))
    return found


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def start(*args: str, ready: re.Pattern = READY) -> tuple[subprocess.Popen, str, list[str]]:
    """``flightpipe local ARGS`` in its own process, once its output matched ``ready``:
    (process, the match's first group, its output so far)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flightpipe.cli", "local", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = ready.search(line)
            if match and not seen.is_set():
                found.append(match.group(1))
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    if not seen.wait(240):
        end(process)
        pytest.fail(f"local {args[0]} never printed {ready.pattern!r}:\n" + "".join(lines))
    return process, found[0], lines


def end(process: subprocess.Popen) -> None:
    """Stop a command a failed check leaves running: gently first, so its stack stops too."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(PROMPT_EXIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_and_check(
    process: subprocess.Popen, signum: int, state_dir: Path, lines: list[str]
) -> tuple[int, float]:
    """Send ``signum``; check the state dir's PostgreSQL and the Lambda workers are gone.
    (exit status, seconds from the signal to the exit)."""
    try:
        assert processes_naming(str(state_dir)), "no PostgreSQL server runs for the state dir"
        workers = [pid for pid in children(process.pid) if str(BOOTSTRAP) in command_line(pid)]
        assert workers, "no Lambda worker process started"
        sent = time.monotonic()
        process.send_signal(signum)
        returncode = process.wait(PROMPT_EXIT_S)
        took = time.monotonic() - sent
    finally:
        end(process)
    output = "".join(lines)
    deadline = time.monotonic() + 5  # the postmaster's last children may take a moment
    while processes_naming(str(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_naming(str(state_dir)) == [], output
    assert [pid for pid in workers if alive(pid)] == []
    return returncode, took


def warm_a_lambda(endpoint: str) -> None:
    """Invoke a function so that its worker process runs beside the stack."""
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    (name,) = [n for n in names if n.endswith("pollCrawler")]
    client.invoke(FunctionName=name, Payload=json.dumps({}).encode())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_local_up_promptly_with_its_warehouse_and_lambda_workers(
    tmp_path: Path, signum: signal.Signals
) -> None:
    state_dir = (tmp_path / "state").resolve()
    process, endpoint, lines = start("up", "--state-dir", str(state_dir))
    warm_a_lambda(endpoint)
    returncode, took = stop_and_check(process, signum, state_dir, lines)
    assert returncode == 0, "".join(lines)  # a way to stop `up`, as Ctrl-C is
    assert took < PROMPT_EXIT_S
    assert "stopping the local stack" in "".join(lines)


def test_sigterm_cuts_a_local_run_short_and_stops_its_stack(
    tmp_path: Path, shared_data: Path
) -> None:
    state_dir = (tmp_path / "state").resolve()
    flights = str(shared_data / "sample_flights.csv")
    entered = re.compile(r"^sample_flights\.csv: (-> \w+)\s*$")
    process, _, lines = start("run", "--state-dir", str(state_dir), flights, ready=entered)
    deadline = time.monotonic() + 60  # in the middle of the execution: a Lambda has run
    while time.monotonic() < deadline and not any(
        str(BOOTSTRAP) in command_line(pid) for pid in children(process.pid)
    ):
        time.sleep(0.05)
    returncode, took = stop_and_check(process, signal.SIGTERM, state_dir, lines)
    assert returncode == 128 + signal.SIGTERM, "".join(lines)
    assert took < PROMPT_EXIT_S
