"""Lambda patch: invoking a function runs the project's real handler in-process.

moto runs Lambda code only in Docker. Here ``LambdaFunction._invoke_lambda`` is
replaced: the function's ``Handler`` (``handlers/<module>.<function>``) is
imported from the repository and called with the event, under the function's
deployed environment (set for the call and restored after; calls are
serialised because the environment is process-wide). The result is returned as
Lambda returns it: the JSON payload, or an error payload whose ``errorType`` is
the exception's class name, so ``Retry``/``Catch`` in the state machine match the
real error names.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from moto.awslambda import models as lambda_models

from flightpipe_local._patching import PatchSet

SEAM_OWNER = lambda_models.LambdaFunction
SEAM_NAME = "_invoke_lambda"

_ENVIRONMENT_LOCK = threading.RLock()
# os.environ is process-wide: a thread that copies it (botocore does, creating a client) while a
# handler's variables are removed gets a KeyError. Changes to it happen only under this lock, and
# the emulator's own threads create their clients under it too. It is never held while waiting.
ENVIRONMENT_CHANGE_LOCK = threading.Lock()


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_s: int):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = self.aws_request_id
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerLoader:
    """Imports ``<path>.<function>`` handlers from the repository, once per module."""

    def __init__(self, code_root: Path) -> None:
        self._root = code_root
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()

    def load(self, handler: str) -> Callable[[Any, Any], Any]:
        module_path, _, function_name = handler.rpartition(".")
        if not module_path or not function_name:
            raise ValueError(f"handler {handler!r} is not <module>.<function>")
        with self._lock:
            module = self._modules.get(module_path)
            if module is None:
                module = self._import(module_path)
                self._modules[module_path] = module
        return getattr(module, function_name)

    def _import(self, module_path: str) -> ModuleType:
        source = self._root / (module_path + ".py")
        if not source.is_file():
            raise FileNotFoundError(f"handler module {source} does not exist")
        name = module_path.replace("/", ".")
        spec = importlib.util.spec_from_file_location(name, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` for the duration of the block."""
    with _ENVIRONMENT_LOCK:
        with ENVIRONMENT_CHANGE_LOCK:
            saved = {key: os.environ.get(key) for key in values}
            os.environ.update({key: str(value) for key, value in values.items()})
        try:
            yield
        finally:
            with ENVIRONMENT_CHANGE_LOCK:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def error_payload(error: BaseException) -> dict[str, Any]:
    """The payload Lambda returns for an exception raised by a handler."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def invoke_handler(
    loader: HandlerLoader, function: Any, event: Any, base_environment: Mapping[str, str]
) -> tuple[str, bool, str]:
    """Run ``function``'s handler on ``event``: (payload JSON, errored, log text)."""
    values = dict(base_environment)
    values.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": function.handler,
        }
    )
    values.update(function.environment_vars or {})
    context = LambdaContext(
        function.function_name,
        function.function_arn,
        int(function.memory_size or 128),
        int(function.timeout or 3),
    )
    if isinstance(event, str):
        event = json.loads(event or "{}")
    with environment(values):
        try:
            result = loader.load(function.handler)(event, context)
            return json.dumps(result), False, ""
        except Exception as error:
            return json.dumps(error_payload(error)), True, traceback.format_exc()


def install(
    patches: PatchSet,
    code_root: Path,
    base_environment: Mapping[str, str],
    on_invoke: Optional[Callable[[str, bool], None]] = None,
) -> None:
    """Make every Lambda invocation run the repository's handler in-process."""
    loader = HandlerLoader(code_root)

    def _invoke_lambda(self: Any, event: Optional[str] = None) -> tuple[str, bool, str]:
        payload, errored, logs = invoke_handler(loader, self, event, base_environment)
        if on_invoke is not None:
            on_invoke(self.function_name, errored)
        return payload, errored, logs

    patches.replace(SEAM_OWNER, SEAM_NAME, _invoke_lambda)
