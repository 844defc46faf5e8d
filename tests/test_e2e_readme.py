"""README.md's commands, run as a person runs them.

``make demo`` runs as it is. The other commands of README's fenced bash blocks (all but
``make demo`` and ``make test``, which CI runs) run in README's order, each in its own bash with
``source .venv/bin/activate`` done first, as README's first upload command says: the
``flightpipe local up`` command runs in the background, as README's first terminal; once its
banner prints the ``export`` line, every later command runs with that environment exported, as
README's second terminal, and must exit 0. The state dir is a temporary one
(``$FLIGHTPIPE_LOCAL_STATE_DIR``, where ``local up`` and ``--local`` both look by default).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path
from typing import Optional

import pytest
from readme_commands import REPO_ROOT, bash_commands, readme_text

pytestmark = pytest.mark.e2e

ACTIVATE = "source .venv/bin/activate"
NOT_HERE = ("make demo", "make test")
COMMAND_TIMEOUT_S = 600
START_TIMEOUT_S = 900


def _environment(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["FLIGHTPIPE_LOCAL_STATE_DIR"] = str(state_dir)
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/credentials"
    env["AWS_CONFIG_FILE"] = "/nonexistent/config"
    return env


def _bash(line: str) -> list[str]:
    return ["bash", "-c", f"{ACTIVATE} && {line}"]


def _exports(banner_line: str) -> dict[str, str]:
    """``  export A=1 B=2`` (local up's banner) as a mapping."""
    words = shlex.split(banner_line.strip())
    assert words[0] == "export", banner_line
    return dict(word.split("=", 1) for word in words[1:])


def _start_local_up(command: str, env: dict[str, str]) -> tuple[subprocess.Popen, dict[str, str]]:
    up = subprocess.Popen(
        _bash(command),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert up.stdout is not None
    # A stack that prints no banner in time is stopped, which ends its output.
    watchdog = threading.Timer(START_TIMEOUT_S, _stop, args=(up,))
    watchdog.start()
    seen: list[str] = []
    exports: Optional[dict[str, str]] = None
    try:
        while exports is None:
            line = up.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.strip().startswith("export "):
                exports = _exports(line)
    finally:
        watchdog.cancel()
    if exports is None:
        _stop(up)
    assert exports is not None, "local up printed no export line:\n" + "".join(seen)
    return up, exports


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_readme_commands_run_in_order_against_local_up(tmp_path: Path, shared_data: Path):
    commands = [c for c in bash_commands(readme_text()) if c not in NOT_HERE]
    assert commands[0] == ACTIVATE, "README's upload block starts by activating .venv"
    up_commands = [c for c in commands if c.startswith("flightpipe local up")]
    assert len(up_commands) == 1
    env = _environment(tmp_path / "local")
    up_index = commands.index(up_commands[0])
    up, exports = _start_local_up(up_commands[0], env)
    try:
        second_terminal = {**env, **exports}
        for command in commands[up_index + 1 :]:
            result = subprocess.run(
                _bash(command),
                cwd=REPO_ROOT,
                env=second_terminal,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    finally:
        _stop(up)


def test_make_demo_runs_the_pipeline_on_the_shared_data(shared_data: Path):
    result = subprocess.run(
        ["make", "demo", f"SHARED_DATA={shared_data}"],
        cwd=REPO_ROOT,
        env=_environment(REPO_ROOT / ".state" / "demo-test"),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stdout.count("LOADED") >= 2, result.stdout[-4000:]
