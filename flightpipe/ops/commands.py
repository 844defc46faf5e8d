"""The operations commands of ``flightpipe``: upload, status, show, backfill, report, smoke,
airports load.

Each acts on ``--stage NAME [--region R]`` (a deployed stack, read from CloudFormation
with the user's AWS credentials) or ``--local [--state-dir DIR]`` (the stack a running
``flightpipe local up`` serves), prints a table for people or ``--json`` for scripts,
and fails with one line naming what is missing, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from flightpipe.ops import (
    airports,
    backfill,
    executions,
    report,
    runs,
    show,
    smoke,
    timeline,
    upload,
)
from flightpipe.ops.tables import cell, print_table
from flightpipe.ops.target import Target, TargetError, resolve
from flightpipe.ops.warehouse import DirectSession, data_api_warehouse

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATUS_COLUMNS = (
    "file",
    "status",
    "load_status",
    "started",
    "duration_s",
    "upload_to_loaded_s",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "unmatched_airport_rows",
    "error",
)


def add_parsers(subparsers: Any) -> None:
    """Register the operations commands on the top-level ``flightpipe`` parser."""
    _upload_parser(subparsers)
    _status_parser(subparsers)
    _show_parser(subparsers)
    _backfill_parser(subparsers)
    _report_parser(subparsers)
    _smoke_parser(subparsers)
    _airports_parser(subparsers)


def _common(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the command acts (one of)")
    where.add_argument("--stage", help="a deployed stage (the stack flightpipe-STAGE)")
    where.add_argument("--region", help="the stage's region (default: your AWS configuration)")
    where.add_argument(
        "--local", action="store_true", help="the stack a running `flightpipe local up` serves"
    )
    where.add_argument(
        "--state-dir", type=Path, help="the state dir of that `local up` (implies --local)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _upload_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("upload", help="upload flights files under incoming/")
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path)
    parser.add_argument(
        "--date", type=dt.date.fromisoformat, help="put files under incoming/date=YYYY-MM-DD/"
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the executions; exit 1 unless all LOADED"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits")
    _common(parser)
    parser.set_defaults(handler=cmd_upload)


def _status_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="recent runs, newest first")
    parser.add_argument("--limit", type=int, default=20, help="runs to list (default 20)")
    parser.add_argument("--failed", action="store_true", help="only runs that failed")
    _common(parser)
    parser.set_defaults(handler=cmd_status)


def _show_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("show", help="one run in depth")
    parser.add_argument(
        "target_name", metavar="FILE_OR_EXECUTION", help="an execution ARN, or a file's key"
    )
    parser.add_argument("--rejects", type=int, default=10, help="rejected rows to show")
    _common(parser)
    parser.set_defaults(handler=cmd_show)


def _backfill_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill", help="start executions for objects already under incoming/"
    )
    parser.add_argument("prefix", nargs="?", default="", metavar="PREFIX")
    parser.add_argument(
        "--failed-only",
        action="store_true",
        help=(
            "only files whose current version is not loaded: no ledger row of that version "
            "says LOADED, DUPLICATE (loaded before) or SUPERSEDED (a newer version loaded), "
            "including versions with no ledger row"
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would start")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=backfill.DEFAULT_MAX_CONCURRENCY,
        help=f"backfill executions running at once (default {backfill.DEFAULT_MAX_CONCURRENCY})",
    )
    _common(parser)
    parser.set_defaults(handler=cmd_backfill)


def _report_parser(subparsers: Any) -> None:
    names = "; ".join(f"{name}: {what}" for name, what in report.REPORTS.items())
    parser = subparsers.add_parser("report", help="reports over the loaded flights")
    parser.add_argument("name", nargs="?", choices=list(report.REPORTS), metavar="NAME", help=names)
    parser.add_argument("--from", dest="date_from", type=dt.date.fromisoformat, metavar="DATE")
    parser.add_argument("--to", dest="date_to", type=dt.date.fromisoformat, metavar="DATE")
    parser.add_argument("--sql", help="an ad-hoc read-only query instead of a named report")
    direct = parser.add_argument_group(
        "a direct redshift_connector session instead of the Data API"
    )
    direct.add_argument("--host")
    direct.add_argument("--port", type=int, default=5439)
    direct.add_argument("--user", default="awsuser")
    direct.add_argument("--database", help="default: the pipeline's database")
    direct.add_argument(
        "--password-env",
        default="REDSHIFT_PASSWORD",
        help="environment variable holding the password (default REDSHIFT_PASSWORD)",
    )
    direct.add_argument("--no-ssl", action="store_true", help="connect without TLS")
    _common(parser)
    parser.set_defaults(handler=cmd_report)


def _smoke_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "smoke", help="prove the deployment works end to end, then remove what it added"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    _common(parser)
    parser.set_defaults(handler=cmd_smoke)


def _airports_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("airports", help="the airports dimension")
    commands = parser.add_subparsers(dest="airports_command", required=True, metavar="COMMAND")
    load = commands.add_parser(
        "load",
        help="upload a new airports file and reload airports_dim through the prepare step",
        description=(
            "Upload CSV (airport_id,city,state,name) to dimensions/airports.csv, reload "
            "airlines.airports_dim with the pipeline's own prepare step, and print the rows "
            "before and after, the ids added, removed and renamed, and how many fact rows "
            "carry names that differ from the new dimension."
        ),
    )
    load.add_argument("csv", metavar="CSV", type=Path)
    load.add_argument(
        "--refresh-facts",
        action="store_true",
        help="re-join the fact rows with the new dimension, in one transaction",
    )
    _common(load)
    load.set_defaults(handler=cmd_airports_load)


def one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Report what went wrong in one line on stderr, named after the command."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        name = " ".join(
            ["flightpipe", args.command, *filter(None, [getattr(args, "airports_command", None)])]
        )
        try:
            return command(args)
        except (
            TargetError,
            report.ReportError,
            FileNotFoundError,
            airports.AirportsFileError,
        ) as error:
            print(f"{name}: {error}", file=sys.stderr)
            return EXIT_USAGE
        except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        except (ClientError, BotoCoreError, RuntimeError, OSError) as error:
            print(f"{name}: {type(error).__name__}: {error}", file=sys.stderr)
            return EXIT_FAILED
        except Exception as error:  # e.g. the driver's own errors: one line, never a traceback
            message = " ".join(str(error).split()) or type(error).__name__
            print(f"{name}: {type(error).__name__}: {message}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print(f"{name}: interrupted", file=sys.stderr)
            return 130

    return run


def _target(args: argparse.Namespace) -> Target:
    return resolve(stage=args.stage, region=args.region, local=args.local, state_dir=args.state_dir)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str))


@one_line_errors
def cmd_upload(args: argparse.Namespace) -> int:
    """Upload each file and print its line as soon as it is final: in table mode when its
    upload finishes; with ``--json``, one JSON object per line (JSON Lines), when its upload
    finishes or, with ``--wait``, when its execution ends. ``--wait`` in table mode follows
    each execution's events and ends with the table of outcomes."""
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file: {', '.join(missing)}")
    target = _target(args)
    s3, sfn = target.client("s3"), target.client("stepfunctions")
    started = executions.StartedExecutions(sfn, target.state_machine_arn)
    results = []
    for path in args.files:
        key = upload.object_key(path, args.date)
        bar = upload.ProgressBar(path.name, path.stat().st_size)
        not_before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
        result = upload.upload_file(target, s3, path, key, None if args.json else bar)
        bar.done()
        upload.find_started_execution(started, result, not_before, upload.DEFAULT_START_TIMEOUT_S)
        if not args.json:
            execution = result.execution_arn or "no execution started"
            print(f"{path} -> s3://{target.bucket}/{key}: {execution}", flush=True)
        elif not args.wait or not result.execution_arn:
            _print_json_line(result.as_json())
        results.append(result)
    if args.wait:
        on_final = (lambda result: _print_json_line(result.as_json())) if args.json else None
        _wait_for_uploads(target, results, args, on_final)
        if not args.json:
            print_table([r.as_json() for r in results], sys.stdout)
    if args.wait and not all(r.load_status == "LOADED" for r in results):
        return EXIT_FAILED
    return EXIT_OK if all(r.execution_arn for r in results) else EXIT_FAILED


def _print_json_line(document: Any) -> None:
    print(json.dumps(document, default=str), flush=True)


def _wait_for_uploads(
    target: Target,
    results: Sequence[upload.UploadResult],
    args: argparse.Namespace,
    on_final: Optional[Callable[[upload.UploadResult], None]] = None,
) -> None:
    """Follow the uploads' executions; fill in each result as its execution ends (its status,
    and its load's status and rows from the ledger), then call ``on_final`` with it."""
    sfn = target.client("stepfunctions")
    by_arn = {r.execution_arn: r for r in results if r.execution_arn}
    names = {arn: Path(r.file).name for arn, r in by_arn.items()}
    follow = None if args.json else (lambda arn, line: print(f"{names[arn]}: {line}"))
    if not by_arn:
        return
    warehouse = data_api_warehouse(target)

    def ended(arn: str, described: Mapping[str, Any]) -> None:
        result = by_arn[arn]
        since = described["startDate"] - dt.timedelta(minutes=5)
        row = runs.ledger_row_of(warehouse, arn, since) or {}
        result.status = described["status"]
        result.load_status = row.get("status")
        result.rows_loaded = int(row.get("rows_loaded") or 0) if row else None
        if on_final is not None:
            on_final(result)

    runs.wait_for(sfn, list(by_arn), args.timeout, on_event=follow, on_end=ended)


@one_line_errors
def cmd_status(args: argparse.Namespace) -> int:
    target = _target(args)
    found = runs.recent_runs(
        target.client("stepfunctions"),
        data_api_warehouse(target),
        target.state_machine_arn,
        args.limit,
        failed_only=args.failed,
        s3=target.client("s3"),
    )
    rows = [run.as_json() for run in found]
    if args.json:
        _print_json(rows)
    else:
        print_table(rows, sys.stdout, STATUS_COLUMNS, max_width=48)
    return EXIT_OK


@one_line_errors
def cmd_show(args: argparse.Namespace) -> int:
    target = _target(args)
    document = show.show(target, data_api_warehouse(target), args.target_name, args.rejects)
    if args.json:
        _print_json(document)
    else:
        _print_show(document)
    return EXIT_OK


def _print_show(document: dict[str, Any]) -> None:
    out = sys.stdout
    execution = document["execution"]
    print(f"file: {document['file']}")
    if execution:
        print(
            f"execution: {execution['name']}  {execution['status']}  started {execution['started']}"
        )
        if execution["error"]:
            print(f"  error: {execution['error']}")
        if document.get("timeline"):
            timeline.print_timeline(document["timeline"], out)
        crawl = document.get("crawl")
        if crawl:
            warning = f" - {crawl['warning']}" if crawl.get("warning") else ""
            print(f"  crawl: {crawl.get('status')}{warning}")
    if document["job_run"]:
        run = document["job_run"]
        print(
            f"\njob run: {run['id']} of {run['job']}  {run['state']}  "
            f"{cell(run['execution_time_s'])} s"
        )
    print("\nload attempts (ledger):")
    print_table(
        document["ledger"],
        out,
        (
            "status",
            "rows_read",
            "rows_loaded",
            "rows_rejected",
            "unmatched_airport_rows",
            "started_at",
            "error",
        ),
    )
    summary = document["summary"]
    if summary:
        print("\nsummary:")
        for name in (
            "status",
            "source_format",
            "rows_read",
            "rows_loaded",
            "rows_rejected",
            "rejects_by_reason",
            "splits",
            "timings_s",
            "runtime",
            "peak_rss_mb",
        ):
            if name in summary:
                print(f"  {name}: {json.dumps(summary[name], default=str)}")
    if document["rejected_rows"]:
        print("\nfirst rejected rows:")
        print_table(document["rejected_rows"], out, ("line_number", "reason", "raw_text"))
    for notice in document["notices"]:
        print(f"\nnotice: {notice['subject']} (SNS {notice['message_id']})")


@one_line_errors
def cmd_backfill(args: argparse.Namespace) -> int:
    if args.max_concurrency < 1:
        raise report.ReportError("--max-concurrency must be at least 1")
    target = _target(args)
    picked = backfill.plan(target, data_api_warehouse(target), args.prefix, args.failed_only)
    if args.dry_run:
        rows = [backfill.Backfilled(d.key, d.version_id, s).as_json() for d, s in picked]
        _print_json(rows) if args.json else print_table(rows, sys.stdout)
        return EXIT_OK
    announce = (
        (lambda item: None)
        if args.json
        else (lambda item: print(f"{item.key}: started {item.execution_arn}"))
    )
    started = backfill.start_all(
        target.client("stepfunctions"),
        target.state_machine_arn,
        picked,
        args.max_concurrency,
        announce,
    )
    if args.json:
        _print_json([item.as_json() for item in started])
    elif not started:
        print("nothing to backfill")
    return EXIT_OK


@one_line_errors
def cmd_report(args: argparse.Namespace) -> int:
    if bool(args.name) == bool(args.sql):
        raise report.ReportError("name a report or pass --sql (not both)")
    target = None if args.host else _target(args)
    session = _direct_session(args) if args.host else None
    warehouse = session or data_api_warehouse(target)  # type: ignore[arg-type]
    try:
        if args.sql:
            rows = report.ad_hoc(warehouse, args.sql)
        else:
            rows = report.named_report(warehouse, args.name, args.date_from, args.date_to)
    finally:
        if session is not None:
            session.close()
    if args.json:
        _print_json(rows)
    else:
        print_table(rows, sys.stdout)
    return EXIT_OK


def _direct_session(args: argparse.Namespace) -> DirectSession:
    database = args.database or "dev"
    return DirectSession(
        host=args.host,
        port=args.port,
        user=args.user,
        database=database,
        password=os.environ.get(args.password_env, ""),
        ssl=not args.no_ssl,
    )


@one_line_errors
def cmd_smoke(args: argparse.Namespace) -> int:
    target = _target(args)
    progress = (lambda line: None) if args.json else print
    result = smoke.run_smoke(target, args.timeout, progress)
    if args.json:
        _print_json(result.as_json())
    else:
        for check in result.checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        for item in result.cleaned:
            print(f"removed {item}")
        print("smoke test passed" if result.ok else "smoke test FAILED")
    return EXIT_OK if result.ok else EXIT_FAILED


@one_line_errors
def cmd_airports_load(args: argparse.Namespace) -> int:
    if not args.csv.is_file():
        raise FileNotFoundError(f"no such file: {args.csv}")
    target = _target(args)
    result = airports.load_airports(
        target, data_api_warehouse(target), args.csv, refresh_facts=args.refresh_facts
    )
    if args.json:
        _print_json(result.as_json())
    else:
        for line in airports.describe(result):
            print(line)
    return EXIT_OK
