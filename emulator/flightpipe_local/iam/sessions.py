"""Role sessions of the stack's principals, obtained as the AWS services obtain them.

On AWS no function, job or state machine holds long-term keys: the service assumes the
role the template gives the resource (``sts:AssumeRole`` as its service principal, allowed
only by the role's trust policy) and hands the code the session's temporary credentials
(Lambda in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html; Glue "assumes
the role" of a job or crawler: https://docs.aws.amazon.com/glue/latest/dg/create-an-iam-role.html).
Here the trust policy is evaluated the same way before moto's STS issues the session, so a
role whose trust policy does not name the service fails the resource as it would on AWS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote

from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.iam.policy import Principal, Request, evaluate

PARTITION = "aws"
# Long enough for any local run; AWS refreshes sessions, the local stack starts new ones.
SESSION_SECONDS = 12 * 3600


class AssumeRoleRefused(RuntimeError):
    """The role's trust policy does not let the service assume it."""


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    @property
    def environment(self) -> dict[str, str]:
        """The variables a Lambda or Glue process finds its credentials in."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def client_arguments(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


def role_name_of(role_arn: str) -> str:
    """``arn:aws:iam::123456789012:role/path/name`` → ``name``."""
    return role_arn.rsplit("/", 1)[-1]


def iam_backend() -> Any:
    """The emulated IAM of the stack's account."""
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT_ID][PARTITION]


def sts_backend() -> Any:
    """The emulated STS of the stack's account."""
    from moto.sts.models import sts_backends

    return sts_backends[ACCOUNT_ID][PARTITION]


def trust_policy(role_arn: str) -> Mapping[str, Any]:
    """The role's trust policy, as the deploy wrote it into the emulated IAM."""
    role = iam_backend().get_role(role_name_of(role_arn))
    document = role.assume_role_policy_document
    return json.loads(unquote(document)) if isinstance(document, str) else document


class RoleSessions:
    """Issues (and reuses) the sessions of the stack's roles, one per role, service and name."""

    def __init__(self, region: str) -> None:
        self._region = region
        self._sessions: dict[tuple[str, str, str], SessionCredentials] = {}
        self._lock = threading.Lock()

    def assume(
        self,
        role_arn: str,
        service: str,
        session_name: str,
        source_arn: Optional[str] = None,
    ) -> SessionCredentials:
        """The credentials ``service`` gets when it assumes ``role_arn`` for a resource.

        ``source_arn`` is the resource the service acts for (``aws:SourceArn`` in the trust
        policy's conditions); ``aws:SourceAccount`` is always this account.
        """
        key = (role_arn, service, session_name)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
        self._check_trust(role_arn, service, source_arn)
        assumed = sts_backend().assume_role(
            region_name=self._region,
            role_session_name=session_name,
            role_arn=role_arn,
            policy=None,
            duration=SESSION_SECONDS,
            external_id=None,
        )
        credentials = SessionCredentials(
            assumed.access_key_id, assumed.secret_access_key, assumed.session_token
        )
        with self._lock:
            return self._sessions.setdefault(key, credentials)

    def _check_trust(self, role_arn: str, service: str, source_arn: Optional[str]) -> None:
        context: dict[str, Any] = {"aws:SourceAccount": ACCOUNT_ID, "aws:SecureTransport": True}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        request = Request(
            action="sts:AssumeRole",
            resource=role_arn,
            principal=Principal.service(service),
            context=context,
        )
        decision = evaluate(
            request, identity_policies=(), resource_policies=[trust_policy(role_arn)]
        )
        if not decision.allowed:
            raise AssumeRoleRefused(
                f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                " (the role's trust policy does not allow it)"
            )
