"""Preparing the warehouse: idempotent DDL and an airports reload only when the file changed."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from flightpipe.warehouse_setup import AirportsDimensionMissingError, prepare_warehouse

pytestmark = pytest.mark.warehouse

BUCKET = "flightpipe-data"
KEY = "dimensions/airports.csv"
ROLE = "arn:aws:iam::123456789012:role/copy"


@pytest.fixture
def s3(object_store):
    """Emulated S3; each airports upload is mirrored where the stand-in's COPY reads it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)

        def upload(body: bytes) -> None:
            client.put_object(Bucket=BUCKET, Key=KEY, Body=body)
            object_store.put(BUCKET, KEY, body)

        client.upload_airports = upload
        yield client


def _prepare(warehouse, s3):
    return prepare_warehouse(warehouse, s3, bucket=BUCKET, airports_key=KEY, copy_role_arn=ROLE)


def test_first_run_creates_schema_and_loads_airports(warehouse, s3, shared_data):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    result = _prepare(warehouse, s3)
    assert result["schema"] == "ready"
    assert result["airports"]["reloaded"] is True
    assert result["airports"]["rows"] == 365


def test_unchanged_airports_file_is_not_reloaded(warehouse, s3, shared_data):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    _prepare(warehouse, s3)
    again = _prepare(warehouse, s3)
    assert again["airports"]["reloaded"] is False
    assert again["airports"]["rows"] == 365


def test_changed_airports_file_replaces_the_dimension(warehouse, s3, shared_data):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    _prepare(warehouse, s3)
    s3.upload_airports(b"airport_id,city,state,name\n1,Springfield,IL,Capital Airport\n")
    result = _prepare(warehouse, s3)
    assert result["airports"] == {
        "reloaded": True,
        "rows": 1,
        "source_version": result["airports"]["source_version"],
    }
    assert warehouse.query("SELECT name FROM airlines.airports_dim") == [
        {"name": "Capital Airport"}
    ]


def test_emptied_dimension_is_reloaded_even_if_the_file_did_not_change(warehouse, s3, shared_data):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    _prepare(warehouse, s3)
    warehouse.execute_batch(["DELETE FROM airlines.airports_dim"])
    assert _prepare(warehouse, s3)["airports"]["reloaded"] is True


def test_missing_airports_file_is_a_clear_error(warehouse, s3):
    with pytest.raises(AirportsDimensionMissingError, match=r"dimensions/airports\.csv"):
        _prepare(warehouse, s3)
