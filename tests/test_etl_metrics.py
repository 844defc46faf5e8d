"""The load's outcome as CloudWatch metrics (flightpipe/etl/metrics.py): what each run
publishes, and that publishing never changes the run's outcome."""

from __future__ import annotations

from typing import Any

import pytest

from flightpipe.etl import metrics
from flightpipe.etl.summary import JobSummary

ARGV = ["--bucket", "b", "--key", "incoming/f.csv", "--metrics_pipeline", "flightpipe-dev"]


def _summary(status: str, loaded: int = 0, rejected: int = 0) -> JobSummary:
    return JobSummary(
        status=status,
        load_id="l1",
        source_file="s3://b/incoming/f.csv",
        rows_read=loaded + rejected,
        rows_loaded=loaded,
        rows_rejected=rejected,
    )


class RecordingCloudWatch:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self._error = error

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self._error is not None:
            raise self._error
        return {}


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (
            _summary("LOADED", loaded=12, rejected=1),
            {"FilesLoaded": 1, "FilesRejected": 0, "FilesFailed": 0, "RowsLoaded": 12},
        ),
        (
            _summary("REJECTED", rejected=3),
            {"FilesLoaded": 0, "FilesRejected": 1, "FilesFailed": 0, "RowsLoaded": 0},
        ),
        (
            _summary("FAILED"),
            {"FilesLoaded": 0, "FilesRejected": 0, "FilesFailed": 1, "RowsLoaded": 0},
        ),
        (
            _summary("DUPLICATE", loaded=12),
            {"FilesLoaded": 0, "FilesRejected": 0, "FilesFailed": 0, "RowsLoaded": 0},
        ),
        (
            _summary("SUPERSEDED", loaded=12),
            {"FilesLoaded": 0, "FilesRejected": 0, "FilesFailed": 0, "RowsLoaded": 0},
        ),
    ],
    ids=["loaded", "rejected", "failed", "duplicate", "superseded"],
)
def test_each_outcome_counts_once_and_only_a_load_counts_rows(summary, expected):
    values = metrics.load_metrics(summary)
    assert set(values) == set(metrics.METRICS)
    assert {name: values[name] for name in expected} == expected


def test_rejected_rows_count_for_loaded_and_rejected_files():
    assert metrics.load_metrics(_summary("LOADED", 5, 2))["RowsRejected"] == 2
    assert metrics.load_metrics(_summary("REJECTED", 0, 7))["RowsRejected"] == 7
    assert metrics.load_metrics(_summary("DUPLICATE", 5, 2))["RowsRejected"] == 0


def test_one_call_publishes_every_metric_with_the_pipeline_dimension():
    cloudwatch = RecordingCloudWatch()
    assert metrics.publish_load_metrics(cloudwatch, ARGV, _summary("REJECTED", rejected=3))
    (call,) = cloudwatch.calls
    assert call["Namespace"] == "Flightpipe"
    by_name = {datum["MetricName"]: datum for datum in call["MetricData"]}
    assert list(by_name) == list(metrics.METRICS)
    assert by_name["FilesRejected"] == {
        "MetricName": "FilesRejected",
        "Dimensions": [{"Name": "Pipeline", "Value": "flightpipe-dev"}],
        "Value": 1.0,
        "Unit": "Count",
    }


def test_a_run_without_the_pipeline_argument_publishes_nothing():
    cloudwatch = RecordingCloudWatch()
    assert not metrics.publish_load_metrics(cloudwatch, ARGV[:4], _summary("LOADED", 1))
    assert cloudwatch.calls == []
    assert metrics.pipeline_of(["--metrics_pipeline", " "]) is None


def test_a_refused_call_is_logged_and_never_raises(caplog):
    cloudwatch = RecordingCloudWatch(error=RuntimeError("AccessDenied"))
    assert not metrics.publish_load_metrics(cloudwatch, ARGV, _summary("LOADED", 1))
    assert "metrics not published" in caplog.text
