"""A file whose name needs URL-encoding loads once, whether S3 events encode keys or not.

AWS does not document whether EventBridge's S3 events URL-encode the object key
(see flightpipe.s3keys); the local stack can deliver both forms.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPO_ROOT, data_rows, fact_rows_of, query, run_files

from flightpipe_local.moto_events import encode_s3_key
from flightpipe_local.run import PipelineRunner
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e

NAME = "my flights+1 (copy).csv"
KEY = "incoming/" + NAME


@pytest.fixture(scope="module", params=[False, True], ids=["literal-keys", "encoded-keys"])
def keyed_stack(request: pytest.FixtureRequest, shared_data: Path) -> Iterator[EmulatedStack]:
    with EmulatedStack(REPO_ROOT, encode_event_keys=request.param) as stack:
        PipelineRunner(stack).upload_airports(shared_data / "airports.csv")
        yield stack


def test_a_file_named_with_spaces_plus_and_parentheses_loads_exactly_once(
    keyed_stack: EmulatedStack, shared_data: Path, tmp_path: Path
) -> None:
    stack = keyed_stack
    path = tmp_path / NAME
    shutil.copyfile(shared_data / "sample_flights.csv", path)
    rows = data_rows(path)

    (outcome,) = run_files(stack, path)

    assert outcome.key == KEY
    assert outcome.execution_status == "SUCCEEDED", outcome.error
    assert outcome.load_status == "LOADED"
    assert outcome.rows_read == rows == outcome.rows_loaded
    assert fact_rows_of(stack, KEY) == rows
    total = query(stack, "SELECT COUNT(*) AS n FROM airlines.daily_flights_fact")[0]["n"]
    assert total == rows
    ledger = query(stack, "SELECT source_file, status FROM airlines.load_ledger")
    assert ledger == [{"source_file": f"s3://{stack.bucket}/{KEY}", "status": "LOADED"}]
    # The execution really received the key in the form the switch asks for.
    sfn = stack.client("stepfunctions")
    execution = json.loads(sfn.describe_execution(executionArn=outcome.execution_arn)["input"])
    expected = encode_s3_key(KEY) if stack.encode_event_keys else KEY
    assert execution["key"] == expected
    assert (execution["key"] != KEY) == stack.encode_event_keys
