"""Step Functions patch: the interpreter's per-state overheads, paid once instead of per state.

moto's ASL interpreter parses every JSONPath each time a state evaluates it (jsonpath_ng
builds its parser, tables and all, per call) and creates a new boto3 client for every
service task it runs. For one execution that is invisible; for a burst of hundreds of
executions in one process it is most of the process's time (profiled under ``make
stress``: JSONPath parsing and client creation led the samples), and it starves the
crawls and job runs the executions wait for. Here both are memoised: a parsed path is
an immutable expression, and botocore clients are safe to share between threads
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/clients.html#multithreading-or-multiprocessing-with-clients).
Nothing about what an execution does changes.
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any, Callable

from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

from flightpipe_local._patching import PatchSet

JSON_PATH_OWNERS = (json_path, result_path)
JSON_PATH_NAME = "parse"
CLIENT_FACTORY_NAME = "boto_client_for"
# The modules that import boto_client_for by name, each bound to the original.
CLIENT_USERS = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
)


def install(patches: PatchSet) -> None:
    """Memoise JSONPath parsing and service clients in moto's ASL interpreter."""
    for owner in JSON_PATH_OWNERS:
        patches.replace(owner, JSON_PATH_NAME, functools.lru_cache(maxsize=4096)(owner.parse))
    shared = shared_clients(boto_client.boto_client_for)
    for name in CLIENT_USERS:
        module = importlib.import_module(name)
        if getattr(module, CLIENT_FACTORY_NAME, None) is not None:
            patches.replace(module, CLIENT_FACTORY_NAME, shared)


def shared_clients(create: Callable[..., Any]) -> Callable[..., Any]:
    """``create(region, service, state_credentials)``, one client per region, service and
    role: each client signs as a session of the role the state's credentials name
    (:mod:`flightpipe_local.moto_sfn_credentials`), so two state machines never share one.
    """
    clients: dict[tuple[str, str, Any], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:
            key = (region, service, getattr(state_credentials, "role_arn", None))
            if key not in clients:
                clients[key] = create(region, service, state_credentials)
            return clients[key]

    return client_for
