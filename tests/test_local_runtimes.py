"""The local stack's Lambda and Glue runtimes: real interpreters, real processes, AWS's limits."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flightpipe_local.glue_environments import JobEnvironments
from flightpipe_local.moto_glue_jobs import JobRunner
from flightpipe_local.moto_lambda import FunctionRuntimes

REPO_ROOT = Path(__file__).resolve().parents[1]

PROBE_HANDLER = """
import os, sys
INVOCATIONS = 0

class CrawlerRunningException(RuntimeError):
    pass

def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if event.get("busy"):
        raise CrawlerRunningException("crawler busy")
    if event.get("sleep"):
        import time; time.sleep(event["sleep"])
    if event.get("allocate_mb"):
        block = bytearray(event["allocate_mb"] * 1024 * 1024)
        import time; time.sleep(1)
    print("handled", event)
    return {
        "python": sys.version.split()[0],
        "crawler": os.environ.get("CRAWLER_NAME"),
        "leak": os.environ.get("FLIGHTPIPE_TEST_HOST_ONLY"),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
    }
"""


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def function(code: bytes, handler: str = "handlers/probe.handler", **overrides: Any) -> Any:
    spec = {
        "function_name": "probe",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
        "handler": handler,
        "run_time": "python3.12",
        "memory_size": 128,
        "timeout": 3,
        "environment_vars": {"CRAWLER_NAME": "incoming"},
        "code_bytes": code,
    }
    spec.update(overrides)
    return SimpleNamespace(**spec)


@pytest.fixture
def runtimes(tmp_path: Path):
    os.environ["FLIGHTPIPE_TEST_HOST_ONLY"] = "the emulator's own environment"
    pool = FunctionRuntimes(REPO_ROOT, tmp_path, {"PATH": os.environ["PATH"]}, tmp_path / "logs")
    yield pool
    pool.close()
    os.environ.pop("FLIGHTPIPE_TEST_HOST_ONLY")


def invoke(runtimes: FunctionRuntimes, fn: Any, event: dict[str, Any]) -> tuple[Any, bool, str]:
    payload, errored, logs = runtimes.invoke(fn, event)
    return json.loads(payload), errored, logs


def test_a_handler_runs_from_its_zip_on_python_312_with_only_the_function_s_environment(
    runtimes: FunctionRuntimes,
) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}))
    result, errored, logs = invoke(runtimes, fn, {"n": 1})
    assert not errored
    assert result["python"].startswith("3.12.")
    assert (result["crawler"], result["leak"], result["function"]) == ("incoming", None, "probe")
    assert 0 < result["remaining_ms"] <= 3000
    assert "handled {'n': 1}" in logs


def test_an_execution_environment_is_reused_warm_between_invocations(
    runtimes: FunctionRuntimes,
) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}))
    first, _, _ = invoke(runtimes, fn, {})
    second, _, _ = invoke(runtimes, fn, {})
    assert second["pid"] == first["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)


def test_concurrent_invocations_get_their_own_environments(runtimes: FunctionRuntimes) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}))
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(invoke(runtimes, fn, {"sleep": 1})[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result["pid"] for result in results}) == 2


def test_a_handler_error_is_returned_with_its_class_name_as_error_type(
    runtimes: FunctionRuntimes,
) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}))
    error, errored, logs = invoke(runtimes, fn, {"busy": True})
    assert errored
    assert (error["errorType"], error["errorMessage"]) == (
        "CrawlerRunningException",
        "crawler busy",
    )
    assert "Traceback" in logs


def test_a_module_the_zip_lacks_fails_as_an_import_error_like_on_lambda(
    runtimes: FunctionRuntimes,
) -> None:
    """pandas is not in Lambda's runtime: a handler importing it fails, whatever the host has."""
    code = zipped(
        {"handlers/probe.py": "import pandas\ndef handler(event, context):\n  return 1\n"}
    )
    error, errored, _ = invoke(runtimes, function(code), {})
    assert errored and error["errorType"] == "Runtime.ImportModuleError"
    assert "pandas" in error["errorMessage"]


def test_an_invocation_past_the_timeout_is_stopped_and_the_next_one_starts_fresh(
    runtimes: FunctionRuntimes,
) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}), timeout=1)
    error, errored, _ = invoke(runtimes, fn, {"sleep": 5})
    assert errored and error["errorType"] == "Sandbox.Timedout"
    assert "1.00 seconds" in error["errorMessage"]
    result, errored, _ = invoke(runtimes, fn, {})
    assert not errored and result["invocations"] == 1


def test_a_process_growing_past_the_memory_size_is_stopped(runtimes: FunctionRuntimes) -> None:
    fn = function(zipped({"handlers/probe.py": PROBE_HANDLER}), memory_size=128)
    error, errored, _ = invoke(runtimes, fn, {"allocate_mb": 300})
    assert errored and error["errorType"] == "Runtime.OutOfMemory"


# -- Glue job runs ---------------------------------------------------------------------------

JOB_SCRIPT = """
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
marks = args["--marks"]
start = time.time()
time.sleep(float(args.get("--sleep", "0")))
import pandas, boto3
with open(os.path.join(marks, args["--JOB_RUN_ID"]), "w") as out:
    json.dump({"start": start, "end": time.time(), "python": sys.version.split()[0],
               "pandas": pandas.__version__, "boto3": boto3.__version__, "argv": sys.argv[1:]}, out)
if args.get("--fail"):
    raise ValueError("the file is not a CSV")
"""


def local_fetch(directory: Path):
    def fetch(uri: str, target: Path) -> Path:
        source = directory / uri.rsplit("/", 1)[-1]
        destination = target / source.name
        destination.write_bytes(source.read_bytes())
        return destination

    return fetch


def job_run(run_id: str, arguments: dict[str, str]) -> Any:
    return SimpleNamespace(job_run_id=run_id, arguments=arguments, timeout=None)


def job_runner(tmp_path: Path) -> tuple[JobRunner, Any, Path]:
    """A runner of JOB_SCRIPT as a Python shell 3.9 job, and the folder its runs mark."""
    assets, marks = tmp_path / "assets", tmp_path / "marks"
    assets.mkdir()
    marks.mkdir()
    (assets / "job.py").write_text(JOB_SCRIPT)
    runner = JobRunner(
        REPO_ROOT,
        local_fetch(assets),
        JobEnvironments(tmp_path / "cache"),
        {"PATH": os.environ["PATH"]},
        tmp_path / "logs",
    )
    job = SimpleNamespace(
        name="etl",
        command={"Name": "pythonshell", "PythonVersion": "3.9", "ScriptLocation": "s3://b/job.py"},
        glue_version=None,
        timeout=5,
    )
    return runner, job, marks


def test_job_runs_execute_in_parallel_on_the_glue_runtime_with_glue_s_arguments(
    tmp_path: Path,
) -> None:
    runner, job, marks = job_runner(tmp_path)
    arguments = {"library-set": "analytics", "--marks": str(marks), "--sleep": "1"}
    runs = [job_run("jr_a", arguments), job_run("jr_b", {**arguments, "--fail": "yes"})]
    threads = [threading.Thread(target=runner.run, args=(job, run)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [run.status for run in runs] == ["SUCCEEDED", "FAILED"]
    assert runs[1].error_message == "the file is not a CSV"
    a, b = (json.loads((marks / run.job_run_id).read_text()) for run in runs)
    assert a["python"].startswith("3.9.") and (a["pandas"], a["boto3"]) == ("1.4.2", "1.22.5")
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the runs overlapped
    assert "library-set" not in a["argv"] and a["argv"][-4:] == [
        "--JOB_RUN_ID",
        "jr_a",
        "--JOB_NAME",
        "etl",
    ]
    assert "the file is not a CSV" in runner.log_path("etl", "jr_b").read_text()


JSON_LOGGING_SCRIPT = """
import json, sys
def log_uncaught(kind, error, trace):
    print(json.dumps({"level": "ERROR", "message": f"{kind.__name__}: {error}"}))
sys.excepthook = log_uncaught
print(json.dumps({"level": "INFO", "message": "reading"}))
raise ValueError("the file is not a CSV")
"""


def test_a_failed_run_reports_the_exception_it_raised_whatever_the_script_logs(
    tmp_path: Path,
) -> None:
    runner, job, _ = job_runner(tmp_path)
    (tmp_path / "assets" / "job.py").write_text(JSON_LOGGING_SCRIPT)
    run = job_run("jr_json", {"library-set": "analytics"})
    runner.run(job, run)
    assert (run.status, run.error_message) == ("FAILED", "the file is not a CSV")
    log = runner.log_path("etl", "jr_json").read_text().splitlines()
    assert [json.loads(line)["message"] for line in log] == [
        "reading",
        "ValueError: the file is not a CSV",
    ]


def test_closing_the_runner_ends_a_job_run_still_going(tmp_path: Path) -> None:
    runner, job, marks = job_runner(tmp_path)
    run = job_run("jr_long", {"library-set": "analytics", "--marks": str(marks), "--sleep": "60"})
    worker = threading.Thread(target=runner.run, args=(job, run))
    worker.start()
    deadline = time.monotonic() + 60
    while not runner._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner._running, "the job run never started"
    (process,) = runner._running
    started = time.monotonic()
    runner.close()
    worker.join(10)
    assert time.monotonic() - started < 10
    assert process.poll() is not None
    assert run.status == "FAILED"
    later = job_run("jr_after", {"library-set": "analytics", "--marks": str(marks)})
    runner.run(job, later)
    assert (later.status, later.error_message) == (
        "FAILED",
        "the local stack stopped before the run started",
    )
