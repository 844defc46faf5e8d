"""Preparing the warehouse: bootstrap as admin, loads as the pipeline role, airports reloaded
only when the file changed, and clear errors for a missing file or an unattached COPY role."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from collections.abc import Sequence

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from flightpipe.sql import read_sql, render_statements, split_statements
from flightpipe.warehouse import StatementError, WarehouseTarget
from flightpipe.warehouse.manifest import write_copy_manifest
from flightpipe.warehouse.setup import (
    PIPELINE_ROLE,
    AirportsDimensionMissingError,
    CopyRoleNotAttachedError,
    WarehouseNotBootstrappedError,
    ensure_schema,
    prepare_warehouse,
)

pytestmark = pytest.mark.warehouse

BUCKET = "flightpipe-data"
KEY = "dimensions/airports.csv"
ROLE = "arn:aws:iam::123456789012:role/copy"
# The database users the Lambda role and the Glue job role become with IAM credentials on
# Redshift Serverless: two users, one database role.
PREPARE_USER = "IAMR:flightpipe-dev-PrepareWarehouseRole"
ETL_USER = "IAMR:flightpipe-dev-EtlJobRole"


@pytest.fixture
def s3(object_store):
    """Emulated S3; each airports upload is mirrored where the stand-in's COPY reads it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)

        def upload(body: bytes, key: str = KEY) -> None:
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            object_store.put_object(Bucket=BUCKET, Key=key, Body=body)

        client.upload_airports = upload
        object_store.fallback = client
        try:
            yield client
        finally:
            object_store.fallback = None
            object_store.delete_object(Bucket=BUCKET, Key=KEY + ".bak")


class RoleWarehouse:
    """The warehouse port as one database user: only the privileges granted to it apply."""

    def __init__(self, standin, role: str) -> None:
        self._standin = standin
        self._role = role

    def query(self, sql: str):
        try:
            return self._standin.query(sql, role=self._role).as_dicts()
        except Exception as error:
            raise StatementError(f"statement FAILED: {error}") from error

    def execute_batch(self, statements: Sequence[str]) -> None:
        try:
            self._standin.execute_batch(list(statements), role=self._role)
        except Exception as error:
            raise StatementError(f"statement FAILED: {error}") from error


@pytest.fixture
def pipeline_users(redshift_standin):
    """Two non-admin users (the prepare Lambda's and the Glue job's), members of the
    pipeline role once it exists, with nothing granted to them directly."""
    for user in (PREPARE_USER, ETL_USER):
        exists = redshift_standin.query(
            f"SELECT COUNT(*) AS n FROM pg_roles WHERE rolname = '{user}'"
        ).rows[0][0]
        if not exists:
            redshift_standin.execute_batch([f'CREATE ROLE "{user}" NOLOGIN'])
    return RoleWarehouse(redshift_standin, PREPARE_USER), RoleWarehouse(redshift_standin, ETL_USER)


def _join_pipeline_role(redshift_standin) -> None:
    """What the RedshiftDbRoles tag on both IAM roles does at sign-in."""
    redshift_standin.execute_batch(
        [f'GRANT {PIPELINE_ROLE} TO "{user}"' for user in (PREPARE_USER, ETL_USER)]
    )


def _prepare(warehouse, s3, **kwargs):
    return prepare_warehouse(
        warehouse, s3, bucket=BUCKET, airports_key=KEY, copy_role_arn=ROLE, **kwargs
    )


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
    changed = b"airport_id,city,state,name\n1,Springfield,IL,Capital Airport\n"
    s3.upload_airports(changed)
    result = _prepare(warehouse, s3)
    # The bucket is unversioned, so the version recorded is the object's ETag: for a
    # single-part upload, the MD5 of its body.
    assert result["airports"] == {
        "reloaded": True,
        "rows": 1,
        "source_version": hashlib.md5(changed).hexdigest(),
    }
    assert warehouse.query("SELECT name FROM airlines.airports_dim") == [
        {"name": "Capital Airport"}
    ]


def test_emptied_dimension_is_reloaded_even_if_the_file_did_not_change(warehouse, s3, shared_data):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    _prepare(warehouse, s3)
    warehouse.execute_batch(["DELETE FROM airlines.airports_dim"])
    assert _prepare(warehouse, s3)["airports"]["reloaded"] is True


def test_airports_copy_loads_exactly_the_airports_file_not_others_sharing_its_prefix(
    warehouse, s3, shared_data, redshift_standin
):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    s3.upload_airports(b"airport_id,city,state,name\n1,Old,XX,Backup Airport\n", KEY + ".bak")
    # The stand-in's COPY treats FROM as a key prefix, like Redshift: a bare FROM would
    # load the backup too.
    prefix_copy = (
        f"COPY airlines.airports_dim (airport_id, city, state, name) FROM 's3://{BUCKET}/{KEY}' "
        f"IAM_ROLE '{ROLE}' FORMAT AS CSV IGNOREHEADER 1"
    )
    loaded = redshift_standin.execute_batch(
        [
            "DELETE FROM airlines.airports_dim",
            prefix_copy,
            "SELECT COUNT(*) FROM airlines.airports_dim",
        ]
    )
    assert loaded[2].rows == [(366,)]
    result = _prepare(warehouse, s3)
    assert result["airports"]["rows"] == 365
    assert warehouse.query(
        "SELECT COUNT(*) AS n FROM airlines.airports_dim WHERE airport_id = 1"
    ) == [{"n": 0}]


def test_missing_airports_file_is_a_clear_error(warehouse, s3):
    with pytest.raises(AirportsDimensionMissingError, match=r"dimensions/airports\.csv"):
        _prepare(warehouse, s3)


class _ForbiddenHead:
    """S3 as the prepare role sees it: HeadObject answers 403 without bucket-wide ListBucket."""

    def __init__(self, client) -> None:
        self._client = client

    def head_object(self, **kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_missing_airports_file_answered_with_403_is_still_a_clear_error(warehouse, s3):
    with pytest.raises(AirportsDimensionMissingError, match=r"dimensions/airports\.csv does not"):
        _prepare(warehouse, _ForbiddenHead(s3))


def test_a_403_on_an_existing_airports_file_is_a_permission_error_not_a_missing_file(
    warehouse, s3, shared_data
):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    with pytest.raises(ClientError, match="Forbidden"):
        _prepare(warehouse, _ForbiddenHead(s3))


class _UnattachedCopyRole:
    """A warehouse whose COPY fails as Redshift's does when the role is not associated."""

    def __init__(self, warehouse, message: str) -> None:
        self._warehouse = warehouse
        self._message = message

    def query(self, sql):
        return self._warehouse.query(sql)

    def execute_batch(self, statements):
        if any(statement.lstrip().upper().startswith("COPY") for statement in statements):
            raise StatementError(f"statement FAILED: ERROR: {self._message}")
        self._warehouse.execute_batch(statements)


@pytest.mark.parametrize(
    ("message", "target", "command"),
    [
        (
            f"User arn:aws:redshift:us-east-1:123456789012:dbuser:analytics/flightpipe is not "
            f"authorized to assume IAM Role {ROLE}",
            WarehouseTarget(database="dev", cluster_id="analytics", db_user="flightpipe"),
            f"aws redshift modify-cluster-iam-roles --cluster-identifier analytics "
            f"--add-iam-roles {ROLE}",
        ),
        (
            f"Not authorized to get credentials of role {ROLE}",
            WarehouseTarget(database="dev", workgroup="analytics-wg"),
            "aws redshift-serverless update-namespace --namespace-name <namespace of workgroup "
            f"analytics-wg> --iam-roles {ROLE}",
        ),
    ],
)
def test_copy_role_not_attached_names_the_role_and_the_command_that_attaches_it(
    warehouse, s3, shared_data, message, target, command
):
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    with pytest.raises(CopyRoleNotAttachedError) as raised:
        _prepare(_UnattachedCopyRole(warehouse, message), s3, target=target)
    assert ROLE in str(raised.value)
    assert command in str(raised.value)


def test_admin_bootstraps_and_two_pipeline_users_in_the_pipeline_role_do_all_the_loading(
    warehouse, s3, shared_data, redshift_standin, pipeline_users, object_store
):
    prepare_user, etl_user = pipeline_users
    s3.upload_airports((shared_data / "airports.csv").read_bytes())
    # The admin creates the role, the schema and the grants; the airports load runs as the
    # prepare user, who (like the job's user) is in the role from its next sign-in on.
    redshift_standin.execute_batch(["DROP TABLE IF EXISTS airlines.ddl_applied"])  # DDL changed
    assert ensure_schema(warehouse, admin=warehouse) == "bootstrapped"
    _join_pipeline_role(redshift_standin)
    result = _prepare(prepare_user, s3, admin=warehouse)
    assert result["bootstrap"] == "ready"  # the DDL applied is current: no admin statements
    assert (result["airports"]["reloaded"], result["airports"]["rows"]) == (True, 365)
    # The Glue job's user loads the fact table through the same role, in one transaction.
    staged = gzip.compress(b"AA,10397,12478,5,-3,2023-01-02\nDL,99999,10397,,,2023-01-02\n")
    object_store.put_object(Bucket=BUCKET, Key="staging/run-1/part-00000.csv.gz", Body=staged)
    manifest = write_copy_manifest(
        object_store, BUCKET, "staging/run-1/manifest.json",
        [f"s3://{BUCKET}/staging/run-1/part-00000.csv.gz"],
    )  # fmt: skip
    etl_user.execute_batch(
        render_statements(
            "load_flights.sql",
            manifest_uri=manifest,
            iam_role=ROLE,
            source_file=f"s3://{BUCKET}/incoming/a.csv",
            source_version="v1",
            source_sequencer=None,
            load_id="load-1",
            rows_read=2,
            rows_rejected=0,
            unmatched_airport_rows=1,
            started_at=dt.datetime(2023, 1, 2, 3, 4, 5),
            execution_id="exec-1",
        )
    )
    assert etl_user.query(
        "SELECT COUNT(*) AS n, COUNT(dep_airport) AS named FROM airlines.daily_flights_fact"
    ) == [{"n": 2, "named": 1}]
    # ...and nothing beyond it: no DDL on the pipeline's tables, nothing outside the schema.
    for statement in ("DROP TABLE airlines.airports_dim", "CREATE TABLE public.stray (x int)"):
        with pytest.raises(StatementError):
            etl_user.execute_batch([statement])


def test_without_an_admin_an_unprivileged_user_gets_told_how_to_bootstrap(
    warehouse, redshift_standin, pipeline_users
):
    prepare_user, _ = pipeline_users
    ensure_schema(warehouse, admin=warehouse)  # the role exists; now take its grants away
    redshift_standin.execute_batch(
        [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA airlines FROM {PIPELINE_ROLE}",
            f"REVOKE USAGE ON SCHEMA airlines FROM {PIPELINE_ROLE}",
        ]
    )
    _join_pipeline_role(redshift_standin)
    with pytest.raises(WarehouseNotBootstrappedError, match="adminSecretArn"):
        ensure_schema(prepare_user, admin=None)
    # The DDL did not change, but the pipeline's identity lost access: the admin re-grants.
    assert ensure_schema(prepare_user, admin=warehouse) == "bootstrapped"
    assert ensure_schema(prepare_user, admin=None) == "ready"


def test_the_bootstrap_runs_again_only_when_its_sql_changed(warehouse, monkeypatch):
    from flightpipe.warehouse import setup as warehouse_setup

    ensure_schema(warehouse, admin=warehouse)
    assert ensure_schema(warehouse, admin=warehouse) == "ready"
    monkeypatch.setattr(warehouse_setup, "ddl_fingerprint", lambda: "a-changed-schema")
    assert ensure_schema(warehouse, admin=warehouse) == "bootstrapped"
    assert ensure_schema(warehouse, admin=warehouse) == "ready"


def test_bootstrap_sql_is_what_the_pipeline_role_needs_and_no_more():
    grants = " ".join(split_statements(read_sql("grants.sql"))).upper()
    assert "TO ROLE FLIGHTPIPE" in grants
    for broad in ("ALL PRIVILEGES", " ALL ON", "CREATE", "DROP", "TRUNCATE", "SUPERUSER"):
        assert broad not in grants


def _ledger_columns(redshift_standin) -> list[str]:
    rows = redshift_standin.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'airlines' "
        "AND table_name = 'load_ledger' ORDER BY ordinal_position"
    ).rows
    return [row[0] for row in rows]


def test_a_ledger_created_before_the_sequencer_column_gets_it_from_the_next_bootstrap(
    warehouse, redshift_standin
):
    ensure_schema(warehouse, admin=warehouse)
    redshift_standin.execute_batch(
        ["ALTER TABLE airlines.load_ledger DROP COLUMN source_sequencer"]
    )
    assert "source_sequencer" not in _ledger_columns(redshift_standin)
    # The deployed DDL changed (its fingerprint covers sql/schema_upgrades.sql): bootstrap.
    redshift_standin.execute_batch(["DELETE FROM airlines.ddl_applied"])
    assert ensure_schema(warehouse, admin=warehouse) == "bootstrapped"
    assert _ledger_columns(redshift_standin)[-1] == "source_sequencer"
    # Applied again (a later DDL change, a racing execution): the column is left as it is.
    redshift_standin.execute_batch(["DELETE FROM airlines.ddl_applied"])
    assert ensure_schema(warehouse, admin=warehouse) == "bootstrapped"
    assert _ledger_columns(redshift_standin).count("source_sequencer") == 1


def test_schema_upgrades_add_only_columns_missing_from_tables_that_exist(
    warehouse, redshift_standin
):
    from flightpipe.warehouse.setup import BOOTSTRAP_SQL, schema_upgrades

    assert "schema_upgrades.sql" in BOOTSTRAP_SQL  # a new upgrade changes the fingerprint
    ensure_schema(warehouse, admin=warehouse)
    assert schema_upgrades(warehouse) == []
    redshift_standin.execute_batch(
        ["ALTER TABLE airlines.load_ledger DROP COLUMN source_sequencer"]
    )
    assert schema_upgrades(warehouse) == [
        "ALTER TABLE airlines.load_ledger ADD COLUMN source_sequencer VARCHAR(128)"
    ]
    redshift_standin.execute_batch(["DROP TABLE airlines.load_ledger"])
    assert schema_upgrades(warehouse) == []  # created by sql/schema.sql with every column
    ensure_schema(warehouse, admin=warehouse)
    assert "source_sequencer" in _ledger_columns(redshift_standin)


def test_without_an_admin_a_ledger_lacking_a_column_is_reported_with_the_upgrade_to_run(
    warehouse, redshift_standin, pipeline_users
):
    prepare_user, _ = pipeline_users
    ensure_schema(warehouse, admin=warehouse)
    _join_pipeline_role(redshift_standin)
    assert ensure_schema(prepare_user, admin=None) == "ready"
    redshift_standin.execute_batch(
        ["ALTER TABLE airlines.load_ledger DROP COLUMN source_sequencer"]
    )
    with pytest.raises(WarehouseNotBootstrappedError, match=r"sql/schema_upgrades\.sql"):
        ensure_schema(prepare_user, admin=None)
    assert ensure_schema(prepare_user, admin=warehouse) == "bootstrapped"
    assert ensure_schema(prepare_user, admin=None) == "ready"
