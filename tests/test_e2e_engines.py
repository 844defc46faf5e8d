"""Each file on the engine its size picks, end to end, as a user runs it.

``flightpipe local run --param sparkThresholdBytes=N`` packages the stack with that
stage parameter, as ``sls deploy --param`` would; the state machine then sends the
13-row sample (331 bytes) to the Glue Python shell job and the BTS month (1.7 MB)
to the Glue 5.0 Spark job. Both load, and each file's ``runtimes.job`` says which
engine and which runtime ran it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements: str) -> dict[str, str]:
    lines = (REPO_ROOT / requirements).read_text(encoding="utf-8").splitlines()
    pairs = (line.split("#")[0].strip().split("==") for line in lines)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def test_a_threshold_between_two_files_loads_one_on_each_engine(shared_data: Path, tmp_path):
    sample, bts = shared_data / "sample_flights.csv", shared_data / "bts_ontime_2023_01_OK.csv"
    # The BTS month with two rows the job rejects: the Spark driver gathers its tasks'
    # rejects parts from staging/ into the one rejects file.
    with_rejects = tmp_path / "bts_with_rejects.csv"
    text = bts.read_text(encoding="utf-8")
    with_rejects.write_text(text.rstrip("\n") + "\nnot,a,flight\nnor,this\n", encoding="utf-8")
    threshold = 100_000
    assert sample.stat().st_size < threshold <= bts.stat().st_size
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("flightpipe")),
            "local",
            "run",
            "--json",
            "--state-dir",
            str(tmp_path / "state"),
            "--param",
            f"sparkThresholdBytes={threshold}",
            "--airports",
            str(shared_data / "airports.csv"),
            str(sample),
            str(bts),
            str(with_rejects),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    by_key = {entry["key"]: entry for entry in report["files"]}
    shell, spark = by_key["incoming/sample_flights.csv"], by_key[f"incoming/{bts.name}"]

    assert (shell["load_status"], shell["rows_loaded"]) == ("LOADED", 13)
    assert shell["runtimes"]["job"]["engine"] == "pythonshell"
    assert shell["runtimes"]["job"]["python"].startswith("3.9.")

    glue5 = _pins("requirements-glue5-spark.txt")
    assert (spark["load_status"], spark["rows_loaded"]) == ("LOADED", 6068)
    assert spark["runtimes"]["job"]["engine"] == "spark"
    assert spark["runtimes"]["job"]["spark"] == glue5["pyspark"]
    assert spark["runtimes"]["job"]["python"].startswith("3.11.")
    assert spark["runtimes"]["job"]["boto3"] == glue5["boto3"]
    rejected = by_key["incoming/bts_with_rejects.csv"]
    assert (rejected["load_status"], rejected["rows_loaded"]) == ("LOADED", 6068)
    assert rejected["rows_rejected"] == 2
    assert rejected["runtimes"]["job"]["engine"] == "spark"
    assert report["warehouse"]["daily_flights_fact_rows"] == 13 + 6068 + 6068
    # Every line of both Spark runs' logs, the JVM's included, is JSON naming its execution
    # and its file (glue_scripts/log4j2.properties for the JVM, flightpipe/logs.py for Python).
    spark_logs = sorted(
        (tmp_path / "state" / "logs" / "glue" / "flightpipe-dev-etl-spark").iterdir()
    )
    assert len(spark_logs) == 2
    for log in spark_logs:
        records = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
        keys = {(r["execution_id"], r["file_key"]) for r in records}
        assert len(keys) == 1 and all(all(key) for key in keys), keys
        assert next(iter(keys))[1] in {f"incoming/{bts.name}", "incoming/bts_with_rejects.csv"}
