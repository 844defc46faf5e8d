"""An upload the rule does not match starts nothing: the local run says so and goes on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from e2e_support import stack  # noqa: F401  (the module's running stack)

from flightpipe_local.run import PipelineRunner
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e


def test_an_upload_outside_incoming_is_reported_within_the_bound_and_the_next_file_runs(
    stack: EmulatedStack,  # noqa: F811
    shared_data: Path,
) -> None:
    sample = shared_data / "sample_flights.csv"
    runner = PipelineRunner(stack, timeout_s=180, start_timeout_s=3)
    started = time.monotonic()
    unmatched, loaded = runner.run_files(
        [sample, sample], keys=["elsewhere/sample_flights.csv", None]
    )
    assert unmatched.as_json()["execution_status"] is None
    assert unmatched.error == "no execution started within 3s for elsewhere/sample_flights.csv"
    assert (unmatched.rows_read, unmatched.load_status) == (0, None)
    assert loaded.key == "incoming/sample_flights.csv"
    assert (loaded.execution_status, loaded.load_status) == ("SUCCEEDED", "LOADED")
    assert time.monotonic() - started < 120
