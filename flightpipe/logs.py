"""The Glue jobs' log lines: one JSON object a line, carrying the execution and the file.

The Lambdas log with Powertools' ``Logger`` (packaged in their zip); the jobs cannot (the
Glue runtimes do not provide it and the library wheel has no dependencies), so their lines
take the same shape from :class:`JsonFormatter`: ``level``, ``location``, ``message``,
``timestamp``, ``service``, then the run's keys (``execution_id``, ``file_key``, ``job``),
then what a record adds (``extra=``), and ``exception``/``exception_name`` for an error.
:func:`log_to_json` sends every record of the process there, Python warnings (the SDK's own
deprecation notices among them) and uncaught exceptions included, so that a person reading
``/aws-glue/jobs/output`` can filter one execution's lines by its id.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import sys
import threading
import traceback
from collections.abc import Mapping
from typing import Any, Callable, Optional, Protocol, TextIO, TypeVar

from flightpipe.execution_input import input_of_status_change

SERVICE = "flightpipe"
EXECUTION_ID, FILE_KEY = "execution_id", "file_key"
# What every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON, with the keys of the run it belongs to."""

    def __init__(self, keys: Mapping[str, Any], service: str = SERVICE) -> None:
        super().__init__()
        self._keys = dict(keys)
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": _timestamp(record.created),
            "service": self._service,
            "logger": record.name,
            **self._keys,
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                document[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            document["exception_name"] = record.exc_info[0].__name__
            document["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(document, default=str, ensure_ascii=False)


def _timestamp(created: float) -> str:
    """Powertools' timestamp form: ``2024-01-02 06:00:00,123+0000``."""
    moment = dt.datetime.fromtimestamp(created, dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}+0000"


def run_keys(execution_id: Optional[str], file_key: Optional[str], **more: Any) -> dict[str, Any]:
    """The keys every line of one run carries."""
    return {EXECUTION_ID: execution_id or None, FILE_KEY: file_key or None, **more}


def event_keys(event: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a Lambda invocation's log lines, from the payload the state machine sends:
    the execution (``execution.id``, stamped by the NoteExecution state, or ``execution_id``)
    and the file's key, also inside a ``record_failure`` request or, for a Step Functions
    status change event, the execution it reports and the key of that execution's input."""
    detail = event.get("detail")
    if isinstance(detail, Mapping) and detail.get("executionArn"):  # a status change event
        return run_keys(detail["executionArn"], input_of_status_change(detail).get("key"))
    inner = event.get("record_failure") or event
    execution = inner.get("execution_id") or (event.get("execution") or {}).get("id")
    return run_keys(execution, inner.get("key"))


class KeyedLogger(Protocol):
    """What :func:`with_run_keys` needs of a logger (Powertools' ``Logger`` has both)."""

    def append_keys(self, **keys: Any) -> None: ...

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None: ...


Handler = TypeVar("Handler", bound=Callable[..., Any])


def with_run_keys(logger: KeyedLogger) -> Callable[[Handler], Handler]:
    """Decorate a Lambda handler so that every line it logs carries the run's keys
    (:func:`event_keys`) and an error it does not handle is logged, with them and its
    traceback, before it propagates: the runtime's own error record cannot name the
    execution or the file."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def logged(event: Mapping[str, Any], context: Any) -> Any:
            logger.append_keys(**event_keys(event))
            try:
                return handler(event, context)
            except Exception:
                logger.exception("invocation failed")
                raise

        return logged  # type: ignore[return-value]

    return decorate


def tag_jvm_logs(jvm: Any, keys: Mapping[str, Any]) -> None:
    """Give the Spark JVM's log lines the run's keys: glue_scripts/log4j2.properties writes the
    system properties ``flightpipe.execution_id`` and ``flightpipe.file_key`` into each line's
    JSON, so they are set here already escaped as JSON string contents."""
    system = jvm.java.lang.System
    for name in (EXECUTION_ID, FILE_KEY):
        value = "" if keys.get(name) is None else str(keys[name])
        system.setProperty(f"flightpipe.{name}", json.dumps(value)[1:-1])


def log_to_json(
    keys: Mapping[str, Any], stream: Optional[TextIO] = None, level: int = logging.INFO
) -> logging.Handler:
    """Make every log line of this process JSON with ``keys``: the root logger's records,
    Python warnings, and exceptions nobody caught (in any thread). Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(keys))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    log = logging.getLogger(SERVICE)

    def uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        log.error("%s: %s", kind.__name__, error, exc_info=(kind, error, trace))

    def uncaught_in_thread(hook: Any) -> None:
        if hook.exc_type is not SystemExit:
            assert hook.exc_value is not None
            uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback)

    sys.excepthook = uncaught
    threading.excepthook = uncaught_in_thread
    return handler
