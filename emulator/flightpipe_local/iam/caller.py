"""The identity behind one request to the local endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Optional

from flightpipe_local.deploy import ACCOUNT_ID

# may(action, resource_arn, context) -> whether IAM would allow this caller the call; every
# answer is recorded as an authorized (or refused) call of the caller.
Authorizer = Callable[[str, str, Mapping[str, object]], bool]


def _allow_all(action: str, resource: str, context: Mapping[str, object]) -> bool:
    return True


@dataclass(frozen=True)
class Caller:
    """Who made a request: an assumed role of the stack, or the deployer (an administrator).

    ``role_name`` is None for the deployer: the person's own clients (the AWS CLI, boto3
    scripts, the ``flightpipe`` commands) act as an administrator of the account does.
    """

    arn: str
    userid: str
    role_name: Optional[str] = None
    role_arn: Optional[str] = None
    session_name: Optional[str] = None
    tags: Mapping[str, str] = field(default_factory=dict)
    may: Authorizer = _allow_all

    @property
    def is_administrator(self) -> bool:
        return self.role_name is None


ADMINISTRATOR = Caller(arn=f"arn:aws:iam::{ACCOUNT_ID}:root", userid=ACCOUNT_ID)
