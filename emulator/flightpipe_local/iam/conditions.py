"""The Condition element: IAM's condition operators over a request context.

Semantics as AWS documents them in "IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
and "Creating a condition with multiple keys or values"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html):

- Operators in a block, and keys under one operator, are ANDed; the values of one key are
  ORed, except for negated operators (StringNotEquals, NotIpAddress, ...), where the value
  must match none of them (a logical AND).
- A key absent from the context makes the condition false, except that a negated operator
  is then true ("If the policy condition requires that the key is not matched, such as
  StringNotLike or ArnNotLike, and the right key is not present, the condition is true"),
  ``...IfExists`` is then true, and ``Null`` tests exactly that absence.
- ``ForAllValues:`` is true when every context value matches (and when the key is absent or
  empty); ``ForAnyValue:`` when at least one does (false when absent or empty).
- Policy variables are substituted in the values of the string, ARN and Bool operators only.
  A variable with no value matches nothing, so a negated operator is true for that value:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value

An operator this module does not implement raises UnsupportedCondition: an authorizer that
silently skipped a condition would allow what AWS denies.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Callable, Optional, Union

from flightpipe_local.iam.patterns import Lookup, arn_matches, as_text, like, parse, resolve

# A value in the request context: a multivalued key (aws:TagKeys, aws:CalledVia) is a list.
ContextValue = Union[str, bool, int, list[str]]
Scalar = Union[str, bool, int]
Comparator = Callable[[Scalar, str, Optional[Lookup]], bool]

FOR_ALL_VALUES = "ForAllValues"
FOR_ANY_VALUE = "ForAnyValue"
IF_EXISTS = "IfExists"


class PolicyError(ValueError):
    """A policy IAM would reject: a malformed element or a value its operator cannot read."""


class UnsupportedCondition(PolicyError):
    """A condition operator this evaluator does not implement (or IAM does not have)."""


class RequestContext:
    """The request's condition keys, looked up case-insensitively as IAM does."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values = {key.lower(): value for key, value in values.items()}

    def get(self, key: str) -> Optional[ContextValue]:
        return self._values.get(key.lower())

    def variable(self, key: str) -> Optional[str]:
        """A key's value as a policy variable: single-valued keys only, as AWS requires."""
        value = self.get(key)
        if value is None or isinstance(value, list):
            return None
        return _text(value)


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolved_text(value: str, lookup: Optional[Lookup]) -> Optional[str]:
    pieces = resolve(parse(value), lookup)
    return None if pieces is None else as_text(pieces)


def _string_equals(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    return _resolved_text(value, lookup) == _text(item)


def _string_equals_ignore_case(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    expected = _resolved_text(value, lookup)
    return expected is not None and expected.casefold() == _text(item).casefold()


def _string_like(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    return like(value, _text(item), lookup)


def _bool(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    expected = _resolved_text(value, lookup)
    return expected is not None and expected.lower() == _text(item).lower()


def _arn_like(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    return arn_matches(value, _text(item), lookup)


def _number(text: str) -> Optional[Decimal]:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _date(text: str) -> Optional[float]:
    """Seconds since the epoch from epoch seconds or a W3C/ISO 8601 date (UTC if no zone)."""
    text = text.strip()
    number = _number(text)
    if number is not None and number.is_finite():
        return float(number)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def _ordered(parse_value: Callable[[str], Any], compare: Callable[[Any, Any], bool]) -> Comparator:
    """A numeric or date comparator: the policy's value must parse, the context's may not."""

    def comparator(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
        expected = parse_value(value)
        if expected is None:
            raise PolicyError(f"not a valid operand: {value!r}")
        actual = None if isinstance(item, bool) else parse_value(_text(item))
        return actual is not None and compare(actual, expected)

    return comparator


def _binary(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    try:
        expected = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PolicyError(f"BinaryEquals value is not base-64: {value!r}") from None
    try:
        return base64.b64decode(_text(item), validate=True) == expected
    except (binascii.Error, ValueError):
        return False


def _ip_address(item: Scalar, value: str, lookup: Optional[Lookup]) -> bool:
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise PolicyError(f"IpAddress value is not an address or CIDR: {value!r}") from None
    try:
        return ipaddress.ip_address(_text(item).strip()) in network
    except ValueError:
        return False


_POSITIVE: dict[str, Comparator] = {
    "StringEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringLike": _string_like,
    "NumericEquals": _ordered(_number, operator.eq),
    "NumericLessThan": _ordered(_number, operator.lt),
    "NumericLessThanEquals": _ordered(_number, operator.le),
    "NumericGreaterThan": _ordered(_number, operator.gt),
    "NumericGreaterThanEquals": _ordered(_number, operator.ge),
    "DateEquals": _ordered(_date, operator.eq),
    "DateLessThan": _ordered(_date, operator.lt),
    "DateLessThanEquals": _ordered(_date, operator.le),
    "DateGreaterThan": _ordered(_date, operator.gt),
    "DateGreaterThanEquals": _ordered(_date, operator.ge),
    "Bool": _bool,
    "BinaryEquals": _binary,
    "IpAddress": _ip_address,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}
# Each negated operator and the operator it negates.
_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_NULL = "Null"
# The operators whose values may hold policy variables.
_WITH_VARIABLES = frozenset(
    name for name in (*_POSITIVE, *_NEGATED) if name.startswith(("String", "Arn", "Bool"))
)

# Base operator names; each also takes the IfExists suffix (except Null) and the
# ForAllValues:/ForAnyValue: qualifiers.
SUPPORTED_OPERATORS: frozenset[str] = frozenset({*_POSITIVE, *_NEGATED, _NULL})


@dataclass(frozen=True)
class Operator:
    """A condition operator as written, split into qualifier, base operator and IfExists."""

    name: str
    base: str
    qualifier: Optional[str]
    if_exists: bool

    @property
    def negated(self) -> bool:
        return self.base in _NEGATED


@cache
def parse_operator(name: str) -> Operator:
    """Read ``ForAnyValue:StringLikeIfExists`` and the like; UnsupportedCondition if unknown."""
    qualifier, sep, rest = name.partition(":")
    if not sep:
        qualifier, rest = "", name
    if qualifier not in ("", FOR_ALL_VALUES, FOR_ANY_VALUE):
        raise UnsupportedCondition(f"unknown set operator in condition operator {name!r}")
    if_exists = rest.endswith(IF_EXISTS) and rest != IF_EXISTS
    base = rest[: -len(IF_EXISTS)] if if_exists else rest
    if base not in SUPPORTED_OPERATORS:
        raise UnsupportedCondition(f"condition operator not supported: {name!r}")
    if base == _NULL and (if_exists or qualifier):
        raise UnsupportedCondition(f"Null takes neither IfExists nor a set operator: {name!r}")
    return Operator(name, base, qualifier or None, if_exists)


def _policy_values(raw: Any, where: str) -> list[str]:
    """A condition's values as strings: one value or a list; JSON booleans as true/false."""
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            values.append(str(item))
        else:
            raise PolicyError(f"condition value of {where} is not a string, number or boolean")
    return values


def _block(condition: Any) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(condition, Mapping) or not all(
        isinstance(keys, Mapping) for keys in condition.values()
    ):
        raise PolicyError("Condition must map operators to {key: value(s)} objects")
    return condition


def validate(condition: Any) -> None:
    """Raise PolicyError/UnsupportedCondition for a block IAM would reject or we cannot run."""
    for name, keys in _block(condition).items():
        parse_operator(name)
        for key, raw in keys.items():
            _policy_values(raw, f"{name} {key}")


def keys_of(condition: Any) -> list[str]:
    """The condition keys a block tests, as written."""
    return [key for keys in _block(condition).values() for key in keys]


def _matches_one(op: Operator, item: Scalar, values: list[str], lookup: Optional[Lookup]) -> bool:
    """One context value against the policy's values: OR for positive, none-of for negated."""
    compare = _POSITIVE[_NEGATED.get(op.base, op.base)]
    hit = any(compare(item, value, lookup) for value in values)
    return not hit if op.negated else hit


def _null(present: bool, values: list[str]) -> bool:
    expected = {value.lower() for value in values}
    if not expected <= {"true", "false"}:
        raise PolicyError(f"Null takes true or false, not {values!r}")
    return ("false" if present else "true") in expected


def _absent(op: Operator) -> bool:
    """The condition's outcome when the key is not in the request context."""
    if op.if_exists or op.qualifier == FOR_ALL_VALUES:
        return True
    if op.qualifier == FOR_ANY_VALUE:
        return False
    return op.negated


def condition_matches(
    op: Operator, key: str, values: list[str], context: RequestContext, variables: bool
) -> bool:
    """One key under one operator.

    An unqualified operator given a multivalued context key (which AWS says to qualify)
    is true if any value matches, for a negated operator if every value does.
    """
    actual = context.get(key)
    present = actual is not None and actual != []
    if op.base == _NULL:
        return _null(present, values)
    if not present:
        return _absent(op)
    lookup = context.variable if variables and op.base in _WITH_VARIABLES else None
    items = actual if isinstance(actual, list) else [actual]
    results = (_matches_one(op, item, values, lookup) for item in items)
    if op.qualifier == FOR_ALL_VALUES or (op.qualifier is None and op.negated):
        return all(results)
    return any(results)


def block_matches(condition: Any, context: RequestContext, variables: bool) -> bool:
    """A whole Condition block: every operator, every key under it, must hold."""
    for name, keys in _block(condition).items():
        op = parse_operator(name)
        for key, raw in keys.items():
            values = _policy_values(raw, f"{name} {key}")
            if not condition_matches(op, key, values, context, variables):
                return False
    return True
