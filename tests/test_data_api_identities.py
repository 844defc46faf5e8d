"""The local Data API signs each request in as Redshift would, on the embedded warehouse.

Who runs the statements decides what a missing GRANT does: an IAM role signs in as
``IAMR:<role>`` with the database roles of its ``RedshiftDbRoles`` tag, a secret as its
user, the namespace admin's secret as the superuser; a refused authorization is the Data
API's ``AccessDeniedException``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from flightpipe.sql import quote_literal, read_sql, split_statements
from flightpipe_local import moto_redshift_data
from flightpipe_local._patching import PatchSet
from flightpipe_local.data_api_sign_in import (
    AccessDeniedException,
    admin_users_of,
    database_user_of,
)
from flightpipe_local.iam.caller import ADMINISTRATOR, Caller
from flightpipe_local.moto_redshift_data import LocalDataApi, Statement
from flightpipe_local.redshift_standin import RedshiftStandIn

pytestmark = pytest.mark.warehouse

ACCOUNT = "123456789012"
REGION = "us-east-1"
WORKGROUP = "flightpipe-identities"
WORKGROUP_ARN = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP}"
CLUSTER = "flightpipe-cluster"
ADMIN_USER = "pipeline_admin"
ON_WORKGROUP = {"WorkgroupName": WORKGROUP, "Database": "dev"}
BUCKET = "identities-data"
COPY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/flightpipe-test-RedshiftCopyRole"
_TERMINAL = ("FINISHED", "FAILED", "ABORTED")


@dataclass
class Policy:
    """What IAM allows a test caller: everything but the refused actions (or action and
    resource pairs); every question asked is kept."""

    refused: set = field(default_factory=set)
    asked: list = field(default_factory=list)

    def __call__(self, action: str, resource: str, context: Mapping[str, object]) -> bool:
        self.asked.append((action, resource))
        return action not in self.refused and (action, resource) not in self.refused


def role_caller(role: str, *, roles_tag: str = "flightpipe", refused: tuple = ()) -> Caller:
    """An assumed-role session of ``role``, tagged RedshiftDbRoles=``roles_tag``."""
    return Caller(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session",
        userid="AROAEXAMPLEROLEID:session",
        role_name=role,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
        session_name="session",
        tags={"RedshiftDbRoles": roles_tag} if roles_tag else {},
        may=Policy(set(refused)),
    )


def finished(api: LocalDataApi, statement: Statement, timeout: float = 20.0) -> Statement:
    deadline = time.monotonic() + timeout
    while api.get(statement.id).status not in _TERMINAL:
        assert time.monotonic() < deadline, f"statement still {statement.status}"
        time.sleep(0.02)
    return api.get(statement.id)


def run(
    api: LocalDataApi, caller: Caller, *sqls: str, params: Mapping[str, str] = ON_WORKGROUP
) -> Statement:
    """Submit ``sqls`` (one statement, or a batch) as ``caller`` and wait for the end."""
    statement = api.submit(list(sqls), len(sqls) > 1, dict(params), caller)
    return finished(api, statement)


def rows(statement: Statement, index: int = 0) -> list[tuple]:
    assert statement.status == "FINISHED", statement.error
    return statement.results[index].rows


@pytest.fixture
def pipeline_grants(warehouse, redshift_standin: RedshiftStandIn) -> None:
    """The bootstrap, as the admin runs it: schema airlines, role flightpipe and its grants."""
    if not redshift_standin.query(read_sql("pipeline_role_exists.sql")).rows[0][0]:
        redshift_standin.execute_batch(split_statements(read_sql("create_pipeline_role.sql")))
    redshift_standin.execute_batch(split_statements(read_sql("grants.sql")))


@pytest.fixture
def api(redshift_standin: RedshiftStandIn, pipeline_grants) -> Iterator[LocalDataApi]:
    data_api = LocalDataApi(
        redshift_standin,
        workgroups=[WORKGROUP],
        clusters=[CLUSTER],
        admin_users={WORKGROUP: ADMIN_USER},
    )
    yield data_api
    data_api.close()


@pytest.fixture
def names(redshift_standin: RedshiftStandIn) -> Iterator[Callable[[str], str]]:
    """Fresh names for roles and users; the database users made of them are dropped after."""
    made: list[str] = []

    def name(prefix: str) -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield name
    for made_name in made:
        for user in (made_name, f"IAMR:{made_name}"):
            redshift_standin.query(f'DROP USER IF EXISTS "{user}"')


@pytest.fixture
def secrets() -> Iterator[Callable[[dict], str]]:
    """Secrets Manager (moto): ``secrets(document)`` stores a secret and returns its ARN."""
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)

        def store(document: dict) -> str:
            name = f"identities-{uuid.uuid4().hex[:8]}"
            return client.create_secret(Name=name, SecretString=json.dumps(document))["ARN"]

        yield store


def _database_roles(standin: RedshiftStandIn, user: str) -> list[str]:
    return [
        name
        for (name,) in standin.query(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            f"JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = {quote_literal(user)} "
            "ORDER BY 1"
        ).rows
    ]


# -- IAM credentials on a workgroup --------------------------------------------------------


def test_a_role_tagged_with_flightpipe_runs_the_pipeline_statements_as_its_iamr_user(
    api, redshift_standin, names
):
    role = names("flightpipe-test-PrepareWarehouseRole")
    caller = role_caller(role)
    whoami = run(api, caller, "SELECT current_user")
    loads = run(
        api,
        caller,
        "LOCK airlines.airports_dim",
        "DELETE FROM airlines.airports_dim WHERE airport_id = -1",
        "INSERT INTO airlines.airports_dim VALUES (-1, 'Nowhere', 'NA', 'Test')",
        read_sql("pipeline_access_check.sql"),
        "DELETE FROM airlines.airports_dim WHERE airport_id = -1",
    )
    assert rows(whoami) == [(f"IAMR:{role}",)]
    assert (whoami.db_user, loads.db_user) == (f"IAMR:{role}", f"IAMR:{role}")
    assert rows(loads, 3) == [(0,)]
    assert _database_roles(redshift_standin, f"IAMR:{role}") == ["flightpipe"]
    assert redshift_standin.query(
        f"SELECT usename FROM pg_user WHERE usename = {quote_literal(f'IAMR:{role}')}"
    ).rows == [(f"IAMR:{role}",)]
    assert caller.may.asked[:3] == [
        ("redshift-serverless:GetCredentials", WORKGROUP_ARN),
        ("tag:GetResources", "*"),
        ("tag:GetTagKeys", "*"),
    ]


def test_the_same_role_without_tag_get_resources_is_denied_schema_airlines(
    api, redshift_standin, names
):
    role = names("flightpipe-test-EtlJobRole")
    assert run(api, role_caller(role), read_sql("pipeline_access_check.sql")).status == "FINISHED"

    refused = run(
        api,
        role_caller(role, refused=("tag:GetResources",)),
        read_sql("pipeline_access_check.sql"),
    )
    assert (refused.status, refused.error) == (
        "FAILED",
        "ERROR: permission denied for schema airlines",
    )
    assert _database_roles(redshift_standin, f"IAMR:{role}") == []


def test_a_role_without_tag_get_tag_keys_signs_in_without_its_database_roles(api, names):
    role = names("flightpipe-test-EtlJobRole")
    refused = run(
        api, role_caller(role, refused=("tag:GetTagKeys",)), "SELECT * FROM airlines.ddl_applied"
    )
    assert (refused.status, refused.error, refused.db_user) == (
        "FAILED",
        "ERROR: permission denied for schema airlines",
        f"IAMR:{role}",
    )


def test_roles_in_the_tag_that_the_database_does_not_have_are_ignored(api, redshift_standin, names):
    role = names("flightpipe-test-EtlJobRole")
    statement = run(
        api,
        role_caller(role, roles_tag="no_such_role:flightpipe"),
        read_sql("pipeline_access_check.sql"),
    )
    assert rows(statement) == [(0,)]
    assert _database_roles(redshift_standin, f"IAMR:{role}") == ["flightpipe"]


def test_a_table_missing_from_the_grants_is_denied_in_redshifts_words(api, redshift_standin, names):
    redshift_standin.query("CREATE TABLE IF NOT EXISTS airlines.not_granted (n INT)")
    try:
        statement = run(
            api, role_caller(names("flightpipe-test-Role")), "SELECT n FROM airlines.not_granted"
        )
    finally:
        redshift_standin.query("DROP TABLE airlines.not_granted")
    assert (statement.status, statement.error) == (
        "FAILED",
        "ERROR: permission denied for relation not_granted",
    )
    assert statement.describe()["Error"] == "ERROR: permission denied for relation not_granted"


def test_refused_get_credentials_is_an_access_denied_exception_at_execute_statement(api, names):
    role = names("flightpipe-test-Role")
    caller = role_caller(role, refused=("redshift-serverless:GetCredentials",))
    patches = PatchSet()
    with mock_aws():
        moto_redshift_data.install(patches, api, caller_of=lambda response: caller)
        try:
            client = boto3.client("redshift-data", region_name=REGION)
            with pytest.raises(ClientError) as single:
                client.execute_statement(Sql="SELECT 1", **ON_WORKGROUP)
            with pytest.raises(ClientError) as batch:
                client.batch_execute_statement(Sqls=["SELECT 1", "SELECT 2"], **ON_WORKGROUP)
        finally:
            patches.restore()
    expected = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session is not authorized to "
        f"perform: redshift-serverless:GetCredentials on resource: {WORKGROUP_ARN} because no "
        "identity-based policy allows the redshift-serverless:GetCredentials action"
    )
    for refusal in (single.value, batch.value):
        assert refusal.response["Error"] == {"Code": "AccessDeniedException", "Message": expected}
        assert refusal.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert api._statements == {}


def test_a_statement_records_the_iam_user_id_of_its_owner(api, names):
    caller = role_caller(names("flightpipe-test-Role"))
    patches = PatchSet()
    with mock_aws():
        moto_redshift_data.install(patches, api, caller_of=lambda response: caller)
        try:
            client = boto3.client("redshift-data", region_name=REGION)
            single = client.execute_statement(Sql="SELECT 1", **ON_WORKGROUP)["Id"]
            batch = client.batch_execute_statement(Sqls=["SELECT 1", "SELECT 2"], **ON_WORKGROUP)
        finally:
            patches.restore()
    assert api.statement_owner(single) == "AROAEXAMPLEROLEID:session"
    assert api.statement_owner(f"{batch['Id']}:2") == "AROAEXAMPLEROLEID:session"
    assert api.get(batch["Id"]).owner_userid == "AROAEXAMPLEROLEID:session"
    assert api.statement_owner(str(uuid.uuid4())) is None


# -- secrets ---------------------------------------------------------------------------------


def test_a_secret_signs_in_as_its_database_user(api, redshift_standin, names, secrets):
    user = names("secret_reader")
    redshift_standin.query(f"CREATE USER \"{user}\" PASSWORD 'Reader-Passw0rd'")
    secret = secrets({"username": user, "password": "Reader-Passw0rd"})
    caller = role_caller(names("flightpipe-test-Role"))

    whoami = run(api, caller, "SELECT current_user", params={**ON_WORKGROUP, "SecretArn": secret})
    denied = run(
        api,
        caller,
        "SELECT * FROM airlines.ddl_applied",
        params={**ON_WORKGROUP, "SecretArn": secret},
    )
    assert rows(whoami) == [(user,)]
    assert (denied.error, denied.db_user) == (
        "ERROR: permission denied for schema airlines",
        user,
    )
    assert ("secretsmanager:GetSecretValue", secret) in caller.may.asked
    assert ("redshift-serverless:GetCredentials", WORKGROUP_ARN) not in caller.may.asked


def test_a_secret_with_a_wrong_password_fails_to_sign_in(api, redshift_standin, names, secrets):
    user = names("secret_reader")
    redshift_standin.query(f"CREATE USER \"{user}\" PASSWORD 'Reader-Passw0rd'")
    secret = secrets({"username": user, "password": "not-the-password"})
    statement = run(api, ADMINISTRATOR, "SELECT 1", params={**ON_WORKGROUP, "SecretArn": secret})
    assert (statement.status, statement.error) == (
        "FAILED",
        f'FATAL: password authentication failed for user "{user}"',
    )


def test_the_namespace_admin_secret_runs_as_the_superuser(api, redshift_standin, names, secrets):
    secret = secrets({"username": ADMIN_USER, "password": "Admin-Passw0rd"})
    statement = run(
        api,
        role_caller(names("flightpipe-test-PrepareWarehouseRole")),
        "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user",
        params={**ON_WORKGROUP, "SecretArn": secret},
    )
    assert rows(statement) == [(redshift_standin.superuser, True)]
    assert statement.db_user is None


def test_the_administrator_without_a_secret_runs_as_the_superuser(api, redshift_standin):
    statement = run(api, ADMINISTRATOR, "SELECT current_user")
    assert rows(statement) == [(redshift_standin.superuser,)]


def test_a_refused_secret_read_is_an_access_denied_exception(api, names, secrets):
    secret = secrets({"username": ADMIN_USER, "password": "Admin-Passw0rd"})
    role = names("flightpipe-test-Role")
    caller = role_caller(role, refused=("secretsmanager:GetSecretValue",))
    with pytest.raises(AccessDeniedException) as refused:
        api.submit(["SELECT 1"], False, {**ON_WORKGROUP, "SecretArn": secret}, caller)
    assert refused.value.message == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session is not authorized to "
        f"perform: secretsmanager:GetSecretValue on resource: {secret} because no "
        "identity-based policy allows the secretsmanager:GetSecretValue action"
    )


# -- a provisioned cluster's DbUser ----------------------------------------------------------


def test_get_cluster_credentials_is_needed_on_the_dbuser_and_the_dbname(api, names):
    role = names("flightpipe-test-Role")
    dbname_arn = f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbname:{CLUSTER}/dev"
    caller = role_caller(role, refused=(("redshift:GetClusterCredentials", dbname_arn),))
    with pytest.raises(AccessDeniedException) as refused:
        api.submit(
            ["SELECT 1"],
            False,
            {"ClusterIdentifier": CLUSTER, "Database": "dev", "DbUser": "loader"},
            caller,
        )
    assert f"perform: redshift:GetClusterCredentials on resource: {dbname_arn} " in (
        refused.value.message
    )
    assert caller.may.asked == [
        (
            "redshift:GetClusterCredentials",
            f"arn:aws:redshift:{REGION}:{ACCOUNT}:dbuser:{CLUSTER}/loader",
        ),
        ("redshift:GetClusterCredentials", dbname_arn),
    ]


def test_a_missing_cluster_db_user_is_created_only_with_create_cluster_user(
    api, redshift_standin, names
):
    user = names("loader")
    on_cluster = {"ClusterIdentifier": CLUSTER, "Database": "dev", "DbUser": user}
    caller = role_caller(names("flightpipe-test-Role"), refused=("redshift:CreateClusterUser",))
    missing = run(api, caller, "SELECT current_user", params=on_cluster)
    created = run(
        api, role_caller(names("flightpipe-test-Role")), "SELECT current_user", params=on_cluster
    )
    assert (missing.status, missing.error) == (
        "FAILED",
        f'FATAL: password authentication failed for user "{user}"',
    )
    assert rows(created) == [(user,)]


# -- COPY ------------------------------------------------------------------------------------


def test_copy_reads_s3_as_the_role_it_names_and_inserts_as_the_signed_in_user(
    api, redshift_standin, object_store, names, monkeypatch
):
    object_store.put_object(Bucket=BUCKET, Key="dims/airports.csv", Body=b"-2,Town,ST,Field\n")
    object_store.put_object(Bucket=BUCKET, Key="dims/applied.csv", Body=b"abc,2024-01-01\n")
    roles_read_as: list = []

    def reader_for(role: Any) -> tuple:
        roles_read_as.append(role)
        return object_store.read, object_store.list_keys

    monkeypatch.setattr(redshift_standin, "copy_reader_for_role", reader_for)
    caller = role_caller(names("flightpipe-test-PrepareWarehouseRole"))
    loaded = run(
        api,
        caller,
        "DELETE FROM airlines.airports_dim WHERE airport_id = -2",
        f"COPY airlines.airports_dim FROM 's3://{BUCKET}/dims/airports.csv' "
        f"IAM_ROLE '{COPY_ROLE}' CSV",
        "SELECT name FROM airlines.airports_dim WHERE airport_id = -2",
        "DELETE FROM airlines.airports_dim WHERE airport_id = -2",
    )
    refused = run(
        api,
        caller,
        f"COPY airlines.ddl_applied FROM 's3://{BUCKET}/dims/applied.csv' IAM_ROLE DEFAULT CSV",
    )
    assert rows(loaded, 2) == [("Field",)]
    assert (refused.status, refused.error) == (
        "FAILED",
        "ERROR: permission denied for relation ddl_applied",
    )
    assert roles_read_as == [COPY_ROLE, "default"]


# -- identities and admins -------------------------------------------------------------------


def test_an_iam_user_signs_in_as_iam_colon_its_name():
    user = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/team/alice", userid="AIDAEXAMPLE")
    assert database_user_of(user) == "IAM:alice"
    assert database_user_of(role_caller("etl-role")) == "IAMR:etl-role"


def test_the_admin_user_is_the_namespaces_admin_username_from_its_secret():
    secret_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:admin-AbCdEf"

    def resource(ref: str, **properties: Any) -> SimpleNamespace:
        return SimpleNamespace(ref=ref, properties=properties)

    resources = {
        "AWS::RedshiftServerless::Namespace": [
            resource(
                "flightpipe-dev",
                AdminUsername=f"{{{{resolve:secretsmanager:{secret_arn}:SecretString:username}}}}",
            )
        ],
        "AWS::RedshiftServerless::Workgroup": [
            resource("flightpipe-dev-wg", NamespaceName="flightpipe-dev")
        ],
        "AWS::Redshift::Cluster": [resource("flightpipe-cluster", MasterUsername="awsuser")],
    }
    deployment = SimpleNamespace(region=REGION, of_type=lambda kind: resources.get(kind, []))
    read: list = []

    def read_secret(secret_id: str, region: str, account: str) -> dict:
        read.append((secret_id, region, account))
        return {"username": ADMIN_USER, "password": "x"}

    assert admin_users_of(deployment, read_secret, ACCOUNT) == {
        "flightpipe-dev-wg": ADMIN_USER,
        "flightpipe-cluster": "awsuser",
    }
    assert read == [(secret_arn, REGION, ACCOUNT)]
