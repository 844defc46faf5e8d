"""Step Functions patch: service integrations call AWS as the state machine's role.

moto's interpreter builds every integration's client with ``boto_client_for`` and the
fixed keys ``ak``/``sk`` whatever role the state machine has. Step Functions assumes the
state machine's role (the ``StateCredentials`` of a task: the execution's role unless the
task names ``Credentials``) and calls the service with that session
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html), so
here every module that imported ``boto_client_for`` gets one that signs with a session of
that role, issued by :class:`~flightpipe_local.iam.sessions.RoleSessions` after the role's
trust policy let ``states.amazonaws.com`` assume it.
"""

from __future__ import annotations

import importlib
from typing import Any

import boto3
from botocore.config import Config
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module

from flightpipe_local._patching import PatchSet
from flightpipe_local.iam.sessions import RoleSessions

SEAM_NAME = "boto_client_for"
SERVICE_PRINCIPAL = "states.amazonaws.com"
SESSION_NAME = "states-integration"
_PARSER = "moto.stepfunctions.parser.asl.component.state.exec"
# Every module of moto 5.2.5's interpreter that imported the function by name.
USER_MODULES = (
    f"{_PARSER}.state_task.lambda_eval_utils",
    f"{_PARSER}.state_task.service.state_task_service_aws_sdk",
    f"{_PARSER}.state_task.service.state_task_service_glue",
    f"{_PARSER}.state_task.service.state_task_service_sns",
    f"{_PARSER}.state_task.service.state_task_service_sqs",
    f"{_PARSER}.state_task.service.state_task_service_sfn",
    f"{_PARSER}.state_task.service.state_task_service_events",
    f"{_PARSER}.state_task.service.state_task_service_unsupported",
    f"{_PARSER}.state_task.service.state_task_service_dynamodb",
    f"{_PARSER}.state_task.service.state_task_service_batch",
    f"{_PARSER}.state_task.service.state_task_service_ecs",
    f"{_PARSER}.state_map.item_reader.eval.resource_eval_s3",
    f"{_PARSER}.state_map.result_writer.resource_eval.resource_eval_s3",
)


def install(patches: PatchSet, sessions: RoleSessions) -> None:
    """Make the interpreter's clients sign with sessions of the state machine's role."""
    original = boto_client_module.__dict__[SEAM_NAME]

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            return original(region=region, service=service, state_credentials=state_credentials)
        credentials = sessions.assume(role_arn, SERVICE_PRINCIPAL, SESSION_NAME)
        # moto's own settings for these clients: no retries (the state's Retry decides),
        # the interpreter's default timeouts.
        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=f"http://localhost:{moto_server_port()}",
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
            **credentials.client_arguments(),
        )

    # Imported before the patch, so that none imports the replacement (and keeps it).
    users = [importlib.import_module(name) for name in USER_MODULES]
    for module in users:
        if module.__dict__.get(SEAM_NAME) is not original:
            raise AttributeError(
                f"{module.__name__}.{SEAM_NAME} is not moto's boto_client_for: the seam moved"
            )
    patches.replace(boto_client_module, SEAM_NAME, boto_client_for)
    for module in users:
        patches.replace(module, SEAM_NAME, boto_client_for)
