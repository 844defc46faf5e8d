"""Lambda and Glue worker processes end with the local stack, however the stack ends.

A stack that stops cleanly kills its workers itself. One killed with SIGKILL runs no
code at all, and its workers (warm Lambda environments, Glue job runs) would keep
running, orphaned, with the endpoint they talk to gone. So every worker is started:

- with a parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``): the kernel
  kills it when the stack dies. The signal fires when the *thread* that forked the
  child ends, not the process, and warm Lambda environments outlive the request thread
  that needed them; so all workers are forked by one thread that lives as long as the
  stack (:class:`WorkerProcesses`);
- in a process group of its own, which the stack kills whole (a Spark job's JVM and its
  Python workers are the driver's children);
- listed, with its start time, in the stack's work directory (:data:`WORKERS_FILE`), so
  that where no parent-death signal exists the next start stops what a killed stack
  left (see :mod:`flightpipe_local.leftovers`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

WORKERS_FILE = "workers.jsonl"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LAMBDA, GLUE = "lambda", "glue"


def parent_death_arming() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` that makes the child receive SIGKILL when its parent thread ends;
    None where the kernel has no such thing (anything but Linux).

    It runs in the forked child before ``exec``, so it only calls a function resolved
    here beforehand: nothing that imports or takes a lock another thread may hold.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def started_at(pid: int) -> Optional[float]:
    """When process ``pid`` started (None when it is gone or a zombie): with the pid, it
    names one process, never a later one that reuses the number."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.Error:
        return None


def is_running(pid: int, started: Optional[float] = None) -> bool:
    """Whether ``pid`` runs (and is the process that started at ``started``, when given)."""
    now = started_at(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 0.01


def kill_group(process: subprocess.Popen) -> None:
    """Kill a worker and every process of its group, and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            process.kill()
    process.wait()


class WorkerProcesses:
    """Starts the stack's worker processes, all from one long-lived thread.

    ``registry`` is the file each worker's pid, start time and kind are appended to.
    """

    def __init__(self, registry: Optional[Path] = None) -> None:
        self._registry = registry
        self._arm = parent_death_arming()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-spawner")
        self._lock = threading.Lock()

    @property
    def die_with_parent(self) -> bool:
        """Whether the kernel ends the workers when the stack dies (Linux)."""
        return self._arm is not None

    def spawn(self, args: Sequence[str], kind: str, **popen: Any) -> subprocess.Popen:
        """``subprocess.Popen(args, **popen)``, started as a worker of the stack."""
        process = self._spawner.submit(self._start, list(args), popen).result()
        self._register(process.pid, kind)
        return process

    def _start(self, args: list[str], popen: dict[str, Any]) -> subprocess.Popen:
        return subprocess.Popen(args, preexec_fn=self._arm, start_new_session=True, **popen)

    def _register(self, pid: int, kind: str) -> None:
        if self._registry is None:
            return
        record = {"pid": pid, "started": started_at(pid), "kind": kind}
        with self._lock, self._registry.open("a", encoding="utf-8") as registry:
            registry.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """End the spawning thread (after the workers have been stopped)."""
        self._spawner.shutdown(wait=True)


def registered_workers(registry: Path) -> list[dict[str, Any]]:
    """The workers a stack listed in ``registry`` (a torn last line left out)."""
    try:
        lines = registry.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    workers = []
    for line in lines:
        try:
            workers.append(json.loads(line))
        except ValueError:
            continue
    return workers


_DEFAULT: Optional[WorkerProcesses] = None
_DEFAULT_LOCK = threading.Lock()


def default_workers() -> WorkerProcesses:
    """The process-wide spawner, for runners created without one (tests create them so)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = WorkerProcesses()
        return _DEFAULT
