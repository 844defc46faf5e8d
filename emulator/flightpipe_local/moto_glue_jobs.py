"""Glue patch: a job run executes the uploaded job on Glue's runtime, in its own process.

moto's job runs run nothing and succeed on their own. Here ``FakeJob.start_job_run``
keeps moto's checks (``MaxConcurrentRuns`` → ``ConcurrentRunsExceededException``)
and then, as Glue does, fetches the job's script from its ``ScriptLocation`` and
the files of ``--extra-py-files`` from S3, installs them and the
``--additional-python-modules`` (PyPI requirements, or wheels in S3) into the run's Python path (see
:mod:`flightpipe_local.glue_environments`) and runs the script on the job's
runtime (Python 3.9 with the ``analytics`` library set for a Python shell job;
Python 3.11 and PySpark 3.5.4 for a Glue 5.0 Spark job, whose script's Spark
session runs in local mode on this machine's cores and Java, with its Python
workers on the same runtime) with ``sys.argv`` built as Glue builds it. Runs are
independent processes, so as many run at once as the job's ``MaxConcurrentRuns``
lets start. A run stays RUNNING while its process runs and ends SUCCEEDED, or
FAILED with the message of the exception the script raised as ``ErrorMessage`` (the
script runs under ``runtime_shims/glue_launcher.py``, as Glue's own launcher runs it,
whatever format the script logs in); the job's
``Timeout`` (minutes) stops it with ``TIMEOUT``. Each run's output is kept as its log.
A run's process is a worker of the stack (:mod:`flightpipe_local.processes`): it ends
with the stack, even when the stack is killed; its scratch directory is in the stack's
work directory, which goes with the stack too.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from moto.glue import models as glue_models
from moto.moto_api import state_manager

from flightpipe_local._patching import PatchSet
from flightpipe_local.glue_environments import JobEnvironments, split_list
from flightpipe_local.processes import GLUE, WorkerProcesses, default_workers, kill_group
from flightpipe_local.runtimes import SHIMS_DIR, SPARK, glue_runtime

# Runs the script as Glue does and records the exception it raised (runtime_shims/).
LAUNCHER = SHIMS_DIR / "glue_launcher.py"
ERROR_FILE_VARIABLE = "FLIGHTPIPE_GLUE_ERROR_FILE"

SEAM_OWNER = glue_models.FakeJob
START_NAME = "start_job_run"
RUN_OWNER = glue_models.FakeJobRun
DESCRIBE_NAME = "as_dict"
RUN_MODEL = "glue::job_run"
# Arguments that configure Glue itself; Glue does not pass them to the script.
GLUE_ONLY_ARGUMENTS = ("library-set", "--additional-python-modules")

LOG = logging.getLogger(__name__)
ObjectFetcher = Callable[[str, Path], Path]
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Failed|Exit)\w*): (.*)$")


def script_argv(
    script: Path, job_name: str, run_id: str, arguments: Mapping[str, str]
) -> list[str]:
    """``sys.argv`` as Glue passes it to a Python shell script."""
    argv = [str(script)]
    for name, value in arguments.items():
        if name not in GLUE_ONLY_ARGUMENTS:
            argv.extend([name, str(value)])
    argv.extend(["--JOB_RUN_ID", run_id, "--JOB_NAME", job_name])
    return argv


def spark_environment(
    python: Path, workdir: Path, extra_files: Sequence[Path] = ()
) -> dict[str, str]:
    """How a Spark job's script finds its cluster here: local mode, every core of this
    machine, its Python workers on the job's runtime, scratch space in the run's directory.

    On Glue the script's ``SparkContext.getOrCreate()`` joins the job's workers; locally the
    same call starts a local-mode Spark (``PYSPARK_SUBMIT_ARGS``), so the script is unchanged.
    A ``log4j2.properties`` among the job's ``--extra-files`` configures the JVM's logging, as
    on Glue 4.0 and later (https://repost.aws/knowledge-center/glue-reduce-cloudwatch-logs);
    without one Spark logs warnings in its default layout.
    """
    java_options = [f"-Djava.io.tmpdir={workdir}"]
    log4j = next((path for path in extra_files if path.name == "log4j2.properties"), None)
    conf = {
        "spark.ui.enabled": "false",
        # Glue shows no console progress bar in a job's logs.
        "spark.ui.showConsoleProgress": "false",
    }
    if log4j is None:
        conf["spark.log.level"] = "WARN"
    else:
        java_options.append(f"-Dlog4j2.configurationFile={log4j.as_uri()}")
    conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    options = " ".join(f"--conf {shlex.quote(f'{name}={value}')}" for name, value in conf.items())
    return {
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "PYSPARK_SUBMIT_ARGS": f"--master local[*] {options} pyspark-shell",
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Scratch space: the variable a cluster manager sets (spark.local.dir would be logged
        # as overridden by it).
        "SPARK_LOCAL_DIRS": str(workdir / "spark"),
    }


def error_message(output: str, returncode: int) -> str:
    """The message of the last exception a failed script printed (its status otherwise):
    for a script that ended without the launcher recording its exception."""
    for line in reversed(output.strip().splitlines()):
        match = _ERROR_LINE.match(line.strip())
        if match:
            return match.group(2) or match.group(1)
    return f"script exited with status {returncode}"


class JobRunner:
    """Runs each job run as a process of the job's runtime and records how it ended."""

    def __init__(
        self,
        repo: Path,
        fetch: ObjectFetcher,
        environments: JobEnvironments,
        base_environment: Mapping[str, str],
        log_dir: Path,
        credentials_for: Optional[Callable[[Any], Mapping[str, str]]] = None,
        fetch_as: Optional[Callable[[Any], ObjectFetcher]] = None,
        work_dir: Optional[Path] = None,
        workers: Optional[WorkerProcesses] = None,
        on_run: Optional[Callable[[Any, Any], None]] = None,
    ) -> None:
        self._repo = repo
        # Where each run's scratch directory goes (the system's temporary directory without).
        self._work_dir = work_dir
        self._workers = workers or default_workers()
        # Told of a run when it starts and when it ends (the stack's memory records runs).
        self.on_run = on_run
        # Glue reads a job's script and libraries from S3 as the job's role.
        self._fetch_as = fetch_as
        # The job role's session: Glue runs the script with the role it assumed.
        self._credentials_for = credentials_for
        self._fetch = fetch
        self._environments = environments
        self._base_environment = dict(base_environment)
        self._log_dir = log_dir
        self._running: set[subprocess.Popen] = set()
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        """End the runs still going (their processes are killed): the stack is stopping."""
        with self._lock:
            self._closed = True
            running, self._running = list(self._running), set()
        for process in running:
            kill_group(process)

    def run(self, job: Any, run: Any) -> None:
        started = time.monotonic()
        status, error = "FAILED", None
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"glue-{run.job_run_id[:12]}-", dir=self._work_dir))
        try:
            status, error = self._execute(job, run, workdir)
        except Exception as exc:  # a failed start fails the run, as on Glue
            error = str(exc) or type(exc).__name__
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if error:
            LOG.info("job run %s of %s %s: %s", run.job_run_id, job.name, status, error)
        run.error_message = error
        run.execution_seconds = round(time.monotonic() - started)
        run.completed_on = glue_models.utcnow()
        run.modified_on = run.completed_on
        run.status = status
        self.ran(job, run)

    def ran(self, job: Any, run: Any) -> None:
        """Tell :attr:`on_run` that ``run`` started or ended."""
        if self.on_run is not None:
            self.on_run(job, run)

    def log_path(self, job_name: str, run_id: str) -> Path:
        """Where a run's output goes (Glue sends it to CloudWatch Logs)."""
        return self._log_dir / job_name / f"{run_id}.log"

    def _execute(self, job: Any, run: Any, workdir: Path) -> tuple[str, Optional[str]]:
        command = job.command or {}
        python = glue_runtime(command, job.glue_version).python(self._repo)
        arguments = dict(run.arguments or {})
        fetch = self._fetch_as(job) if self._fetch_as else self._fetch
        script = fetch(command.get("ScriptLocation", ""), workdir)
        extra = [fetch(uri, workdir) for uri in split_list(arguments.get("--extra-py-files"))]
        # --extra-files: copied to the script's working directory, as Glue does.
        extra_files = [fetch(uri, workdir) for uri in split_list(arguments.get("--extra-files"))]
        wheels = [path for path in extra if path.suffix == ".whl"]
        modules = [path for path in extra if path.suffix != ".whl"]
        requirements = []
        for module in split_list(arguments.get("--additional-python-modules")):
            if module.startswith("s3://"):  # a wheel in S3, installed like a PyPI requirement
                wheels.append(fetch(module, workdir))
            else:
                requirements.append(module)
        libraries = self._environments.libraries(python, wheels, requirements)
        path = [str(libraries), *(str(m) for m in modules), str(SHIMS_DIR)]
        env = {
            **self._base_environment,
            **(self._credentials_for(job) if self._credentials_for else {}),
            "PYTHONPATH": os.pathsep.join(path),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            ERROR_FILE_VARIABLE: str(workdir / "error-message.txt"),
        }
        if (command.get("Name") or SPARK) == SPARK:
            env.update(spark_environment(python, workdir, extra_files))
        argv = script_argv(script, job.name, run.job_run_id, arguments)
        timeout_s = 60.0 * int(run.timeout or job.timeout or 2880)
        log = self.log_path(job.name, run.job_run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w+", encoding="utf-8", errors="replace") as output:
            with self._lock:
                if self._closed:
                    return "FAILED", "the local stack stopped before the run started"
                process = self._workers.spawn(
                    [str(python), str(LAUNCHER), *argv],
                    GLUE,
                    cwd=workdir,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
                self._running.add(process)
            try:
                returncode = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(process)
                return "TIMEOUT", f"Job run timed out after {timeout_s / 60:.0f} minutes"
            finally:
                with self._lock:
                    self._running.discard(process)
            if returncode == 0:
                return "SUCCEEDED", None
            raised = Path(env[ERROR_FILE_VARIABLE])
            if raised.is_file():  # the exception the script raised, as Glue reports it
                return "FAILED", raised.read_text(encoding="utf-8", errors="replace")
            output.seek(0)
            return "FAILED", error_message(output.read(), returncode)


def s3_fetcher(client_factory: Callable[[], Any]) -> ObjectFetcher:
    """Downloads ``s3://bucket/key`` into a directory, keeping the object's file name."""

    def fetch(uri: str, directory: Path) -> Path:
        match = re.match(r"^s3://([^/]+)/(.+)$", uri or "")
        if not match:
            raise ValueError(f"not an S3 location: {uri!r}")
        bucket, key = match.groups()
        target = directory / key.rsplit("/", 1)[-1]
        try:
            client_factory().download_file(bucket, key, str(target))
        except Exception as error:
            raise FileNotFoundError(f"cannot read {uri}: {error}") from error
        return target

    return fetch


def install(patches: PatchSet, runner: JobRunner) -> None:
    """Make job runs execute the uploaded job on its runtime and report how it ended."""
    original_start = SEAM_OWNER.__dict__[START_NAME]
    original_describe = RUN_OWNER.__dict__[DESCRIBE_NAME]

    def start_job_run(self: Any, *args: Any, **kwargs: Any) -> str:
        run_id = original_start(self, *args, **kwargs)
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run.status = "RUNNING"
        runner.ran(self, run)
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
    # Runs end when their process ends, never by moto's own state transitions.
    state_manager.set_transition(RUN_MODEL, {"progression": "manual", "times": sys.maxsize})
    patches.on_restore(lambda: state_manager.unset_transition(RUN_MODEL))
