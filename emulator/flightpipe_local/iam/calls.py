"""What one request to the local endpoint asks of IAM: its action, its resources, its context.

IAM authorizes an API call as an action of the Service Authorization Reference (usually the
operation's name, a few renamed: Lambda's ``Invoke`` is ``lambda:InvokeFunction``) on the
resource ARN(s) that reference lists for that action, built from the request's parameters
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference.html). An
action with no resource type is authorized on ``*``. The ARN formats come from
:mod:`flightpipe_local.iam.service_reference`; only which request parameter fills which
ARN variable is written here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.iam import service_reference

# The SigV4 signing name of a request → the service's IAM prefix, where they differ.
IAM_PREFIX_OF_SIGNING_NAME = {
    "tagging": "tag",
    "monitoring": "cloudwatch",
    "email": "ses",
}
# Operations whose IAM action has another name (Service Authorization Reference).
ACTION_OF_OPERATION = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# Calls IAM never refuses ("GetCallerIdentity ... No permissions are required":
# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
# Actions whose resource types are all optional and whose requests may name none: such a request
# is authorized on "*" (PutMetricData's one resource type, a dataset, is optional: "dataset" has
# no asterisk in https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
# Listed one by one, so that a binding this module lacks for any other action still fails
# loudly rather than falling back to "*".
UNSCOPED_WITHOUT_RESOURCE = frozenset({"cloudwatch:PutMetricData"})
# Request parameters that carry an ARN variable's value, beside a parameter of the same name.
PARAMETERS_OF_VARIABLE: Mapping[str, tuple[str, ...]] = {
    "CrawlerName": ("CrawlerName", "Name"),
    "JobName": ("JobName", "Name"),
    "DatabaseName": ("DatabaseName", "DatabaseInput.Name", "Name"),
    "TableName": ("TableName", "TableInput.Name", "Name"),
    "WorkgroupId": ("WorkgroupName",),
    "ClusterName": ("ClusterIdentifier",),
    "StateMachineName": ("name",),
}


@dataclass(frozen=True)
class ApiCall:
    """One request: the IAM action, the resources it is authorized on, its condition keys."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, Any] = field(default_factory=dict)


def iam_action(signing_name: str, operation: str) -> str:
    prefix = IAM_PREFIX_OF_SIGNING_NAME.get(signing_name, signing_name)
    action = f"{prefix}:{operation}"
    return ACTION_OF_OPERATION.get(action, action)


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}."))
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            flat[f"{prefix}{name}"] = str(value)
    return flat


def _parameter_value(variable: str, params: Mapping[str, str]) -> Optional[str]:
    for name in (variable, *PARAMETERS_OF_VARIABLE.get(variable, ())):
        value = params.get(name)
        if value:
            return value
    return None


def _arn_given(
    resource_type: service_reference.ResourceType, action: str, params: Mapping[str, str]
) -> Optional[str]:
    """A parameter that already is an ARN of the resource type (TopicArn, stateMachineArn,
    a FunctionName or WorkgroupName given as an ARN)."""
    for value in params.values():
        if value.startswith("arn:"):
            matched = service_reference.resource_type_matching(action, value)
            if matched is not None and matched.name == resource_type.name:
                return value
    return None


def _queue_name(params: Mapping[str, str]) -> dict[str, str]:
    url = params.get("QueueUrl", "")
    return {"QueueName": url.rstrip("/").rsplit("/", 1)[-1]} if url else {}


def resources_of(action: str, params: Mapping[str, Any], region: str) -> tuple[str, ...]:
    """The ARNs IAM authorizes ``action`` on for a request with ``params``.

    Each resource type the action takes whose ARN the request names: given as an ARN, or
    built from the type's ARN format. A required type the request does not name is an error
    of this module (a binding to add), never a silent ``*``.
    """
    types = service_reference.resource_types(action)
    if not types:
        return ("*",)
    flat = _flatten(params)
    flat.update(_queue_name(flat))
    arns: list[str] = []
    for resource_type in types:
        arn = _arn_given(resource_type, action, flat) or _formatted(resource_type, flat, region)
        if arn is not None:
            arns.append(arn)
        elif resource_type.required:
            raise UnboundResource(f"{action}: no request parameter names its {resource_type.name}")
    if not arns:
        if action in UNSCOPED_WITHOUT_RESOURCE:
            return ("*",)
        raise UnboundResource(f"{action}: the request names none of its resource types")
    return tuple(arns)


class UnboundResource(LookupError):
    """The request's parameters do not give the resource ARN IAM would evaluate."""


_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _formatted(
    resource_type: service_reference.ResourceType, params: Mapping[str, str], region: str
) -> Optional[str]:
    values = {"Partition": "aws", "Region": region, "Account": ACCOUNT_ID}
    for variable in _VARIABLE.findall(resource_type.arn_template):
        if variable in values:
            continue
        value = _parameter_value(variable, params)
        if value is None:
            return None
        values[variable] = value
    return service_reference.format_arn(resource_type.arn_template, values)


def s3_action(moto_action: str, method: str, querystring: Mapping[str, Any]) -> str:
    """The IAM action of an S3 request, from the action moto's S3 names for it.

    moto maps HEAD of an object to GetObject whatever its query; S3 authorizes a HEAD of a
    given version as GetObjectVersion, as it does a GET
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
    """
    if method == "HEAD" and moto_action == "GetObject" and "versionId" in querystring:
        return "s3:GetObjectVersion"
    return f"s3:{moto_action}"


def s3_resource(bucket: Optional[str], key: Optional[str]) -> str:
    if bucket and key:
        return f"arn:aws:s3:::{bucket}/{key}"
    if bucket:
        return f"arn:aws:s3:::{bucket}"
    return "*"


def s3_context(action: str, querystring: Mapping[str, Any]) -> dict[str, Any]:
    """S3's condition keys of a bucket listing (``s3:prefix``, ``s3:delimiter``,
    ``s3:max-keys``: https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html)."""
    if action not in ("s3:ListBucket", "s3:ListBucketVersions"):
        return {}
    context: dict[str, Any] = {}
    for name in ("prefix", "delimiter", "max-keys"):
        value = querystring.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            context[f"s3:{name}"] = value
    return context
