"""A warm Lambda execution environment: imports the handler once, then serves invocations.

Run by the local stack as ``python lambda_bootstrap.py`` with the function's code
directory as working directory (``LAMBDA_TASK_ROOT``) and ``_HANDLER`` set, on the
interpreter of the function's runtime. Each request is one JSON line on stdin
(``{"event", "request_id", "deadline_ms"}``); each reply one JSON line on the
original stdout (``{"payload"}`` or ``{"error"}`` shaped as Lambda's error
payload). Whatever the handler prints goes to stderr, the function's log.
Standard library only: it runs beside nothing but the function's own zip.
"""

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, request_id, deadline_ms):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("FLIGHTPIPE_LOCAL_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def error_payload(error):
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def log_uncaught(error, request_id):
    """Write an uncaught error to the function's log as Lambda's Python runtime does: with
    ``AWS_LAMBDA_LOG_FORMAT=JSON`` one JSON object (``level``, ``errorType``,
    ``errorMessage``, ``stackTrace``, ``requestId``), otherwise the traceback as text
    (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html)."""
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") != "JSON":
        traceback.print_exc()
        return
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {
        "timestamp": moment,
        "level": "ERROR",
        "message": f"{type(error).__name__}: {error}",
        **error_payload(error),
        "requestId": request_id,
    }
    sys.stderr.write(json.dumps(record, default=str) + "\n")


def load_handler():
    module_path, _, function_name = os.environ["_HANDLER"].rpartition(".")
    module = importlib.import_module(module_path.replace("/", "."))
    return getattr(module, function_name)


def main():
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints go to the log, not into the replies
    sys.stdout = sys.stderr
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    try:
        handler, init_error = load_handler(), None
    except Exception as error:  # Runtime.ImportModuleError on Lambda
        handler, init_error = None, error
    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            failure = {**error_payload(init_error), "errorType": "Runtime.ImportModuleError"}
            reply = {"error": failure}
        else:
            context = LambdaContext(request["request_id"], request["deadline_ms"])
            try:
                reply = {"payload": handler(request["event"], context)}
            except Exception as error:
                log_uncaught(error, request["request_id"])
                reply = {"error": {**error_payload(error), "requestId": request["request_id"]}}
        sys.stderr.flush()
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
