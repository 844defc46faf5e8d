"""Shared fixtures: the real data folder and one embedded warehouse per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLIGHTPIPE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# Tests never reach a real AWS account.
for _variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_variable, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real airports dimension and flight files."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA}")
    return SHARED_DATA


class MemoryObjectStore:
    """A dict of S3 objects, for serving the stand-in's ``COPY … FROM 's3://…'`` in tests."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        # An S3 client (moto) whose objects COPY also sees, set by the ``s3`` fixture.
        self.s3_client = None

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.objects[(bucket, key)] = body

    def read(self, bucket: str, key: str) -> bytes:
        if (bucket, key) not in self.objects and self.s3_client is not None:
            return self.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return self.objects[(bucket, key)]

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys = [key for (name, key) in self.objects if name == bucket and key.startswith(prefix)]
        if self.s3_client is not None and not keys:
            listing = self.s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
            keys = [item["Key"] for item in listing.get("Contents", [])]
        return keys


@pytest.fixture(scope="session")
def object_store() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture(scope="session")
def redshift_standin(tmp_path_factory: pytest.TempPathFactory, object_store: MemoryObjectStore):
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
def s3(object_store: MemoryObjectStore) -> Iterator:
    """An in-process moto S3 with the data bucket; the stand-in's COPY reads from it too."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=TEST_BUCKET)
        object_store.s3_client = client
        try:
            yield client
        finally:
            object_store.s3_client = None
