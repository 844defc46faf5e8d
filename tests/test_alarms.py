"""The alarms and the dashboard of the packaged template (tests/test_deploy_plugins.py runs
the plugin that says, after `sls deploy`, when the notices reach no one).

Each alarm is pinned whole: its metric (namespace, name, dimensions), statistic, period,
threshold, comparison, missing-data treatment and action (the notices topic).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_template import resources, template  # noqa: F401  (the packaged template's fixtures)

from flightpipe.etl import metrics

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "flightpipe-dev"  # <service>-<stage> of the packaged template
TOPIC = {"Ref": "NotificationsTopic"}
STATE_MACHINE = {"Ref": "PipelineStateMachine"}
# logical id -> (namespace, metric, dimensions, statistic, period)
ALARMS = {
    "ExecutionsFailedAlarm": (
        "AWS/States",
        "ExecutionsFailed",
        [{"Name": "StateMachineArn", "Value": STATE_MACHINE}],
        "Sum",
        60,
    ),
    "ExecutionsTimedOutAlarm": (
        "AWS/States",
        "ExecutionsTimedOut",
        [{"Name": "StateMachineArn", "Value": STATE_MACHINE}],
        "Sum",
        60,
    ),
    "ExecutionsAbortedAlarm": (
        "AWS/States",
        "ExecutionsAborted",
        [{"Name": "StateMachineArn", "Value": STATE_MACHINE}],
        "Sum",
        60,
    ),
    "RecordAbandonedFailedAlarm": (
        "AWS/States",
        "ExecutionsFailed",
        [{"Name": "StateMachineArn", "Value": {"Ref": "RecordAbandonedStateMachine"}}],
        "Sum",
        60,
    ),
    "EtlJobFailedAlarm": (
        "AWS/Events",
        "Invocations",
        [{"Name": "RuleName", "Value": {"Ref": "EtlJobFailedRule"}}],
        "Sum",
        60,
    ),
    "SparkEtlJobFailedAlarm": (
        "AWS/Events",
        "Invocations",
        [{"Name": "RuleName", "Value": {"Ref": "SparkEtlJobFailedRule"}}],
        "Sum",
        60,
    ),
    "FilesRejectedAlarm": (
        "Flightpipe",
        "FilesRejected",
        [{"Name": "Pipeline", "Value": PIPELINE}],
        "Sum",
        60,
    ),
    "CrawlerDeadLettersAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [
            {
                "Name": "QueueName",
                "Value": {"Fn::GetAtt": ["CrawlerEventDeadLetterQueue", "QueueName"]},
            }
        ],
        "Maximum",
        300,
    ),
}
ALARM_NAMES = {
    "ExecutionsFailedAlarm": "flightpipe-dev-executions-failed",
    "ExecutionsTimedOutAlarm": "flightpipe-dev-executions-timed-out",
    "ExecutionsAbortedAlarm": "flightpipe-dev-executions-aborted",
    "RecordAbandonedFailedAlarm": "flightpipe-dev-record-abandoned-failed",
    "EtlJobFailedAlarm": "flightpipe-dev-etl-job-failed",
    "SparkEtlJobFailedAlarm": "flightpipe-dev-etl-spark-job-failed",
    "FilesRejectedAlarm": "flightpipe-dev-files-rejected",
    "CrawlerDeadLettersAlarm": "flightpipe-dev-crawler-dead-letters",
}
JOB_RULES = {"EtlJobFailedRule": "EtlJob", "SparkEtlJobFailedRule": "SparkEtlJob"}


def _of_type(found: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: body for name, body in found.items() if body["Type"] == kind}


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_each_alarm_watches_its_metric_and_notifies_the_topic_at_the_first_event(
    resources,  # noqa: F811
    logical_id,
):
    namespace, metric, dimensions, statistic, period = ALARMS[logical_id]
    alarm = resources[logical_id]["Properties"]
    assert alarm == {
        "AlarmName": ALARM_NAMES[logical_id],
        "AlarmDescription": alarm["AlarmDescription"],
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": dimensions,
        "Statistic": statistic,
        "Period": period,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [TOPIC],
    }
    assert alarm["AlarmDescription"]


def test_the_stack_has_exactly_these_alarms(resources):  # noqa: F811
    assert set(_of_type(resources, "AWS::CloudWatch::Alarm")) == set(ALARMS)


@pytest.mark.parametrize("rule_id", sorted(JOB_RULES))
def test_a_rule_per_glue_job_sends_its_failed_runs_to_the_failures_queue(
    resources,  # noqa: F811
    rule_id,
):
    rule = resources[rule_id]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {
            "jobName": [{"Ref": JOB_RULES[rule_id]}],
            "state": ["FAILED", "TIMEOUT", "ERROR"],
        },
    }
    assert rule.get("State", "ENABLED") == "ENABLED"
    # The alarm counts the rule's target invocations: the rule must have a target.
    assert rule["Targets"] == [
        {"Id": "glue-job-failures", "Arn": {"Fn::GetAtt": ["GlueJobFailuresQueue", "Arn"]}}
    ]


def test_only_eventbridge_for_the_two_rules_may_send_to_the_failures_queue(
    resources,  # noqa: F811
):
    policy = resources["GlueJobFailuresQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "GlueJobFailuresQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [{"Fn::GetAtt": [rule, "Arn"]} for rule in sorted(JOB_RULES)]
        }
    }
    queue = resources["GlueJobFailuresQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True


def test_the_topic_is_encrypted_with_a_key_alarms_may_use_and_the_publisher_may_use(
    resources,  # noqa: F811
):
    """An AWS managed key (alias/aws/sns) would leave every alarm undelivered: its policy
    cannot let cloudwatch.amazonaws.com use it."""
    assert resources["NotificationsTopic"]["Properties"]["KmsMasterKeyId"] == {
        "Ref": "NotificationsKey"
    }
    key = resources["NotificationsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert statements["AlarmsPublishToNotices"]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    assert statements["AlarmsPublishToNotices"]["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    role = resources["PipelineStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": {"Fn::GetAtt": ["NotificationsKey", "Arn"]},
    } in role["Statement"]


def test_the_jobs_publish_their_metrics_in_the_namespace_the_alarm_reads(resources):  # noqa: F811
    for job in ("EtlJob", "SparkEtlJob"):
        arguments = resources[job]["Properties"]["DefaultArguments"]
        assert arguments["--" + metrics.PIPELINE_ARGUMENT] == PIPELINE
    statements = resources["EtlJobRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (publish,) = [s for s in statements["Statement"] if s.get("Sid") == "PublishLoadMetrics"]
    assert publish == {
        "Sid": "PublishLoadMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": metrics.NAMESPACE}},
    }
    assert resources["FilesRejectedAlarm"]["Properties"]["Namespace"] == metrics.NAMESPACE
    assert resources["FilesRejectedAlarm"]["Properties"]["MetricName"] == metrics.FILES_REJECTED
    (dimension,) = resources["FilesRejectedAlarm"]["Properties"]["Dimensions"]
    assert dimension["Name"] == metrics.DIMENSION


def _dashboard(found: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body, its ${...} substitutions left as they are."""
    body = found["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body)


def test_one_dashboard_shows_files_rows_duration_and_the_alarms(resources):  # noqa: F811
    assert list(_of_type(resources, "AWS::CloudWatch::Dashboard")) == ["PipelineDashboard"]
    assert resources["PipelineDashboard"]["Properties"]["DashboardName"] == PIPELINE
    widgets = {w["properties"]["title"]: w for w in _dashboard(resources)["widgets"]}
    assert list(widgets) == [
        "Files: loaded, rejected, failed",
        "Rows loaded and rejected",
        "Execution duration p95 (seconds)",
        "Alarms",
    ]
    files = widgets["Files: loaded, rejected, failed"]["properties"]
    assert files["stat"] == "Sum"
    series = [m[:4] for m in files["metrics"] if isinstance(m[0], str)]
    assert series == [
        ["Flightpipe", "FilesLoaded", "Pipeline", PIPELINE],
        ["Flightpipe", "FilesRejected", "Pipeline", PIPELINE],
        ["AWS/States", "ExecutionsFailed", "StateMachineArn", "${PipelineStateMachine}"],
        ["AWS/States", "ExecutionsTimedOut", "StateMachineArn", "${PipelineStateMachine}"],
        ["AWS/States", "ExecutionsAborted", "StateMachineArn", "${PipelineStateMachine}"],
    ]
    (failed,) = [m[0] for m in files["metrics"] if isinstance(m[0], dict)]
    assert failed["label"] == "failed"
    assert failed["expression"] == (
        "FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0) - FILL(rejected, 0)"
    )
    rows = widgets["Rows loaded and rejected"]["properties"]
    assert [m[:2] for m in rows["metrics"]] == [
        ["Flightpipe", "RowsLoaded"],
        ["Flightpipe", "RowsRejected"],
    ]
    duration = widgets["Execution duration p95 (seconds)"]["properties"]["metrics"]
    assert duration[0][:4] == [
        "AWS/States",
        "ExecutionTime",
        "StateMachineArn",
        "${PipelineStateMachine}",
    ]
    assert duration[0][4]["stat"] == "p95"
    assert duration[1][0]["expression"] == "time / 1000"  # ExecutionTime is in milliseconds
    alarms = widgets["Alarms"]["properties"]["alarms"]
    assert alarms == ["${" + name + ".Arn}" for name in ALARMS]
    # Every metric the jobs publish is on the page.
    shown = {
        m[1]
        for w in widgets.values()
        for m in w["properties"].get("metrics", [])
        if isinstance(m[0], str)
    }
    assert set(metrics.METRICS) - {metrics.FILES_FAILED} <= shown


def test_the_dashboard_names_only_resources_of_the_stack(resources):  # noqa: F811
    body = resources["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in re.findall(r"\$\{([^}]+)\}", body):
        assert name == "AWS::Region" or name.split(".")[0] in resources, name
