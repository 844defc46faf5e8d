"""The Spark job's JVM logs JSON lines with the run's keys (glue_scripts/log4j2.properties),
run on the Glue 5.0 Spark runtime with the environment the local stack gives a job run."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from flightpipe_local.moto_glue_jobs import spark_environment
from flightpipe_local.runtimes import GLUE_RUNTIMES, SPARK

REPO_ROOT = Path(__file__).resolve().parents[1]
HOSTILE_KEY = 'incoming/a "quoted" \\ key é.csv'

SCRIPT = textwrap.dedent(
    """
    import sys
    from pyspark import SparkContext
    from flightpipe.logs import tag_jvm_logs

    spark = SparkContext.getOrCreate()
    tag_jvm_logs(spark._jvm, {"execution_id": "arn:exec", "file_key": sys.argv[1]})
    log = spark._jvm.org.apache.logging.log4j.LogManager.getLogger("flightpipe.jvm")
    log.warn('a warning with "quotes"\\nand a second line')
    log.error("a failure", spark._jvm.java.lang.RuntimeException("boom"))
    spark.stop()
    """
)


def test_every_jvm_line_is_json_with_the_execution_and_the_file_even_a_stack_trace(
    tmp_path: Path,
) -> None:
    python = GLUE_RUNTIMES[(SPARK, "5.0")].python(REPO_ROOT)
    log4j = REPO_ROOT / "glue_scripts" / "log4j2.properties"
    environment = {
        **os.environ,
        **spark_environment(python, tmp_path, [log4j]),
        "PYTHONPATH": str(REPO_ROOT),
    }
    (tmp_path / "script.py").write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run(
        [str(python), str(tmp_path / "script.py"), HOSTILE_KEY],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert all(
        (r["execution_id"], r["file_key"], r["service"]) == ("arn:exec", HOSTILE_KEY, "flightpipe")
        for r in records
    ), records
    ours = [r for r in records if r["logger"] == "flightpipe.jvm"]
    assert [(r["level"], r["message"]) for r in ours] == [
        ("WARN", 'a warning with "quotes"\nand a second line'),
        ("ERROR", "a failure"),
    ]
    assert ours[0]["exception"] == ""
    assert ours[1]["exception"].strip().startswith("java.lang.RuntimeException: boom")
