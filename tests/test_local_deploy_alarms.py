"""The local deploy creates KMS keys, CloudWatch alarms and dashboards as CloudFormation does:
the resource's properties become the API's parameters, numbers from stage parameters as
numbers, and ``Fn::GetAtt Alarm.Arn`` resolves in a dashboard's body."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flightpipe_local.deploy import ACCOUNT_ID, Deployer, DeploymentError

REGION = "us-east-1"
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": "notices",
                "EnableKeyRotation": True,
                "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
            },
        },
        "Topic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": "notices", "KmsMasterKeyId": {"Ref": "Key"}},
        },
        "Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": "files-rejected",
                "AlarmDescription": "a whole file was rejected",
                "Namespace": "Flightpipe",
                "MetricName": "FilesRejected",
                "Dimensions": [{"Name": "Pipeline", "Value": "flightpipe-dev"}],
                "Statistic": "Sum",
                "Period": "60",
                "EvaluationPeriods": 1,
                "Threshold": "1",
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "Topic"}],
            },
        },
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": "flightpipe-dev",
                "DashboardBody": {
                    "Fn::Sub": '{"widgets": [{"type": "alarm", "properties": '
                    '{"region": "${AWS::Region}", "alarms": ["${Alarm.Arn}"]}}]}'
                },
            },
        },
    }
}


def _deploy(template: dict[str, Any]) -> Any:
    return Deployer(
        template, lambda service: boto3.client(service, region_name=REGION), "stack", REGION
    ).deploy()


def test_alarms_keys_and_dashboards_are_created_in_the_emulator():
    with mock_aws():
        deployment = _deploy(TEMPLATE)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        (alarm,) = cloudwatch.describe_alarms()["MetricAlarms"]
        topic = deployment.resources["Topic"].ref
        assert alarm["AlarmName"] == "files-rejected"
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (60, 1, 1.0)
        assert alarm["AlarmActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:files-rejected"
        assert deployment.resources["Alarm"].attributes["Arn"] == arn
        body = json.loads(cloudwatch.get_dashboard(DashboardName="flightpipe-dev")["DashboardBody"])
        assert body["widgets"][0]["properties"] == {"region": REGION, "alarms": [arn]}
        key = deployment.resources["Key"]
        described = boto3.client("kms", region_name=REGION).describe_key(KeyId=key.ref)
        assert described["KeyMetadata"]["Arn"] == key.attributes["Arn"]


def test_a_dashboard_body_that_is_not_json_fails_the_deploy_as_cloudwatch_would():
    broken = {
        "Resources": {
            "Dashboard": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {"DashboardName": "d", "DashboardBody": "{not json"},
            }
        }
    }
    with mock_aws(), pytest.raises(DeploymentError, match="Dashboard"):
        _deploy(broken)
