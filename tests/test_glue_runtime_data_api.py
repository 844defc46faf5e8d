"""The jobs' Data API calls validate against the botocore each deployed job runs on.

The Python shell job runs on Glue Python shell 3.9 with the ``analytics`` library
set, upgraded by the ``--additional-python-modules`` of the job in serverless.yml;
the Spark job on Glue 5.0 with the SDK Glue 5.0 provides. Here a job's
libraries are installed exactly as the local stack installs them for a job run
(from the packaged template's job arguments and the wheel the deploy uploads),
and tests/glue_data_api_probe.py drives every Data API call of the product's
adapter, in each ``redshiftTarget`` mode, on that runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flightpipe_local.glue_environments import JobEnvironments, split_list
from flightpipe_local.runtimes import glue_runtime
from flightpipe_local.stack import GLUE_LIBRARY_CACHE
from flightpipe_local.template import PackagedStack, package

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("glue_data_api_probe.py")
MODES = {"serverless", "workgroup", "cluster-secret", "cluster-iam"}


@pytest.fixture(scope="module")
def packaged() -> PackagedStack:
    return package(REPO_ROOT)


def etl_job(packaged: PackagedStack, logical_id: str = "EtlJob") -> dict[str, Any]:
    return packaged.template["Resources"][logical_id]["Properties"]


def probe(
    packaged: PackagedStack, requirements: list[str], logical_id: str = "EtlJob"
) -> dict[str, Any]:
    job = etl_job(packaged, logical_id)
    python = glue_runtime(job["Command"], job.get("GlueVersion")).python(REPO_ROOT)
    wheel = REPO_ROOT / packaged.glue_assets["wheel"]
    libraries = JobEnvironments(REPO_ROOT / GLUE_LIBRARY_CACHE).libraries(
        python, [wheel], requirements
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(libraries), "PYTHONNOUSERSITE": "1"}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    done = subprocess.run(
        [str(python), str(PROBE)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_data_api_call_of_the_job_validates_on_the_deployed_glue_runtime(
    packaged: PackagedStack,
) -> None:
    arguments = etl_job(packaged)["DefaultArguments"]
    requirements = split_list(arguments.get("--additional-python-modules"))
    report = probe(packaged, requirements)
    assert report["python"].startswith("3.9.")
    pinned = dict(requirement.split("==") for requirement in requirements)
    assert (report["boto3"], report["botocore"]) == (pinned["boto3"], pinned["botocore"])
    assert report["modes"] == dict.fromkeys(MODES, "ok")


def test_every_data_api_call_of_the_job_validates_on_the_glue_5_spark_runtime(
    packaged: PackagedStack,
) -> None:
    """Glue 5.0's own SDK names a workgroup: the Spark job installs only the wheel."""
    arguments = etl_job(packaged, "SparkEtlJob")["DefaultArguments"]
    wheel = arguments["--additional-python-modules"]["Fn::Sub"]  # the one wheel, in S3
    assert wheel.rsplit("/", 1)[-1] == Path(packaged.glue_assets["wheel"]).name
    report = probe(packaged, [], "SparkEtlJob")
    assert report["python"].startswith("3.11.")
    assert report["botocore"] == "1.34.131"
    assert report["modes"] == dict.fromkeys(MODES, "ok")


def test_the_analytics_set_s_own_botocore_cannot_name_a_workgroup(
    packaged: PackagedStack,
) -> None:
    """Why the job upgrades the SDK: without it, both workgroup modes fail on Glue."""
    report = probe(packaged, [])
    assert report["botocore"] == "1.25.5"
    assert report["modes"]["cluster-secret"] == report["modes"]["cluster-iam"] == "ok"
    for mode in ("serverless", "workgroup"):
        assert report["modes"][mode].startswith("ParamValidationError")
        assert "WorkgroupName" in report["modes"][mode]
