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
- ``job-gzip`` (at the sizes of ``--gzip-rows``, 1M and 4M by default): ``run_job`` on the
  same file gzip-compressed (level 6, what ``gzip`` does by default) as
  ``incoming/flights.csv.gz``: the job decompresses it as it streams;
- ``spark`` (at the sizes of ``--spark-rows``, 1M and 4M by default): ``run_job`` with the
  Spark engine (``flightpipe.etl.spark_engine``, the Glue 5.0 job's) in a local-mode
  session on two cores. Its tasks run in Spark's Python worker processes, which cannot
  see the folder fake, so S3 is a moto server (over HTTP, in a process of its own) that
  the driver, the tasks and the warehouse's COPY all use. The session starts before the
  timer (its start-up is reported apart, ``spark_start_s``); the run reports its splits
  and the engine's timings;
- ``job-moto`` (at the same sizes): the Python shell job through such a moto server, so
  that what S3 over HTTP costs can be told apart from what Spark costs.

Judged: ``job`` against ``baseline`` (time), and the peak RSS of ``job`` and of
``job-gzip`` (flat across sizes); the other figures of ``job-gzip``, ``job-moto`` and
``spark`` are informative.

The wide layout BTS publishes (``--wide-rows``, 150,000 and 600,000 rows by default: about
42 and 168 MiB, 4x apart): the real on-time month of ``../shared/data`` (80 columns)
repeated to that many rows, loaded by ``job`` and ``job-gzip``. Their peak RSS is judged like
the narrow file's (largest within 1.25x of smallest), and the two sizes give the model of the
job's peak as a function of the file's size (``peak_model``: a fixed part plus MiB of peak
per MiB of file) that says which files the Python shell job's memory holds
(``SHELL_JOB_MEMORY_MIB``). Without ``../shared`` these runs are skipped, and say so.

The file is in the tutorial layout with a ``FlightDate`` column, so both sides
load the same columns.

Otherwise S3 is a local-filesystem stand-in (objects are files under the run's
temporary folder), so neither side holds the file in memory and the warehouse's
COPY streams from disk. Peak RSS is the worker process's own ``VmHWM`` (the
PostgreSQL server is a separate process and is not counted; nor are the moto
server, Spark's JVM and its Python processes, whose peaks are reported beside
it). Results are printed as a table and written as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gzip
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

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
BTS_MONTH = SHARED_DATA / "bts_ontime_2023_01_OK.csv"
# The Python shell job's memory: MaxCapacity 0.0625 DPU is 1 GB
# (https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html).
SHELL_JOB_MEMORY_MIB = 1024
# The measured model of the job's peak (``peak_model``), kept in the repository.
PEAK_MODEL = REPO / "bench" / "peak_model.json"
SPARK_MASTER = "local[2]"
MOTO_MODES = ("job-moto", "spark")  # S3 is a moto server the Spark workers reach too
MODES = ("job", "job-gzip", "baseline", *MOTO_MODES)
# A mode's peaks are the highest over its runs (its seconds, the fastest run's).
PEAKS = (
    "peak_rss_mib",
    "moto_peak_rss_mib",
    "spark_jvm_peak_rss_mib",
    "spark_python_workers_peak_rss_mib",
)


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_moto(port: int) -> None:
    """The moto server's own process: serves until its stdin closes, then reports its peak."""
    os.environ["MOTO_PORT"] = str(port)  # moto needs it on any port but 5000
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()
    print(json.dumps({"peak_rss_mib": _peak_rss_mib(os.getpid())}), flush=True)


@contextmanager
def _moto_server(figures: dict) -> Iterator[str]:
    """A moto server in a process of its own (as S3 is to a job: its serving does not share
    the job's interpreter); yields its URL, and puts its peak RSS into ``figures``."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--moto-server", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MOTO_PORT": str(port)},
    )
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the moto server did not start (exit {server.wait()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        last = server.stdout.read().strip().splitlines()
        if last:
            figures["moto_peak_rss_mib"] = json.loads(last[-1])["peak_rss_mib"]


def _spark_context() -> tuple[Any, float]:
    """A local-mode session on two cores, its Python workers on this interpreter; the
    seconds it took to start."""
    import pyspark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    conf = (
        pyspark.SparkConf()
        .setMaster(SPARK_MASTER)
        .setAppName("flightpipe-etl-bench")
        .set("spark.ui.enabled", "false")
        .set("spark.log.level", "WARN")
    )
    begun = time.perf_counter()
    context = pyspark.SparkContext(conf=conf)
    return context, time.perf_counter() - begun


def _peak_rss_mib(pid: int) -> float:
    """A live process's peak RSS (``VmHWM``), 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _spark_process_peaks(context: Any) -> dict:
    """Peak RSS of Spark's JVM and the sum over its Python processes (PySpark's daemon and
    the workers it forked, still alive: Spark reuses them), read before the session stops."""
    import psutil

    process = getattr(getattr(context, "_gateway", None), "proc", None)
    if process is None:
        return {}
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    return {
        "spark_jvm_peak_rss_mib": _peak_rss_mib(process.pid),
        "spark_python_workers": len(children),
        "spark_python_workers_peak_rss_mib": round(
            sum(_peak_rss_mib(child.pid) for child in children), 1
        ),
    }


def _use_test_credentials() -> None:
    """Credentials for the moto server, set before Spark starts so its workers inherit them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )


def _worker(mode: str, root: Path, airports: Path) -> dict:
    """One measured run in this (fresh) process; returns its figures."""
    if mode not in MOTO_MODES:
        return _run(mode, root, airports, None)
    _use_test_credentials()
    server: dict = {}
    with _moto_server(server) as url:
        figures = _run(mode, root, airports, url)
    return {**figures, **server}


def _run(mode: str, root: Path, airports: Path, moto_url: Optional[str]) -> dict:
    from fakes import FolderS3

    from flightpipe.etl.job import run_job
    from flightpipe.etl.job_args import JobArgs
    from flightpipe.sql import read_sql, render_statements, split_statements
    from flightpipe.warehouse.setup import write_airports_manifest
    from flightpipe_local.redshift_standin import RedshiftStandIn, StandInWarehouse

    s3 = FolderS3(root / "s3")
    job_s3: Any = s3
    if moto_url is not None:
        import boto3

        job_s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
        job_s3.create_bucket(Bucket=BUCKET)
        job_s3.upload_file(str(root / "s3" / BUCKET / KEY), BUCKET, KEY)
        s3.fallback = job_s3  # the COPY reads the staged parts and manifest from moto
    s3.upload_file(str(airports), BUCKET, "dimensions/airports.csv")
    standin = RedshiftStandIn(root / "pgdata", s3.read)
    context = None
    extra: dict[str, Any] = {}
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
        engine = None
        if mode == "spark":
            import boto3

            from flightpipe.etl.spark_engine import SparkEngine, SparkTasks

            context, start_seconds = _spark_context()  # before the timer: reported apart
            extra = {
                "spark_start_s": round(start_seconds, 3),
                "spark_version": context.version,
                "spark_master": SPARK_MASTER,
            }
            # Sent to the Spark workers: a partial of boto3's own function pickles by reference.
            object_store = functools.partial(
                boto3.client, "s3", endpoint_url=moto_url, region_name="us-east-1"
            )
            engine = SparkEngine(
                SparkTasks(context), object_store=object_store, spark_version=context.version
            )
        started = time.perf_counter()
        if mode != "baseline":
            key = GZIP_KEY if mode == "job-gzip" else KEY
            args = JobArgs.from_mapping({"bucket": BUCKET, "key": key, "copy_role_arn": ROLE})
            summary = run_job(args, job_s3, warehouse, engine=engine, spool_dir=str(root))
            assert summary.status == "LOADED", summary.error
            detail = {
                "rows_read": summary.rows_read,
                "rows_loaded": summary.rows_loaded,
                "rows_rejected": summary.rows_rejected,
                "unmatched_airport_rows": summary.unmatched_airport_rows,
                "timings_s": summary.timings_s,
                "engine": summary.runtime.get("engine"),
                "splits": summary.splits,
            }
        else:
            warehouse.execute_batch(baseline_statements(s3))
            detail = {}
        seconds = time.perf_counter() - started
        (counts,) = render_statements("ops_warehouse_counts.sql")
        rows = warehouse.query(counts)[0]["daily_flights_fact_rows"]
        if context is not None:
            extra.update(_spark_process_peaks(context))
    finally:
        if context is not None:
            context.stop()
        standin.close()
    return {
        "mode": mode,
        "seconds": round(seconds, 3),
        "fact_rows": rows,
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a worker would report
        # this bench's own peak (generating and gzipping the file) whenever that is larger.
        "peak_rss_mib": _peak_rss_mib(os.getpid()),
        **detail,
        **extra,
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


def _repeat_month(root: Path, rows: int) -> tuple[Path, int]:
    """The real BTS month (80 columns) with its data rows repeated to ``rows``, at ``KEY``."""
    header, *data = BTS_MONTH.read_bytes().splitlines(keepends=True)
    data = [line for line in data if line.strip()]
    target = root / "s3" / BUCKET / KEY
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        out.write(header)
        written = 0
        while written < rows:
            chunk = data[: rows - written]
            out.writelines(chunk)
            written += len(chunk)
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
        default=[1_000_000, 4_000_000],
        help="sizes at which the job also runs on the file gzip-compressed",
    )
    parser.add_argument(
        "--spark-rows",
        type=int,
        nargs="*",
        default=[1_000_000, 4_000_000],
        help="sizes at which the Spark engine, and the Python shell job through the same "
        "moto S3, also run",
    )
    parser.add_argument(
        "--wide-rows",
        type=int,
        nargs="*",
        default=[150_000, 600_000],
        help="sizes of the wide BTS-layout file (the real month repeated): job, plain and gzip",
    )
    parser.add_argument(
        "--peak-model", type=Path, default=PEAK_MODEL, help="where the fitted peak model goes"
    )
    parser.add_argument("--worker", choices=MODES)
    parser.add_argument("--moto-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--airports", type=Path)
    options = parser.parse_args(argv)
    if options.moto_server:
        _serve_moto(options.moto_server)
        return 0
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
            if rows in options.spark_rows:
                modes.extend(MOTO_MODES)
            measured: dict[str, list] = {mode: [] for mode in modes}
            for _ in range(options.repeat):  # interleaved, so background load hits all alike
                for mode in modes:
                    measured[mode].append(_measure(mode, root, airports))
            run = {"rows": rows, "file_mib": round(size / 2**20, 1)}
            for mode, results in measured.items():
                best = min(results, key=lambda result: result["seconds"])
                best["all_seconds"] = [result["seconds"] for result in results]
                for figure in PEAKS:
                    if figure in best:
                        best[figure] = max(result[figure] for result in results)
                if "spark_start_s" in best:
                    best["all_spark_start_s"] = [result["spark_start_s"] for result in results]
                run[mode.replace("-", "_")] = best
            if gzipped is not None:
                run["gzip_file_mib"] = round(gzipped.stat().st_size / 2**20, 1)
                gzipped.unlink()
            runs.append(run)
            path.unlink()
        wide_runs = _wide_runs(root, airports, options) if BTS_MONTH.is_file() else None
    report = _report(runs, wide_runs)
    print(report["table"])
    options.results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = options.results / f"etl_bench_{stamp}.json"
    out.write_text(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))
    print(f"\nwritten: {out}")
    if report["peak_model"] is not None:
        model = {**report["peak_model"], "measured": stamp, "wide_runs": report["wide_runs"]}
        options.peak_model.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
        print(f"written: {options.peak_model} (the engine choice is held to it)")
    return 0 if report["targets_met"] else 1


def _wide_runs(root: Path, airports: Path, options: argparse.Namespace) -> list:
    """``job`` on the wide BTS layout at each of ``--wide-rows``: the fastest run's figures,
    with the highest peak RSS of the repeats."""
    runs = []
    for rows in options.wide_rows:
        path, size = _repeat_month(root, rows)
        gzipped = _gzip(path)
        run = {
            "rows": rows,
            "file_mib": round(size / 2**20, 1),
            "gzip_file_mib": round(gzipped.stat().st_size / 2**20, 1),
        }
        for mode in ("job", "job-gzip"):
            results = [_measure(mode, root, airports) for _ in range(options.repeat)]
            best = min(results, key=lambda result: result["seconds"])
            best["peak_rss_mib"] = max(result["peak_rss_mib"] for result in results)
            run[mode.replace("-", "_")] = best
        runs.append(run)
        path.unlink()
        gzipped.unlink()
    return runs


def peak_model(runs: list) -> Optional[dict]:
    """The job's peak RSS as a line through the smallest and largest run: ``base_mib`` plus
    ``mib_per_file_mib`` for each MiB of file, and the largest file that line keeps within
    the Python shell job's memory (None: every file, the peak does not grow)."""
    if len(runs) < 2:
        return None
    ordered = sorted(runs, key=lambda run: run["file_mib"])
    small, large = ordered[0], ordered[-1]
    slope = (large["job"]["peak_rss_mib"] - small["job"]["peak_rss_mib"]) / (
        large["file_mib"] - small["file_mib"]
    )
    slope = max(slope, 0.0)
    base = small["job"]["peak_rss_mib"] - slope * small["file_mib"]
    holds = None if slope == 0 else round((SHELL_JOB_MEMORY_MIB - base) / slope, 1)
    return {
        "base_mib": round(base, 1),
        "mib_per_file_mib": round(slope, 4),
        "shell_job_memory_mib": SHELL_JOB_MEMORY_MIB,
        "largest_file_mib_the_shell_job_holds": holds,
    }


def _report(runs: list, wide_runs: Optional[list] = None) -> dict:
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
        for mode, label in (("job_moto", "job-moto"), ("spark", "spark")):
            other = run.get(mode)
            if not other:
                continue
            run[f"{mode}_over_baseline"] = round(other["seconds"] / base["seconds"], 2)
            run[f"{mode}_over_job"] = round(other["seconds"] / job["seconds"], 2)
            lines.append(
                f"{label:>10} {'':>6} | {other['seconds']:>7.2f} "
                f"{run['rows'] / other['seconds']:>11,.0f} {other['peak_rss_mib']:>11} | "
                f"{'':>7} {'':>11} {'':>12} | {run[f'{mode}_over_baseline']:>8.2f}"
            )
        if "spark" in run and "job_moto" in run:
            run["spark_over_job_moto"] = round(
                run["spark"]["seconds"] / run["job_moto"]["seconds"], 2
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
    gzipped = [run for run in by_size if "job_gzip" in run]
    gzip_growth = (
        round(gzipped[-1]["job_gzip"]["peak_rss_mib"] / gzipped[0]["job_gzip"]["peak_rss_mib"], 2)
        if len(gzipped) > 1
        else None
    )
    rss_ok = rss_ok and (gzip_growth is None or gzip_growth <= RSS_TARGET)
    gzip_ratios = [run["job_gzip_over_baseline"] for run in runs if "job_gzip" in run]
    spark_lines = [_spark_lines(run) for run in runs if "spark" in run]
    lines.append(
        f"\njob time <= {JOB_TARGET}x baseline at every size: {'met' if ratio_ok else 'NOT met'}; "
        f"job peak RSS largest size / smallest = {rss_growth}, gzip input {gzip_growth} "
        f"(target <= {RSS_TARGET}): {'met' if rss_ok else 'NOT met'}"
        + (f"; gzip input (informative): {gzip_ratios}x baseline" if gzip_ratios else "")
    )
    wide_growth, wide_ok, model = None, True, None
    if wide_runs is None:
        lines.append(f"\nwide BTS layout: skipped, {BTS_MONTH} not found")
    elif wide_runs:
        lines.append("\nwide BTS layout (the real month, 80 columns, repeated): job, job-gzip")
        for run in wide_runs:
            job, gz = run["job"], run["job_gzip"]
            lines.append(
                f"{run['rows']:>10,} {run['file_mib']:>6} | {job['seconds']:>7.2f} "
                f"{run['rows'] / job['seconds']:>11,.0f} {job['peak_rss_mib']:>11}"
            )
            lines.append(
                f"{'  gzip':>10} {run['gzip_file_mib']:>6} | {gz['seconds']:>7.2f} "
                f"{run['rows'] / gz['seconds']:>11,.0f} {gz['peak_rss_mib']:>11}"
            )
        by_wide_size = sorted(wide_runs, key=lambda run: run["rows"])
        wide_growth = {
            mode: round(
                by_wide_size[-1][mode]["peak_rss_mib"] / by_wide_size[0][mode]["peak_rss_mib"], 2
            )
            for mode in ("job", "job_gzip")
        }
        wide_ok = all(growth <= RSS_TARGET for growth in wide_growth.values())
        model = peak_model(wide_runs)
        lines.append(
            f"wide job peak RSS largest size / smallest = {wide_growth['job']}, gzip input "
            f"{wide_growth['job_gzip']} (target <= {RSS_TARGET}): "
            f"{'met' if wide_ok else 'NOT met'}; peak model: {model}"
        )
    if spark_lines:
        lines.append(
            f"\nSpark engine ({SPARK_MASTER}) and job-moto, informative: S3 is a moto server "
            "over HTTP (its own process), not the folder fake"
        )
        lines.extend(line for block in spark_lines for line in block)
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "s3": "local-filesystem stand-in (tests/fakes.py FolderS3)",
        "s3_moto": f"moto {_version('moto')} server over HTTP, in its own process "
        "(job-moto and spark runs; the warehouse's COPY reads the staged parts from it)",
        "spark": {"master": SPARK_MASTER, "pyspark": _version("pyspark")},
        "warehouse": "embedded PostgreSQL (flightpipe_local.redshift_standin)",
        "runs": runs,
        "rss_growth": rss_growth,
        "gzip_rss_growth": gzip_growth,
        "wide_runs": wide_runs,
        "wide_rss_growth": wide_growth,
        "peak_model": model,
        "targets_met": ratio_ok and rss_ok and wide_ok,
        "table": "\n".join(lines),
    }


def _spark_lines(run: dict) -> list[str]:
    spark = run["spark"]
    versus = [f"{run['spark_over_baseline']}x baseline", f"{run['spark_over_job']}x job"]
    if "spark_over_job_moto" in run:
        versus.append(f"{run['spark_over_job_moto']}x job-moto")
    lines = [
        f"{run['rows']:>10,} rows: session start {spark['spark_start_s']:.2f} s (untimed, "
        f"runs {spark['all_spark_start_s']}), {spark['splits']} splits, load "
        f"{spark['seconds']:.2f} s = {', '.join(versus)}",
        f"{'':>16}spark timings_s {spark['timings_s']}",
    ]
    moto = run.get("job_moto")
    if moto:
        lines.append(
            f"{'':>16}job-moto {moto['seconds']:.2f} s = {run['job_moto_over_job']}x job, "
            f"{run['job_moto_over_baseline']}x baseline; timings_s {moto['timings_s']}"
        )
    lines.append(
        f"{'':>16}spark peak RSS MiB: driver {spark['peak_rss_mib']}, "
        f"JVM {spark.get('spark_jvm_peak_rss_mib')}, "
        f"{spark.get('spark_python_workers')} Python processes (daemon, workers) "
        f"{spark.get('spark_python_workers_peak_rss_mib')} (sum), "
        f"moto server {spark.get('moto_peak_rss_mib')}"
    )
    return lines


def _version(distribution: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
