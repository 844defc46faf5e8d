"""Setup finds the interpreters AWS runs the code on, or says in one line how to get them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIND_PYTHON = REPO_ROOT / "scripts" / "find-python.sh"


def find_python(version: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FIND_PYTHON), version],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_the_glue_and_lambda_pythons_are_found_and_run() -> None:
    for version in ("3.9", "3.12"):
        found = find_python(version)
        assert found.returncode == 0, found.stderr
        interpreter = found.stdout.strip()
        reported = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert reported == version


def test_a_missing_python_stops_with_one_line_naming_it_and_how_to_install_it(
    tmp_path: Path,
) -> None:
    missing = find_python("3.99", PYENV_ROOT=str(tmp_path), PATH="/usr/bin:/bin")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        "Python 3.99 not found: install it with `pyenv install 3.99` or `uv python install 3.99`"
    ]
