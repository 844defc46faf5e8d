"""The alarms and the dashboard on the local stack, deployed from serverless.yml as on AWS, read
with the AWS CLI as a person would; and the metrics the rejection alarm and the dashboard read,
published by the Glue job's own run under its role.

What the local stack does not do: CloudWatch evaluates no alarm here (moto keeps alarms and
metric data but never changes an alarm's state), and the local Glue runs send no "Glue Job State
Change" events, so the job-failure rules are created but never invoked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO_ROOT, run_files, stack  # noqa: F401  (stack: the module's stack)

from flightpipe.etl import metrics
from flightpipe_local.stack import CREDENTIALS, EmulatedStack

pytestmark = pytest.mark.e2e

AWS_CLI = REPO_ROOT / ".venv" / "bin" / "aws"
PIPELINE = "flightpipe-dev"
ALARMS = {
    "flightpipe-dev-executions-failed": ("AWS/States", "ExecutionsFailed"),
    "flightpipe-dev-executions-timed-out": ("AWS/States", "ExecutionsTimedOut"),
    "flightpipe-dev-executions-aborted": ("AWS/States", "ExecutionsAborted"),
    "flightpipe-dev-record-abandoned-failed": ("AWS/States", "ExecutionsFailed"),
    "flightpipe-dev-etl-job-failed": ("AWS/Events", "Invocations"),
    "flightpipe-dev-etl-spark-job-failed": ("AWS/Events", "Invocations"),
    "flightpipe-dev-files-rejected": ("Flightpipe", "FilesRejected"),
    "flightpipe-dev-crawler-dead-letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
}


def aws(local: EmulatedStack, *arguments: str) -> Any:
    """``aws --endpoint-url <local stack> ARGUMENTS --output json``, its JSON answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CREDENTIALS, AWS_DEFAULT_REGION=local.region)
    result = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", local.endpoint_url, *arguments, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_aws_cloudwatch_describe_alarms_lists_the_alarms_with_the_notices_topic(
    stack,  # noqa: F811
):
    topic = stack.deployment.outputs["NotificationsTopicArn"]
    found = {a["AlarmName"]: a for a in aws(stack, "cloudwatch", "describe-alarms")["MetricAlarms"]}
    assert set(ALARMS) <= set(found)
    for name, (namespace, metric) in ALARMS.items():
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric)
        assert alarm["AlarmActions"] == [topic]
        assert alarm["Threshold"] == 1.0
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    rejected = found["flightpipe-dev-files-rejected"]["Dimensions"]
    assert rejected == [{"Name": metrics.DIMENSION, "Value": PIPELINE}]
    machine = stack.deployment.outputs["StateMachineArn"]
    failed = found["flightpipe-dev-executions-failed"]["Dimensions"]
    assert failed == [{"Name": "StateMachineArn", "Value": machine}]


def test_the_dashboard_is_deployed_with_its_widgets(stack):  # noqa: F811
    answer = aws(stack, "cloudwatch", "get-dashboard", "--dashboard-name", PIPELINE)
    body = json.loads(answer["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Files: loaded, rejected, failed",
        "Rows loaded and rejected",
        "Execution duration p95 (seconds)",
        "Alarms",
    ]
    assert stack.region in json.dumps(body)
    assert "${" not in answer["DashboardBody"]


def test_the_glue_job_failure_rules_target_the_failures_queue(stack):  # noqa: F811
    rules = aws(stack, "events", "list-rules", "--name-prefix", f"{PIPELINE}-etl")["Rules"]
    assert sorted(r["Name"] for r in rules) == [
        f"{PIPELINE}-etl-failed",
        f"{PIPELINE}-etl-spark-failed",
    ]
    queue = stack.deployment.outputs["GlueJobFailuresQueueUrl"]
    for rule in rules:
        pattern = json.loads(rule["EventPattern"])
        assert pattern["detail-type"] == ["Glue Job State Change"]
        (target,) = aws(stack, "events", "list-targets-by-rule", "--rule", rule["Name"])["Targets"]
        assert target["Arn"].endswith(":" + queue.rsplit("/", 1)[-1])


def _sum(local: EmulatedStack, metric: str) -> float:
    now = dt.datetime.now(dt.timezone.utc)
    answer = local.client("cloudwatch").get_metric_statistics(
        Namespace=metrics.NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": metrics.DIMENSION, "Value": PIPELINE}],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in answer["Datapoints"])


def test_each_run_publishes_the_metrics_the_rejection_alarm_and_dashboard_read(
    stack,  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
):
    """The job publishes under its own role (cloudwatch:PutMetricData, namespace condition):
    a refused call would publish nothing and these sums would stay 0."""
    workbook = tmp_path / "flights.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # a zip's magic: not an accepted file
    loaded, rejected = run_files(stack, shared_data / "sample_flights.csv", workbook)
    assert (loaded.load_status, rejected.load_status) == ("LOADED", "REJECTED")
    assert _sum(stack, metrics.FILES_LOADED) == 1
    assert _sum(stack, metrics.ROWS_LOADED) == loaded.rows_loaded == 13
    assert _sum(stack, metrics.FILES_REJECTED) == 1
    assert _sum(stack, metrics.FILES_FAILED) == 0
