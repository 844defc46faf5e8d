"""A file through the local stack runs on AWS's runtimes, from the artifacts that deploy.

The job must run on Glue Python shell 3.9 with the SDK its job arguments install,
the Lambdas on Python 3.12 from the zip ``sls package`` built; each records what
it ran on (the job in its summary, the Lambdas in their results).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from e2e_support import REPO_ROOT, run_files, stack

from flightpipe_local.glue_environments import split_list
from flightpipe_local.stack import EmulatedStack

pytestmark = pytest.mark.e2e
__all__ = ["stack"]


def test_a_file_loads_with_the_job_on_glue_python_39_and_the_lambdas_on_312_from_the_zip(
    stack: EmulatedStack, shared_data: Path
) -> None:
    (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
    assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")

    job = stack.client("glue").get_job(JobName=stack.job_name)["Job"]
    assert (job["Command"]["Name"], job["Command"]["PythonVersion"]) == ("pythonshell", "3.9")
    modules = split_list(job["DefaultArguments"]["--additional-python-modules"])
    pinned = dict(module.split("==") for module in modules)
    job_runtime = outcome.runtimes["job"]
    assert job_runtime is not None and job_runtime["python"].startswith("3.9.")
    assert (job_runtime["boto3"], job_runtime["botocore"]) == (pinned["boto3"], pinned["botocore"])

    assert outcome.job_peak_rss_mb is not None and 20 < outcome.job_peak_rss_mb < 2048

    lambda_runtime = outcome.runtimes["lambda"]
    assert lambda_runtime is not None and lambda_runtime["python"].startswith("3.12.")
    packaged_zip = (REPO_ROOT / ".serverless" / "flightpipe.zip").read_bytes()
    digest = base64.b64encode(hashlib.sha256(packaged_zip).digest()).decode()
    for resource in stack.deployment.of_type("AWS::Lambda::Function"):  # type: ignore[union-attr]
        function = stack.client("lambda").get_function(FunctionName=resource.ref)["Configuration"]
        assert (function["Runtime"], function["CodeSha256"]) == ("python3.12", digest)
