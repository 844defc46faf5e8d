"""Step Functions patch: an execution that ends sends its status change to EventBridge.

Step Functions sends a "Step Functions Execution Status Change" event to the account's
default bus whenever a Standard workflow's execution changes status
(https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html); moto
sends none. Here each execution that ends (SUCCEEDED, FAILED, TIMED_OUT or ABORTED) puts that
event, with the detail AWS documents (``executionArn``, ``stateMachineArn``, ``name``,
``status``, ``startDate`` and ``stopDate`` in epoch milliseconds, ``input``, ``output``,
``error``, ``cause``), to the default bus of the execution's account and region, where the
rules that match it deliver it (:mod:`flightpipe_local.moto_events`). The RUNNING event an
execution sends when it starts is not sent: no rule of the stack needs it.

An aborted execution keeps the ``error`` and ``cause`` given to ``StopExecution``, in
``DescribeExecution`` and in its event, as on AWS
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html);
moto's handler drops them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, Optional

from moto.core.responses import ActionResult
from moto.events.models import events_backends
from moto.stepfunctions.models import utcnow
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.responses import StepFunctionResponse

from flightpipe_local._patching import PatchSet

SEAM_OWNER = BaseExecutionWorkerCommunication
SEAM_NAME = "terminated"
STOP_SEAM_OWNER = StepFunctionResponse
STOP_SEAM_NAME = "stop_execution"
SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"

LOG = logging.getLogger(__name__)


def _epoch_ms(moment: Optional[dt.datetime]) -> Optional[int]:
    return None if moment is None else int(moment.timestamp() * 1000)


def status_change_detail(described: Mapping[str, Any]) -> dict[str, Any]:
    """The event's detail from an execution's ``DescribeExecution`` output."""
    status = described["status"]
    return {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described["name"],
        "status": getattr(status, "value", status),
        "startDate": _epoch_ms(described.get("startDate")),
        "stopDate": _epoch_ms(described.get("stopDate")),
        "input": described.get("input"),
        "output": described.get("output"),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if described.get("output") is not None else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


def _keep_stop_reason(execution: Any) -> None:
    """An aborted execution reports the ``error`` and ``cause`` ``StopExecution`` was given, as
    ``DescribeExecution`` does on AWS; moto drops them."""
    state = execution.exec_worker.env.program_state() if execution.exec_worker else None
    if isinstance(state, ProgramStopped):
        execution.error = execution.error or state.error
        execution.cause = execution.cause or state.cause


def install(patches: PatchSet) -> None:
    """Make every ending execution put its status change event on the default bus."""
    original = SEAM_OWNER.__dict__[SEAM_NAME]

    def terminated(self: Any) -> None:
        original(self)
        execution = self.execution
        _keep_stop_reason(execution)
        try:
            detail = status_change_detail(execution.to_describe_output())
            backend = events_backends[execution.account_id][execution.region_name]
            backend.put_events(
                [
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "Detail": json.dumps(detail, default=str),
                        "Resources": [execution.exec_arn],
                    }
                ]
            )
        except Exception:  # the execution has ended either way; say why no event went out
            LOG.exception("execution %s: its status change event was not sent", execution.exec_arn)

    patches.replace(SEAM_OWNER, SEAM_NAME, terminated)

    def stop_execution(self: Any) -> ActionResult:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)  # or ExecutionDoesNotExist
        stop_date = utcnow()
        execution.stop(
            stop_date=stop_date, error=self._get_param("error"), cause=self._get_param("cause")
        )
        return ActionResult({"stopDate": stop_date})

    patches.replace(STOP_SEAM_OWNER, STOP_SEAM_NAME, stop_execution)
