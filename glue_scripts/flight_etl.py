"""Glue Python shell entry point: load one uploaded flights file into Redshift.

Arguments arrive as ``--name value`` pairs (see flightpipe.etl.job_args). The
library ships as a wheel (``--extra-py-files``); pandas comes with Glue's
``analytics`` library set, and boto3 with the job's ``--additional-python-modules``
(the set's own predates Redshift Serverless in the Data API). A rejected or failed
load raises, so the Glue run — and the state machine step that waits for it — fails
with the cause.
"""

from __future__ import annotations

import sys

import boto3

from flightpipe.etl.job import JobFailed, log_summary, run_job
from flightpipe.etl.job_args import JobArgs, job_log_keys
from flightpipe.etl.metrics import publish_load_metrics
from flightpipe.logs import log_to_json
from flightpipe.warehouse import DataApiWarehouse


def main(argv: list) -> None:
    # Every line this run logs is JSON with its execution id and file key, the SDK's
    # warnings and an uncaught error included (flightpipe/logs.py).
    log_to_json(job_log_keys(argv))
    args = JobArgs.from_argv(argv)
    warehouse = DataApiWarehouse(boto3.client("redshift-data"), args.warehouse_target())
    summary = run_job(args, boto3.client("s3"), warehouse)
    log_summary(summary)
    # The outcome as CloudWatch metrics (the rejection alarm, the dashboard); best effort.
    publish_load_metrics(boto3.client("cloudwatch"), argv, summary)
    if not summary.succeeded:
        raise JobFailed(summary)


if __name__ == "__main__":
    main(sys.argv[1:])
