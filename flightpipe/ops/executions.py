"""Reading the pipeline's executions: finding the one an upload started, following it,
and explaining its history (states, failures, the job run, the notice, the runtimes).

Pure functions over Step Functions' API documents, shared by the operations commands
and by ``flightpipe local run``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Protocol

from flightpipe.execution_input import ExecutionInput
from flightpipe.s3keys import candidate_keys
from flightpipe.warehouse.ledger import cause_message

FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
TERMINAL = ("SUCCEEDED", *FAILED_STATUSES)
History = list[dict[str, Any]]


def history(sfn: Any, execution_arn: str) -> History:
    """Every event of an execution, oldest first."""
    events: History = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def executions(sfn: Any, state_machine_arn: str, status: Optional[str] = None) -> Iterator[dict]:
    """The state machine's executions, newest first, as ``ListExecutions`` returns them
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html);
    only those in ``status`` with one (its ``statusFilter``)."""
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    for page in sfn.get_paginator("list_executions").paginate(**kwargs):
        yield from page["executions"]


def execution_input(described: dict[str, Any]) -> ExecutionInput:
    return ExecutionInput.from_json(described.get("input") or "{}")


def is_execution_of(
    document: ExecutionInput, key: str, version_id: Optional[str], etag: str
) -> bool:
    """Whether an execution's input names this object version (its key given as uploaded,
    or URL-encoded as S3's classic notifications send it)."""
    if not isinstance(document.key, str) or key not in candidate_keys(document.key):
        return False
    if version_id and document.version_id:
        return document.version_id == version_id
    return str(document.etag or "").strip('"') == etag.strip('"')


class Uploaded(Protocol):
    """An object put under ``incoming/`` whose execution is looked for."""

    key: str
    version_id: Optional[str]
    etag: str
    execution_arn: Optional[str]


class StartedExecutions:
    """Finds the executions uploads started, by their input (key and object version).

    ``flightpipe upload``, ``flightpipe smoke`` and ``flightpipe local run`` share it.
    Each execution's input is read once (``DescribeExecution``) and remembered, and an
    execution matched to one upload is never matched to another, so a burst of uploads
    costs one listing per pass, not one per upload.
    """

    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._state_machine_arn = state_machine_arn
        self._inputs: dict[str, ExecutionInput] = {}
        self._matched: set[str] = set()

    def match(
        self, uploads: Iterable[Uploaded], not_before: Optional[datetime] = None
    ) -> dict[str, str]:
        """Set ``execution_arn`` on each upload whose execution has started; list the
        executions once, newest first, back to ``not_before`` (all of them without it).
        Returns the status of every execution listed, by ARN."""
        waiting = [upload for upload in uploads if upload.execution_arn is None]
        statuses: dict[str, str] = {}
        for item in executions(self._sfn, self._state_machine_arn):
            if not_before is not None and item["startDate"] < not_before:
                break
            arn = str(item["executionArn"])
            statuses[arn] = item["status"]
            if arn in self._matched or not waiting:
                continue
            document = self._input(arn)
            for upload in waiting:
                if is_execution_of(document, upload.key, upload.version_id, upload.etag):
                    upload.execution_arn = arn
                    self._matched.add(arn)
                    waiting.remove(upload)
                    break
        return statuses

    def _input(self, arn: str) -> ExecutionInput:
        if arn not in self._inputs:
            self._inputs[arn] = execution_input(self._sfn.describe_execution(executionArn=arn))
        return self._inputs[arn]


def describe_event(event: dict[str, Any]) -> Optional[str]:
    """One line of progress for a history event (None for the uninteresting)."""
    kind = event["type"]
    if kind.endswith("StateEntered"):
        return f"-> {event['stateEnteredEventDetails']['name']}"
    if kind in ("TaskFailed", "LambdaFunctionFailed"):
        details = _failure_details(event)
        return f"   {kind}: {details.get('error')}: {short(details.get('cause'))}"
    if kind == "ExecutionSucceeded":
        return "execution SUCCEEDED"
    if kind == "ExecutionFailed":
        details = event.get("executionFailedEventDetails") or {}
        return f"execution FAILED: {details.get('error')}: {short(details.get('cause'))}"
    if kind in ("ExecutionAborted", "ExecutionTimedOut"):
        return f"execution {kind[len('Execution') :].upper()}"
    return None


def short(text: Optional[str], limit: int = 160) -> str:
    text = cause_message(text or "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def execution_error(events: Iterable[dict[str, Any]], execution: dict[str, Any]) -> str:
    """Why an execution did not succeed: the first task failure, else the execution's error."""
    for event in events:
        if event["type"] in ("TaskFailed", "LambdaFunctionFailed"):
            details = _failure_details(event)
            return f"{details.get('error')}: {cause_message(details.get('cause') or '')}"
    error = execution.get("error") or execution["status"]
    return f"{error}: {cause_message(execution.get('cause') or '')}".rstrip(": ")


def _failure_details(event: dict[str, Any]) -> dict[str, Any]:
    return dict(
        event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
    )


def lambda_runtime(events: Iterable[dict[str, Any]]) -> Optional[dict[str, str]]:
    """The runtime the execution's Lambda tasks reported in their results (the last one)."""
    found = None
    for payload in _task_outputs(events, "lambda"):
        body = payload.get("Payload")
        if isinstance(body, dict) and isinstance(body.get("runtime"), dict):
            found = body["runtime"]
    return found


@dataclass(frozen=True)
class GlueJobRun:
    """A Glue job run an execution started, and the job it is a run of."""

    job_name: Optional[str]
    run_id: str


def job_run(events: Iterable[dict[str, Any]]) -> Optional[GlueJobRun]:
    """The Glue job run the execution started (its last one) and its job: the state machine
    runs one of two jobs (ChooseEngine), so the job is read from the history too — the
    JobName the task put in its result (the Glue integration copies it there from the request:
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-glue.html), else the one it
    was scheduled with."""
    found = None
    scheduled_job = None
    for event in events:
        if event["type"] == "TaskScheduled":
            details = event.get("taskScheduledEventDetails") or {}
            if details.get("resourceType") == "glue":
                scheduled_job = _json_object(details.get("parameters")).get("JobName")
            continue
        for output in _task_outputs([event], "glue", include_failed=True):
            run_id = output.get("Id") or output.get("JobRunId")
            if isinstance(run_id, str):
                name = output.get("JobName") or scheduled_job
                found = GlueJobRun(name if isinstance(name, str) else None, run_id)
    return found


def _json_object(text: Optional[str]) -> dict[str, Any]:
    try:
        document = json.loads(text or "{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def notices(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SNS notices the execution published: subject, message and the MessageId SNS gave
    (the task's result is SNS's Publish response:
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-sns.html)."""
    scheduled: dict[int, dict[str, Any]] = {}
    found = []
    for event in events:
        kind = event["type"]
        if kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            if details.get("resourceType") == "sns":
                scheduled[event["id"]] = json.loads(details.get("parameters") or "{}")
        elif (
            kind == "TaskSucceeded"
            and event["taskSucceededEventDetails"].get("resourceType") == "sns"
        ):
            parameters = scheduled.get(_scheduled_id(event, scheduled), {})
            output = json.loads(event["taskSucceededEventDetails"].get("output") or "{}")
            found.append(
                {
                    "subject": parameters.get("Subject"),
                    "message": parameters.get("Message"),
                    "message_id": output.get("MessageId"),
                }
            )
    return found


def _scheduled_id(event: dict[str, Any], scheduled: dict[int, Any]) -> int:
    """The TaskScheduled event a task result belongs to: the latest one before it."""
    earlier = [number for number in scheduled if number < event["id"]]
    return max(earlier) if earlier else -1


def _task_outputs(
    events: Iterable[dict[str, Any]], resource_type: str, include_failed: bool = False
) -> Iterator[dict[str, Any]]:
    for event in events:
        details = event.get("taskSucceededEventDetails") or {}
        text = details.get("output")
        if include_failed and not details:
            details = event.get("taskFailedEventDetails") or {}
            text = details.get("cause")
        if details.get("resourceType") != resource_type:
            continue
        try:
            document = json.loads(text or "{}")
        except ValueError:
            continue
        if isinstance(document, dict):
            yield document


@dataclass(frozen=True)
class StateVisit:
    """One pass through a state: when it was entered and how long it took."""

    name: str
    entered: datetime
    seconds: Optional[float]
    outcome: str


def state_visits(events: Iterable[dict[str, Any]]) -> list[StateVisit]:
    """Each state the execution entered, in order, with its duration (None while running)."""
    visits: list[StateVisit] = []
    open_visits: dict[str, tuple[datetime, int]] = {}
    failed: set[str] = set()
    current = ""
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
            open_visits[current] = (event["timestamp"], len(visits))
            visits.append(StateVisit(current, event["timestamp"], None, "running"))
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_visits:
                entered, index = open_visits.pop(name)
                seconds = (event["timestamp"] - entered).total_seconds()
                outcome = "caught" if name in failed else "ok"
                visits[index] = StateVisit(name, entered, seconds, outcome)
        elif kind in ("TaskFailed", "LambdaFunctionFailed") and current:
            failed.add(current)
        elif kind in _EXECUTION_ENDS:
            # A Fail state has no exit event (the history's event types list FailStateEntered
            # but no FailStateExited: https://docs.aws.amazon.com/step-functions/latest/
            # apireference/API_HistoryEvent.html): the execution's end closes it.
            outcome = "ok" if kind == "ExecutionSucceeded" else "ended the execution"
            for name, (entered, index) in open_visits.items():
                seconds = (event["timestamp"] - entered).total_seconds()
                visits[index] = StateVisit(name, entered, seconds, outcome)
            open_visits.clear()
    return visits


_EXECUTION_ENDS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")
