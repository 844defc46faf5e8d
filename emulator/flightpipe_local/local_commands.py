"""``flightpipe local ...``: run, query and serve the pipeline on this machine."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY, INCOMING_PREFIX
from flightpipe.ops.tables import print_table
from flightpipe.ops.target import (
    LOCAL_STATE_ENV,
    default_local_state_dir,
    remove_local_record,
    write_local_record,
)
from flightpipe_local.signals import Terminated, terminate_on
from flightpipe_local.stack import CREDENTIALS, EmulatedStack, repo_root
from flightpipe_local.template import parse_param

DEFAULT_AIRPORTS = Path("..") / "shared" / "data" / "airports.csv"
EXIT_OK, EXIT_STACK_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_START_TIMEOUT_S = 30.0  # flightpipe_local.run.DEFAULT_START_TIMEOUT_S, without the import


def add_parser(subparsers: Any) -> None:
    """Register ``local`` and its commands on the top-level CLI."""
    local = subparsers.add_parser(
        "local", help="run the pipeline locally (emulated AWS, embedded warehouse)"
    )
    commands = local.add_subparsers(dest="local_command", required=True)

    run = commands.add_parser(
        "run", help="upload files to the local stack and run the pipeline on each"
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="flight CSV files, uploaded in order")
    run.add_argument("--json", action="store_true", help="print only the JSON summary")
    run.add_argument(
        "--state-dir",
        type=Path,
        help="keep the warehouse and the emulated S3 objects, executions, crawls and SNS "
        "notices here between runs",
    )
    run.add_argument(
        "--airports", type=Path, help=f"airports dimension CSV (default {DEFAULT_AIRPORTS})"
    )
    run.add_argument(
        "--start-timeout",
        type=_positive_seconds,
        default=DEFAULT_START_TIMEOUT_S,
        metavar="SECONDS",
        help="report a file whose upload starts no execution within this time and go on "
        f"to the next (default {DEFAULT_START_TIMEOUT_S:g})",
    )
    _add_encode_event_keys(run)
    _add_params(run)
    run.set_defaults(handler=cmd_run)

    sql = commands.add_parser("sql", help="query the local warehouse (Redshift SQL)")
    sql.add_argument("query", metavar="SQL")
    sql.add_argument("--state-dir", type=Path, help="the warehouse of earlier runs")
    sql.add_argument("--json", action="store_true", help="print rows as a JSON list of objects")
    sql.set_defaults(handler=cmd_sql)

    up = commands.add_parser("up", help="keep the local stack running for the AWS CLI and boto3")
    up.add_argument(
        "--state-dir",
        type=Path,
        help="keep the warehouse, the emulated S3 objects, executions, crawls and SNS notices, "
        "and the stack's record here, across restarts (default "
        f"${LOCAL_STATE_ENV} or ~/.flightpipe/local, where `flightpipe … --local` looks)",
    )
    up.add_argument("--airports", type=Path, help="airports dimension CSV to upload at start")
    up.add_argument(
        "--port", type=int, default=0, help="port of the endpoint (default: a free one)"
    )
    _add_encode_event_keys(up)
    _add_params(up)
    up.set_defaults(handler=cmd_up)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _add_encode_event_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encode-event-keys",
        action="store_true",
        help="S3 events carry the object key URL-encoded, as S3's classic notifications do "
        "('my file+1.csv' -> 'my+file%%2B1.csv'); the pipeline must load the file either way",
    )


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        type=_stage_param,
        default=[],
        metavar="NAME=VALUE",
        help="a stage parameter of serverless.yml, as `sls deploy --param NAME=VALUE` sets it "
        "(repeatable; e.g. --param sparkThresholdBytes=0 sends every file to the Spark job)",
    )


def _stage_param(text: str) -> tuple[str, str]:
    try:
        return parse_param(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def stage_params(args: argparse.Namespace) -> dict[str, str]:
    """The ``--param`` options as one mapping: a name given twice keeps its last value,
    as the framework keeps it."""
    return dict(args.params or [])


def stops_cleanly(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Run a command so that SIGTERM and SIGHUP stop it as Ctrl-C does: every ``finally``
    runs, so the embedded PostgreSQL and the Lambda and Glue processes stop with it.
    A command cut short exits 128 + the signal's number, as a shell reports it."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            with terminate_on():
                return command(args)
        except Terminated as stop:
            name = command.__name__.removeprefix("cmd_")
            print(f"flightpipe local {name}: {stop}; the local stack stopped", file=sys.stderr)
            return stop.exit_status

    return run


def default_airports() -> Optional[Path]:
    candidate = (repo_root() / DEFAULT_AIRPORTS).resolve()
    return candidate if candidate.is_file() else None


@contextlib.contextmanager
def quiet_stack_output(log_path: Path) -> Iterator[TextIO]:
    """Send what the emulated functions and jobs print to ``log_path``; yield the real stdout."""
    real_stdout = sys.stdout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("a", encoding="utf-8"))
        stack.enter_context(contextlib.redirect_stdout(log))
        stack.enter_context(contextlib.redirect_stderr(log))
        try:
            yield real_stdout
        finally:
            _detach_log_handlers(log)


def _detach_log_handlers(stream: TextIO) -> None:
    """Drop logging handlers that the emulated code bound to ``stream`` before it closes."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in list(getattr(logger, "handlers", [])):
            if getattr(handler, "stream", None) is stream:
                logger.removeHandler(handler)


def notice_line(notice: Any) -> str:
    """One line for an SNS notice: its subject and the start of its message."""
    message = " ".join(notice.message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"SNS {notice.subject or '(no subject)'}: {message}"


def _log_path(state_dir: Optional[Path]) -> Path:
    base = state_dir or Path(tempfile.gettempdir())
    return base / "flightpipe-local.log"


@stops_cleanly
def cmd_run(args: argparse.Namespace) -> int:
    from flightpipe_local.run import PipelineRunner, resolve_files, run_report

    real_stderr = sys.stderr
    try:
        files = resolve_files(args.files)
    except FileNotFoundError as error:
        print(f"flightpipe local run: {error}", file=real_stderr)
        return EXIT_USAGE
    airports = args.airports or default_airports()
    if airports is None or not Path(airports).is_file():
        print(
            f"flightpipe local run: airports file not found ({airports or DEFAULT_AIRPORTS}); "
            "pass --airports CSV",
            file=real_stderr,
        )
        return EXIT_USAGE
    log_path = _log_path(args.state_dir)
    started = time.monotonic()
    with quiet_stack_output(log_path) as out:
        progress = None if args.json else (lambda line: _print(out, line))
        try:
            with EmulatedStack(
                state_dir=args.state_dir,
                echo=progress,
                encode_event_keys=args.encode_event_keys,
                params=stage_params(args),
            ) as stack:
                if progress:
                    progress(f"local stack up at {stack.endpoint_url} (log: {log_path})")
                stack.notices.on_notice = (
                    (lambda n: _print(out, notice_line(n))) if progress else None
                )
                runner = PipelineRunner(stack, progress, start_timeout_s=args.start_timeout)
                runner.upload_airports(Path(airports))
                outcomes = runner.run_files(files)
                report = run_report(outcomes, stack)
                sample = [] if args.json else _fact_sample(stack)
                crawls = "" if args.json else crawl_line(stack)
        except Exception as error:
            print(f"flightpipe local run: the local stack failed: {error}", file=real_stderr)
            print(f"(details in {log_path})", file=real_stderr)
            return EXIT_STACK_FAILED
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_summary(report, sample, time.monotonic() - started)
        print(crawls)
    return EXIT_OK


def crawl_line(stack: EmulatedStack) -> str:
    """One line on the crawls the run's crawler made (its ``ListCrawls``), by state."""
    glue = stack.client("glue")
    try:
        crawls = glue.list_crawls(CrawlerName=stack.crawler_name, MaxResults=1000)["Crawls"]
    except glue.exceptions.EntityNotFoundException:
        return f"crawler {stack.crawler_name}: missing"
    states: dict[str, int] = {}
    for crawl in crawls:
        states[crawl.get("State", "?")] = states.get(crawl.get("State", "?"), 0) + 1
    by_state = ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
    noun = "crawl" if len(crawls) == 1 else "crawls"
    return f"crawler {stack.crawler_name}: {len(crawls)} {noun} (ListCrawls): {by_state or '-'}"


def _print(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _fact_sample(stack: EmulatedStack) -> list[dict[str, Any]]:
    from flightpipe_local.run import query_file, table_exists

    if not table_exists(stack, "daily_flights_fact"):
        return []
    return query_file(stack, "ops_fact_sample.sql")


def _print_summary(report: dict[str, Any], sample: list[dict[str, Any]], seconds: float) -> None:
    print()
    print(
        "file                              execution  load      engine       "
        "read  loaded  rejected  unmatched"
    )
    for item in report["files"]:
        job = (item.get("runtimes") or {}).get("job") or {}
        print(
            f"{Path(item['file']).name[:32]:<33} {item['execution_status']!s:<10} "
            f"{item['load_status']!s:<8} {job.get('engine', '-'):<11} "
            f"{item['rows_read']:>6} {item['rows_loaded']:>7} "
            f"{item['rows_rejected']:>9} {item['unmatched_airport_rows']:>10}"
        )
        if item["error"]:
            print(f"    error: {item['error']}")
    warehouse = report["warehouse"]
    print(
        f"\nwarehouse: {warehouse['daily_flights_fact_rows']} fact rows, "
        f"{warehouse['airports_dim_rows']} airports  ({seconds:.1f}s)"
    )
    if sample:
        print("\nairlines.daily_flights_fact (first rows):")
        print_table(sample, sys.stdout, max_width=None)


@stops_cleanly
def cmd_sql(args: argparse.Namespace) -> int:
    from flightpipe_local.redshift_standin import RedshiftStandIn, StandInSqlError

    def no_s3(bucket: str, key: str) -> bytes:
        raise StandInSqlError("COPY from S3 needs the running stack (flightpipe local up)")

    with contextlib.ExitStack() as cleanup:
        if args.state_dir is None:
            print(
                "flightpipe local sql: no --state-dir: querying an empty temporary warehouse",
                file=sys.stderr,
            )
            data_dir = (
                Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="flightpipe-")))
                / "warehouse"
            )
        else:
            data_dir = Path(args.state_dir) / "warehouse"
            if not data_dir.is_dir():
                print(f"flightpipe local sql: no warehouse in {args.state_dir}", file=sys.stderr)
                return EXIT_USAGE
        standin = cleanup.enter_context(RedshiftStandIn(data_dir, no_s3))
        try:
            result = standin.query(args.query)
        except StandInSqlError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return EXIT_STACK_FAILED
    rows = result.as_dicts()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif result.has_result_set:
        print_table(rows, sys.stdout, max_width=None)
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    else:
        print(f"OK ({max(result.rowcount, 0)} rows affected)")
    return EXIT_OK


@stops_cleanly
def cmd_up(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C, SIGTERM or SIGHUP, the ways to stop it: each exits 0, stopped."""
    from flightpipe.ops.executions import describe_event

    airports = args.airports or default_airports()
    state_dir = args.state_dir or default_local_state_dir()
    log_path = _log_path(state_dir)
    stopping = threading.Event()
    with quiet_stack_output(log_path) as out:
        try:
            stack = EmulatedStack(
                state_dir=state_dir,
                port=args.port,
                encode_event_keys=args.encode_event_keys,
                params=stage_params(args),
            ).start()
        except Exception as error:
            print(f"flightpipe local up: the local stack failed: {error}", file=sys.__stderr__)
            return EXIT_STACK_FAILED
        try:
            stack.notices.on_notice = lambda n: _print(out, notice_line(n))
            for line in stack.notes:  # what the start cleared and restored
                _print(out, line)
            if airports is not None:
                stack.client("s3").upload_file(str(airports), stack.bucket, DEFAULT_AIRPORTS_KEY)
            record = record_stack(stack, state_dir)
            for line in _up_banner(stack, airports, log_path):
                _print(out, line)
            _print(out, f"  operate it:    flightpipe status --local (record: {record})")
            _follow_executions(stack, stopping, lambda line: _print(out, line), describe_event)
        except (KeyboardInterrupt, Terminated):
            pass
        finally:
            with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): stop all the same
                _print(out, "stopping the local stack")
            remove_local_record(state_dir)
            stack.stop()
    return EXIT_OK


def record_stack(stack: EmulatedStack, state_dir: Path) -> Path:
    """Write where the running stack is, so that ``flightpipe … --local`` finds it."""
    assert stack.deployment is not None
    return write_local_record(
        state_dir,
        endpoint_url=stack.endpoint_url,
        region=stack.region,
        outputs=stack.deployment.outputs,
        credentials=CREDENTIALS,
        sql_endpoint=dataclasses.asdict(stack.warehouse_endpoint),
        params=stack.params,
    )


def _up_banner(stack: EmulatedStack, airports: Optional[Path], log_path: Path) -> list[str]:
    exports = " ".join(f"{k}={v}" for k, v in stack.environment.items())
    lines = [
        f"local stack up at {stack.endpoint_url} (Ctrl-C or SIGTERM stops it; log: {log_path})",
        f"  export {exports}",
        f"  bucket:        {stack.bucket}",
        f"  state machine: {stack.state_machine_arn}",
        f"  run the pipeline: aws --endpoint-url {stack.endpoint_url} s3 cp f.csv s3://{stack.bucket}/{INCOMING_PREFIX}",
    ]
    if stack.encode_event_keys:
        lines.append("  S3 events carry URL-encoded object keys (--encode-event-keys)")
    if stack.params:
        given = " ".join(f"{name}={value}" for name, value in stack.params.items())
        lines.append(f"  stage parameters: {given} (--param)")
    if airports is not None:
        lines.append(
            f"  airports: {airports} uploaded to s3://{stack.bucket}/{DEFAULT_AIRPORTS_KEY}"
        )
    else:
        lines.append(
            f"  upload the airports dimension to s3://{stack.bucket}/{DEFAULT_AIRPORTS_KEY} first"
        )
    return lines


def _follow_executions(
    stack: EmulatedStack, stopping: threading.Event, emit: Any, describe_event: Any
) -> None:
    sfn = stack.client("stepfunctions")
    seen: dict[str, int] = {}
    first = True
    while not stopping.is_set():
        for item in sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]:
            arn = item["executionArn"]
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            if first and item["status"] != "RUNNING":
                seen[arn] = len(events)  # an earlier stack's, restored: told already
                continue
            for event in events[seen.get(arn, 0) :]:
                line = describe_event(event)
                if line:
                    emit(f"{item['name'][:8]}: {line}")
            seen[arn] = len(events)
        first = False
        stopping.wait(0.5)
