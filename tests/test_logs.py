"""The Glue jobs' log lines are JSON with the run's execution id and file key, whatever
writes them: the library, a Python warning, an error nobody caught (flightpipe/logs.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from flightpipe.etl.job_args import job_log_keys
from flightpipe.logs import event_keys, with_run_keys

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:flightpipe-dev-pipeline:e1"
SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading, warnings
    from flightpipe.etl.job_args import job_log_keys
    from flightpipe.logs import log_to_json

    log_to_json(job_log_keys(sys.argv[1:]))
    logging.getLogger("flightpipe.etl.job").info("read %d rows", 13, extra={"rows": 13})
    warnings.warn("Boto3 will no longer support Python 3.9", DeprecationWarning)
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    raise RuntimeError("s3://b/incoming/f.csv: FAILED: boom")
    """
)


def run_script() -> subprocess.CompletedProcess[str]:
    argv = ["--key", "incoming/f.csv", "--execution_id", EXECUTION, "--JOB_RUN_ID", "jr_1"]
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", SCRIPT, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_line_of_a_job_run_is_json_with_its_execution_and_file() -> None:
    result = run_script()
    assert result.returncode == 1
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "ERROR", "ERROR"]
    for line in lines:
        assert (line["execution_id"], line["file_key"], line["job_run_id"]) == (
            EXECUTION,
            "incoming/f.csv",
            "jr_1",
        )
        assert line["service"] == "flightpipe" and line["timestamp"].endswith("+0000")
    info, warning, thread_error, uncaught = lines
    assert (info["message"], info["rows"], info["logger"]) == (
        "read 13 rows",
        13,
        "flightpipe.etl.job",
    )
    assert "Boto3 will no longer support Python 3.9" in warning["message"]
    assert thread_error["exception_name"] == "ZeroDivisionError"
    assert uncaught["message"] == "RuntimeError: s3://b/incoming/f.csv: FAILED: boom"
    assert uncaught["exception_name"] == "RuntimeError"
    assert "Traceback (most recent call last)" in uncaught["exception"]


def test_a_run_started_without_an_execution_logs_nulls_for_it() -> None:
    assert job_log_keys(["--bucket", "b", "--key", "k.csv"]) == {
        "execution_id": None,
        "file_key": "k.csv",
        "job_run_id": None,
    }


def test_each_lambda_payload_names_its_execution_and_file() -> None:
    stamped = {"bucket": "b", "key": "incoming/f.csv", "execution": {"id": EXECUTION}}
    failure = {"record_failure": {"key": "incoming/f.csv", "execution_id": EXECUTION}}
    notice = {"status": "SUCCEEDED", "key": "incoming/f.csv", "execution_id": EXECUTION}
    expected = {"execution_id": EXECUTION, "file_key": "incoming/f.csv"}
    assert event_keys(stamped) == event_keys(failure) == event_keys(notice) == expected
    assert event_keys({"key": "incoming/f.csv"}) == {**expected, "execution_id": None}


class RecordingLogger:
    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.errors: list[tuple[str, dict[str, Any], str]] = []

    def append_keys(self, **keys: Any) -> None:
        self.keys.update(keys)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.errors.append((str(msg), dict(self.keys), repr(sys.exc_info()[1])))


def test_a_handler_s_uncaught_error_is_logged_with_the_run_s_keys_then_raised() -> None:
    logger = RecordingLogger()

    @with_run_keys(logger)
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise RuntimeError("refused")

    event = {"key": "incoming/a.csv", "execution": {"id": "arn:exec"}}
    with pytest.raises(RuntimeError, match="refused"):
        handler(event, None)
    assert logger.errors == [
        (
            "invocation failed",
            {"execution_id": "arn:exec", "file_key": "incoming/a.csv"},
            "RuntimeError('refused')",
        )
    ]
