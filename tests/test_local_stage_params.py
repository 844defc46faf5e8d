"""Stage parameters on the local stack (``flightpipe local run/up --param NAME=VALUE``) and the
local deployment of both Glue jobs.

Units only: the packaging command is faked where it would run ``sls package``; the template
tests (tests/test_template.py) package for real, with and without ``--param``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flightpipe.cli import build_parser
from flightpipe.ops.target import LOCAL_RECORD, write_local_record
from flightpipe_local import template
from flightpipe_local.deploy import Deployer, Deployment, upload_glue_assets
from flightpipe_local.local_commands import EXIT_STACK_FAILED, stage_params
from flightpipe_local.template import (
    PackagingError,
    package,
    package_dir,
    parse_param,
    sls_package_command,
)

REGION = "us-east-1"


# ------------------------------------------------------------------ the parameters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sparkThresholdBytes=0", ("sparkThresholdBytes", "0")),
        ("alertEmail=a=b@example.com", ("alertEmail", "a=b@example.com")),
        ("logLevel=DEBUG  ", ("logLevel", "DEBUG")),  # osls drops trailing blanks
    ],
)
def test_a_parameter_is_read_as_sls_reads_it(text: str, expected: tuple[str, str]) -> None:
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["sparkThresholdBytes", "=0", "sparkThresholdBytes="])
def test_what_sls_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="name=value"):
        parse_param(text)


def test_each_parameter_set_packages_into_a_directory_of_its_own(tmp_path: Path) -> None:
    assert package_dir(tmp_path, {}) == tmp_path / ".serverless"
    zero = package_dir(tmp_path, {"sparkThresholdBytes": "0", "sparkWorkers": "4"})
    assert zero == package_dir(tmp_path, {"sparkWorkers": "4", "sparkThresholdBytes": "0"})
    assert zero != package_dir(tmp_path, {"sparkThresholdBytes": "1"})
    assert zero.parent == tmp_path / ".state" / "packages"


def test_each_parameter_is_one_param_option_of_sls_package(tmp_path: Path) -> None:
    command = sls_package_command(
        "npx", tmp_path, "dev", REGION, {"sparkThresholdBytes": "0", "sparkWorkers": "4"}
    )
    assert command == [
        "npx",
        "sls",
        "package",
        "--stage",
        "dev",
        "--region",
        REGION,
        "--param",
        "sparkThresholdBytes=0",
        "--param",
        "sparkWorkers=4",
        "--package",
        str(tmp_path),
    ]


# ------------------------------------------------------------------ packaging with parameters


class FakeSls:
    """Stands in for ``subprocess.run`` of ``npx sls package``: writes what osls writes."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[str], Path]] = []

    def __call__(self, command: list[str], cwd: Path, **_: Any) -> Any:
        self.runs.append((command, Path(cwd)))
        out_dir = Path(command[command.index("--package") + 1])
        out_dir.mkdir(parents=True, exist_ok=True)
        given = [command[i + 1] for i, arg in enumerate(command) if arg == "--param"]
        document = {"Resources": {}, "Metadata": {"params": given}}
        (out_dir / template.TEMPLATE_FILE).write_text(json.dumps(document))
        state = {"service": {"service": "flightpipe", "custom": {"glueAssets": {"wheel": "w"}}}}
        (out_dir / template.STATE_FILE).write_text(json.dumps(state))

        class Completed:
            returncode = 0
            stdout = stderr = ""

        return Completed()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "serverless.yml").write_text("service: flightpipe\n")
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "sls").write_text("")
    (tmp_path / "statemachine").mkdir()
    (tmp_path / ".serverless").mkdir()
    (tmp_path / ".serverless" / "flightpipe.zip").write_text("the plain packaging")
    return tmp_path


@pytest.fixture
def sls(monkeypatch: pytest.MonkeyPatch) -> FakeSls:
    fake = FakeSls()
    monkeypatch.setattr(template.subprocess, "run", fake)
    monkeypatch.setattr(template.shutil, "which", lambda name: f"/usr/bin/{name}")
    return fake


def test_package_passes_the_parameters_to_sls_and_reuses_a_fresh_packaging(
    repo: Path, sls: FakeSls
) -> None:
    params = {"sparkThresholdBytes": "0"}
    packaged = package(repo, params=params)
    ((command, cwd),) = sls.runs
    assert command[command.index("--param") + 1] == "sparkThresholdBytes=0"
    assert packaged.params == params
    assert packaged.path.parent == package_dir(repo, params)
    assert packaged.template["Metadata"]["params"] == ["sparkThresholdBytes=0"]
    # From a service directory of its own: osls empties <service dir>/.serverless first.
    assert cwd != repo and (cwd / "serverless.yml").is_file()
    assert not (cwd / "serverless.yml").is_symlink()
    assert (cwd / "statemachine").resolve() == repo / "statemachine"
    assert not (cwd / ".serverless").exists()
    assert (repo / ".serverless" / "flightpipe.zip").read_text() == "the plain packaging"

    assert package(repo, params=params).template == packaged.template
    assert len(sls.runs) == 1  # fresh: reused

    other = package(repo, params={"sparkThresholdBytes": "1"})
    assert len(sls.runs) == 2 and other.path != packaged.path
    assert package(repo, params=params).path == packaged.path
    assert len(sls.runs) == 2  # the first set's packaging is still there, still fresh


def test_without_parameters_package_runs_sls_in_the_repository_as_before(
    repo: Path, sls: FakeSls
) -> None:
    packaged = package(repo)
    ((command, cwd),) = sls.runs
    assert "--param" not in command and cwd == repo
    assert packaged.path.parent == repo / ".serverless" and packaged.params == {}


def test_a_packaging_made_with_other_parameters_is_not_reused(repo: Path, sls: FakeSls) -> None:
    out_dir = repo / "elsewhere"
    package(repo, out_dir=out_dir, params={"sparkThresholdBytes": "0"})
    package(repo, out_dir=out_dir)
    assert len(sls.runs) == 2
    assert not (out_dir / template.PARAMS_FILE).exists()


# ------------------------------------------------------------------ the commands


def test_local_run_param_reaches_sls_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []

    def fake_package(repo: Path, **kwargs: Any) -> Any:
        asked.append(kwargs)
        raise PackagingError("stopped here by the test")

    monkeypatch.setattr("flightpipe_local.stack.package", fake_package)
    flights, airports = tmp_path / "f.csv", tmp_path / "airports.csv"
    flights.write_text("Carrier\n")
    airports.write_text("airport_id\n")
    args = build_parser().parse_args(
        [
            "local",
            "run",
            "--state-dir",
            str(tmp_path / "state"),
            "--airports",
            str(airports),
            "--param",
            "sparkThresholdBytes=0",
            "--param",
            "sparkWorkers=4",
            "--param",
            "sparkThresholdBytes=5",  # the last one counts, as for sls
            str(flights),
        ]
    )
    assert args.handler(args) == EXIT_STACK_FAILED
    (call,) = asked
    assert call["params"] == {"sparkThresholdBytes": "5", "sparkWorkers": "4"}


def test_local_up_takes_the_same_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["local", "up", "--param", "sparkThresholdBytes=0"])
    assert stage_params(args) == {"sparkThresholdBytes": "0"}
    assert stage_params(build_parser().parse_args(["local", "up"])) == {}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["local", "up", "--param", "sparkThresholdBytes"])
    assert "expected name=value" in capsys.readouterr().err


def test_the_local_stack_s_record_names_its_parameters(tmp_path: Path) -> None:
    write_local_record(
        tmp_path,
        endpoint_url="http://127.0.0.1:1",
        region=REGION,
        outputs={"GlueJobName": "a", "SparkGlueJobName": "b"},
        credentials={},
        params={"sparkThresholdBytes": "0"},
    )
    record = json.loads((tmp_path / LOCAL_RECORD).read_text())
    assert record["params"] == {"sparkThresholdBytes": "0"}
    assert record["outputs"]["SparkGlueJobName"] == "b"


# ------------------------------------------------------------------ deploying both jobs


SPARK_JOB = {
    "Type": "AWS::Glue::Job",
    "Properties": {
        "Name": "flightpipe-dev-etl-spark",
        "Role": "arn:aws:iam::123456789012:role/etl",
        "GlueVersion": "5.0",
        "Command": {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": "s3://b/s.py"},
        "WorkerType": "G.1X",
        "NumberOfWorkers": "4",  # as a --param given on the command line would make it
        "Timeout": 120,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": 5},
        "DefaultArguments": {"--reject_threshold": "0.05"},
    },
}


def test_the_spark_job_is_created_with_its_glue_version_and_workers() -> None:
    with mock_aws():

        def clients(service: str) -> Any:
            return boto3.client(service, region_name=REGION)

        Deployer({"Resources": {"SparkEtlJob": SPARK_JOB}}, clients, "stack", REGION).deploy()
        job = clients("glue").get_job(JobName="flightpipe-dev-etl-spark")["Job"]
    assert (job["GlueVersion"], job["WorkerType"], job["NumberOfWorkers"]) == ("5.0", "G.1X", 4)
    assert job["Command"]["Name"] == "glueetl"
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 5


def test_the_deploy_uploads_every_entry_script_and_the_wheel(tmp_path: Path) -> None:
    for name in ("glue_scripts/a.py", "glue_scripts/b_spark.py", "dist/lib.whl"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    assets = {
        "scripts": ["glue_scripts/a.py", "glue_scripts/b_spark.py"],
        "wheel": "dist/lib.whl",
        "scriptsPrefix": "glue/scripts/",
        "libPrefix": "glue/lib/",
        "bucketOutput": "DataBucketName",
    }
    deployment = Deployment("stack", REGION, outputs={"DataBucketName": "data"})
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="data")
        uploaded = upload_glue_assets(s3, tmp_path, assets, deployment)
    assert uploaded == [
        "s3://data/glue/scripts/a.py",
        "s3://data/glue/scripts/b_spark.py",
        "s3://data/glue/lib/lib.whl",
    ]
