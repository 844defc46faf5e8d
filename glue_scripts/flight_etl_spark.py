"""Glue 5.0 Spark entry point: load one uploaded flights file into Redshift with Spark tasks.

The same arguments, contract and outcome as the Python shell job (flight_etl.py): only the
reading is spread over the job's workers (flightpipe.etl.spark_engine). The library ships
as a wheel that Glue installs with pip on the driver and every executor (the job's
``--additional-python-modules``); boto3, numpy and pandas come with Glue 5.0. A rejected or
failed load raises, so the Glue run — and the state machine step that waits for it — fails
with the cause.
"""

from __future__ import annotations

import sys

import boto3
from pyspark import SparkContext

from flightpipe.etl.job import JobFailed, log_summary, run_job
from flightpipe.etl.job_args import JobArgs, job_log_keys
from flightpipe.etl.metrics import publish_load_metrics
from flightpipe.etl.spark_engine import SparkEngine, SparkTasks
from flightpipe.logs import log_to_json, tag_jvm_logs
from flightpipe.warehouse import DataApiWarehouse


def main(argv: list) -> None:
    # Every line this script's Python logs is JSON with the execution id and file key
    # (flightpipe/logs.py), and so is every line of the Spark JVM (log4j2.properties, from the
    # job's --extra-files) once its context exists.
    keys = job_log_keys(argv)
    log_to_json(keys)
    # Glue passes the job's arguments in sys.argv as --name value
    # (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-get-resolved-options.html)
    # and runs the script with its Spark context set up: getOrCreate joins it
    # (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-intro-tutorial.html).
    args = JobArgs.from_argv(argv)
    spark = SparkContext.getOrCreate()
    tag_jvm_logs(spark._jvm, keys)
    try:
        warehouse = DataApiWarehouse(boto3.client("redshift-data"), args.warehouse_target())
        engine = SparkEngine(SparkTasks(spark), spark_version=spark.version)
        summary = run_job(args, boto3.client("s3"), warehouse, engine=engine)
    finally:
        spark.stop()
    log_summary(summary)
    # The outcome as CloudWatch metrics (the rejection alarm, the dashboard); best effort.
    publish_load_metrics(boto3.client("cloudwatch"), argv, summary)
    if not summary.succeeded:
        raise JobFailed(summary)


if __name__ == "__main__":
    main(sys.argv[1:])
