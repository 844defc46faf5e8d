"""IAM's decision on one request within one account, from identity and resource policies.

The logic is AWS's "Policy evaluation logic" for a single account
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html):
an explicit Deny in any applicable policy wins; otherwise the request is allowed if an
identity-based policy allows it or a resource-based policy allows it to a principal naming the
caller ("If either the identity-based policy or the resource-based policy within the same
account allows the request and the other doesn't, the request is still allowed"); otherwise it
is implicitly denied. SCPs, RCPs, permissions boundaries and session policies are not modelled:
the local stack has none.

Principals in resource-based policies, as "AWS JSON policy elements: Principal" documents them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html):
``"*"`` and ``{"AWS": "*"}`` name everyone; a role ARN names every session of the role; an
assumed-role session ARN names that session; ``{"Service": "sqs.amazonaws.com"}`` names the
service. The account (``"123456789012"`` or ``arn:aws:iam::123456789012:root``) "delegates
authority to the account": a Deny naming it applies to every principal of the account, but an
Allow naming it grants nothing by itself, the account's identity policies must allow the
request. NotPrincipal excludes a caller only if it names each identity AWS may check for it
(the session, its role and its account: see "NotPrincipal with Deny",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from flightpipe_local.iam import conditions, patterns
from flightpipe_local.iam.conditions import (
    SUPPORTED_OPERATORS,
    ContextValue,
    PolicyError,
    RequestContext,
    UnsupportedCondition,
)

__all__ = [
    "ALLOW",
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "SUPPORTED_OPERATORS",
    "ContextValue",
    "Decision",
    "PolicyError",
    "Principal",
    "Request",
    "StatementRef",
    "UnsupportedCondition",
    "condition_keys_used",
    "evaluate",
]

ALLOW = "Allow"
EXPLICIT_DENY = "ExplicitDeny"
IMPLICIT_DENY = "ImplicitDeny"
Effect = Literal["Allow", "ExplicitDeny", "ImplicitDeny"]
PrincipalKind = Literal["AWS", "Service"]
Source = Literal["identity", "resource"]

# Policy variables exist only in this version of the policy language.
VARIABLES_VERSION = "2012-10-17"
_ACCOUNT_ID = re.compile(r"\d{12}")
_ACCOUNT_ROOT = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")
_SESSION_ARN = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})

# How strongly a resource policy's principal names the caller.
_NONE, _ACCOUNT, _DIRECT = 0, 1, 2


@dataclass(frozen=True)
class Principal:
    """Who makes the request: an AWS identity (a role session) or a service principal.

    For a role session ``arn`` is the session ARN (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION)
    and ``role_arn`` the role's (with its path); for a service, ``arn`` is the service
    principal's name (``events.amazonaws.com``) and ``account`` is empty.
    """

    arn: str
    account: str = ""
    kind: PrincipalKind = "AWS"
    role_arn: Optional[str] = None

    @classmethod
    def service(cls, name: str) -> Principal:
        """A service principal, as a service calls when it acts with its own identity."""
        return cls(arn=name, kind="Service")

    @classmethod
    def role_session(cls, session_arn: str, role_arn: str) -> Principal:
        """An assumed-role session; the account is read from the session ARN."""
        match = _SESSION_ARN.fullmatch(session_arn)
        if match is None:
            raise ValueError(f"not an assumed-role session ARN: {session_arn!r}")
        return cls(arn=session_arn, account=match.group(2), role_arn=role_arn)


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource``?

    ``resource`` is the ARN the action acts on, or ``"*"`` for an action without resource
    types; ``context`` holds the request's condition keys (aws:SourceArn, aws:userid, ...).
    """

    action: str
    resource: str
    principal: Principal
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class StatementRef:
    """Which statement decided: the policy's name (its Id) and the statement's Sid or index."""

    source: Source
    policy: str
    statement: str

    def __str__(self) -> str:
        return f"{self.source} policy {self.policy!r}, statement {self.statement!r}"


@dataclass(frozen=True)
class Decision:
    """IAM's answer, with the statement behind an Allow or an explicit Deny for messages."""

    effect: Effect
    statement: Optional[StatementRef] = None

    @property
    def allowed(self) -> bool:
        """Only an Allow lets the call through; both denies refuse it."""
        return self.effect == ALLOW

    def describe(self) -> str:
        """One line for an AccessDenied message or a log: the effect and what decided it."""
        if self.statement is None:
            return f"{self.effect}: no statement allows the request"
        return f"{self.effect} by {self.statement}"


def _strings(value: Any, element: str) -> tuple[str, ...]:
    """An element's single-string or list form, as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise PolicyError(f"{element} must be a string or a list of strings")
    return tuple(items)


def _exactly_one(statement: Mapping[str, Any], names: tuple[str, str], required: bool) -> str:
    present = [name for name in names if name in statement]
    if len(present) > 1 or (required and not present):
        raise PolicyError(f"a statement needs exactly one of {names[0]} and {names[1]}")
    return present[0] if present else ""


@dataclass(frozen=True)
class _Principals:
    """A Principal or NotPrincipal element: ``"*"`` or {type: names}."""

    everyone: bool
    names: Mapping[str, tuple[str, ...]]

    @classmethod
    def parse(cls, value: Any, element: str) -> _Principals:
        if value == "*":
            return cls(True, {})
        if not isinstance(value, Mapping) or not set(value) <= _PRINCIPAL_TYPES:
            raise PolicyError(f'{element} must be "*" or an object of {sorted(_PRINCIPAL_TYPES)}')
        names = {kind: _strings(value[kind], f"{element}.{kind}") for kind in value}
        return cls("*" in names.get("AWS", ()), names)

    def strength(self, principal: Principal) -> int:
        """How this element names the caller: not, through its account, or directly."""
        if self.everyone:
            return _DIRECT
        if principal.kind == "Service":
            services = {name.lower() for name in self.names.get("Service", ())}
            return _DIRECT if principal.arn.lower() in services else _NONE
        return max(
            (_aws_strength(name, principal) for name in self.names.get("AWS", ())), default=_NONE
        )

    def excludes(self, principal: Principal) -> bool:
        """As NotPrincipal: the caller is left out only if all its identities are named."""
        if self.everyone:
            return True
        if principal.kind == "Service":
            return self.strength(principal) == _DIRECT
        aws = self.names.get("AWS", ())
        named = [principal.arn in aws, _account_named(aws, principal.account)]
        if principal.role_arn:
            named.append(principal.role_arn in aws)
        return all(named)


def _account_of(name: str) -> Optional[str]:
    if _ACCOUNT_ID.fullmatch(name):
        return name
    match = _ACCOUNT_ROOT.fullmatch(name)
    return match.group(1) if match else None


def _account_named(names: Sequence[str], account: str) -> bool:
    return any(_account_of(name) == account for name in names)


def _aws_strength(name: str, principal: Principal) -> int:
    if name in (principal.arn, principal.role_arn):
        return _DIRECT if _account_of(name) is None else _ACCOUNT
    return _ACCOUNT if _account_of(name) == principal.account else _NONE


@dataclass(frozen=True)
class _Statement:
    ref: StatementRef
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: Optional[tuple[str, ...]]  # None: the resource the policy is attached to
    not_resource: bool
    principals: Optional[_Principals]
    not_principal: bool
    condition: Mapping[str, Any]
    variables: bool

    def covers(self, request: Request, context: RequestContext) -> bool:
        """Action, resource and condition all match (the principal is checked apart)."""
        action_hit = any(patterns.action_matches(p, request.action) for p in self.actions)
        if action_hit == self.not_action:
            return False
        if self.resources is not None:
            lookup = context.variable if self.variables else None
            hit = any(patterns.arn_matches(p, request.resource, lookup) for p in self.resources)
            if hit == self.not_resource:
                return False
        return conditions.block_matches(self.condition, context, self.variables)

    def principal_strength(self, principal: Principal) -> int:
        if self.principals is None:  # identity-based: the principal is the attached identity
            return _DIRECT
        if self.not_principal:
            return _NONE if self.principals.excludes(principal) else _DIRECT
        return self.principals.strength(principal)


def _parse_statement(raw: Any, ref: StatementRef, variables: bool) -> _Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{ref}: a statement must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{ref}: Effect must be Allow or Deny, not {effect!r}")
    action_key = _exactly_one(raw, ("Action", "NotAction"), required=True)
    resource_key = _exactly_one(raw, ("Resource", "NotResource"), ref.source == "identity")
    principal_key = _exactly_one(raw, ("Principal", "NotPrincipal"), ref.source == "resource")
    if principal_key and ref.source == "identity":
        raise PolicyError(f"{ref}: an identity-based policy cannot name a {principal_key}")
    condition = raw.get("Condition", {})
    conditions.validate(condition)
    return _Statement(
        ref=ref,
        effect=effect,
        actions=_strings(raw[action_key], action_key),
        not_action=action_key == "NotAction",
        resources=_strings(raw[resource_key], resource_key) if resource_key else None,
        not_resource=resource_key == "NotResource",
        principals=_Principals.parse(raw[principal_key], principal_key) if principal_key else None,
        not_principal=principal_key == "NotPrincipal",
        condition=condition,
        variables=variables,
    )


def _statements_of(policy: Mapping[str, Any]) -> list[Any]:
    if not isinstance(policy, Mapping) or "Statement" not in policy:
        raise PolicyError("a policy must be an object with a Statement")
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _parse_policy(policy: Mapping[str, Any], source: Source, index: int) -> list[_Statement]:
    """A policy document's statements; the policy is named by its Id, else by its position."""
    name = str(policy.get("Id") or f"#{index}") if isinstance(policy, Mapping) else f"#{index}"
    variables = isinstance(policy, Mapping) and policy.get("Version") == VARIABLES_VERSION
    parsed = []
    for position, raw in enumerate(_statements_of(policy)):
        label = raw.get("Sid") if isinstance(raw, Mapping) and raw.get("Sid") else f"#{position}"
        parsed.append(_parse_statement(raw, StatementRef(source, name, str(label)), variables))
    return parsed


def _parse_all(policies: Sequence[Mapping[str, Any]], source: Source) -> list[_Statement]:
    return [s for index, p in enumerate(policies) for s in _parse_policy(p, source, index)]


def _applicable(
    statements: Sequence[_Statement], effect: str, request: Request, context: RequestContext
) -> Iterator[tuple[_Statement, int]]:
    """The statements of one effect that apply to the request, with how they name the caller."""
    for statement in statements:
        if statement.effect != effect:
            continue
        strength = statement.principal_strength(request.principal)
        if strength != _NONE and statement.covers(request, context):
            yield statement, strength


def evaluate(
    request: Request,
    identity_policies: Sequence[Mapping[str, Any]],
    resource_policies: Sequence[Mapping[str, Any]] = (),
) -> Decision:
    """Decide ``request`` as IAM does within one account.

    ``identity_policies`` are the caller's (its role's) policy documents, empty for a
    service principal; ``resource_policies`` those attached to the resource (a bucket or
    queue policy, a role's trust policy). A document's ``Id`` names it in the Decision.
    Every statement is checked first, so a malformed policy raises PolicyError, and an
    operator this evaluator does not implement UnsupportedCondition, whatever the request.
    """
    identity = _parse_all(identity_policies, "identity")
    resource = _parse_all(resource_policies, "resource")
    context = RequestContext(request.context)
    for statement, _ in _applicable([*identity, *resource], "Deny", request, context):
        return Decision(EXPLICIT_DENY, statement.ref)
    for statement, _ in _applicable(identity, "Allow", request, context):
        return Decision(ALLOW, statement.ref)
    for statement, strength in _applicable(resource, "Allow", request, context):
        if strength == _DIRECT:
            return Decision(ALLOW, statement.ref)
    return Decision(IMPLICIT_DENY)


def _variables_of(statement: Mapping[str, Any], condition: Mapping[str, Any]) -> set[str]:
    """The policy variables a statement's Resource, NotResource and condition values use."""
    texts = [
        text
        for element in ("Resource", "NotResource")
        for text in _strings(statement.get(element, []), element)
    ]
    for values in condition.values():
        for value in values.values():
            texts.extend(v for v in (value if isinstance(value, list) else [value]))
    return {name for text in texts if isinstance(text, str) for name in patterns.variables_in(text)}


def condition_keys_used(policy: Mapping[str, Any]) -> set[str]:
    """The context keys a policy reads, as written: condition keys and policy variables.

    So a caller can see which keys a request context must carry for the policy to be
    decided as on AWS (a key left out reads as absent). Variables count only in policies
    of the version that has them.
    """
    variables = policy.get("Version") == VARIABLES_VERSION
    keys: set[str] = set()
    for raw in _statements_of(policy):
        statement = raw if isinstance(raw, Mapping) else {}
        condition = statement.get("Condition", {})
        keys.update(conditions.keys_of(condition))
        if variables:
            keys.update(_variables_of(statement, condition))
    return keys
