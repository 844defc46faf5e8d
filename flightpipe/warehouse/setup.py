"""Preparing the warehouse before a load: its identities, schema DDL and airports dimension.

Runs at the start of every execution, so it must be cheap when nothing changed
— one Data API statement (sql/prepare_state.sql) and one S3 HeadObject — and safe when
several uploads start at once: the DDL is idempotent (and retried
when concurrent executions race to create the same table or role), and the
airports reload takes a table lock so two reloads can never interleave.

Two database identities take part. The *bootstrap* identity (the namespace admin,
when the deployment hands its secret to this step) creates the database role
``flightpipe``, the ``airlines`` schema and its tables, and grants that role only
the privileges the pipeline's statements need (sql/grants.sql). Every other
statement — the airports reload here, the fact loads of the Glue job — runs as the
*pipeline* identity, a member of ``flightpipe``: never as the admin.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import ObjectStore
from flightpipe.bucket_layout import dimension_manifest_key
from flightpipe.retryable import raise_if_throttled
from flightpipe.sql import read_sql, render_statements, split_statements
from flightpipe.warehouse.data_api import WarehouseTarget
from flightpipe.warehouse.manifest import write_copy_manifest
from flightpipe.warehouse.port import StatementError, StatementTimeoutError, Warehouse

# Concurrent executions can collide in the catalog while bootstrapping (Redshift and
# PostgreSQL both abort concurrent updates of one grant): retried with jittered backoff.
DDL_ATTEMPTS = 6
BOOTSTRAP_SQL = ("schema.sql", "schema_upgrades.sql", "create_pipeline_role.sql", "grants.sql")
# Database role holding the pipeline's privileges on schema airlines (sql/grants.sql).
PIPELINE_ROLE = "flightpipe"

# What Redshift answers when COPY names an IAM role the cluster or namespace may not use:
# a provisioned cluster says "User arn:aws:redshift:…:dbuser:<cluster>/<user> is not
# authorized to assume IAM Role arn:aws:iam::…:role/<name>", Redshift Serverless says
# "Not authorized to get credentials of role arn:aws:iam::…". Roles are usable only once
# associated with the cluster or namespace:
# https://docs.aws.amazon.com/redshift/latest/mgmt/copy-unload-iam-role.html
_ROLE_NOT_USABLE = re.compile(
    r"not authorized to (?:assume IAM Role|get credentials of role)"
    r"|IAM role \S+ is not (?:associated|attached)",
    re.I,
)


# A statement of sql/schema_upgrades.sql: the table and the column it adds.
_ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+airlines\.(\w+)\s+ADD\s+COLUMN\s+(\w+)\s", re.I)


class AirportsDimensionMissingError(RuntimeError):
    """The airports file is not in the bucket, so flights cannot be enriched."""


class CopyRoleNotAttachedError(RuntimeError):
    """COPY's IAM role is not associated with the workgroup's namespace or the cluster."""


class WarehouseNotBootstrappedError(RuntimeError):
    """Schema airlines or the pipeline's grants are missing and this step may not create them."""


@dataclass(frozen=True)
class WarehouseState:
    """What the prepare step checks, read in one statement (sql/prepare_state.sql)."""

    ddl_hash: Optional[str]
    airports_version: Optional[str]
    airports_rows: int


def warehouse_state(warehouse: Warehouse) -> Optional[WarehouseState]:
    """The DDL fingerprint applied and the airports loaded, in one Data API statement; None
    when the caller cannot read every table of schema airlines (not bootstrapped yet, a
    column missing, or no access): the slow path then finds out which."""
    try:
        rows = warehouse.query(read_sql("prepare_state.sql"))
    except StatementTimeoutError:
        raise
    except StatementError:
        return None
    row = rows[0] if rows else {}
    version = row.get("airports_version")
    return WarehouseState(
        ddl_hash=None if row.get("ddl_hash") is None else str(row["ddl_hash"]),
        airports_version=None if version is None else str(version),
        airports_rows=int(row.get("airports_rows") or 0),
    )


def ddl_fingerprint() -> str:
    """A hash of the bootstrap SQL: when it changes, the bootstrap must run again."""
    digest = hashlib.sha256()
    for name in BOOTSTRAP_SQL:
        digest.update(read_sql(name).encode("utf-8"))
    return digest.hexdigest()


def applied_fingerprint(warehouse: Warehouse) -> Optional[str]:
    """The fingerprint the last bootstrap recorded (None before one, or without access)."""
    try:
        rows = warehouse.query(read_sql("ddl_applied.sql"))
    except StatementTimeoutError:
        raise
    except StatementError:  # no such table yet, or no access to it
        return None
    return str(rows[0]["ddl_hash"]) if rows else None


def schema_upgrades(warehouse: Warehouse) -> list[str]:
    """The statements of sql/schema_upgrades.sql this warehouse still needs: those adding a
    column to a table that exists without it (a table still to be created gets every column
    from sql/schema.sql)."""
    columns: dict[str, set[str]] = {}
    for row in warehouse.query(read_sql("schema_columns.sql")):
        columns.setdefault(str(row["table_name"]).lower(), set()).add(
            str(row["column_name"]).lower()
        )
    needed = []
    for statement in split_statements(read_sql("schema_upgrades.sql")):
        match = _ADD_COLUMN.match(statement)
        if match is None:
            raise ValueError(f"sql/schema_upgrades.sql: not one ADD COLUMN: {statement}")
        table, column = match.group(1).lower(), match.group(2).lower()
        if table in columns and column not in columns[table]:
            needed.append(statement)
    return needed


def bootstrap_warehouse(
    warehouse: Warehouse,
    *,
    attempts: int = DDL_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """As an admin: create the pipeline role, the schema and its tables, and grant the role.

    Redshift has no ``CREATE ROLE IF NOT EXISTS`` nor ``ADD COLUMN IF NOT EXISTS``, so the
    role and the tables' columns are looked up first. Concurrent executions can still
    collide in the catalog; every statement is idempotent or looked up again, so a failed
    attempt is simply run again after a jittered backoff. The grants' transaction records
    the DDL's fingerprint (see :func:`ensure_schema`).
    """
    schema = split_statements(read_sql("schema.sql"))
    grants = split_statements(read_sql("grants.sql"))
    grants += render_statements("record_ddl_applied.sql", ddl_hash=ddl_fingerprint())
    for attempt in range(1, attempts + 1):
        try:
            rows = warehouse.query(read_sql("pipeline_role_exists.sql"))
            if not rows or not int(rows[0]["role_count"]):
                warehouse.execute_batch(split_statements(read_sql("create_pipeline_role.sql")))
            warehouse.execute_batch(schema + schema_upgrades(warehouse) + grants)
            return
        except StatementError:
            if attempt == attempts:
                raise
            sleep(random.uniform(0.5, 1.0) * 2 ** (attempt - 1))


def ensure_schema(
    warehouse: Warehouse,
    admin: Optional[Warehouse] = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Make sure schema airlines exists, with every column, and the pipeline's grants.

    With an admin connection the bootstrap runs when the bootstrap SQL changed since it
    last ran (its fingerprint, read by the pipeline identity): once after each deploy that
    changes the DDL, not at every execution. Without one, the pipeline identity checks its
    access; only when that fails does it try the bootstrap itself (which works when it was
    given a privileged user), and otherwise says what an admin has to run.
    """
    if admin is not None:
        if applied_fingerprint(warehouse) == ddl_fingerprint() and _has_access(warehouse):
            return "ready"
        bootstrap_warehouse(admin, sleep=sleep)
        return "bootstrapped"
    if _has_access(warehouse):
        return "ready"
    try:
        bootstrap_warehouse(warehouse, sleep=sleep)
    except StatementError as error:
        raise WarehouseNotBootstrappedError(
            "schema airlines is missing, lacks a column, or is not granted to the pipeline's "
            "database user, and this user may not change it. Deploy with "
            '--param="adminSecretArn=<secret of a superuser>" so this step bootstraps it, or '
            "run sql/schema.sql, the statements of sql/schema_upgrades.sql whose column is "
            "missing, sql/create_pipeline_role.sql and sql/grants.sql as a superuser and grant "
            f"role {PIPELINE_ROLE} to the pipeline's user (docs/deploy.md, Database identities). "
            f"Cause: {error}"
        ) from error
    return "bootstrapped"


def airports_source_version(s3: ObjectStore, bucket: str, key: str) -> str:
    """The version of the airports object: its version id when versioned, else its ETag.

    Without ``s3:ListBucket`` on the key, S3 answers HeadObject on a missing object with
    403, not 404 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html);
    the function's ListBucket is scoped to ``dimensions/*`` by an ``s3:prefix`` condition,
    which a HeadObject request never matches. So a 403 is told apart by listing the key.
    """
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound") or (
            code in ("403", "AccessDenied", "Forbidden") and not _key_listed(s3, bucket, key)
        ):
            raise AirportsDimensionMissingError(
                f"s3://{bucket}/{key} does not exist: upload the airports CSV "
                "(airport_id,city,state,name) there before loading flights"
            ) from error
        raise_if_throttled(error)
        raise
    return head.get("VersionId") or head["ETag"].strip('"')


def _key_listed(s3: ObjectStore, bucket: str, key: str) -> bool:
    """Whether ``key`` itself is listed (False when listing is denied too: nothing to say)."""
    try:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1000)
    except ClientError as error:
        raise_if_throttled(error)
        return True  # listing denied as well: report the original 403, not a guess
    return any(item["Key"] == key for item in listing.get("Contents", []))


def loaded_airports_version(warehouse: Warehouse) -> Optional[str]:
    """The source version of the loaded airports, or None when the table is empty or unknown."""
    rows = warehouse.query(read_sql("airports_loaded_version.sql"))
    if not rows or not rows[0]["row_count"]:
        return None
    return rows[0]["source_version"]


def write_airports_manifest(s3: ObjectStore, bucket: str, key: str) -> str:
    """Write a COPY manifest naming exactly ``s3://bucket/key``; return the manifest's URI."""
    manifest_key = dimension_manifest_key(key)
    try:
        return write_copy_manifest(s3, bucket, manifest_key, [f"s3://{bucket}/{key}"])
    except ClientError as error:
        raise_if_throttled(error)
        raise


def copy_role_attach_command(target: Optional[WarehouseTarget], role_arn: str) -> str:
    """The AWS CLI command that associates ``role_arn`` with the target warehouse."""
    if target is not None and target.cluster_id:
        # https://docs.aws.amazon.com/cli/latest/reference/redshift/modify-cluster-iam-roles.html
        return (
            f"aws redshift modify-cluster-iam-roles --cluster-identifier {target.cluster_id} "
            f"--add-iam-roles {role_arn}"
        )
    workgroup = target.workgroup if target is not None and target.workgroup else "<workgroup>"
    # UpdateNamespace replaces the namespace's role list, and iamRoles must be sent together
    # with defaultIamRoleArn:
    # https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_UpdateNamespace.html
    return (
        "aws redshift-serverless update-namespace --namespace-name <namespace of workgroup "
        f"{workgroup}> --iam-roles {role_arn} <the namespace's current role ARNs> "
        "--default-iam-role-arn <its current default role ARN>"
    )


def _has_access(warehouse: Warehouse) -> bool:
    """Whether ``warehouse``'s identity can read every table of schema airlines."""
    try:
        warehouse.query(read_sql("pipeline_access_check.sql"))
    except StatementTimeoutError:
        raise
    except StatementError:
        return False
    return True


def prepare_warehouse(
    warehouse: Warehouse,
    s3: ObjectStore,
    *,
    bucket: str,
    airports_key: str,
    copy_role_arn: str,
    admin: Optional[Warehouse] = None,
    target: Optional[WarehouseTarget] = None,
) -> dict[str, Any]:
    """Bootstrap the schema (as ``admin`` when given) and (re)load ``airlines.airports_dim``
    as the pipeline identity when it is empty or stale.

    When neither the bootstrap SQL nor the airports file changed, this costs one Data API
    statement (:func:`warehouse_state`) besides the airports file's HeadObject; a bootstrap
    or a reload runs only when one of them did.
    """
    version = airports_source_version(s3, bucket, airports_key)
    state = warehouse_state(warehouse)
    ready = state is not None and (admin is None or state.ddl_hash == ddl_fingerprint())
    if ready and state is not None:
        schema = "ready"
        loaded = state.airports_version if state.airports_rows else None
    else:
        schema = ensure_schema(warehouse, admin)
        loaded = loaded_airports_version(warehouse)
    reloaded = loaded != version
    if not reloaded and state is not None and ready:
        return _prepared(schema, False, state.airports_rows, version)
    if reloaded:
        source_uri = f"s3://{bucket}/{airports_key}"
        statements = render_statements(
            "load_airports.sql",
            manifest_uri=write_airports_manifest(s3, bucket, airports_key),
            source_uri=source_uri,
            source_version=version,
            iam_role=copy_role_arn,
        )
        try:
            warehouse.execute_batch(statements)
        except StatementError as error:
            if _ROLE_NOT_USABLE.search(str(error)):
                raise CopyRoleNotAttachedError(
                    f"COPY of {source_uri} failed because IAM role {copy_role_arn} is not "
                    "associated with the warehouse (the stack attaches it only to the namespace "
                    "it creates). Attach it: "
                    f"{copy_role_attach_command(target, copy_role_arn)}. Redshift said: {error}"
                ) from error
            raise
    (count,) = render_statements("airports_row_count.sql")
    rows = warehouse.query(count)
    return _prepared(schema, reloaded, int(rows[0]["row_count"]), version)


def _prepared(bootstrap: str, reloaded: bool, rows: int, version: str) -> dict[str, Any]:
    """The prepare step's result."""
    return {
        "schema": "ready",
        "bootstrap": bootstrap,
        "airports": {"reloaded": reloaded, "rows": rows, "source_version": version},
    }
