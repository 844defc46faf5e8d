"""Lambda patch: an invocation runs the function's deployed zip on its runtime, in its own process.

moto runs Lambda code only in Docker. Here ``LambdaFunction._invoke_lambda`` is
replaced: the function's code (the zip ``sls package`` builds, which the deployer
gave to ``CreateFunction``) is unpacked once per code digest, and an invocation
is served by a warm execution environment of that function — a process of the
function's runtime interpreter (``Runtime``, e.g. python3.12; see
:mod:`flightpipe_local.runtimes`) running ``runtime_shims/lambda_bootstrap.py``
with the function's environment. As on Lambda, an environment serves one
invocation at a time and is reused; concurrent invocations get more of them.
The function's ``Timeout`` and ``MemorySize`` hold: an invocation that runs
longer, or a process that grows past the memory size, is stopped and its
environment discarded. This machine is not Lambda's fleet: at most
``max_environments`` run per function, and further invocations wait for one
to be free (on AWS they would run at once, up to the account's concurrency).
The result is returned as Lambda returns it: the JSON payload, or an error
payload whose ``errorType`` is the exception's class name, so ``Retry``/``Catch``
in the state machine match the real error names. The environments are workers of
the stack (:mod:`flightpipe_local.processes`): they end with it, even when it is
killed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from moto.awslambda import models as lambda_models

from flightpipe_local._patching import PatchSet
from flightpipe_local.processes import LAMBDA, WorkerProcesses, default_workers, kill_group
from flightpipe_local.runtimes import SHIMS_DIR, lambda_runtime

SEAM_OWNER = lambda_models.LambdaFunction
SEAM_NAME = "_invoke_lambda"
BOOTSTRAP = SHIMS_DIR / "lambda_bootstrap.py"
MEMORY_POLL_S = 0.02

Invocation = tuple[str, bool, str]


def error_payload(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type})


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class ExecutionEnvironment:
    """One warm process of a function: serves one invocation at a time."""

    def __init__(
        self,
        python: Path,
        task_root: Path,
        env: Mapping[str, str],
        log: Path,
        workers: Optional[WorkerProcesses] = None,
    ) -> None:
        self._log_path = log
        self._log = log.open("ab")
        self.process = (workers or default_workers()).spawn(
            [str(python), "-u", str(BOOTSTRAP)],
            LAMBDA,
            cwd=task_root,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.alive = True

    def invoke(self, event: Any, timeout_s: float, memory_mb: int) -> Invocation:
        """Run the handler on ``event``: (payload JSON, errored, log text of this call)."""
        request_id = str(uuid.uuid4())
        log_start = self._log_path.stat().st_size
        deadline = time.time() + timeout_s
        request = {"event": event, "request_id": request_id, "deadline_ms": deadline * 1000}
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            return self._failed("Runtime.ExitError", "Runtime exited before the invocation")
        reply = self._await_reply(deadline, timeout_s, memory_mb)
        if isinstance(reply, tuple):
            return reply
        logs = self._log_text(log_start)
        if "error" in reply:
            return json.dumps(reply["error"]), True, logs
        return json.dumps(reply.get("payload")), False, logs

    def _await_reply(self, deadline: float, timeout_s: float, memory_mb: int) -> Any:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            ready, _, _ = select.select([stdout], [], [], MEMORY_POLL_S)
            if ready:
                line = stdout.readline()
                if not line:
                    return self._failed("Runtime.ExitError", "Runtime exited without a reply")
                return json.loads(line)
            if time.time() > deadline:
                message = f"Task timed out after {timeout_s:.2f} seconds"
                return self._failed("Sandbox.Timedout", message)
            if _rss_mb(self.process.pid) > memory_mb:
                return self._failed(
                    "Runtime.OutOfMemory",
                    f"Runtime exited with error: signal: killed (memory size {memory_mb} MB)",
                )

    def _failed(self, error_type: str, message: str) -> Invocation:
        self.stop()
        return error_payload(error_type, message), True, ""

    def _log_text(self, start: int) -> str:
        with self._log_path.open("rb") as log:
            log.seek(start)
            return log.read().decode("utf-8", errors="replace")

    def stop(self) -> None:
        self.alive = False
        kill_group(self.process)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


class FunctionRuntimes:
    """Warm execution environments of every function, by function and code digest."""

    def __init__(
        self,
        repo: Path,
        work_dir: Path,
        base_environment: Mapping[str, str],
        log_dir: Path,
        max_environments: int = 6,
        credentials_for: Optional[Callable[[Any], Mapping[str, str]]] = None,
        workers: Optional[WorkerProcesses] = None,
    ) -> None:
        self._repo = repo
        self._workers = workers
        # The execution role's session, in the variables Lambda puts it in.
        self._credentials_for = credentials_for
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._max_environments = max_environments
        self._work_dir = work_dir
        self._log_dir = log_dir
        self._base_environment = dict(base_environment)
        self._idle: dict[tuple[str, str], list[ExecutionEnvironment]] = {}
        self._all: list[ExecutionEnvironment] = []
        self._lock = threading.Lock()

    def invoke(self, function: Any, event: Any) -> Invocation:
        with self._lock:
            slots = self._slots.setdefault(
                function.function_arn, threading.BoundedSemaphore(self._max_environments)
            )
        with slots:
            environment = self._acquire(function)
            try:
                return environment.invoke(
                    event, float(function.timeout or 3), int(function.memory_size or 128)
                )
            finally:
                self._release(function, environment)

    def _key(self, function: Any) -> tuple[str, str]:
        digest = hashlib.sha256(function.code_bytes).hexdigest()[:16]
        return function.function_arn, digest

    def _acquire(self, function: Any) -> ExecutionEnvironment:
        key = self._key(function)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            while idle:
                environment = idle.pop()
                if environment.alive and environment.process.poll() is None:
                    return environment
        task_root = self._unpack(function.code_bytes, key[1])
        python = lambda_runtime(function.run_time).python(self._repo)
        log = self._log_dir / "lambda" / f"{function.function_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        environment = ExecutionEnvironment(
            python, task_root, self._env(function, task_root), log, self._workers
        )
        with self._lock:
            self._all.append(environment)
        return environment

    def _release(self, function: Any, environment: ExecutionEnvironment) -> None:
        with self._lock:
            if environment.alive:
                self._idle.setdefault(self._key(function), []).append(environment)
            elif environment in self._all:  # not already dropped by close()
                self._all.remove(environment)

    def _unpack(self, code: bytes, digest: str) -> Path:
        target = self._work_dir / "code" / digest
        with self._lock:
            if not target.is_dir():
                staging = Path(tempfile.mkdtemp(dir=self._work_dir))
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, target)
        return target

    def _env(self, function: Any, task_root: Path) -> dict[str, str]:
        name = function.function_name
        credentials = self._credentials_for(function) if self._credentials_for else {}
        return {
            **self._base_environment,
            **credentials,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
            **logging_environment(getattr(function, "logging_config", None) or {}),
            "LAMBDA_TASK_ROOT": str(task_root),
            "FLIGHTPIPE_LOCAL_FUNCTION_ARN": function.function_arn,
            "_HANDLER": function.handler,
            "TZ": ":UTC",
            "PYTHONPATH": str(SHIMS_DIR),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **{key: str(value) for key, value in (function.environment_vars or {}).items()},
        }

    def close(self) -> None:
        with self._lock:
            environments, self._all, self._idle = list(self._all), [], {}
        for environment in environments:
            environment.stop()
        shutil.rmtree(self._work_dir / "code", ignore_errors=True)


def logging_environment(config: Mapping[str, Any]) -> dict[str, str]:
    """The variables Lambda sets from a JSON ``LoggingConfig``: ``AWS_LAMBDA_LOG_FORMAT`` and
    ``AWS_LAMBDA_LOG_LEVEL``, which the runtime and Powertools' Logger read."""
    if config.get("LogFormat") != "JSON":
        return {}
    return {
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": str(config.get("ApplicationLogLevel", "INFO")),
    }


def install(patches: PatchSet, runtimes: FunctionRuntimes) -> None:
    """Make every Lambda invocation run the function's zip on its runtime."""

    def _invoke_lambda(self: Any, event: Optional[str] = None) -> Invocation:
        document = json.loads(event or "{}") if isinstance(event, (str, bytes)) else event
        return runtimes.invoke(self, document)

    patches.replace(SEAM_OWNER, SEAM_NAME, _invoke_lambda)
    _keep_logging_config(patches)


def _keep_logging_config(patches: PatchSet) -> None:
    """Keep each function's ``LoggingConfig`` (moto drops it): its ``LogFormat`` decides, as on
    Lambda, whether the runtime writes its own records (an uncaught error among them) as JSON,
    and ``GetFunctionConfiguration`` reports it."""
    original_init = SEAM_OWNER.__init__
    original_configuration = SEAM_OWNER.get_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kw: Any) -> None:
        original_init(self, account_id, spec, *args, **kw)
        self.logging_config = logging_config_of(spec)

    def get_configuration(self: Any, *args: Any, **kw: Any) -> dict[str, Any]:
        configuration = original_configuration(self, *args, **kw)
        configuration["LoggingConfig"] = getattr(self, "logging_config", None) or (
            logging_config_of({"FunctionName": self.function_name})
        )
        return configuration

    patches.replace(SEAM_OWNER, "__init__", __init__)
    patches.replace(SEAM_OWNER, "get_configuration", get_configuration)


def logging_config_of(spec: Mapping[str, Any]) -> dict[str, str]:
    """A function's ``LoggingConfig`` as Lambda reports it: Text to its own log group unless
    the spec says otherwise; JSON adds the application and system log levels (INFO)
    (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html)."""
    given = dict(spec.get("LoggingConfig") or {})
    config = {
        "LogFormat": given.get("LogFormat", "Text"),
        "LogGroup": given.get("LogGroup", f"/aws/lambda/{spec.get('FunctionName', '')}"),
    }
    if config["LogFormat"] == "JSON":
        config["ApplicationLogLevel"] = given.get("ApplicationLogLevel", "INFO")
        config["SystemLogLevel"] = given.get("SystemLogLevel", "INFO")
    return config
