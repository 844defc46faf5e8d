"""What a killed local stack leaves behind, found and cleared by the next one to start.

A stack killed with SIGKILL removes nothing: its work directory (the functions'
unpacked code, the Glue runs' scratch directories), the record ``local up`` wrote in
its state directory (``local-stack.json``, which then points at an endpoint nobody
serves) and, where the kernel has no parent-death signal, its worker processes. Each
stack therefore

- holds its state directory with an exclusive lock (:class:`StateDirLock`) for as long
  as it runs: the kernel drops the lock when the process dies, however it dies, so a
  stack that gets the lock knows that whatever the state directory holds of an earlier
  stack is stale, and a second stack on the same directory is refused;
- makes its work directory with an owner file naming its process (pid and start time),
  so the next start of any stack removes work directories whose owner is gone, after
  stopping the workers listed in them that still run.

Every clean-up is said in one line (:func:`clear_leftovers`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Optional

from flightpipe.ops.target import LOCAL_RECORD
from flightpipe_local.processes import WORKERS_FILE, is_running, registered_workers, started_at

WORK_DIR_PREFIX = "flightpipe-stack-"
OWNER_FILE = "owner.json"
LOCK_FILE = "stack.lock"
GLUE_SCRATCH = "glue"

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock, no refusal of a second stack
    fcntl = None  # type: ignore[assignment]


class StateDirBusy(RuntimeError):
    """Another local stack runs on the state directory."""


class StateDirLock:
    """An exclusive lock on a state directory, held by the running stack."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._file: Optional[Any] = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise StateDirBusy(
                    f"another local stack (pid {holder}) uses {self.path.parent}"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def make_work_dir(root: Optional[Path] = None) -> Path:
    """A new work directory for this process's stack, its owner recorded in it."""
    directory = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX, dir=root))
    owner = {"pid": os.getpid(), "started": started_at(os.getpid())}
    (directory / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return directory


def _owner(directory: Path) -> Optional[dict[str, Any]]:
    try:
        owner = json.loads((directory / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def stale_work_dirs(root: Optional[Path] = None) -> list[Path]:
    """Work directories under ``root`` (the system's temporary directory by default)
    whose owning stack is gone. A directory without an owner file is not a stack's."""
    base = Path(root or tempfile.gettempdir())
    found = []
    for directory in sorted(base.glob(WORK_DIR_PREFIX + "*")):
        owner = _owner(directory)
        if owner is not None and not is_running(owner["pid"], owner.get("started")):
            found.append(directory)
    return found


def stop_leftover_workers(directory: Path) -> int:
    """Kill the process groups of the workers a gone stack listed that still run (only
    those whose start time matches: a pid reused since names another process)."""
    stopped = 0
    for worker in registered_workers(directory / WORKERS_FILE):
        pid, started = worker.get("pid"), worker.get("started")
        if not isinstance(pid, int) or started is None or not is_running(pid, started):
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            continue
        stopped += 1
    return stopped


def remove_stale_work_dirs(root: Optional[Path] = None) -> list[str]:
    """Stop the leftover workers of gone stacks and remove their work directories."""
    lines = []
    for directory in stale_work_dirs(root):
        pid = (_owner(directory) or {}).get("pid", "?")
        stopped = stop_leftover_workers(directory)
        glue = directory / GLUE_SCRATCH
        runs = sum(1 for entry in glue.iterdir() if entry.is_dir()) if glue.is_dir() else 0
        shutil.rmtree(directory, ignore_errors=True)
        what = [f"{runs} Glue job director{'y' if runs == 1 else 'ies'}"]
        if stopped:
            what.append(f"stopped {stopped} worker process{'' if stopped == 1 else 'es'}")
        lines.append(
            f"removed the work directory {directory} of a local stack that is gone "
            f"(pid {pid}): {', '.join(what)}"
        )
    return lines


def remove_stale_record(state_dir: Path) -> Optional[str]:
    """Remove the ``local up`` record a gone stack left (call with the state dir locked)."""
    path = state_dir / LOCAL_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = {}
    path.unlink(missing_ok=True)
    pid = record.get("pid", "?") if isinstance(record, dict) else "?"
    endpoint = record.get("endpoint_url", "?") if isinstance(record, dict) else "?"
    return f"removed the stale {LOCAL_RECORD} of a local stack that is gone (pid {pid}, {endpoint})"


def clear_leftovers(state_dir: Optional[Path], temp_root: Optional[Path] = None) -> list[str]:
    """Clear what earlier stacks left; one line per thing cleared."""
    lines = remove_stale_work_dirs(temp_root)
    if state_dir is not None:
        record = remove_stale_record(state_dir)
        if record:
            lines.append(record)
    return lines
