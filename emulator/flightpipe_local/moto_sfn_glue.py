"""Step Functions patch: ``glue:startJobRun.sync`` and AWS's Glue error names.

In moto 5.2.5 every ``.sync`` task crashes after it ran (the base class calls
``callback_endpoint.interrupt_all()`` on a Glue task, which has no callback
endpoint), and the job run it returns carries datetimes that later break
``DescribeExecution``. Here the Glue service's integration pattern is replaced:
start the run, poll ``GetJobRun`` until the run ends (raising ``States.TaskFailed``
for FAILED/TIMEOUT/ERROR runs, as AWS does) and push a JSON-safe copy of the run.
SDK integrations (``aws-sdk:glue:*``) name errors ``glue.X``; AWS says ``Glue.X``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue as glue_service,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from flightpipe_local._patching import PatchSet

SEAM_OWNER = glue_service.StateTaskServiceGlue
SEAM_NAME = "_eval_integration_pattern"
ERROR_NAMES_OWNER = aws_sdk
ERROR_NAMES_NAME = "_SERVICE_ERROR_NAMES"

POLL_SECONDS = 0.2


def json_safe(value: Any) -> Any:
    """``value`` with datetimes turned into ISO strings (what Step Functions would show)."""
    return json.loads(to_json_str(value))


def install(patches: PatchSet, poll_seconds: float = POLL_SECONDS) -> None:
    """Make ``glue:startJobRun.sync`` wait for the run and name SDK errors ``Glue.X``."""

    def _eval_integration_pattern(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict,
        state_credentials: Any,
    ) -> None:
        task_output = env.stack.pop()
        self.timeout.eval(env=env)
        env.stack.pop()
        env.stack.append(task_output)
        resolver = self._build_sync_resolver(
            env=env,
            resource_runtime_part=resource_runtime_part,
            normalised_parameters=normalised_parameters,
            state_credentials=state_credentials,
        )
        outcome = None
        while env.is_running():
            outcome = resolver()
            if outcome:
                break
            time.sleep(poll_seconds)
        env.stack.append(json_safe(outcome))

    patches.override(SEAM_OWNER, SEAM_NAME, _eval_integration_pattern)
    names = dict(getattr(ERROR_NAMES_OWNER, ERROR_NAMES_NAME))
    names["glue"] = "Glue"
    patches.replace(ERROR_NAMES_OWNER, ERROR_NAMES_NAME, names)
