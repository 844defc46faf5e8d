"""Burst benchmark (``make stress``): N files uploaded at once to a local stack started for the run.

Files come from the synthetic generator (``flightpipe_local.synthetic``, resampled
from the real BTS sample when ``../shared/data`` is there), each of a realistic
size, and are put under ``incoming/`` at the same time from several threads with
plain boto3, as a backfill would. The run then follows every execution to its end
and reports, printed and as JSON in ``bench/results/``:

- executions by status and ledger rows by status;
- rows expected (the files' data rows) against rows in the fact table;
- crawls the crawler ran (``ListCrawls``) and Glue job runs (``GetJobRuns``);
- each crawl lasting as long as a crawl on AWS (``--crawl-seconds``, 90 by default:
  docs/latency.md) on the emulator's Wait clock, so the crawl weighs on a file's
  latency as it would on AWS (the local crawler alone takes under a second);
- time from upload to loaded (the load task's success in the execution's history: the
  job committed) and from upload to the end of the file's execution, p50/p95/max, in
  wall seconds and in AWS-equivalent seconds: the emulator runs Wait states and Retry
  intervals on faster clocks (``time_scale``, ``retry_time_scale``), so the waiting
  measured in each execution's history before that moment is scaled back (Glue's and
  Lambda's own start-up on AWS is not modelled: the job and the Lambdas run here at this
  machine's speed; docs/latency.md models them).

``--crawl-before-load true|false`` deploys the stack with that stage parameter (the crawl
before the load, or beside it); results go to
``bench/results/stress-<files>x<rows>-crawl-before-load-<mode>.json``.

Goal: every execution SUCCEEDED, rows exact, crawls at most 10% of the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flightpipe.crawler import DEFAULT_CRAWL_SECONDS as DEFAULT_CRAWL_SECONDS_AWS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
RESULTS = REPO_ROOT / "bench" / "results"
# Wait states ten times faster than on AWS, not the local stack's usual hundred: every
# execution of a burst polls the crawler after each Wait, and one emulator process serves
# all the polls — at 100x, 200 executions poll some 600 times a second and starve the crawl
# they wait for. At 10x the polls stay what this machine serves; the AWS-equivalent times
# below scale the waiting back either way.
BURST_TIME_SCALE = 0.1
# A crawl's duration on AWS (the crawler's own estimate before it has measured one).
DEFAULT_CRAWL_SECONDS = DEFAULT_CRAWL_SECONDS_AWS


def generate(directory: Path, files: int, rows: int) -> list[Path]:
    from flightpipe_local.synthetic import generate_airports_csv, generate_flights_csv

    source = SHARED_DATA / "bts_ontime_2023_01_OK.csv"
    paths = []
    for number in range(files):
        path = directory / f"flights-{number:04d}.csv"
        generate_flights_csv(
            path,
            rows,
            seed=number,
            layout="bts",
            source=source if source.is_file() else None,
            flight_date=dt.date(2023, 1, 1) + dt.timedelta(days=number % 365),
        )
        paths.append(path)
    airports = SHARED_DATA / "airports.csv"
    if not airports.is_file():
        airports = generate_airports_csv(directory / "airports.csv")
    return [airports, *paths]


def waiting_seconds(
    history: list[dict[str, Any]], until: dt.datetime | None = None
) -> tuple[float, float]:
    """Time an execution spent in Wait states, and between a failed try and its retry
    (before ``until``, when given)."""
    waited, retried, opened, kind_opened = 0.0, 0.0, None, ""
    for event in history:
        if until is not None and event["timestamp"] > until:
            break
        kind = event["type"]
        if kind in ("WaitStateEntered", "TaskFailed", "LambdaFunctionFailed"):
            opened, kind_opened = event["timestamp"], kind
        elif opened is not None and kind in ("WaitStateExited", "TaskScheduled"):
            seconds = (event["timestamp"] - opened).total_seconds()
            if kind_opened == "WaitStateEntered":
                waited += seconds
            else:
                retried += seconds
            opened = None
    return waited, retried


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


def aws_equivalent(
    seconds: float, history: list[dict[str, Any]], until: dt.datetime | None, stack: Any
) -> float:
    """``seconds`` with the waiting before ``until`` scaled back to AWS's clock."""
    waited, retried = waiting_seconds(history, until)
    return (
        seconds + waited * (1 / stack.time_scale - 1) + retried * (1 / stack.retry_time_scale - 1)
    )


def run(
    files: int,
    rows: int,
    timeout_s: float,
    time_scale: float,
    crawl_before_load: str = "true",
    crawl_seconds: float = DEFAULT_CRAWL_SECONDS,
) -> dict[str, Any]:
    from flightpipe.ops.timeline import loaded_at
    from flightpipe_local.run import PipelineRunner, Upload, warehouse_counts
    from flightpipe_local.stack import EmulatedStack

    params = {"crawlBeforeLoad": crawl_before_load}
    with tempfile.TemporaryDirectory(prefix="flightpipe-stress-") as temp:
        airports, *paths = generate(Path(temp), files, rows)
        expected_rows = rows * files
        with EmulatedStack(REPO_ROOT, time_scale=time_scale, params=params) as stack:
            assert stack.crawlers is not None
            # A crawl's AWS duration on the Wait clock: the time polls wait for it is scaled
            # back to AWS's below, as every Wait is.
            stack.crawlers.min_crawl_seconds = crawl_seconds * stack.time_scale
            runner = PipelineRunner(stack, timeout_s=timeout_s)
            runner.upload_airports(airports)
            uploaded_at: dict[str, float] = {}

            def upload(path: Path) -> Upload:
                done = runner.upload(path)
                uploaded_at[done.key] = time.time()  # PutObject has returned
                return done

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=16) as pool:
                uploads: list[Upload] = list(pool.map(upload, paths))
            runner.wait(uploads)
            elapsed = time.monotonic() - started
            outcomes = [runner.outcome(upload) for upload in uploads]
            sfn, glue = stack.client("stepfunctions"), stack.client("glue")
            wall, aws, wall_loaded, aws_loaded = [], [], [], []
            for item in uploads:
                described = sfn.describe_execution(executionArn=item.execution_arn)
                history = runner._history(item.execution_arn or "")
                origin = min(described["startDate"].timestamp(), uploaded_at[item.key])
                seconds = described["stopDate"].timestamp() - origin
                wall.append(seconds)
                aws.append(aws_equivalent(seconds, history, None, stack))
                loaded = loaded_at(history)
                if loaded is not None:
                    to_loaded = loaded.timestamp() - origin
                    wall_loaded.append(to_loaded)
                    aws_loaded.append(aws_equivalent(to_loaded, history, loaded, stack))
            crawls = glue.list_crawls(CrawlerName=stack.crawler_name, MaxResults=1000)["Crawls"]
            job_runs = glue.get_job_runs(JobName=stack.job_name, MaxResults=1000)["JobRuns"]
            fact_rows = warehouse_counts(stack)["daily_flights_fact_rows"]
    by_status = Counter(str(outcome.execution_status) for outcome in outcomes)
    by_load = Counter(str(outcome.load_status) for outcome in outcomes)
    return {
        "crawl_before_load": crawl_before_load,
        "crawl_seconds_aws": crawl_seconds,
        "files": files,
        "rows_per_file": rows,
        "executions_by_status": dict(by_status),
        "load_status": dict(by_load),
        "rows_expected": expected_rows,
        "rows_in_fact_table": fact_rows,
        "rows_loaded_reported": sum(o.rows_loaded for o in outcomes),
        "crawls": len(crawls),
        "crawls_per_file": round(len(crawls) / files, 3),
        "glue_job_runs": len(job_runs),
        "upload_to_loaded_wall_s": percentiles(wall_loaded),
        "upload_to_loaded_aws_equivalent_s": percentiles(aws_loaded),
        "upload_to_end_wall_s": percentiles(wall),
        "upload_to_end_aws_equivalent_s": percentiles(aws),
        "burst_wall_s": round(elapsed, 1),
        "time_scale": stack.time_scale,
        "retry_time_scale": stack.retry_time_scale,
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files uploaded at once")
    parser.add_argument("--rows", type=int, default=2000, help="data rows per file")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=BURST_TIME_SCALE,
        help="how fast Wait states run (0.1: ten times faster than on AWS; default "
        f"{BURST_TIME_SCALE:g})",
    )
    parser.add_argument(
        "--crawl-before-load",
        choices=("true", "false"),
        default="true",
        help="the stage parameter crawlBeforeLoad: crawl, then load (true, the default) or "
        "the crawl beside the load (false)",
    )
    parser.add_argument(
        "--crawl-seconds",
        type=float,
        default=DEFAULT_CRAWL_SECONDS,
        help="how long a crawl lasts, in AWS seconds (default "
        f"{DEFAULT_CRAWL_SECONDS:g}; 0: as fast as the local crawler)",
    )
    args = parser.parse_args(argv)
    from flightpipe_local.signals import Terminated, terminate_on

    try:
        with terminate_on():  # a `timeout` or `kill` still stops the stack cleanly
            report = run(
                args.files,
                args.rows,
                args.timeout,
                args.time_scale,
                args.crawl_before_load,
                args.crawl_seconds,
            )
    except Terminated as stop:
        print(f"stress: {stop}", file=sys.stderr)
        return stop.exit_status
    report["machine"] = {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}
    report["at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = (
        RESULTS / f"stress-{args.files}x{args.rows}-crawl-before-load-{args.crawl_before_load}.json"
    )
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(REPO_ROOT)}")
    ok = (
        report["executions_by_status"] == {"SUCCEEDED": args.files}
        and report["load_status"] == {"LOADED": args.files}
        and report["rows_in_fact_table"] == report["rows_expected"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
