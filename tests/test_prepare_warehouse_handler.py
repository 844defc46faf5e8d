"""The prepare-warehouse Lambda against emulated S3 and the emulator's Redshift Data API."""

from __future__ import annotations

import pytest
from conftest import TEST_BUCKET
from test_crawler_handlers import FakeLambdaContext

from flightpipe_local import moto_redshift_data
from flightpipe_local._patching import PatchSet
from handlers import prepare_warehouse

pytestmark = pytest.mark.warehouse

WORKGROUP = "flightpipe-test"


@pytest.fixture
def data_api(redshift_standin, warehouse, s3, monkeypatch):
    """The Data API served by the embedded warehouse, and the function's environment."""
    for name, value in {
        "DATA_BUCKET": TEST_BUCKET,
        "AIRPORTS_KEY": "dimensions/airports.csv",
        "REDSHIFT_DATABASE": "dev",
        "REDSHIFT_WORKGROUP": WORKGROUP,
        "REDSHIFT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin",
        "REDSHIFT_COPY_ROLE_ARN": "arn:aws:iam::123456789012:role/copy",
    }.items():
        monkeypatch.setenv(name, value)
    api = moto_redshift_data.LocalDataApi(redshift_standin, workgroups=[WORKGROUP])
    patches = PatchSet()
    moto_redshift_data.install(patches, api)
    yield api
    patches.restore()
    api.close()


def test_prepare_warehouse_loads_airports_once_through_the_data_api(data_api, s3, shared_data):
    s3.put_object(
        Bucket=TEST_BUCKET,
        Key="dimensions/airports.csv",
        Body=(shared_data / "airports.csv").read_bytes(),
    )
    first = prepare_warehouse.handler({"key": "incoming/a.csv"}, FakeLambdaContext())
    second = prepare_warehouse.handler({"key": "incoming/b.csv"}, FakeLambdaContext())
    assert first["schema"] == "ready"
    assert (first["airports"]["reloaded"], first["airports"]["rows"]) == (True, 365)
    assert (second["airports"]["reloaded"], second["airports"]["rows"]) == (False, 365)


def test_prepare_warehouse_without_the_airports_file_fails_naming_it(data_api):
    with pytest.raises(RuntimeError, match=r"dimensions/airports\.csv does not exist"):
        prepare_warehouse.handler({}, FakeLambdaContext())
