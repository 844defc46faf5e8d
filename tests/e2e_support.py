"""Helpers for the end-to-end tests: one local stack per test module, uploads, queries."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flightpipe_local.run import FileOutcome, PipelineRunner
from flightpipe_local.stack import EmulatedStack

REPO_ROOT = Path(__file__).resolve().parents[1]


def start_stack(shared_data: Path) -> Iterator[EmulatedStack]:
    """A running local stack deployed from serverless.yml, airports uploaded; stopped after."""
    with EmulatedStack(REPO_ROOT) as stack:
        PipelineRunner(stack).upload_airports(shared_data / "airports.csv")
        yield stack


def run_files(stack: EmulatedStack, *paths: Path, concurrent: bool = False) -> list[FileOutcome]:
    return PipelineRunner(stack, timeout_s=180).run_files(list(paths), concurrent=concurrent)


def query(stack: EmulatedStack, sql: str) -> list[dict[str, Any]]:
    assert stack.standin is not None
    return stack.standin.query(sql).as_dicts()


def scalar(stack: EmulatedStack, sql: str) -> Any:
    rows = query(stack, sql)
    return next(iter(rows[0].values()))


def fact_rows_of(stack: EmulatedStack, key: str) -> int:
    source = f"s3://{stack.bucket}/{key}".replace("'", "''")
    return int(
        scalar(
            stack,
            f"SELECT COUNT(*) FROM airlines.daily_flights_fact WHERE source_file = '{source}'",
        )
    )


def data_rows(path: Path) -> int:
    """Data rows of a CSV file (header excluded, blank lines ignored)."""
    text = path.read_text(encoding="utf-8-sig")
    return sum(1 for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)) - 1


def history_states(stack: EmulatedStack, execution_arn: str) -> list[str]:
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
    ]


def execution_output(stack: EmulatedStack, execution_arn: str) -> dict[str, Any]:
    """The data an execution ended with: its output, or (an execution that failed has none)
    the input of its last state."""
    sfn = stack.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    if described.get("output"):
        return dict(json.loads(described["output"]))
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"] for e in events if e["type"].endswith("StateEntered")]
    return dict(json.loads(entered[-1]["input"]))


@pytest.fixture(scope="module")
def stack(shared_data: Path) -> Iterator[EmulatedStack]:
    yield from start_stack(shared_data)
