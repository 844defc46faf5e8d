"""Both engines, one contract: every file of the ETL suite loads the same through either.

Each case runs through the Python shell engine (one process) and through the
Spark engine (real PySpark tasks in a local-mode session, Glue 5.0's Spark),
against the same emulated S3 (a moto server the Spark workers reach over HTTP)
and the same embedded warehouse. The ledger row, the summary's counts and
reasons, the rejects (line, reason, raw text) and the fact rows (sorted) must
be identical. The Spark engine cuts every file into several splits here (a
few dozen bytes each), so record boundaries, quoted line breaks, CRLF and
blank lines fall on split edges; the 6,068-row BTS month is cut at the size
Spark would choose on this machine too.
"""

from __future__ import annotations

import ast
import functools
import gzip
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import pytest
from conftest import TEST_BUCKET
from etl_fixtures import SUMMARY_COUNTS, facts, ledger, load_airports, rejects_rows, run_on
from test_etl_formats import REJECTIONS, WRAPPINGS
from test_etl_job import SOME_BAD, TOO_MANY_BAD, VARIANTS, WHOLE_FILE_REJECTIONS
from test_etl_validate import ROW_RULE_FILES

from flightpipe.etl.engine import PythonShellEngine

pyspark = pytest.importorskip("pyspark")

pytestmark = pytest.mark.warehouse

BodyOf = Callable[[Path], bytes]


@dataclass(frozen=True)
class Case:
    key: str
    body: BodyOf
    threshold: Optional[str] = None


def _given(body: bytes) -> BodyOf:
    return lambda _shared: body


def _shared(name: str, wrap: Callable[[bytes], bytes] = lambda body: body) -> BodyOf:
    return lambda shared: wrap((shared / name).read_bytes())


BTS = "bts_ontime_2023_01_OK.csv"
CASES: dict[str, Case] = {
    "sample": Case("incoming/sample_flights.csv", _shared("sample_flights.csv")),
    "sample-key-date": Case("incoming/date=2023-01-01/sample.csv", _shared("sample_flights.csv")),
    "bts-month": Case(f"incoming/{BTS}", _shared(BTS)),
    "bts-crlf-bom": Case(
        "incoming/bts_crlf.csv",
        _shared(BTS, lambda body: b"\xef\xbb\xbf" + body.replace(b"\n", b"\r\n")),
    ),
    "bts-blank-lines": Case(
        "incoming/bts_blank.csv", _shared(BTS, lambda body: body.replace(b"\n", b"\n\n", 500))
    ),
    "variants": Case("incoming/variants.csv", _given(VARIANTS)),
    "some-bad": Case("incoming/some-bad.csv", _given(SOME_BAD), threshold="0.5"),
    "too-many-bad": Case("incoming/too-many.csv", _given(TOO_MANY_BAD)),
    **{
        f"whole-file-{name}": Case("incoming/bad.csv", _given(body))
        for name, (body, _) in WHOLE_FILE_REJECTIONS.items()
    },
    **{
        f"rows-{name}": Case(f"incoming/{name}.csv", _given(body), threshold="0.9")
        for name, body in ROW_RULE_FILES.items()
    },
    **{
        f"wrapping-{name}": Case(key, _shared(BTS, wrap))
        for name, (key, wrap, _) in WRAPPINGS.items()
    },
    **{f"rejected-{name}": Case(key, _given(body)) for name, (key, body, _) in REJECTIONS.items()},
    "unterminated-quote": Case(
        "incoming/open-quote.csv",
        _given(
            b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
            b"DL,11433,13303,1,2\n" * 3 + b'"DL,11433,13303,1,2\n' + b"UA,14869,12478,3,4\n" * 3
        ),
        threshold="0.9",
    ),
    "gzip-bad-rows": Case(
        "incoming/some-bad.csv.gz", _given(gzip.compress(SOME_BAD)), threshold="0.5"
    ),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server: the S3 the driver, the Spark workers and the warehouse's COPY share."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    port = _free_port()
    previous = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = previous


@pytest.fixture(scope="module")
def spark_context() -> Iterator[Any]:
    """A local-mode Spark session on two cores, its Python workers on this interpreter."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    conf = (
        pyspark.SparkConf()
        .setMaster("local[2]")
        .setAppName("flightpipe-engine-contract")
        .set("spark.ui.enabled", "false")
        .set("spark.log.level", "WARN")
    )
    context = pyspark.SparkContext(conf=conf)
    try:
        yield context
    finally:
        context.stop()


@pytest.fixture
def s3_server(moto_url: str, object_store: Any) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    client.create_bucket(Bucket=TEST_BUCKET)
    with object_store.falling_back_to(client):
        yield client


@pytest.fixture
def engines(moto_url: str, spark_context: Any) -> dict[str, Any]:
    from flightpipe.etl.spark_engine import SparkEngine, SparkTasks

    def small_splits(size: int, parallelism: int) -> int:
        """About five splits, whatever the size: a few dozen bytes for the small files."""
        return max(16, size // 5)

    # Sent to the Spark workers: a partial of boto3's own function pickles by reference.
    object_store = functools.partial(
        boto3.client, "s3", endpoint_url=moto_url, region_name="us-east-1"
    )
    tasks = SparkTasks(spark_context)
    return {
        "pythonshell": PythonShellEngine(),
        "spark": SparkEngine(tasks, object_store, spark_context.version, small_splits),
        "spark-default-splits": SparkEngine(tasks, object_store, spark_context.version),
    }


def outcome(s3: Any, warehouse: Any, case: Case, body: bytes, engine: Any) -> dict[str, Any]:
    """Everything the contract fixes about one load, without the ids and times of the run."""
    warehouse.execute_batch(["TRUNCATE airlines.daily_flights_fact, airlines.load_ledger"])
    summary = run_on(s3, warehouse, case.key, body, threshold=case.threshold, engine=engine)
    [entry] = ledger(warehouse)
    rows = [
        {name: value for name, value in row.items() if name != "load_id"}
        for row in facts(warehouse)
    ]

    def same_run(value: Any) -> Any:  # an error names the run's rejects file by its load id
        return value.replace(summary.load_id, "<load_id>") if isinstance(value, str) else value

    return {
        "summary": {
            name: same_run(getattr(summary, name))
            for name in (
                "status",
                "error",
                "source_format",
                "source_member",
                "ignored_members",
                "flight_date_source",
                *SUMMARY_COUNTS,
            )
        },
        "ledger": {
            name: same_run(entry[name])
            for name in (
                "status",
                "rows_read",
                "rows_loaded",
                "rows_rejected",
                "unmatched_airport_rows",
                "error",
            )
        },
        "rejects": rejects_rows(s3, summary.rejects_uri) if summary.rejects_uri else None,
        "facts": sorted(rows, key=repr),
        "engine": summary.runtime["engine"],
        "splits": summary.splits,
        "staging_left": s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix="staging/").get("KeyCount"),
    }


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_both_engines_load_every_file_identically(
    name, engines, s3_server, warehouse, object_store, shared_data
):
    case = CASES[name]
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    body = case.body(shared_data)
    shell = outcome(s3_server, warehouse, case, body, engines["pythonshell"])
    spark = outcome(s3_server, warehouse, case, body, engines["spark"])
    assert (shell.pop("engine"), spark.pop("engine")) == ("pythonshell", "spark")
    assert shell.pop("splits") == 1
    spark_splits = spark.pop("splits")
    assert shell["ledger"]["status"] in ("LOADED", "REJECTED")  # no case may fail
    assert shell == spark
    assert shell["staging_left"] == 0
    if shell["summary"]["source_format"] == "csv" and shell["summary"]["rows_read"] > 1:
        assert spark_splits > 1  # the file really was cut


def test_the_bts_month_at_sparks_own_split_size_matches_the_python_shell_job(
    engines, s3_server, warehouse, object_store, shared_data
):
    case = CASES["bts-month"]
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    body = case.body(shared_data)
    shell = outcome(s3_server, warehouse, case, body, engines["pythonshell"])
    spark = outcome(s3_server, warehouse, case, body, engines["spark-default-splits"])
    shell.pop("engine"), spark.pop("engine"), shell.pop("splits"), spark.pop("splits")
    assert shell == spark
    assert shell["ledger"]["rows_read"] == 6068
    assert shell["ledger"]["rows_loaded"] + shell["ledger"]["rows_rejected"] == 6068


def test_a_failed_task_reaches_the_summary_as_its_own_python_error(spark_context):
    from flightpipe.etl.spark_engine import SparkTasks, TaskFailed

    with pytest.raises(TaskFailed) as failed:
        SparkTasks(spark_context).map(int, ["1", "x"])
    assert str(failed.value) == "ValueError: invalid literal for int() with base 10: 'x'"


def test_the_spark_engine_takes_the_engine_contract_from_its_own_module_not_the_job() -> None:
    source = Path(__file__).resolve().parents[1] / "flightpipe" / "etl" / "spark_engine.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "flightpipe.etl.engine" in imported
    assert "flightpipe.etl.job" not in imported
