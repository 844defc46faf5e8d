"""EventBridge patch: rules whose target is a state machine start executions.

moto 5.2.5 delivers rule targets to logs, SQS, buses and archives only; a state
machine target raises inside ``Rule.send_to_targets`` and the exception silently
stops delivery to the rules after it. Here the method is wrapped: state machine
targets start an execution with the rule's input (``Input``, ``InputPath`` or
``InputTransformer`` applied as EventBridge does, always — S3 notifications call
the method with ``transform_input=False``), other targets go to moto's original
code, and a failure is logged without stopping delivery to other targets and rules.

With ``encode_keys`` the S3 events carry ``detail.object.key`` URL-encoded the
way S3's classic notifications encode keys (AWS leaves it undocumented for
EventBridge events; see flightpipe.s3keys), so both forms can be exercised.

S3's events carry a ``sequencer`` that orders the events of one key ("the event
notification with the greater sequencer hexadecimal value is the event that occurred
later": https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html,
``detail.object.sequencer`` in EventBridge events:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). moto sends one
constant value; here each S3 event gets its own from :class:`Sequencers`, increasing per
bucket and key, as S3's do (events that create or delete an object; moto's value stays on
the others).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import uuid
from typing import Any, Callable, Optional
from urllib.parse import quote_plus

from moto.events import models as events_models
from moto.s3 import notifications as s3_notifications

from flightpipe_local._patching import PatchSet

SEAM_OWNER = events_models.Rule
SEAM_NAME = "send_to_targets"
# Where moto sends an S3 event to EventBridge (one call per event, to every rule).
S3_EVENT_SEAM = "_send_event_bridge_message"

LOG = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()

StartListener = Callable[[str, str, dict], None]
# starter(rule, target, execution input) -> execution ARN: how a target is started (the
# stack starts it as the target's role; by default, straight through moto's backend).
Starter = Callable[[Any, dict, str], str]


def json_path_value(document: Any, path: str) -> Any:
    """The value at a simple JSON path (``$.detail.object.key``), or a missing marker."""
    if path.strip() == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported input path {path!r}")
    value = document
    for part in path[2:].split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def apply_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """Render an ``InputTransformer`` for ``event`` with EventBridge's quoting rules.

    A placeholder inside a JSON string is replaced by the value's text, escaped for
    that string; elsewhere by the value as JSON (``null`` when the path is missing).
    """
    values = {
        name: json_path_value(event, path)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values["aws.events.event"] = event
    values["aws.events.event.json"] = event
    template = transformer.get("InputTemplate") or ""
    out: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match and match.group(1) in values:
            out.append(_render_value(values[match.group(1)], in_string))
            position = match.end()
            continue
        if char == "\\" and in_string:
            out.append(template[position : position + 2])
            position += 2
            continue
        if char == '"':
            in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


def _render_value(value: Any, in_string: bool) -> str:
    if value is _MISSING:
        return "" if in_string else "null"
    if in_string:
        text = value if isinstance(value, str) else json.dumps(value)
        return json.dumps(text)[1:-1]
    return json.dumps(value)


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The input a target receives for ``event``."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(json_path_value(event, target["InputPath"]))
    if target.get("InputTransformer"):
        return apply_input_transformer(target["InputTransformer"], event)
    return json.dumps(event)


def encode_s3_key(key: str) -> str:
    """A key as S3's classic notifications carry it: form-encoded, ``/`` left as is.

    "red flower.jpg" becomes "red+flower.jpg", a plus ``%2B``, non-ASCII UTF-8
    percent-escapes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html);
    slashes stay, as observed in AWS's notifications (minio/minio#11665).
    """
    return quote_plus(key, safe="/")


class Sequencers:
    """S3's event sequencers: per bucket and key, each greater than the one before.

    The value is the time in nanoseconds (or one more than the previous value, when the
    clock has not moved past it) in upper-case hexadecimal, 18 digits as in AWS's example
    ``0055AED6DCD90281E5``: still increasing after a restart of the stack.
    """

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._last: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def next(self, bucket: str, key: str) -> str:
        with self._lock:
            value = max(self._last.get((bucket, key), 0) + 1, self._clock())
            self._last[(bucket, key)] = value
        return f"{value:018X}"


# The sequencer of the S3 event being delivered on this thread (moto delivers an event to
# every rule from the thread that changed the object).
_DELIVERING = threading.local()


def normalise_s3_event(
    event: dict[str, Any], encode_keys: bool = False, sequencer: Optional[str] = None
) -> dict[str, Any]:
    """moto names the S3 object's ETag ``eTag``; EventBridge events from S3 say ``etag``.

    With ``encode_keys`` the object's key is URL-encoded (:func:`encode_s3_key`); with a
    ``sequencer``, the object's ``sequencer`` is that one (moto's is a constant).
    The event given is never changed: moto hands the same one to every rule.
    """
    detail = event.get("detail")
    if event.get("source") != "aws.s3" or not isinstance(detail, dict):
        return event
    obj = detail.get("object")
    if not isinstance(obj, dict):
        return event
    rename = "eTag" in obj and "etag" not in obj
    encode = encode_keys and isinstance(obj.get("key"), str)
    sequence = sequencer is not None and obj.get("sequencer") != sequencer
    if rename or encode or sequence:
        event = copy.deepcopy(event)
        obj = event["detail"]["object"]
        if rename:
            obj["etag"] = obj.pop("eTag")
        if encode:
            obj["key"] = encode_s3_key(obj["key"])
        if sequence:
            obj["sequencer"] = sequencer
    return event


def is_state_machine(arn: str) -> bool:
    return arn.startswith("arn:") and ":states:" in arn and ":stateMachine:" in arn


def start_execution(state_machine_arn: str, execution_input: str) -> str:
    """Start an execution through moto's executing Step Functions backend; its ARN."""
    from moto.stepfunctions.responses import get_backend

    parts = state_machine_arn.split(":")
    backend = get_backend(parts[4], parts[3])
    execution = backend.start_execution(
        state_machine_arn, name=str(uuid.uuid4()), execution_input=execution_input
    )
    return execution.execution_arn


def _start_in_backend(rule: Any, target: dict, execution_input: str) -> str:
    return start_execution(target["Arn"], execution_input)


def install(
    patches: PatchSet,
    on_start: Optional[StartListener] = None,
    encode_keys: bool = False,
    starter: Starter = _start_in_backend,
    sequencers: Optional[Sequencers] = None,
) -> None:
    """Deliver rule targets that are state machines; isolate delivery failures.

    ``encode_keys``: S3 events carry their object key URL-encoded (for every rule and target).
    ``starter``: starts one target's execution (EventBridge calls ``StartExecution`` as the
    target's ``RoleArn``). ``sequencers``: where each S3 event's sequencer comes from.
    """
    original = SEAM_OWNER.__dict__[SEAM_NAME]
    original_s3_event = s3_notifications.__dict__[S3_EVENT_SEAM]
    sequencers = sequencers or Sequencers()

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        # S3 documents the sequencer of the events that create and delete objects.
        ordered = event_name.startswith(("s3:ObjectCreated", "s3:ObjectRemoved"))
        _DELIVERING.sequencer = sequencers.next(bucket.name, key.name) if ordered else None
        try:
            original_s3_event(account_id, bucket, event_name, key)
        finally:
            _DELIVERING.sequencer = None

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if getattr(self, "state", "ENABLED") != "ENABLED":
            return
        sequencer = getattr(_DELIVERING, "sequencer", None)
        original_event = normalise_s3_event(original_event, encode_keys, sequencer)
        others = [t for t in self.targets if not is_state_machine(t["Arn"])]
        machines = [t for t in self.targets if is_state_machine(t["Arn"])]
        if others:
            clone = copy.copy(self)
            clone.targets = others
            try:
                original(clone, original_event, transform_input)
            except Exception:
                LOG.exception("rule %s: delivery to a target failed", self.name)
        if not machines or not self.event_pattern.matches_event(original_event):
            return
        for target in machines:
            try:
                execution_input = target_input(target, original_event)
                json.loads(execution_input)
                arn = starter(self, target, execution_input)
                if on_start is not None:
                    on_start(self.name, arn, json.loads(execution_input))
            except Exception:
                LOG.exception("rule %s: starting %s failed", self.name, target["Arn"])

    patches.replace(SEAM_OWNER, SEAM_NAME, send_to_targets)
    patches.replace(s3_notifications, S3_EVENT_SEAM, send_event_bridge_message)
