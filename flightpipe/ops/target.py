"""Where an operations command acts: a deployed stage, or the running local stack.

Both are described the same way, by the CloudFormation outputs of ``serverless.yml``
(``DataBucketName``, ``StateMachineArn``, ``GlueJobName``, ``SparkGlueJobName``, ...)
and by the Glue job's own ``--redshift_*`` arguments, which say which warehouse the
pipeline loads and how it signs in. For a stage the outputs come from
``DescribeStacks`` with the user's AWS credentials; for the local stack from the record
``flightpipe local up`` writes in its state directory (:data:`LOCAL_RECORD`). Nothing
else is configured twice.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from flightpipe.warehouse.data_api import WarehouseTarget

SERVICE = "flightpipe"
LOCAL_RECORD = "local-stack.json"
LOCAL_STATE_ENV = "FLIGHTPIPE_LOCAL_STATE_DIR"
REQUIRED_OUTPUTS = ("DataBucketName", "StateMachineArn", "GlueJobName")


class TargetError(RuntimeError):
    """The stage or local stack cannot be reached; the message says what is missing."""


def default_local_state_dir() -> Path:
    """Where ``flightpipe local up`` keeps its state when given no ``--state-dir``."""
    configured = os.environ.get(LOCAL_STATE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".flightpipe" / "local"


def stack_name(stage: str) -> str:
    """The CloudFormation stack ``sls deploy --stage STAGE`` creates (``<service>-<stage>``)."""
    return f"{SERVICE}-{stage}"


@dataclass(frozen=True)
class Target:
    """A deployed pipeline and how to reach it."""

    description: str
    region: str
    outputs: Mapping[str, str]
    endpoint_url: Optional[str] = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    # The local stack's direct SQL endpoint (host, port, user, database), when it has one.
    sql_endpoint: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    @property
    def bucket(self) -> str:
        return self.outputs["DataBucketName"]

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    @property
    def job_name(self) -> str:
        """The Python shell ETL job; an execution names the job it ran in its history."""
        return self.outputs["GlueJobName"]

    @property
    def spark_job_name(self) -> Optional[str]:
        """The Spark ETL job (None for a stack deployed before it existed)."""
        return self.outputs.get("SparkGlueJobName") or None

    def client(self, service: str, config: Optional[Any] = None) -> Any:
        """A boto3 client of the target (``config``: a ``botocore.config.Config``)."""
        import boto3

        kwargs: dict[str, Any] = {"region_name": self.region}
        if config is not None:
            kwargs["config"] = config
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.credentials:
            kwargs["aws_access_key_id"] = self.credentials["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = self.credentials["AWS_SECRET_ACCESS_KEY"]
        return boto3.session.Session().client(service, **kwargs)

    def warehouse_target(self) -> WarehouseTarget:
        """The warehouse and sign-in the ETL job uses, read from the job's own arguments."""
        job = self.client("glue").get_job(JobName=self.job_name)["Job"]
        return warehouse_target_from_job_arguments(job.get("DefaultArguments") or {})


def warehouse_target_from_job_arguments(arguments: Mapping[str, str]) -> WarehouseTarget:
    """The deployed job's ``DefaultArguments`` (``--redshift_database``, ...) as its target."""
    from flightpipe.etl.job_args import warehouse_target_from_arguments

    return warehouse_target_from_arguments(
        {name.removeprefix("--"): value for name, value in arguments.items()}
    )


def resolve(
    *, stage: Optional[str], region: Optional[str], local: bool, state_dir: Optional[Path]
) -> Target:
    """The target a command's ``--stage``/``--region`` or ``--local``/``--state-dir`` names."""
    if local or state_dir is not None:
        return local_target(state_dir)
    if not stage:
        raise TargetError("say where to act: --stage NAME (a deployed stage) or --local")
    return stage_target(stage, region)


def stage_target(stage: str, region: Optional[str]) -> Target:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = boto3.session.Session(region_name=region)
    region = session.region_name
    if not region:
        raise TargetError("no AWS region: pass --region or set AWS_REGION")
    name = stack_name(stage)
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except NoCredentialsError:
        raise TargetError(
            "no AWS credentials found (run `aws configure` or set AWS_PROFILE)"
        ) from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:
            raise TargetError(
                f"no stack {name} in {region} (deploy it: sls deploy --stage {stage})"
            ) from None
        raise TargetError(f"cannot read stack {name} in {region}: {message}") from None
    except BotoCoreError as error:
        raise TargetError(f"cannot reach AWS in {region}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    _check_outputs(outputs, f"stack {name}")
    return Target(description=f"stage {stage} ({region})", region=region, outputs=outputs)


def local_target(state_dir: Optional[Path]) -> Target:
    directory = Path(state_dir) if state_dir is not None else default_local_state_dir()
    record_path = directory / LOCAL_RECORD
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(
            f"flightpipe local up is not running (no {record_path}); start it with: "
            f"flightpipe local up{'' if state_dir is None else f' --state-dir {directory}'}"
        ) from None
    except ValueError:
        raise TargetError(f"unreadable local stack record {record_path}") from None
    endpoint = record["endpoint_url"]
    if not _answers(endpoint):
        raise TargetError(
            f"flightpipe local up is not running: nothing answers at {endpoint} "
            f"(stale record {record_path})"
        )
    outputs = dict(record["outputs"])
    _check_outputs(outputs, str(record_path))
    return Target(
        description=f"local stack ({endpoint})",
        region=record["region"],
        outputs=outputs,
        endpoint_url=endpoint,
        credentials=record["credentials"],
        sql_endpoint=record.get("sql_endpoint") or {},
    )


def write_local_record(
    state_dir: Path,
    *,
    endpoint_url: str,
    region: str,
    outputs: Mapping[str, Any],
    credentials: Mapping[str, str],
    sql_endpoint: Optional[Mapping[str, Any]] = None,
    params: Optional[Mapping[str, str]] = None,
) -> Path:
    """Record a running local stack where ``--local`` finds it (``local up`` calls this),
    with the stage parameters it was packaged with (``--param``)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCAL_RECORD
    document = {
        "endpoint_url": endpoint_url,
        "region": region,
        "outputs": {key: str(value) for key, value in outputs.items()},
        "credentials": dict(credentials),
        "sql_endpoint": dict(sql_endpoint or {}),
        "params": dict(params or {}),
        "pid": os.getpid(),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def remove_local_record(state_dir: Path) -> None:
    (state_dir / LOCAL_RECORD).unlink(missing_ok=True)


def _check_outputs(outputs: Mapping[str, str], where: str) -> None:
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise TargetError(f"{where} has no output {', '.join(missing)}: is it a flightpipe stack?")


def _answers(endpoint: str) -> bool:
    """Whether something accepts connections at the endpoint's host and port."""
    address = urllib.parse.urlsplit(endpoint)
    try:
        with socket.create_connection((address.hostname, address.port or 80), timeout=3):
            return True
    except (OSError, ValueError):
        return False
