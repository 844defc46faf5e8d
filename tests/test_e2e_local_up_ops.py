"""``flightpipe local up`` as a user runs it, in its own process, operated from another
with ``flightpipe … --state-dir``: the smoke checks a deployed stage runs after
``sls deploy`` pass on it, and once it stops, commands say so in one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_e2e_cli_signals import end, start

from flightpipe.ops.target import LOCAL_RECORD

pytestmark = [pytest.mark.e2e, pytest.mark.warehouse, pytest.mark.template]


def flightpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flightpipe.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_local_up_is_operated_by_status_and_smoke_then_commands_say_it_stopped(
    tmp_path: Path, shared_data: Path
) -> None:
    state_dir = (tmp_path / "state").resolve()
    airports = str(shared_data / "airports.csv")
    process, _, lines = start("up", "--state-dir", str(state_dir), "--airports", airports)
    try:
        assert (state_dir / LOCAL_RECORD).is_file()
        fresh = flightpipe("status", "--state-dir", str(state_dir), "--json")
        assert (fresh.returncode, json.loads(fresh.stdout or "null")) == (0, []), fresh.stderr
        smoke = flightpipe("smoke", "--state-dir", str(state_dir), "--json")
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr + "".join(lines)
        result = json.loads(smoke.stdout)
        assert result["ok"] and len(result["checks"]) >= 7
        status = flightpipe("status", "--state-dir", str(state_dir), "--json", "--limit", "1")
        assert status.returncode == 0, status.stderr
        (run,) = json.loads(status.stdout)
        assert (run["file"], run["load_status"]) == (result["key"], "LOADED")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        end(process)
    assert not (state_dir / LOCAL_RECORD).exists()
    stopped = flightpipe("status", "--state-dir", str(state_dir))
    assert stopped.returncode == 2 and stopped.stdout == ""
    assert stopped.stderr.startswith("flightpipe status: flightpipe local up is not running")
    assert stopped.stderr.count("\n") == 1
