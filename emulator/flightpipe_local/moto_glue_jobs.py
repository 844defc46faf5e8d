"""Glue patch: a job run executes the project's entry script in-process.

moto's job runs run nothing and succeed on their own. Here ``FakeJob.start_job_run``
keeps moto's checks (``MaxConcurrentRuns`` → ``ConcurrentRunsExceededException``)
and then runs ``glue_scripts/<script>`` (the file named by the job's
``ScriptLocation``) with ``runpy`` in a worker thread, ``sys.argv`` built as Glue
builds it from the job's default arguments merged with the run's. The run stays
RUNNING while the script runs and ends SUCCEEDED, or FAILED with the exception's
message as ``ErrorMessage``. Scripts share the process's ``sys.argv``, so runs
execute one at a time; a run waiting for its turn counts as RUNNING, as a run
starting up on Glue does.
"""

from __future__ import annotations

import logging
import runpy
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from moto.glue import models as glue_models
from moto.moto_api import state_manager

from flightpipe_local._patching import PatchSet

SEAM_OWNER = glue_models.FakeJob
START_NAME = "start_job_run"
RUN_OWNER = glue_models.FakeJobRun
DESCRIBE_NAME = "as_dict"
RUN_MODEL = "glue::job_run"

LOG = logging.getLogger(__name__)
RunListener = Callable[[str, str, str, Optional[str]], None]


def script_argv(
    script: Path, job_name: str, run_id: str, arguments: Mapping[str, str]
) -> list[str]:
    """``sys.argv`` as Glue passes it to a Python shell script."""
    argv = [str(script)]
    for name, value in arguments.items():
        argv.extend([name, str(value)])
    argv.extend(["--JOB_RUN_ID", run_id, "--JOB_NAME", job_name])
    return argv


def script_path(scripts_dir: Path, script_location: str) -> Path:
    """The repository script for a job's ``ScriptLocation`` (matched by file name)."""
    name = script_location.rstrip("/").rsplit("/", 1)[-1]
    return scripts_dir / name


class JobRunner:
    """Runs job scripts one at a time and records each run's outcome."""

    def __init__(self, scripts_dir: Path, on_end: Optional[RunListener] = None) -> None:
        self._scripts_dir = scripts_dir
        self._on_end = on_end
        self._lock = threading.Lock()

    def run(self, job: Any, run: Any) -> None:
        error: Optional[str] = None
        started = time.monotonic()
        try:
            script = script_path(self._scripts_dir, (job.command or {}).get("ScriptLocation", ""))
            if not script.is_file():
                raise FileNotFoundError(f"job script {script} does not exist")
            argv = script_argv(script, job.name, run.job_run_id, run.arguments or {})
            with self._lock:
                saved = sys.argv
                sys.argv = argv
                try:
                    runpy.run_path(str(script), run_name="__main__")
                except SystemExit as exit_:
                    if exit_.code not in (None, 0):
                        raise RuntimeError(f"script exited with status {exit_.code}") from exit_
                finally:
                    sys.argv = saved
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            LOG.info("job run %s of %s failed: %s", run.job_run_id, job.name, error)
        run.error_message = error
        run.execution_seconds = round(time.monotonic() - started)
        run.completed_on = glue_models.utcnow()
        run.modified_on = run.completed_on
        run.status = "FAILED" if error else "SUCCEEDED"
        if self._on_end is not None:
            self._on_end(job.name, run.job_run_id, run.status, error)


def install(patches: PatchSet, runner: JobRunner) -> None:
    """Make job runs execute the repository's script and report how it ended."""
    original_start = SEAM_OWNER.__dict__[START_NAME]
    original_describe = RUN_OWNER.__dict__[DESCRIBE_NAME]

    def start_job_run(self: Any, *args: Any, **kwargs: Any) -> str:
        run_id = original_start(self, *args, **kwargs)
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run.status = "RUNNING"
        worker = threading.Thread(
            target=runner.run, args=(self, run), name=f"job-{run_id[:12]}", daemon=True
        )
        worker.start()
        return run_id

    def as_dict(self: Any) -> dict[str, Any]:
        data = original_describe(self)
        data["ExecutionTime"] = getattr(self, "execution_seconds", 0)
        if data["JobRunState"] in ("STARTING", "RUNNING"):
            data.pop("CompletedOn", None)
        if getattr(self, "error_message", None):
            data["ErrorMessage"] = self.error_message
        return data

    patches.replace(SEAM_OWNER, START_NAME, start_job_run)
    patches.replace(RUN_OWNER, DESCRIBE_NAME, as_dict)
    # Runs end when their script ends, never by moto's own state transitions.
    state_manager.set_transition(RUN_MODEL, {"progression": "manual", "times": sys.maxsize})
    patches.on_restore(lambda: state_manager.unset_transition(RUN_MODEL))
