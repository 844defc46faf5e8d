"""ETL benchmark: the job's path against the embedded warehouse, and a raw COPY baseline.

For each size (1M and 4M rows by default) one synthetic file is generated
(``flightpipe_local.synthetic``: carriers, airport ids and delays resampled from the
real BTS sample when ``../shared/data`` is there), then two runs are measured on
that same file, each in its own subprocess so that peak RSS is per run (the
runs alternate and repeat, ``--repeat``, and the fastest of each counts: other
work on the machine only ever slows a run down):

- ``job``: ``run_job`` end to end — read and validate in blocks, stage gzip CSV,
  upload, one-transaction load (COPY, DELETE, INSERT … SELECT with two LEFT
  JOINs, ledger row), summary;
- ``baseline``: the job's own load batch (``sql/load_flights.sql``) with its ``COPY``
  reading the file itself — no validation, no staging;
- ``job-gzip`` (at the sizes of ``--gzip-rows``, 1M by default): ``run_job`` on the
  same file gzip-compressed (level 6, what ``gzip`` does by default) as
  ``incoming/flights.csv.gz``: the job decompresses it as it streams.

The file is in the tutorial layout with a ``FlightDate`` column, so both sides
load the same columns.

S3 is a local-filesystem stand-in (objects are files under the run's temporary
folder), so neither side holds the file in memory and the warehouse's COPY
streams from disk. Peak RSS is the worker process's ``ru_maxrss`` (the
PostgreSQL server is a separate process and is not counted). Results are
printed as a table and written as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' S3 fake (tests/fakes.py)
SHARED_DATA = REPO.parent / "shared" / "data"
BUCKET = "bench-data"
KEY = "incoming/flights.csv"
GZIP_KEY = KEY + ".gz"
ROLE = "arn:aws:iam::123456789012:role/bench-copy"
# The goals: the job's path within 1.25x the warehouse's own load of the same file, at every
# size; peak RSS flat as the file grows (largest size within 1.25x of the smallest).
JOB_TARGET, RSS_TARGET = 1.25, 1.25


def baseline_statements(s3: Any) -> list[str]:
    """The job's own load batch (``sql/load_flights.sql``) with its COPY reading the raw file
    (plain CSV with a header, through a manifest naming it) instead of the staged gzip: the
    baseline is the warehouse's cost of the very same load, and cannot drift from the SQL
    the job runs."""
    from flightpipe.etl.loader import LoadAttempt, load_statements
    from flightpipe.warehouse.manifest import write_copy_manifest

    attempt = LoadAttempt(
        load_id="baseline",
        source_file=f"s3://{BUCKET}/{KEY}",
        source_version="baseline",
        started_at=dt.datetime(2024, 1, 1),
        execution_id=None,
    )
    manifest = write_copy_manifest(
        s3, BUCKET, "staging/baseline.manifest", [f"s3://{BUCKET}/{KEY}"]
    )
    statements = load_statements(attempt, manifest, ROLE)
    (copy,) = [i for i, text in enumerate(statements) if text.lstrip().upper().startswith("COPY")]
    if "\nGZIP\n" not in statements[copy]:
        raise RuntimeError("the load's COPY no longer reads GZIP: update the baseline")
    statements[copy] = statements[copy].replace("\nGZIP\n", "\nIGNOREHEADER 1\n")
    return statements


def _worker(mode: str, root: Path, airports: Path) -> dict:
    """One measured run in this (fresh) process; returns its figures."""
    from fakes import FolderS3

    from flightpipe.etl.job import run_job
    from flightpipe.etl.job_args import JobArgs
    from flightpipe.sql import read_sql, render_statements, split_statements
    from flightpipe.warehouse.setup import write_airports_manifest
    from flightpipe_local.redshift_standin import RedshiftStandIn, StandInWarehouse

    s3 = FolderS3(root / "s3")
    s3.upload_file(str(airports), BUCKET, "dimensions/airports.csv")
    standin = RedshiftStandIn(root / "pgdata", s3.read)
    try:
        standin.execute_batch(split_statements(read_sql("schema.sql")))
        standin.execute_batch(
            ["TRUNCATE airlines.daily_flights_fact, airlines.load_ledger, airlines.airports_dim"]
        )
        standin.execute_batch(
            render_statements(
                "load_airports.sql",
                manifest_uri=write_airports_manifest(s3, BUCKET, "dimensions/airports.csv"),
                source_uri=f"s3://{BUCKET}/dimensions/airports.csv",
                source_version="bench",
                iam_role=ROLE,
            )
        )
        warehouse = StandInWarehouse(standin)
        started = time.perf_counter()
        if mode in ("job", "job-gzip"):
            key = GZIP_KEY if mode == "job-gzip" else KEY
            args = JobArgs.from_mapping({"bucket": BUCKET, "key": key, "copy_role_arn": ROLE})
            summary = run_job(args, s3, warehouse, spool_dir=str(root))
            assert summary.status == "LOADED", summary.error
            detail = {
                "rows_read": summary.rows_read,
                "rows_loaded": summary.rows_loaded,
                "rows_rejected": summary.rows_rejected,
                "unmatched_airport_rows": summary.unmatched_airport_rows,
                "timings_s": summary.timings_s,
            }
        else:
            warehouse.execute_batch(baseline_statements(s3))
            detail = {}
        seconds = time.perf_counter() - started
        (counts,) = render_statements("ops_warehouse_counts.sql")
        rows = warehouse.query(counts)[0]["daily_flights_fact_rows"]
    finally:
        standin.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "seconds": round(seconds, 3),
        "fact_rows": rows,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        **detail,
    }


def _measure(mode: str, root: Path, airports: Path) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--root",
        str(root),
        "--airports",
        str(airports),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the {mode} run failed (exit {done.returncode}):\n{done.stderr}")
    output = done.stdout
    return json.loads(output.strip().splitlines()[-1])


def _generate(root: Path, rows: int, seed: int) -> tuple[Path, int]:
    from flightpipe_local.synthetic import generate_flights_csv

    source = SHARED_DATA / "bts_ontime_2023_01_OK.csv"
    target = root / "s3" / BUCKET / KEY
    target.parent.mkdir(parents=True, exist_ok=True)
    sample = source if source.is_file() else None
    generate_flights_csv(target, rows, seed, "tutorial", sample, date_column=True)
    return target, target.stat().st_size


def _gzip(path: Path) -> Path:
    """The generated file gzip-compressed beside it, as ``incoming/flights.csv.gz``."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    return target


def _airports(root: Path) -> Path:
    from flightpipe_local.synthetic import generate_airports_csv

    real = SHARED_DATA / "airports.csv"
    if real.is_file() and (SHARED_DATA / "bts_ontime_2023_01_OK.csv").is_file():
        return real
    return generate_airports_csv(root / "airports.csv")


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; the fastest counts")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--gzip-rows",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="sizes at which the job also runs on the file gzip-compressed",
    )
    parser.add_argument("--worker", choices=("job", "job-gzip", "baseline"))
    parser.add_argument("--root", type=Path)
    parser.add_argument("--airports", type=Path)
    options = parser.parse_args(argv)
    if options.worker:
        print(json.dumps(_worker(options.worker, options.root, options.airports)))
        return 0
    runs = []
    with tempfile.TemporaryDirectory(prefix="flightpipe-bench-") as folder:
        root = Path(folder)
        airports = _airports(root)
        for rows in options.rows:
            path, size = _generate(root, rows, options.seed)
            modes = ["job", "baseline"]
            gzipped = None
            if rows in options.gzip_rows:
                gzipped = _gzip(path)
                modes.append("job-gzip")
            measured: dict[str, list] = {mode: [] for mode in modes}
            for _ in range(options.repeat):  # interleaved, so background load hits all alike
                for mode in modes:
                    measured[mode].append(_measure(mode, root, airports))
            run = {"rows": rows, "file_mib": round(size / 2**20, 1)}
            for mode, results in measured.items():
                best = min(results, key=lambda result: result["seconds"])
                best["all_seconds"] = [result["seconds"] for result in results]
                best["peak_rss_mib"] = max(result["peak_rss_mib"] for result in results)
                run[mode.replace("-", "_")] = best
            if gzipped is not None:
                run["gzip_file_mib"] = round(gzipped.stat().st_size / 2**20, 1)
                gzipped.unlink()
            runs.append(run)
            path.unlink()
    report = _report(runs)
    print(report["table"])
    options.results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = options.results / f"etl_bench_{stamp}.json"
    out.write_text(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))
    print(f"\nwritten: {out}")
    return 0 if report["targets_met"] else 1


def _report(runs: list) -> dict:
    lines = [
        f"{'rows':>10} {'MiB':>6} | {'job s':>7} {'job rows/s':>11} {'job RSS MiB':>11} | "
        f"{'base s':>7} {'base rows/s':>11} {'base RSS MiB':>12} | {'job/base':>8}",
    ]
    for run in runs:
        job, base = run["job"], run["baseline"]
        run["job_over_baseline"] = round(job["seconds"] / base["seconds"], 2)
        lines.append(
            f"{run['rows']:>10,} {run['file_mib']:>6} | {job['seconds']:>7.2f} "
            f"{run['rows'] / job['seconds']:>11,.0f} {job['peak_rss_mib']:>11} | "
            f"{base['seconds']:>7.2f} {run['rows'] / base['seconds']:>11,.0f} "
            f"{base['peak_rss_mib']:>12} | {run['job_over_baseline']:>8.2f}"
        )
        gz = run.get("job_gzip")
        if gz:
            run["job_gzip_over_baseline"] = round(gz["seconds"] / base["seconds"], 2)
            run["job_gzip_over_job"] = round(gz["seconds"] / job["seconds"], 2)
            lines.append(
                f"{'  gzip':>10} {run['gzip_file_mib']:>6} | {gz['seconds']:>7.2f} "
                f"{run['rows'] / gz['seconds']:>11,.0f} {gz['peak_rss_mib']:>11} | "
                f"{'':>7} {'':>11} {'':>12} | {run['job_gzip_over_baseline']:>8.2f}"
            )
    ratios = [run["job_over_baseline"] for run in runs]
    ratio_ok = all(ratio <= JOB_TARGET for ratio in ratios)
    by_size = sorted(runs, key=lambda run: run["rows"])
    rss_growth = (
        round(by_size[-1]["job"]["peak_rss_mib"] / by_size[0]["job"]["peak_rss_mib"], 2)
        if len(by_size) > 1
        else None
    )
    rss_ok = rss_growth is None or rss_growth <= RSS_TARGET
    gzip_ratios = [run["job_gzip_over_baseline"] for run in runs if "job_gzip" in run]
    lines.append(
        f"\njob time <= {JOB_TARGET}x baseline at every size: {'met' if ratio_ok else 'NOT met'}; "
        f"job peak RSS largest size / smallest = {rss_growth} (target <= {RSS_TARGET}): "
        f"{'met' if rss_ok else 'NOT met'}"
        + (f"; gzip input (informative): {gzip_ratios}x baseline" if gzip_ratios else "")
    )
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "s3": "local-filesystem stand-in (tests/fakes.py FolderS3)",
        "warehouse": "embedded PostgreSQL (flightpipe_local.redshift_standin)",
        "runs": runs,
        "rss_growth": rss_growth,
        "targets_met": ratio_ok and rss_ok,
        "table": "\n".join(lines),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
