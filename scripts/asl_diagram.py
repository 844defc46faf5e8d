#!/usr/bin/env python3
"""The state machine as a Mermaid ``stateDiagram-v2``, drawn from statemachine/pipeline.asl.yml.

Every state is a node; an edge is a ``Next``, a ``Default`` (``otherwise``), a Choice rule
(its condition), or a ``Catch`` (``on <errors>``); ``End`` and the Succeed and Fail states lead
to ``[*]``. A Parallel state is a composite state holding its branches, a Map state its
iterator. Retries are not drawn (they return to the same state).

    scripts/asl_diagram.py            print the diagram
    scripts/asl_diagram.py --write    put it in README.md between the diagram markers
    scripts/asl_diagram.py --check    exit 1 when README.md's diagram is not this one

tests/test_readme.py fails when README.md's diagram differs from what this renders.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
ASL = REPO_ROOT / "statemachine" / "pipeline.asl.yml"
README = REPO_ROOT / "README.md"
START = "<!-- state-machine-diagram:start (scripts/asl_diagram.py --write) -->"
END = "<!-- state-machine-diagram:end -->"
INDENT = "    "

# Choice comparison operators, as the diagram writes them (the *Path forms compare with a path).
_OPERATORS = {
    "StringEquals": "=",
    "StringMatches": "matches",
    "NumericEquals": "=",
    "NumericLessThan": "<",
    "NumericLessThanEquals": "<=",
    "NumericGreaterThan": ">",
    "NumericGreaterThanEquals": ">=",
    "BooleanEquals": "=",
    "TimestampEquals": "=",
    "TimestampLessThan": "<",
    "TimestampGreaterThan": ">",
}
# ${toNumber(${param:sparkThresholdBytes})} and the like: the stage parameter's name.
_PARAMETER = re.compile(
    r"\$\{[^{}]*?\$\{param:([A-Za-z0-9_]+)\}[^{}]*\}|\$\{param:([A-Za-z0-9_]+)\}"
)


def load_definition(path: Path = ASL) -> dict[str, Any]:
    """The ASL file as data (its ``${...}`` framework variables are plain strings to YAML)."""
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def _path(value: Any) -> str:
    text = str(value)
    return text[2:] if text.startswith("$.") else text


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return _PARAMETER.sub(lambda m: m.group(1) or m.group(2), text)


def condition(rule: Mapping[str, Any]) -> str:
    """A Choice rule as a short label: ``size >= sparkThresholdBytes``, ``etl present``."""
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            return joiner.join(condition(part) for part in rule[combinator])
    if "Not" in rule:
        return "not " + condition(rule["Not"])
    variable = _path(rule.get("Variable", "?"))
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        if key == "IsNull":
            return f"{variable} {'null' if value else 'not null'}"
        if key.startswith("Is"):  # IsNumeric, IsString, IsBoolean, IsTimestamp
            kind = key[2:].lower()
            return f"{variable} {kind}" if value else f"{variable} not {kind}"
        if key.endswith("Path") and key[:-4] in _OPERATORS:
            return f"{variable} {_OPERATORS[key[:-4]]} {_path(value)}"
        if key in _OPERATORS:
            return f"{variable} {_OPERATORS[key]} {_value(value)}"
    return variable


def _errors(catch: Mapping[str, Any]) -> str:
    errors = [str(e) for e in catch.get("ErrorEquals", [])]
    return "on error" if errors == ["States.ALL"] else "on " + ", ".join(errors)


def _label(text: str) -> str:
    """Text Mermaid takes after a transition's colon: no colons, semicolons or quotes."""
    cleaned = re.sub(r"[:;\"'#{}]", " ", text)
    return re.sub(r"\s+", " ", cleaned).strip()


def _edges(name: str, state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(target, label) of every way out of ``state``; ``[*]`` for the end."""
    kind = state.get("Type")
    if kind == "Choice":
        for rule in state.get("Choices", []):
            yield str(rule["Next"]), condition(rule)
        if "Default" in state:
            yield str(state["Default"]), "otherwise"
    elif kind in ("Succeed", "Fail") or state.get("End"):
        yield "[*]", ""
    if "Next" in state:
        yield str(state["Next"]), ""
    for catch in state.get("Catch", []):
        yield str(catch["Next"]), _errors(catch)


def _machine(definition: Mapping[str, Any], depth: int) -> list[str]:
    pad = INDENT * depth
    lines = [f"{pad}[*] --> {definition['StartAt']}"]
    composites: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for name, state in definition["States"].items():
        kind = state.get("Type")
        if kind == "Parallel":
            composites.append(f"{pad}state {name} {{")
            for index, branch in enumerate(state.get("Branches", [])):
                if index:
                    composites.append(f"{pad}{INDENT}--")
                composites.extend(_machine(branch, depth + 1))
            composites.append(f"{pad}}}")
        elif kind == "Map":
            iterator = state.get("ItemProcessor") or state.get("Iterator") or {}
            if iterator.get("States"):
                composites.append(f"{pad}state {name} {{")
                composites.extend(_machine(iterator, depth + 1))
                composites.append(f"{pad}}}")
        for target, label in _edges(name, state):
            key = (name, target, _label(label))
            if key in seen:
                continue
            seen.add(key)
            suffix = f" : {key[2]}" if key[2] else ""
            lines.append(f"{pad}{name} --> {target}{suffix}")
    return composites + lines


def render(definition: Mapping[str, Any]) -> str:
    """The Mermaid diagram, fenced, as README.md holds it between the markers."""
    body = "\n".join(_machine(definition, 1))
    return f"```mermaid\nstateDiagram-v2\n{body}\n```"


def readme_diagram(text: str) -> str:
    """What README.md holds between the markers (without them)."""
    if START not in text or END not in text:
        raise ValueError(f"README.md lacks the diagram markers {START!r} ... {END!r}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def with_diagram(text: str, diagram: str) -> str:
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{diagram}\n{END}{tail}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md differs")
    args = parser.parse_args(argv)
    diagram = render(load_definition())
    if not (args.write or args.check):
        print(diagram)
        return 0
    text = README.read_text(encoding="utf-8")
    if args.check:
        if readme_diagram(text) != diagram:
            print("README.md's state machine diagram is stale: scripts/asl_diagram.py --write")
            return 1
        return 0
    README.write_text(with_diagram(text, diagram), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
