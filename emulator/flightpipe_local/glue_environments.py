"""The Python libraries of a Glue job run, installed the way Glue installs them.

A Python shell job gets its code from S3: the script (``ScriptLocation``), the
wheels and modules named by ``--extra-py-files``, and the PyPI requirements of
``--additional-python-modules`` (comma-separated, ``name==version``), which Glue
installs with pip on top of the runtime's own libraries — that is how a job
changes the version of a preinstalled library
(https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html#create-python-extra-library,
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html).

Here pip installs them with the runtime's own interpreter into a directory that
goes first on the run's ``PYTHONPATH``. Installing from PyPI takes seconds, so a
directory is built once per distinct set of artifacts and requirements and
reused by every run that asks for the same set; the few most recently built
are kept, older ones removed — but never one a stack used within the last hours: several
stacks (a test run, ``make stress``, ``local up``) share the cache, and a directory removed
under a running job would fail it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


class EnvironmentBuildError(RuntimeError):
    """pip could not install a job's libraries (Glue fails the run the same way)."""


def split_list(value: str | None) -> list[str]:
    """A comma-separated job argument as its items."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _digest(python: Path, wheels: Sequence[Path], requirements: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(str(python.resolve()).encode())
    for requirement in requirements:
        digest.update(b"\0req:" + requirement.encode())
    for wheel in wheels:
        digest.update(b"\0whl:" + wheel.name.encode() + hashlib.sha256(wheel.read_bytes()).digest())
    return digest.hexdigest()[:24]


class JobEnvironments:
    """Builds and caches the library directories of job runs under ``cache_dir``."""

    def __init__(self, cache_dir: Path, keep: int = 4, in_use_s: float = 6 * 3600.0) -> None:
        self._cache_dir = cache_dir
        self._keep = keep
        # A directory used this recently may serve a job still running in another process.
        self._in_use_s = in_use_s
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def libraries(self, python: Path, wheels: Sequence[Path], requirements: Sequence[str]) -> Path:
        """The directory holding ``wheels`` and ``requirements`` installed for ``python``."""
        key = _digest(python, wheels, requirements)
        target = self._cache_dir / key
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not target.is_dir():
                self._build(python, wheels, requirements, target)
                self._prune(keep=target)
            os.utime(target)  # marks it in use: see _prune
        return target

    def _prune(self, keep: Path) -> None:
        """Remove directories beyond the ``keep`` most recently used that no stack has used
        for ``in_use_s`` (never ``keep``)."""
        built = [p for p in self._cache_dir.iterdir() if p.is_dir() and "." not in p.name]
        built.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        idle_since = time.time() - self._in_use_s
        for old in built[self._keep :]:
            if old != keep and old.stat().st_mtime < idle_since:
                shutil.rmtree(old, ignore_errors=True)

    def _build(
        self, python: Path, wheels: Sequence[Path], requirements: Sequence[str], target: Path
    ) -> None:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=self._cache_dir))
        packages = [*requirements, *(str(wheel) for wheel in wheels)]
        try:
            if packages:
                command = [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-warn-script-location",
                    "--target",
                    str(staging),
                    *packages,
                ]
                env = {**os.environ, "PIP_NO_INPUT": "1"}
                done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                if done.returncode != 0:
                    output = (done.stdout + done.stderr).strip()[-2000:]
                    raise EnvironmentBuildError(
                        f"installing {', '.join(packages)} failed: {output}"
                    )
            try:
                os.replace(staging, target)
            except OSError:
                if not target.is_dir():  # another process built the same set meanwhile: use it
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
