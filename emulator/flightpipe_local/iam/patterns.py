"""Policy strings: wildcards, policy variables and ARN matching, as IAM reads them.

One parser serves actions, resources and condition values, because IAM gives them the same
syntax with different rules:

- ``*`` (any run of characters) and ``?`` (any one character) are wildcards in actions,
  resources, ``StringLike`` and ``ArnLike`` values, and plain characters in ``StringEquals``.
- ``${key}`` is replaced by the request context's value of ``key`` (a single-valued key),
  ``${key, 'default'}`` falls back to the default, and ``${*}``, ``${?}``, ``${$}`` stand for
  the literal characters. A variable with no value makes the string match nothing. Variables
  exist only in policies of ``"Version": "2012-10-17"``; elsewhere they are literal text.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
- A resource ARN is matched segment by segment (the six colon-delimited parts, the last one
  being everything after the fifth colon), a wildcard spanning anything within its segment;
  a ``*`` that ends the pattern's last segment may expand across the remaining colons
  ("arn:aws:s3:*"). Variables in a Resource are substituted in the resource part only.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
  The ARN condition operators compare the same way, each of the six components separately:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Union

# Looks a variable's value up in the request context; None when the key has no single value.
Lookup = Callable[[str], Optional[str]]

ARN_SEGMENTS = 6
# A variable reference, or a wildcard character.
_SPECIAL = re.compile(r"\$\{([^}]*)\}|[*?]")
_VARIABLE = re.compile(r"\s*([^\s,']+)\s*(?:,\s*'([^']*)'\s*)?")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class _Wildcard:
    """``*`` or ``?`` from the policy text (never from a substituted value)."""

    char: str


STAR = _Wildcard("*")
QMARK = _Wildcard("?")


@dataclass(frozen=True)
class _Variable:
    name: str
    default: Optional[str]
    raw: str


# A parsed policy string: literal text, wildcards, variables.
Token = Union[str, _Wildcard, _Variable]
# A resolved one: literal text and wildcards only.
Piece = Union[str, _Wildcard]


def _special_token(match: re.Match[str]) -> Token:
    if match.group(0) in ("*", "?"):
        return STAR if match.group(0) == "*" else QMARK
    inside = match.group(1)
    if inside in _ESCAPES:
        return _ESCAPES[inside]
    variable = _VARIABLE.fullmatch(inside)
    if variable is None:  # not a variable reference after all: keep the text
        return match.group(0)
    return _Variable(variable.group(1), variable.group(2), match.group(0))


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple[Token, ...]:
    """Split a policy string into literal text, wildcards and variable references."""
    tokens: list[Token] = []
    position = 0
    for match in _SPECIAL.finditer(text):
        if match.start() > position:
            tokens.append(text[position : match.start()])
        tokens.append(_special_token(match))
        position = match.end()
    if position < len(text):
        tokens.append(text[position:])
    return tuple(tokens)


def variables_in(text: str) -> list[str]:
    """The context keys a policy string refers to as ``${key}`` (escapes excluded)."""
    return [token.name for token in parse(text) if isinstance(token, _Variable)]


def resolve(tokens: tuple[Token, ...], lookup: Optional[Lookup]) -> Optional[list[Piece]]:
    """Substitute variables; None if one has no value and no default.

    ``lookup`` None means variables are not in force (policy language before 2012-10-17),
    so references stay as the literal text they were written as.
    """
    pieces: list[Piece] = []
    for token in tokens:
        if not isinstance(token, _Variable):
            pieces.append(token)
            continue
        if lookup is None:
            pieces.append(token.raw)
            continue
        value = lookup(token.name)
        if value is None:
            value = token.default
        if value is None:
            return None
        pieces.append(value)
    return pieces


def as_text(pieces: list[Piece]) -> str:
    """The resolved string with wildcards as plain characters (StringEquals and friends)."""
    return "".join(piece.char if isinstance(piece, _Wildcard) else piece for piece in pieces)


def as_regex(pieces: list[Piece], ignore_case: bool = False) -> re.Pattern[str]:
    """The resolved string as a full-match regex: ``*`` any run, ``?`` any one character."""
    parts = []
    for piece in pieces:
        if isinstance(piece, _Wildcard):
            parts.append(".*" if piece.char == "*" else ".")
        else:
            parts.append(re.escape(piece))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def like(pattern: str, value: str, lookup: Optional[Lookup], ignore_case: bool = False) -> bool:
    """``value`` matches the wildcard pattern (after variables); False if a variable is missing."""
    pieces = resolve(parse(pattern), lookup)
    return pieces is not None and as_regex(pieces, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: wildcards, case-insensitive, no variables."""
    return like(pattern, action, None, ignore_case=True)


def _split_segments(tokens: tuple[Token, ...]) -> list[list[Token]]:
    """Split parsed tokens at the colons of the policy's own text, into at most six segments."""
    segments: list[list[Token]] = [[]]
    for token in tokens:
        if not isinstance(token, str):
            segments[-1].append(token)
            continue
        for index, text in enumerate(token.split(":")):
            if index > 0 and len(segments) < ARN_SEGMENTS:
                segments.append([])
            elif index > 0:
                text = ":" + text
            if text:
                segments[-1].append(text)
    return segments


def _segment_regexes(pattern: str, lookup: Optional[Lookup]) -> Optional[list[re.Pattern[str]]]:
    """One regex per segment; variables substituted in the resource part (sixth) only."""
    regexes = []
    for index, segment in enumerate(_split_segments(parse(pattern))):
        pieces = resolve(tuple(segment), lookup if index == ARN_SEGMENTS - 1 else None)
        if pieces is None:
            return None
        regexes.append(as_regex(pieces))
    return regexes


def _ends_with_star(pattern: str) -> bool:
    tokens = parse(pattern)
    return bool(tokens) and tokens[-1] == STAR


def arn_matches(pattern: str, arn: str, lookup: Optional[Lookup]) -> bool:
    """Whether a Resource (or ArnLike) pattern covers ``arn``; case-sensitive.

    A pattern with a variable that has no value matches nothing, as AWS documents for
    Resource and NotResource.
    """
    regexes = _segment_regexes(pattern, lookup)
    if regexes is None:
        return False
    values = arn.split(":", ARN_SEGMENTS - 1)
    if len(regexes) < len(values) and _ends_with_star(pattern):
        # The trailing * expands beyond the colons: the last segment takes the rest.
        values = [*values[: len(regexes) - 1], ":".join(values[len(regexes) - 1 :])]
    if len(regexes) != len(values):
        return False
    return all(regex.fullmatch(value) for regex, value in zip(regexes, values))
