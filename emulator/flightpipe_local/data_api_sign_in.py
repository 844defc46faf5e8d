"""Who a Redshift Data API request signs in to the warehouse as, decided as AWS decides it.

The Data API authorizes the caller for the credentials it asks for, then opens a
session as a database user; every statement of the request runs as that user. AWS
documents three ways ("Authorizing access to the Amazon Redshift Data API",
https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-access.html, and the
``ExecuteStatement`` reference,
https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html):

- ``SecretArn``: the caller needs ``secretsmanager:GetSecretValue`` on the secret; the
  session is the secret's ``username`` with its ``password``. A secret without both is
  refused at once ("username and password in secret cannot be empty",
  https://github.com/boto/boto3/issues/2899).
- ``WorkgroupName`` with IAM credentials: the caller needs
  ``redshift-serverless:GetCredentials`` on the workgroup; the database user is derived
  from the IAM identity — ``IAMR:<role name>`` for an assumed role, ``IAM:<user name>`` for
  an IAM user — and is created at its first sign-in. The database roles named in the
  identity's ``RedshiftDbRoles`` tag (colon-separated, e.g. ``manager:engineer``) are
  mapped to the user when the identity may call ``tag:GetResources`` and
  ``tag:GetTagKeys``; "In a case where you pass a role name that doesn't exist in the
  database, it's ignored" ("Defining database roles to grant to federated users in Amazon
  Redshift Serverless",
  https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html).
  The emulator makes the tag the whole truth at each sign-in (a role the tag no longer
  gives, or that the identity may no longer read, is revoked), so a permission taken away
  shows at the next run even on a kept warehouse; AWS's page documents the mapping at
  sign-in, not what becomes of a role dropped from the tag.
- ``ClusterIdentifier`` with ``DbUser``: the caller needs ``redshift:GetClusterCredentials``
  on the ``dbuser`` ARN and, since the request names a database, on its ``dbname`` ARN
  (https://docs.aws.amazon.com/redshift/latest/APIReference/API_GetClusterCredentials.html;
  the service authorization reference lists both resource types for the action). A user
  that does not exist is created only as ``AutoCreate`` would, which needs
  ``redshift:CreateClusterUser``; otherwise "the command succeeds but the connection attempt
  will fail because the user doesn't exist in the database" (same page). AWS's managed
  policy AmazonRedshiftDataFullAccess denies ``CreateClusterUser`` while allowing
  ``GetClusterCredentials``, so the Data API itself cannot be counting on creating users.
  Without ``DbUser`` the user is derived from the IAM identity, with
  ``redshift:GetClusterCredentialsWithIAM`` on the ``dbname`` ARN.

The namespace's admin user (its secret) signs in as the stand-in's superuser: the only
way to it. The person's own clients (the administrator caller) keep running as the
superuser when they pass no secret. A refused authorization is the Data API's answer to
``ExecuteStatement``/``BatchExecuteStatement``; a failed sign-in (wrong password, missing
user) fails the statement, as the Data API connects after it answered.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from moto.core.exceptions import JsonRESTError
from moto.redshiftdata.exceptions import ValidationException

from flightpipe_local.iam.caller import Caller

# read_secret(secret_id, region, account) -> the secret's JSON document (a mapping).
SecretReader = Callable[[str, str, str], Mapping[str, Any]]

DB_ROLES_TAG = "RedshiftDbRoles"
_ARN_USER = re.compile(r"^arn:[^:]+:iam::\d+:user/(?:.*/)?(?P<name>[^/]+)$")
# A CloudFormation dynamic reference to a secret's value:
# {{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}}, where
# secret-id may be an ARN (which has colons of its own):
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references-secretsmanager.html
_SECRET_REFERENCE = re.compile(
    r"""^\{\{resolve:secretsmanager:
        (?P<id>arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:[^:}]+|[^:}]+)
        (?::SecretString)?(?::(?P<key>[^:}]*))?(?::[^}]*)?\}\}$""",
    re.X,
)

_log = logging.getLogger(__name__)
_WARNED: set[str] = set()


class AccessDeniedException(JsonRESTError):
    """IAM refused the caller an action the Data API needs for the request's credentials."""

    code = 400

    def __init__(self, caller_arn: str, action: str, resource: str) -> None:
        super().__init__(
            "AccessDeniedException",
            f"User: {caller_arn} is not authorized to perform: {action} on resource: "
            f"{resource} because no identity-based policy allows the {action} action",
        )


@dataclass(frozen=True)
class SignIn:
    """The database session a request gets.

    ``user`` None is the stand-in's superuser. ``password`` is checked when given (a
    secret's). ``create()`` says whether a missing user is created (asked only then).
    ``roles`` become the user's database roles when not None (IAM identities).
    """

    user: Optional[str] = None
    password: Optional[str] = None
    create: Callable[[], bool] = lambda: False
    roles: Optional[tuple[str, ...]] = None

    @property
    def is_superuser(self) -> bool:
        return self.user is None


SUPERUSER = SignIn()


def database_user_of(caller: Caller) -> str:
    """The database user of an IAM identity: ``IAMR:<role name>`` or ``IAM:<user name>``."""
    if caller.role_name:
        return f"IAMR:{caller.role_name}"
    user = _ARN_USER.match(caller.arn)
    if user:
        return f"IAM:{user.group('name')}"
    raise ValidationException(f"No database user can be derived from {caller.arn}")


def tagged_roles(caller: Caller) -> tuple[str, ...]:
    """The database roles the caller's ``RedshiftDbRoles`` tag names, when the caller may
    read tags (``tag:GetResources`` and ``tag:GetTagKeys``); none otherwise."""
    if not (caller.may("tag:GetResources", "*", {}) and caller.may("tag:GetTagKeys", "*", {})):
        return ()
    value = caller.tags.get(DB_ROLES_TAG, "")
    return tuple(role for role in (part.strip() for part in value.split(":")) if role)


def workgroup_arn(region: str, account: str, workgroup: str) -> str:
    """The workgroup's ARN (``workgroup/<id>``; the local deployment's id is its name)."""
    return f"arn:aws:redshift-serverless:{region}:{account}:workgroup/{workgroup}"


def sign_in_for(
    caller: Caller,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    read_secret: SecretReader,
    admin_user: Optional[str] = None,
) -> SignIn:
    """Authorize ``caller`` for the credentials ``params`` ask for and say who signs in.

    ``admin_user`` is the target's admin (namespace admin, cluster master user): a secret
    of that user signs in as the superuser. Raises :class:`AccessDeniedException` when IAM
    refuses an action, ``ValidationException`` for an unusable secret.
    """
    secret_arn = params.get("SecretArn")
    workgroup = params.get("WorkgroupName")
    cluster = params.get("ClusterIdentifier")
    database = params.get("Database") or "dev"
    if secret_arn:
        _require(caller, "secretsmanager:GetSecretValue", secret_arn)
        secret = _read(read_secret, secret_arn, region, account)
        username, password = secret.get("username"), secret.get("password")
        if not username or not password:
            raise ValidationException("username and password in secret cannot be empty")
        if admin_user is None and (workgroup or cluster) not in _WARNED:
            _WARNED.add(workgroup or cluster)
            _log.warning(
                "no admin user known for %s (LocalDataApi.admin_users): its secrets sign in "
                "as ordinary database users",
                workgroup or cluster,
            )
        if username == admin_user:
            return SUPERUSER
        return SignIn(str(username), password=str(password))
    if caller.is_administrator:
        return SUPERUSER
    if workgroup:
        _require(
            caller, "redshift-serverless:GetCredentials", workgroup_arn(region, account, workgroup)
        )
        return SignIn(database_user_of(caller), create=lambda: True, roles=tagged_roles(caller))
    dbname_arn = f"arn:aws:redshift:{region}:{account}:dbname:{cluster}/{database}"
    db_user = params.get("DbUser")
    if not db_user:
        _require(caller, "redshift:GetClusterCredentialsWithIAM", dbname_arn)
        return SignIn(database_user_of(caller), create=lambda: True)
    dbuser_arn = f"arn:aws:redshift:{region}:{account}:dbuser:{cluster}/{db_user}"
    _require(caller, "redshift:GetClusterCredentials", dbuser_arn)
    _require(caller, "redshift:GetClusterCredentials", dbname_arn)
    return SignIn(
        str(db_user), create=lambda: caller.may("redshift:CreateClusterUser", dbuser_arn, {})
    )


def _require(caller: Caller, action: str, resource: str) -> None:
    if not caller.may(action, resource, {}):
        raise AccessDeniedException(caller.arn, action, resource)


def _read(read_secret: SecretReader, secret_id: str, region: str, account: str) -> Mapping:
    try:
        document = read_secret(secret_id, region, account)
    except JsonRESTError as error:  # e.g. Secrets Manager's ResourceNotFoundException
        raise ValidationException(error.message) from error
    return document if isinstance(document, Mapping) else {}


def moto_secret_reader(secret_id: str, region: str, account: str) -> Mapping[str, Any]:
    """A secret's JSON document, read from moto's Secrets Manager backend (the region and
    account of an ARN, else of the request)."""
    from moto.secretsmanager.models import secretsmanager_backends

    parts = secret_id.split(":")
    if secret_id.startswith("arn:") and len(parts) >= 7:
        region, account = parts[3], parts[4]
    value = secretsmanager_backends[account][region].get_secret_value(secret_id, None, None)
    try:
        document = json.loads(value.get("SecretString") or "{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def admin_users_of(deployment: Any, read_secret: SecretReader, account: str) -> dict[str, str]:
    """Each deployed workgroup's and cluster's admin user: the namespace's ``AdminUsername``
    (the stack passes it as a dynamic reference into RedshiftAdminSecret, resolved here) and
    the cluster's ``MasterUsername``. ``deployment``: a ``flightpipe_local.deploy.Deployment``.
    """
    region = deployment.region
    namespaces = {
        namespace.ref: namespace.properties.get("AdminUsername")
        for namespace in deployment.of_type("AWS::RedshiftServerless::Namespace")
    }
    admins: dict[str, str] = {}
    for workgroup in deployment.of_type("AWS::RedshiftServerless::Workgroup"):
        name = _resolved(
            namespaces.get(workgroup.properties.get("NamespaceName")), read_secret, region, account
        )
        if name:
            admins[workgroup.ref] = name
    for cluster in deployment.of_type("AWS::Redshift::Cluster"):
        name = _resolved(cluster.properties.get("MasterUsername"), read_secret, region, account)
        if name:
            admins[cluster.ref] = name
    return admins


def _resolved(value: Any, read_secret: SecretReader, region: str, account: str) -> Optional[str]:
    """A template value with a Secrets Manager dynamic reference resolved."""
    if not isinstance(value, str) or not value:
        return None
    reference = _SECRET_REFERENCE.match(value)
    if not reference:
        return value
    document = read_secret(reference.group("id"), region, account)
    resolved = document.get(reference.group("key") or "")
    return str(resolved) if resolved else None
