"""Where an operations command acts: a deployed stage read from CloudFormation, or the
record a running ``flightpipe local up`` leaves in its state dir."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from flightpipe.ops.target import (
    LOCAL_RECORD,
    TargetError,
    local_target,
    resolve,
    stack_name,
    warehouse_target_from_job_arguments,
    write_local_record,
)

OUTPUTS = {
    "DataBucketName": "flightpipe-dev-123456789012-us-east-1",
    "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:flightpipe-dev-pipeline",
    "GlueJobName": "flightpipe-dev-etl",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def deploy_outputs_stack(stage: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName=stack_name(stage), TemplateBody=json.dumps(template)
    )


def test_a_stage_is_read_from_its_stack_outputs(aws: None) -> None:
    deploy_outputs_stack("dev", OUTPUTS)
    target = resolve(stage="dev", region="us-east-1", local=False, state_dir=None)
    assert (target.bucket, target.job_name) == (OUTPUTS["DataBucketName"], "flightpipe-dev-etl")
    assert target.state_machine_arn == OUTPUTS["StateMachineArn"]
    assert not target.is_local and target.description == "stage dev (us-east-1)"


def test_a_stage_that_was_never_deployed_names_the_missing_stack(aws: None) -> None:
    with pytest.raises(TargetError, match=r"no stack flightpipe-prod in us-east-1 .*sls deploy"):
        resolve(stage="prod", region="us-east-1", local=False, state_dir=None)


def test_a_stack_without_the_pipeline_outputs_is_not_taken_for_one(aws: None) -> None:
    deploy_outputs_stack("other", {"Something": "else"})
    with pytest.raises(TargetError, match="has no output DataBucketName, StateMachineArn"):
        resolve(stage="other", region="us-east-1", local=False, state_dir=None)


def test_without_credentials_the_error_says_how_to_configure_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(TargetError, match="no AWS credentials found"):
        resolve(stage="dev", region="us-east-1", local=False, state_dir=None)


def test_no_stage_and_no_local_is_a_usage_error() -> None:
    with pytest.raises(TargetError, match=r"--stage NAME .* or --local"):
        resolve(stage=None, region=None, local=False, state_dir=None)


def test_the_local_record_names_the_running_stack(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        write_local_record(
            tmp_path,
            endpoint_url=endpoint,
            region="us-east-1",
            outputs=OUTPUTS,
            credentials={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
        )
        target = local_target(tmp_path)
    assert target.is_local and target.endpoint_url == endpoint
    assert target.bucket == OUTPUTS["DataBucketName"]


def test_a_stale_local_record_says_local_up_is_not_running(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    write_local_record(
        tmp_path,
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        outputs=OUTPUTS,
        credentials={},
    )
    with pytest.raises(TargetError, match="not running: nothing answers"):
        local_target(tmp_path)
    assert (tmp_path / LOCAL_RECORD).is_file()


def test_the_default_local_state_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLIGHTPIPE_LOCAL_STATE_DIR", str(tmp_path))
    with pytest.raises(TargetError, match=re.escape(str(tmp_path / LOCAL_RECORD))):
        resolve(stage=None, region=None, local=True, state_dir=None)


def test_the_warehouse_is_the_one_the_job_arguments_name() -> None:
    target = warehouse_target_from_job_arguments(
        {"--redshift_database": "dev", "--redshift_workgroup": "wg", "--redshift_db_user": ""}
    )
    assert (target.database, target.workgroup, target.cluster_id) == ("dev", "wg", None)
    cluster = warehouse_target_from_job_arguments(
        {"--redshift_cluster_id": "c1", "--redshift_db_user": "flightpipe"}
    )
    assert (cluster.cluster_id, cluster.db_user, cluster.database) == ("c1", "flightpipe", "dev")
