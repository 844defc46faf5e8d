#!/usr/bin/env python3
"""Lint every IAM policy document of a packaged CloudFormation template with parliament.

parliament (https://github.com/duo-labs/parliament) checks each statement against AWS's
Service Authorization Reference: every action exists, each action is given a resource of a
type it takes (``s3:GetObject`` on an object ARN, not on the bucket's), each condition key
is one the action supports, the ARNs are well formed. It reads plain JSON policies, so this
script first resolves the template's intrinsic functions:

- ``Fn::If`` from the template's own ``Conditions``, evaluated for every combination of the
  parameters they read (each allowed value of a parameter with ``AllowedValues``, empty and
  set for the others): every deployment mode is linted, each as it would deploy;
- ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and ``Fn::Join`` into representative values: account
  123456789012 in us-east-1, each resource's physical name where the template gives one
  (else its logical id), and the ARN or name CloudFormation returns for its type.

The documents linted are the identity policies (``Policies`` of ``AWS::IAM::Role``,
``AWS::IAM::Policy``, ``AWS::IAM::ManagedPolicy``) and the resource policies of buckets,
queues and topics. Trust policies (``AssumeRolePolicyDocument``) are not: they have no
``Resource`` element, which parliament requires. A resource of another type that carries
a policy document stops the lint, so no document is skipped unseen.

Findings of parliament's default checks of LOW severity and above (its command line's
default) fail the lint, unless ``scripts/policy_lint.yaml`` suppresses them: parliament's
own ``ignore_locations`` format, where each entry must say why in ``reason``. Besides
parliament's location fields, an entry can match ``policy`` (``<logical id>/<policy name>``)
and ``statement`` (the statement's Sid, else its position ``#1``, ``#2``...), and ``detail``
(the finding's detail as text); each value is a regular expression that must match whole.
A suppression that matches no finding fails the lint too, so none outlives its reason.

    .venv-lint/bin/python scripts/lint_policies.py [TEMPLATE] [--config FILE]

Exit status: 0 no findings, 1 findings (one a line), 2 the template cannot be linted.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = REPO_ROOT / ".serverless" / "cloudformation-template-update-stack.json"
DEFAULT_CONFIG = REPO_ROOT / "scripts" / "policy_lint.yaml"
# parliament's command line shows findings from this severity up by default.
MINIMUM_SEVERITY = "LOW"

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK = "flightpipe-dev"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/1",
}
# The value a parameter with an empty default stands for when it is set.
PARAMETER_VALUES: dict[str, Any] = {
    "ExistingWorkgroupArn": (
        f"arn:{PARTITION}:redshift-serverless:{REGION}:{ACCOUNT}"
        ":workgroup/0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"
    ),
    "ExistingClusterId": "analytics-cluster",
    "ExistingSecretArn": (
        f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:flightpipe-loader-AbCdEf"
    ),
    "AdminSecretArn": (
        f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:redshift-admin-AbCdEf"
    ),
    "RedshiftDbUser": "flightpipe_loader",
    "WorkgroupSubnetIds": ["subnet-0a1b2c3d", "subnet-1a2b3c4d", "subnet-2a3b4c5d"],
    "WorkgroupSecurityGroupIds": ["sg-0a1b2c3d"],
    "AlertEmail": "data-team@example.com",
}
# Properties that name a resource (its physical name), by resource type.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Glue::Job": "Name",
    "AWS::Glue::Crawler": "Name",
    "AWS::Glue::SecurityConfiguration": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::RedshiftServerless::Namespace": "NamespaceName",
    "AWS::RedshiftServerless::Workgroup": "WorkgroupName",
    "AWS::Events::Rule": "Name",
}
# Resource types whose Ref is their ARN (the others: their name, or a queue's URL).
REF_IS_ARN = (
    "AWS::SNS::Topic",
    "AWS::StepFunctions::StateMachine",
    "AWS::IAM::ManagedPolicy",
    "AWS::SecretsManager::Secret",
)
# The Fn::GetAtt attribute that returns the ARN, where it is not "Arn".
ARN_ATTRIBUTES = {
    "AWS::RedshiftServerless::Workgroup": "Workgroup.WorkgroupArn",
    "AWS::RedshiftServerless::Namespace": "Namespace.NamespaceArn",
}
# Resource types whose PolicyDocument is one resource policy.
RESOURCE_POLICY_TYPES = ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy")
IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


class LintError(Exception):
    """The template cannot be linted as it is (an unknown intrinsic, type or attribute)."""


# ------------------------------------------------------------------ resolving the template


class Resolver:
    """The template's intrinsic functions, resolved for one set of parameter values."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters = parameters
        self.conditions: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise LintError(f"unknown condition {name}")
            self.conditions[name] = self._truth(definitions[name])
        return self.conditions[name]

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Condition":
                return self.condition(argument)
            if function == "Fn::Equals":
                left, right = (self.resolve(value) for value in argument)
                return left == right
            if function == "Fn::Not":
                return not self._truth(argument[0])
            if function == "Fn::And":
                return all(self._truth(value) for value in argument)
            if function == "Fn::Or":
                return any(self._truth(value) for value in argument)
        raise LintError(f"unsupported condition {json.dumps(node)}")

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function replaced by its value (``None``: NoValue)."""
        if isinstance(node, list):
            values = [self.resolve(value) for value in node]
            return [value for value in values if value is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical, attribute = (
                    argument.split(".", 1) if isinstance(argument, str) else argument
                )
                return self.get_att(logical, attribute)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                delimiter, values = argument
                return delimiter.join(str(value) for value in self.resolve(values))
            if key.startswith("Fn::"):
                raise LintError(f"unsupported intrinsic function {key}")
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not None}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return None
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self._resource_value(name, None)
        raise LintError(f"Ref to unknown {name}")

    def get_att(self, logical: str, attribute: str) -> Any:
        if logical not in self.resources:
            raise LintError(f"Fn::GetAtt of unknown resource {logical}")
        return self._resource_value(logical, attribute)

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def name_of(self, logical: str) -> str:
        """The resource's physical name: its name property when the template sets one."""
        body = self.resources[logical]
        prop = NAME_PROPERTIES.get(body["Type"])
        given = body.get("Properties", {}).get(prop) if prop else None
        return str(self.resolve(given)) if given is not None else f"{STACK}-{logical}".lower()

    def _resource_value(self, logical: str, attribute: str | None) -> Any:
        """What ``Ref`` (``attribute`` None) or ``Fn::GetAtt`` returns for the resource."""
        kind = self.resources[logical]["Type"]
        name = self.name_of(logical)
        arn = self._arn(kind, name)
        if attribute is None:
            if kind == "AWS::SQS::Queue":
                return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            if kind in REF_IS_ARN:
                return arn
            if kind == "AWS::Glue::Database":
                given = self.resources[logical]["Properties"]["DatabaseInput"].get("Name")
                return str(self.resolve(given)) if given is not None else name
            if kind in NAME_PROPERTIES:
                return name
        elif arn is not None and attribute == ARN_ATTRIBUTES.get(kind, "Arn"):
            return arn
        what = "Ref" if attribute is None else f"Fn::GetAtt {attribute}"
        raise LintError(f"no representative value for {what} of {logical} ({kind})")

    @staticmethod
    def _arn(kind: str, name: str) -> str | None:
        regional = f"arn:{PARTITION}:{{}}:{REGION}:{ACCOUNT}"
        return {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": f"{regional.format('sqs')}:{name}",
            "AWS::SNS::Topic": f"{regional.format('sns')}:{name}",
            "AWS::Lambda::Function": f"{regional.format('lambda')}:function:{name}",
            "AWS::StepFunctions::StateMachine": f"{regional.format('states')}:stateMachine:{name}",
            "AWS::Logs::LogGroup": f"{regional.format('logs')}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}",
            "AWS::Events::Rule": f"{regional.format('events')}:rule/{name}",
            # A KMS key's ARN ends in its generated key id.
            "AWS::KMS::Key": f"{regional.format('kms')}:key/3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
            # A secret's ARN ends in six random characters after its name.
            "AWS::SecretsManager::Secret": (
                f"{regional.format('secretsmanager')}:secret:{name}-AbCdEf"
            ),
            # Redshift Serverless ARNs end in a generated id, not the name.
            "AWS::RedshiftServerless::Workgroup": (
                f"{regional.format('redshift-serverless')}"
                ":workgroup/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
            ),
            "AWS::RedshiftServerless::Namespace": (
                f"{regional.format('redshift-serverless')}"
                ":namespace/2b3c4d5e-6f7a-8b9c-0d1e-2f3a4b5c6d7e"
            ),
        }.get(kind)


def scenarios(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of values of the parameters the template's conditions read."""
    declared = template.get("Parameters", {})
    read = set(re.findall(r'"Ref": "([^"]+)"', json.dumps(template.get("Conditions", {}))))
    base: dict[str, Any] = {}
    choices: dict[str, list[Any]] = {}
    for name, parameter in declared.items():
        default = parameter.get("Default", "")
        value = default if default not in ("", None) else PARAMETER_VALUES.get(name)
        if value is None:
            raise LintError(f"parameter {name}: no representative value (PARAMETER_VALUES)")
        if parameter.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",")
        base[name] = value
        if name in read:
            empty: Any = [""] if parameter.get("Type") == "CommaDelimitedList" else ""
            choices[name] = list(parameter.get("AllowedValues") or [empty, value])
    names = sorted(choices)
    for values in itertools.product(*(choices[name] for name in names)):
        yield {**base, **dict(zip(names, values))}


@dataclass(frozen=True)
class Document:
    """One policy document of the template, as deployed in one scenario."""

    policy: str  # <logical id>/<policy name>
    document: dict[str, Any]


def documents(template: dict[str, Any], parameters: dict[str, Any]) -> Iterator[Document]:
    resolver = Resolver(template, parameters)
    for logical, body in template.get("Resources", {}).items():
        if "Condition" in body and not resolver.condition(body["Condition"]):
            continue
        kind, properties = body["Type"], body.get("Properties", {})
        found: list[tuple[str, Any]] = []
        if kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                found.append((f"{logical}/{resolver.resolve(policy['PolicyName'])}", policy))
            properties = {k: v for k, v in properties.items() if k != "Policies"}
            properties.pop("AssumeRolePolicyDocument", None)  # trust policy: see the docstring
        elif kind in IDENTITY_POLICY_TYPES + RESOURCE_POLICY_TYPES:
            found.append((logical, properties))
            properties = {}
        if "PolicyDocument" in json.dumps(properties):
            raise LintError(f"{logical} ({kind}) holds a policy document this lint does not read")
        for policy, holder in found:
            document = resolver.resolve(holder["PolicyDocument"])
            if isinstance(document, str):
                document = json.loads(document)
            yield Document(policy, document)


# ------------------------------------------------------------------ parliament


@dataclass
class Suppression:
    issue: str
    match: dict[str, Any]
    reason: str
    used: bool = False


def load_suppressions(path: Path) -> list[Suppression]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    suppressions = []
    for issue, settings in (loaded or {}).items():
        if set(settings) != {"ignore_locations"}:
            raise LintError(f"{path}: {issue}: only ignore_locations may be set")
        for entry in settings["ignore_locations"]:
            entry = dict(entry)
            reason = " ".join(str(entry.pop("reason", "")).split())
            if len(reason.split()) < 5:
                raise LintError(f"{path}: {issue}: {entry} needs a reason (a sentence)")
            suppressions.append(Suppression(issue, entry, reason))
    return suppressions


@dataclass(frozen=True)
class Found:
    issue: str
    severity: str
    title: str
    policy: str
    statement: str
    detail: str
    location: str

    def line(self) -> str:
        where = f"{self.policy} statement {self.statement}" if self.statement else self.policy
        text = f"{where}: {self.issue} ({self.severity}) {self.title}"
        return text + (f": {self.detail}" if self.detail else "")


def statement_at(text: str, document: dict[str, Any], line: int | None) -> str:
    """The Sid (else ``#n``) of the statement whose JSON holds ``line`` of ``text``."""
    if not line:
        return ""
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        return str(statements.get("Sid") or "#1")
    starts = [i + 1 for i, row in enumerate(text.splitlines()) if re.fullmatch(r" {4}\{", row)]
    index = sum(1 for start in starts if start <= line) - 1
    if index < 0 or index >= len(statements):
        return ""
    return str(statements[index].get("Sid") or f"#{index + 1}")


def lint(
    template: dict[str, Any], suppressions: list[Suppression]
) -> tuple[list[Found], list[Suppression]]:
    """Unsuppressed findings of every distinct document, and the suppressions never used."""
    import parliament
    from parliament.cli import is_finding_filtered

    seen: set[tuple[str, str]] = set()
    findings: dict[tuple[str, ...], Found] = {}
    for parameters in scenarios(template):
        for item in documents(template, parameters):
            text = json.dumps(item.document, indent=2, sort_keys=False)
            if (item.policy, text) in seen:
                continue
            seen.add((item.policy, text))
            policy = parliament.analyze_policy_string(
                text, filepath=item.policy, ignore_private_auditors=True
            )
            for finding in policy.findings:
                finding = parliament.enhance_finding(finding)
                if is_finding_filtered(finding, MINIMUM_SEVERITY):
                    continue
                location = dict(finding.location or {})
                statement = statement_at(text, item.document, location.get("line"))
                detail = (
                    finding.detail
                    if isinstance(finding.detail, str)
                    else json.dumps(finding.detail, sort_keys=True)
                )
                fields = {
                    **{k: v for k, v in location.items() if k not in ("line", "column")},
                    "policy": item.policy,
                    "statement": statement,
                    "detail": detail,
                }
                matched = [s for s in suppressions if _matches(s, finding.issue, fields)]
                for suppression in matched:
                    suppression.used = True
                if matched:
                    continue
                found = Found(
                    finding.issue,
                    finding.severity,
                    finding.title,
                    item.policy,
                    statement,
                    detail or "",
                    json.dumps(fields.get("string", "")),
                )
                findings.setdefault(
                    (found.policy, found.statement, found.issue, found.detail), found
                )
    return list(findings.values()), [s for s in suppressions if not s.used]


def _matches(suppression: Suppression, issue: str, fields: dict[str, Any]) -> bool:
    if suppression.issue != issue:
        return False
    for key, patterns in suppression.match.items():
        value = str(fields.get(key, ""))
        patterns = patterns if isinstance(patterns, list) else [patterns]
        if not any(re.fullmatch(str(pattern), value, re.DOTALL) for pattern in patterns):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    try:
        template = json.loads(args.template.read_text(encoding="utf-8"))
        suppressions = load_suppressions(args.config)
        findings, unused = lint(copy.deepcopy(template), suppressions)
    except (OSError, ValueError, LintError) as error:
        print(f"lint_policies: {error}", file=sys.stderr)
        return 2
    for found in sorted(findings, key=lambda f: (f.policy, f.statement, f.issue, f.detail)):
        print(found.line())
    for suppression in unused:
        print(
            f"{args.config.name}: {suppression.issue} {json.dumps(suppression.match)} "
            "matches no finding: remove it"
        )
    return 1 if findings or unused else 0


if __name__ == "__main__":
    sys.exit(main())
