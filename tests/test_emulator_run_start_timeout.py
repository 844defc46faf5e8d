"""``flightpipe local run`` never waits forever for an upload that starts no execution."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from flightpipe_local import local_commands as cli
from flightpipe_local.run import DEFAULT_START_TIMEOUT_S, PipelineRunner

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline"


class FakeS3:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_object(self, Bucket: str, Key: str, Body: Any) -> dict[str, Any]:
        self.keys.append(Key)
        return {"ETag": f'"etag-{len(self.keys)}"'}

    def get_object(self, **_: Any) -> dict[str, Any]:  # no job ran: S3 has no summary
        raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no summary"}}, "GetObject")


class FakeStepFunctions:
    """Starts a SUCCEEDED execution for every upload under ``incoming/``, as the rule does."""

    def __init__(self, s3: FakeS3) -> None:
        self._s3 = s3

    def _executions(self) -> list[dict[str, Any]]:
        return [
            {"executionArn": f"{MACHINE}:{n}", "name": str(n), "key": key, "etag": f"etag-{n}"}
            for n, key in enumerate(self._s3.keys, start=1)
            if key.startswith("incoming/")
        ]

    def get_paginator(self, _name: str) -> Any:
        executions = self._executions()

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                listed = [
                    {"executionArn": e["executionArn"], "name": e["name"], "status": "SUCCEEDED"}
                    for e in executions
                ]  # the fields ListExecutions returns for each execution
                return [{"executions": listed}]

        return Paginator()

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        (execution,) = [e for e in self._executions() if e["executionArn"] == executionArn]
        document = {"key": execution["key"], "etag": execution["etag"], "version_id": None}
        return {"name": execution["name"], "status": "SUCCEEDED", "input": json.dumps(document)}

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": [{"type": "ExecutionSucceeded"}]}


class FakeStack:
    bucket = "data"
    state_machine_arn = MACHINE
    standin = None

    def __init__(self) -> None:
        self.s3 = FakeS3()
        self.sfn = FakeStepFunctions(self.s3)

    def client(self, service: str) -> Any:
        return {"s3": self.s3, "stepfunctions": self.sfn}[service]


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "x.txt", tmp_path / "flights.csv", tmp_path / "late.csv"]
    for path in paths:
        path.write_text("a,b\n1,2\n")
    return paths


def test_an_upload_that_starts_nothing_is_reported_and_the_run_goes_on(files: list[Path]) -> None:
    runner = PipelineRunner(FakeStack(), start_timeout_s=0.5)  # type: ignore[arg-type]
    started = time.monotonic()
    outcomes = runner.run_files(files, keys=["elsewhere/x.txt", None, "rejected/late.csv"])
    assert time.monotonic() - started < 5
    assert [o.key for o in outcomes] == [
        "elsewhere/x.txt",
        "incoming/flights.csv",
        "rejected/late.csv",
    ]
    first, second, third = (o.as_json() for o in outcomes)
    assert first["execution_status"] is None and first["load_status"] is None
    assert first["error"] == "no execution started within 0.5s for elsewhere/x.txt"
    assert second["execution_status"] == "SUCCEEDED" and second["error"] is None
    assert third["error"] == "no execution started within 0.5s for rejected/late.csv"


def test_uploads_at_once_are_each_given_up_on_or_followed(files: list[Path]) -> None:
    runner = PipelineRunner(FakeStack(), start_timeout_s=0.3)  # type: ignore[arg-type]
    outcomes = runner.run_files(
        files, concurrent=True, keys=["elsewhere/x.txt", None, "incoming/late.csv"]
    )
    assert [o.execution_status for o in outcomes] == [None, "SUCCEEDED", "SUCCEEDED"]
    assert outcomes[0].error == "no execution started within 0.3s for elsewhere/x.txt"


def test_the_bound_is_30_seconds_unless_told_otherwise() -> None:
    assert DEFAULT_START_TIMEOUT_S == cli.DEFAULT_START_TIMEOUT_S == 30
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["local", "run", "f.csv"]).start_timeout == 30
    assert parser.parse_args(["local", "run", "--start-timeout", "2.5", "f"]).start_timeout == 2.5
    with pytest.raises(SystemExit):
        parser.parse_args(["local", "run", "--start-timeout", "0", "f.csv"])
