"""IAM patch: every call of a stack role's session is authorized before moto serves it.

moto's authorization hooks (``ActionAuthenticatorMixin``, ``moto/core/authorization.py``)
are replaced by :class:`flightpipe_local.iam.enforcement.Authorizer`: the deployer's own
keys pass as an administrator's do; a role session's call is decided from the deployed
policies and refused with the error its service returns on AWS, so Retry and Catch in the
state machine see what they would see there (``Glue.AccessDeniedException``,
``Lambda.AccessDeniedException``, ``SNS.AuthorizationErrorException``, S3's 403
``AccessDenied``). S3's deliveries to a queue are judged by the queue's policy, and moto's
own check of a bucket policy judges its conditions (moto ignores them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Callable, Optional

from moto.core import authorization
from moto.core.exceptions import JsonRESTError, _RESTError
from moto.s3 import models as s3_models
from moto.s3 import notifications as s3_notifications
from moto.s3.exceptions import S3ClientError

from flightpipe_local._patching import PatchSet
from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.iam import calls
from flightpipe_local.iam.caller import ADMINISTRATOR, Caller
from flightpipe_local.iam.enforcement import (
    Authorizer,
    access_key_of,
    resource_policies,
    signing_name_of,
)
from flightpipe_local.iam.policy import EXPLICIT_DENY, Principal, Request, evaluate

SEAM_OWNER = authorization.ActionAuthenticatorMixin
BUCKET_SEAM_OWNER = s3_models.FakeBucket
BUCKET_SEAM = "get_permission"
QUEUE_DELIVERY_SEAM = "_send_sqs_message"
LOG = logging.getLogger(__name__)
NORMAL_SEAM = "_authenticate_and_authorize_normal_action"
S3_SEAM = "_authenticate_and_authorize_s3_action"

# Query-protocol services answer in XML, with their own code for a refusal
# (SNS: AuthorizationError, https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors;
# STS and IAM: AccessDenied).
_XML_REFUSALS = {"sns": "AuthorizationError", "sts": "AccessDenied", "iam": "AccessDenied"}
# JSON services whose refusal has another code or status than AccessDeniedException/400.
_JSON_REFUSALS = {
    "lambda": ("AccessDeniedException", 403),
    "sqs": ("AccessDenied", 403),
}


class LocalIamError(JsonRESTError):
    """The local IAM cannot tell what AWS would evaluate for this call: a gap to fix here."""

    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("InternalFailure", f"local IAM: {message}")


def refusal(signing_name: str) -> Callable[[str], Exception]:
    """The exception a refused call of this service raises, from IAM's message."""

    def refuse(message: str) -> Exception:
        if signing_name in _XML_REFUSALS:
            error: Exception = _RESTError(_XML_REFUSALS[signing_name], message)
            error.code = 403  # type: ignore[attr-defined]
            return error
        error_type, status = _JSON_REFUSALS.get(signing_name, ("AccessDeniedException", 400))
        error = JsonRESTError(error_type, message)
        error.code = status
        return error

    return refuse


def request_parameters(response: Any) -> dict[str, Any]:
    """The operation's parameters, whatever the protocol: moto's parsed parameters, the JSON
    body, the query string and the URI's path parameters."""
    params: dict[str, Any] = {}
    for name, value in (getattr(response, "querystring", None) or {}).items():
        params[name] = value[0] if isinstance(value, list) and value else value
    body = getattr(response, "body", None)
    if body:
        try:
            document = json.loads(body)
        except (TypeError, ValueError):
            document = None
        if isinstance(document, Mapping):
            params.update(document)
    params.update(getattr(response, "uri_match", None) or {})
    parsed = getattr(response, "params", None)
    if isinstance(parsed, Mapping):
        params.update(parsed)
    return params


_READS = ("s3:GetObject", "s3:GetObjectVersion")


def _s3_refusal(message: str) -> Exception:
    return S3ClientError("AccessDenied", message)


def _object_exists(response: Any, bucket: Optional[str], key: str) -> bool:
    querystring = response.querystring or {}
    version = querystring.get("versionId")
    version = version[0] if isinstance(version, list) and version else version
    try:
        return response.backend.get_object(bucket, key, version_id=version) is not None
    except Exception:  # no such bucket or version
        return False


def install(patches: PatchSet, authorizer: Authorizer) -> None:
    """Authorize every request of a stack role's session with ``authorizer``."""

    caller_of = caller_resolver(authorizer)

    def authorize_normal_action(self: Any, resource: str = "*") -> None:
        caller = caller_of(self)
        if caller.is_administrator:
            return
        signing_name = signing_name_of(self.headers) or self.service_name
        action = calls.iam_action(signing_name, self._get_action())
        if action in calls.ALWAYS_ALLOWED:
            return
        params = request_parameters(self)
        try:
            resources = calls.resources_of(action, params, self.region)
        except (calls.UnboundResource, KeyError, ValueError) as error:
            raise LocalIamError(str(error)) from error
        context = {"aws:RequestedRegion": self.region, **authorizer.context_for(action, params)}
        authorizer.check(caller, action, resources, context, refusal(signing_name))

    def authorize_s3_action(
        self: Any, bucket_name: str | None = None, key_name: str | None = None
    ) -> None:
        caller = caller_of(self)
        if caller.is_administrator:
            return
        querystring = self.querystring or {}
        action = calls.s3_action(str(self.data.get("Action")), self.method, querystring)
        resource = calls.s3_resource(bucket_name, key_name)
        context = {"aws:RequestedRegion": self.region, **calls.s3_context(action, querystring)}
        refuse = _s3_refusal
        authorizer.check(caller, action, [resource], context, refuse)
        if action in _READS and key_name and not _object_exists(self, bucket_name, key_name):
            # S3 tells a missing key (404) only to a caller that may list the bucket; to
            # anyone else it answers 403, so that a read cannot probe which keys exist
            # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
            bucket_arn = calls.s3_resource(bucket_name, None)
            authorizer.check(caller, "s3:ListBucket", [bucket_arn], {}, refuse)

    def get_permission(self: Any, action: str, resource: str) -> Any:
        return bucket_policy_permission(self.policy, action, resource)

    patches.replace(SEAM_OWNER, NORMAL_SEAM, authorize_normal_action)
    patches.replace(SEAM_OWNER, S3_SEAM, authorize_s3_action)
    patches.replace(BUCKET_SEAM_OWNER, BUCKET_SEAM, get_permission)
    original_send = s3_notifications.__dict__[QUEUE_DELIVERY_SEAM]

    def send_sqs_message(account_id: str, event_body: Any, queue_name: str, region: str) -> None:
        queue_arn = f"arn:aws:sqs:{region}:{account_id}:{queue_name}"
        bucket = _bucket_of_event(event_body)
        if bucket and not service_may_send(queue_arn, bucket, account_id):
            LOG.warning("S3 may not send to %s (its queue policy): event dropped", queue_arn)
            return
        original_send(account_id, event_body, queue_name, region)

    patches.replace(s3_notifications, QUEUE_DELIVERY_SEAM, send_sqs_message)


def _bucket_of_event(event_body: Any) -> Optional[str]:
    """The bucket an S3 notification (or S3's test event) is about."""
    if not isinstance(event_body, Mapping):
        return None
    records = event_body.get("Records") or []
    if records:
        return records[0].get("s3", {}).get("bucket", {}).get("name")
    return event_body.get("Bucket")


def service_may_send(queue_arn: str, bucket: str, account_id: str) -> bool:
    """Whether the queue's policy lets S3 send it this bucket's events: S3 delivers as its
    service principal, with the bucket in ``aws:SourceArn`` and its owner in
    ``aws:SourceAccount``
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html)."""
    request = Request(
        action="sqs:SendMessage",
        resource=queue_arn,
        principal=Principal.service("s3.amazonaws.com"),
        context={
            "aws:SourceArn": f"arn:aws:s3:::{bucket}",
            "aws:SourceAccount": account_id,
            "aws:SecureTransport": True,
        },
    )
    return evaluate(request, (), resource_policies(queue_arn)).allowed


def bucket_policy_permission(policy: Optional[bytes], action: str, resource: str) -> Any:
    """moto's own check of a bucket policy for any request (``FakeBucket.get_permission``),
    with conditions judged: moto ignores them, so the template's deny of insecure transport
    would refuse every request. Judged for the account's own principal over TLS."""
    from moto.iam.access_control import PermissionResult

    if not policy:
        return PermissionResult.NEUTRAL
    request = Request(
        action=action,
        resource=resource,
        principal=Principal(arn=ADMINISTRATOR.arn, account=ACCOUNT_ID),
        context={"aws:SecureTransport": True, "aws:PrincipalAccount": ACCOUNT_ID},
    )
    decision = evaluate(request, (), [json.loads(policy)])
    if decision.effect == EXPLICIT_DENY:
        return PermissionResult.DENIED
    return PermissionResult.PERMITTED if decision.allowed else PermissionResult.NEUTRAL


def caller_resolver(authorizer: Authorizer) -> Callable[[Any], Caller]:
    """``caller_of(response)`` for patches that act as the caller (the Data API's sign-in)."""

    def caller_of(response: Any) -> Caller:
        return authorizer.caller(access_key_of(response.headers, response.querystring or {}))

    return caller_of
