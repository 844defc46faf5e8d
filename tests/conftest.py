"""Shared fixtures: the real data folder and one embedded warehouse per test session."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FolderS3

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLIGHTPIPE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# Tests never reach a real AWS account.
for _variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_variable, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

# Every local stack of the session leaves its roles' recorded calls here; the session ends
# with the least-privilege report (flightpipe_local.iam.least_privilege) beside it.
IAM_CALL_LOG = REPO_ROOT / ".state" / "iam-calls"
LEAST_PRIVILEGE_REPORT = REPO_ROOT / ".state" / "least-privilege.json"


def pytest_configure(config: pytest.Config) -> None:
    shutil.rmtree(IAM_CALL_LOG, ignore_errors=True)
    os.environ["FLIGHTPIPE_IAM_CALL_LOG"] = str(IAM_CALL_LOG)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not IAM_CALL_LOG.is_dir() or not any(IAM_CALL_LOG.iterdir()):
        return  # no local stack ran (the ETL tests on the Glue runtime start none)
    from flightpipe_local.iam import least_privilege

    snapshots = least_privilege.read_snapshots(IAM_CALL_LOG)
    if not snapshots:
        return
    roles = least_privilege.report(snapshots)
    LEAST_PRIVILEGE_REPORT.write_text(json.dumps(roles, indent=2) + "\n", encoding="utf-8")
    terminalreporter.write_sep("-", f"least privilege: {len(snapshots)} stacks")
    for role in roles:
        unneeded = [u for u in role["unused"] if not u["kept_because"]]
        terminalreporter.write_line(
            f"{role['role']}: {role['calls']} calls, {len(role['used'])} action/resource pairs"
            f" used, {len(role['unused'])} grants unused ({len(unneeded)} with no reason kept)"
        )
    terminalreporter.write_line(f"report: {LEAST_PRIVILEGE_REPORT}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real airports dimension and flight files."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> FolderS3:
    """The objects the session's warehouse COPY reads: put here, or through moto."""
    return FolderS3(tmp_path_factory.mktemp("objects"))


@pytest.fixture(scope="session")
def redshift_standin(tmp_path_factory: pytest.TempPathFactory, object_store: FolderS3):
    """One embedded PostgreSQL server for the whole session (it takes about a second to start)."""
    from flightpipe_local.redshift_standin import RedshiftStandIn

    standin = RedshiftStandIn(
        tmp_path_factory.mktemp("warehouse") / "pgdata", object_store.read, object_store.list_keys
    )
    yield standin
    standin.delete()


@pytest.fixture
def warehouse(redshift_standin) -> Iterator:
    """The warehouse port over the stand-in, with the project schema applied and emptied."""
    from flightpipe.sql import read_sql, split_statements
    from flightpipe_local.redshift_standin import StandInWarehouse

    redshift_standin.execute_batch(split_statements(read_sql("schema.sql")))
    redshift_standin.execute_batch(
        [
            "TRUNCATE airlines.daily_flights_fact, airlines.airports_dim, "
            "airlines.load_ledger, airlines.dimension_loads"
        ]
    )
    yield StandInWarehouse(redshift_standin)


TEST_BUCKET = "flightpipe-test-data"


@pytest.fixture
def s3(object_store: FolderS3) -> Iterator:
    """An in-process moto S3 with the data bucket; the stand-in's COPY reads from it too."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=TEST_BUCKET)
        with object_store.falling_back_to(client):
            yield client
