"""The local endpoint authorizes every call as IAM does, from the deployed policies.

moto 5.2.5 can check IAM policies, but it compares every statement with the resource ``*``
for every service but S3 (``IAMRequest.check_action_permitted``), so it cannot judge the
ARN-scoped policies of this stack. Its two hooks, ``_authenticate_and_authorize_normal_action``
(every service's ``call_action``) and ``_authenticate_and_authorize_s3_action`` (S3's
handlers, with moto's S3 action name in ``self.data["Action"]``), are replaced here: the
caller is found from the request's access key (a session of a stack role, or else the
deployer, an administrator), the call is described as IAM sees it
(:mod:`flightpipe_local.iam.calls`), and the role's identity policies with the resource's
own policy (bucket, queue, topic) decide it (:mod:`flightpipe_local.iam.policy`).
A refused call fails with the error that service returns, and every decision is recorded.

``aws:SecureTransport`` is judged true for every call: the local endpoint is plain HTTP on
loopback, but it stands for AWS's endpoints, which the SDKs and the CLI reach over TLS
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import unquote

from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.iam import calls
from flightpipe_local.iam.caller import ADMINISTRATOR, Caller
from flightpipe_local.iam.policy import Principal, Request, evaluate
from flightpipe_local.iam.sessions import PARTITION, iam_backend, role_name_of, sts_backend

# The condition keys this module puts in a request's context: a policy that tests any other
# key is refused by tests/test_iam_enforcement.py before it can be judged silently.
IMPLEMENTED_CONDITION_KEYS = frozenset(
    {
        "aws:SecureTransport",
        "aws:userid",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:RequestedRegion",
        "aws:PrincipalTag/${TagKey}",
        "aws:SourceAccount",  # service principals: sessions and deliveries (sessions.py, S3 → SQS)
        "aws:SourceArn",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "redshift-data:statement-owner-iam-userid",
        "cloudwatch:namespace",
    }
)

ContextProvider = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


def metric_namespace(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``cloudwatch:namespace`` of a PutMetricData request: the namespace it publishes to
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html)."""
    namespace = params.get("Namespace")
    return {"cloudwatch:namespace": str(namespace)} if namespace else {}


# Condition keys every stack's requests carry, by action (the stack adds service-specific ones).
DEFAULT_CONTEXT_PROVIDERS: Mapping[str, ContextProvider] = {
    "cloudwatch:PutMetricData": metric_namespace,
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")


@dataclass(frozen=True)
class RecordedCall:
    """One authorization decision for a stack role."""

    role_arn: str
    action: str
    resource: str
    allowed: bool


class CallLog:
    """Every decision taken for the stack's roles, in order."""

    def __init__(self) -> None:
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()

    def record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def refused(self) -> list[RecordedCall]:
        return [call for call in self.calls if not call.allowed]

    def as_json(self) -> list[dict[str, Any]]:
        return [call.__dict__ for call in self.calls]


def _document(text: Any) -> Mapping[str, Any]:
    return json.loads(unquote(text)) if isinstance(text, str) else dict(text)


def role_policies(role_name: str) -> list[Mapping[str, Any]]:
    """The role's identity-based policies: inline, then attached managed (default version)."""
    role = iam_backend().get_role(role_name)
    documents = [_document(text) for text in role.policies.values()]
    for managed in role.managed_policies.values():
        default = next(v for v in managed.versions if v.is_default)
        documents.append(_document(default.document))
    return documents


def role_tags(role_name: str) -> dict[str, str]:
    tags = iam_backend().get_role(role_name).tags or {}
    if isinstance(tags, Mapping):
        return {
            (v["Key"] if isinstance(v, Mapping) else k): (
                v["Value"] if isinstance(v, Mapping) else v
            )
            for k, v in tags.items()
        }
    return {tag["Key"]: tag["Value"] for tag in tags}


def resource_policies(resource: str) -> list[Mapping[str, Any]]:
    """The resource-based policy of a bucket (and its objects), a queue or a topic."""
    found: Optional[Any] = None
    if resource.startswith("arn:aws:s3:::"):
        from moto.s3.models import s3_backends

        bucket_name = resource[len("arn:aws:s3:::") :].split("/", 1)[0]
        bucket = s3_backends[ACCOUNT_ID][PARTITION].buckets.get(bucket_name)
        found = bucket.policy.decode() if bucket is not None and bucket.policy else None
    elif resource.startswith("arn:aws:sqs:"):
        from moto.sqs.models import sqs_backends

        _, _, _, region, _, name = resource.split(":", 5)
        queue = sqs_backends[ACCOUNT_ID][region].queues.get(name)
        found = queue.policy if queue is not None else None
    elif resource.startswith("arn:aws:sns:"):
        from moto.sns.models import sns_backends

        region = resource.split(":")[3]
        topic = sns_backends[ACCOUNT_ID][region].topics.get(resource)
        found = topic.policy if topic is not None else None
    return [_document(found)] if found else []


class Authorizer:
    """Decides the calls of the stack's role sessions and records each decision."""

    def __init__(self, context_providers: Optional[Mapping[str, ContextProvider]] = None) -> None:
        self.log = CallLog()
        self._providers = {**DEFAULT_CONTEXT_PROVIDERS, **(context_providers or {})}

    def add_context_provider(self, action: str, provider: ContextProvider) -> None:
        """``provider(action, params)`` adds condition keys only the service knows (the owner
        of a Data API statement)."""
        self._providers[action] = provider

    def caller(self, access_key_id: Optional[str]) -> Caller:
        """The session the access key belongs to, or the administrator for any other key."""
        assumed = sts_backend().get_assumed_role_from_access_key(access_key_id or "")
        if assumed is None:
            return ADMINISTRATOR
        role_name = role_name_of(assumed.role_arn)
        try:
            tags = role_tags(role_name)
        except Exception:  # the role was deleted: its sessions keep no tags
            tags = {}
        caller = Caller(
            arn=assumed.arn,
            userid=assumed.user_id,
            role_name=role_name,
            role_arn=assumed.role_arn,
            session_name=assumed.session_name,
            tags=tags,
        )
        return dataclasses.replace(caller, may=functools.partial(self.allows, caller))

    def base_context(self, caller: Caller, region: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc)
        context: dict[str, Any] = {
            "aws:SecureTransport": True,
            "aws:userid": caller.userid,
            "aws:PrincipalArn": caller.role_arn or caller.arn,
            "aws:PrincipalAccount": ACCOUNT_ID,
            "aws:PrincipalType": "AssumedRole",
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": int(now.timestamp()),
            "aws:RequestedRegion": region,
        }
        for key, value in caller.tags.items():
            context[f"aws:PrincipalTag/{key}"] = value
        return context

    def allows(
        self,
        caller: Caller,
        action: str,
        resource: str,
        context: Optional[Mapping[str, Any]] = None,
    ) -> bool:
        """Whether IAM allows ``caller`` ``action`` on ``resource``; recorded."""
        if caller.is_administrator or action in calls.ALWAYS_ALLOWED:
            return True
        assert caller.role_name is not None and caller.role_arn is not None
        context = context or {}
        region = str(context.get("aws:RequestedRegion", ""))
        full = {**self.base_context(caller, region), **context}
        request = Request(
            action=action,
            resource=resource,
            principal=Principal.role_session(caller.arn, caller.role_arn),
            context=full,
        )
        try:
            identity = role_policies(caller.role_name)
        except Exception:  # a deleted role allows nothing
            identity = []
        decision = evaluate(request, identity, resource_policies(resource))
        self.log.record(RecordedCall(caller.role_arn, action, resource, decision.allowed))
        return decision.allowed

    def check(
        self,
        caller: Caller,
        action: str,
        resources: Sequence[str],
        context: Mapping[str, Any],
        refuse: Callable[[str], Exception],
    ) -> None:
        """Raise ``refuse(message)`` unless every resource is allowed (IAM's message)."""
        for resource in resources:
            if not self.allows(caller, action, resource, context):
                raise refuse(
                    f"User: {caller.arn} is not authorized to perform: {action} on resource: "
                    f"{resource} because no identity-based policy allows the {action} action"
                )

    def context_for(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        provider = self._providers.get(action)
        return dict(provider(action, params)) if provider else {}


def access_key_of(headers: Mapping[str, Any], querystring: Mapping[str, Any]) -> Optional[str]:
    """The access key id a request is signed with (header or presigned URL)."""
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    found = _CREDENTIAL.search(authorization)
    if found:
        return found.group(1)
    credential = querystring.get("X-Amz-Credential")
    if isinstance(credential, list):
        credential = credential[0] if credential else None
    return str(credential).split("/", 1)[0] if credential else None


def signing_name_of(headers: Mapping[str, Any]) -> Optional[str]:
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    found = _CREDENTIAL.search(authorization)
    return found.group(3) if found else None
