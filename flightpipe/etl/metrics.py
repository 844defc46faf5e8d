"""A load's outcome as CloudWatch metrics: what the alarm on whole-file rejections and the
pipeline's dashboard read (serverless.yml, "alarms and dashboard").

Each run of either Glue job publishes, in one ``PutMetricData`` call, in namespace
:data:`NAMESPACE` with the one dimension ``Pipeline`` (the stack's ``<service>-<stage>``, the
job argument ``--metrics_pipeline``): ``FilesLoaded``, ``FilesRejected``, ``FilesFailed`` (a
load the job itself failed), each 1 or 0, and ``RowsLoaded`` and ``RowsRejected``. A duplicate
delivery or a superseded version publishes zeros for the files and rows: it loaded nothing.

The job publishes them itself rather than a metric filter reading its summary log line: the
Python shell job logs to ``/aws-glue/python-jobs/output``, a log group of the account that Glue
creates at the first run of any Python shell job there (Glue documents a log group of the job's
own choosing only for Spark jobs: ``--custom-logGroup-prefix``,
https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html), so a stack can
neither create that group (it may exist) nor put a filter on it (it may not exist yet).
``PutMetricData`` needs only the job role's permission, scoped to the namespace
(``cloudwatch:namespace``). Metrics are best effort: a refused or failed call is
logged and never changes the run's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

from flightpipe.etl.job_args import parse_argv
from flightpipe.etl.summary import JobSummary

LOG = logging.getLogger(__name__)

NAMESPACE = "Flightpipe"
DIMENSION = "Pipeline"
# The job argument naming the pipeline (serverless.yml, each job's DefaultArguments).
PIPELINE_ARGUMENT = "metrics_pipeline"
FILES_LOADED, FILES_REJECTED, FILES_FAILED = "FilesLoaded", "FilesRejected", "FilesFailed"
ROWS_LOADED, ROWS_REJECTED = "RowsLoaded", "RowsRejected"
METRICS = (FILES_LOADED, FILES_REJECTED, FILES_FAILED, ROWS_LOADED, ROWS_REJECTED)
_FILE_OUTCOMES = {"LOADED": FILES_LOADED, "REJECTED": FILES_REJECTED, "FAILED": FILES_FAILED}


def load_metrics(summary: JobSummary) -> dict[str, int]:
    """Every metric of :data:`METRICS` for one run: which outcome it had, and its rows."""
    values = dict.fromkeys(METRICS, 0)
    outcome = _FILE_OUTCOMES.get(summary.status)
    if outcome is not None:
        values[outcome] = 1
    if summary.status == "LOADED":
        values[ROWS_LOADED] = int(summary.rows_loaded)
    if summary.status in ("LOADED", "REJECTED"):
        values[ROWS_REJECTED] = int(summary.rows_rejected)
    return values


def metric_data(pipeline: str, summary: JobSummary) -> list[dict[str, Any]]:
    """``PutMetricData``'s ``MetricData`` for one run."""
    dimensions = [{"Name": DIMENSION, "Value": pipeline}]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "Count"}
        for name, value in load_metrics(summary).items()
    ]


def pipeline_of(argv: Sequence[str]) -> Optional[str]:
    """The pipeline the run belongs to (``--metrics_pipeline``); None for a run started without
    it (by hand), which publishes nothing."""
    return (parse_argv(argv).get(PIPELINE_ARGUMENT) or "").strip() or None


def publish_load_metrics(cloudwatch: Any, argv: Sequence[str], summary: JobSummary) -> bool:
    """Publish the run's metrics; whether they were published. Never raises."""
    pipeline = pipeline_of(argv)
    if pipeline is None:
        LOG.info("no --%s argument: no metrics published", PIPELINE_ARGUMENT)
        return False
    try:
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=metric_data(pipeline, summary))
    except Exception as error:  # best effort: the load's outcome stands either way
        LOG.warning("metrics not published to %s: %s", NAMESPACE, error)
        return False
    return True
