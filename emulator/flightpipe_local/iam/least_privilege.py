"""Least privilege, both ways: what each role's calls used against what its policies grant.

The local stack records every decision it takes for a stack role
(:class:`~flightpipe_local.iam.enforcement.CallLog`). Set against the role's Allow
statements, that gives per role the actions and resources its calls used, and every
granted action on a granted resource that no recorded call needed: each such grant is
either removed from serverless.yml or kept for a reason AWS has that the local stack
cannot show (:data:`AWS_ONLY_GRANTS`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from flightpipe_local.iam.enforcement import RecordedCall, role_policies
from flightpipe_local.iam.patterns import action_matches, arn_matches

# Granted actions no local run calls, and when AWS needs them: keyed by action, by service
# prefix (a key ending in ":"), or by "<role's logical id>/<action>" for one role's grant.
# Each is kept in serverless.yml for that reason.
_CRAWLER = (
    "Glue's crawler is AWS's code (the local crawler stands in for it): it reads the database"
    " and its tables and updates tables and partitions as a crawl finds them, the catalog"
    " actions AWS lists for a crawler's role"
    " (https://docs.aws.amazon.com/glue/latest/dg/crawler-prereqs.html)"
)
_EVENT_MODE = (
    "the queue actions Glue lists for an S3 event mode crawler's role, on its queue and"
    " dead-letter queue (https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-event-notifications.html);"
    " the local crawler calls only those it needs"
)
AWS_ONLY_GRANTS: Mapping[str, str] = {
    "logs:": "CloudWatch Logs: Lambda, Glue and Step Functions write their logs there on AWS;"
    " the local stack keeps them in files",
    "xray:": "X-Ray tracing of the state machine on AWS; the local stack traces nothing",
    "kms:": "SNS asks KMS for a data key as the publisher of a message to a topic encrypted with"
    " a customer managed key (NotificationsKey); the local SNS encrypts nothing",
    "glue:BatchStopJobRun": "Step Functions stops the job run when the execution is stopped"
    " or the task times out (glue:startJobRun.sync)",
    "glue:GetJobRuns": "what glue:startJobRun.sync may call while it waits for the run, as"
    " AWS's Step Functions guide lists it",
    "s3:AbortMultipartUpload": "boto3 aborts a multipart upload whose part failed; the local"
    " runs' uploads do not fail",
    "s3:GetObjectVersion": "reads of an object by version id; which a run makes depends on"
    " whether the event named a version",
    "redshift-data:CancelStatement": "the Data API client cancels a statement it stops waiting"
    " for (a Lambda or job timeout)",
    "redshift-data:GetStatementResult": "results of a query statement; which role reads"
    " results depends on the run",
    "secretsmanager:GetSecretValue": "Data API sign-in with a secret (existingSecretArn), not"
    " the default deployment's IAM credentials",
    "PrepareWarehouseRole/s3:ListBucket": "lists the airports key when its HeadObject"
    " answers 403, to tell a missing file from a refused read; the end-to-end runs always"
    " have the file",
    "glue:GetDatabase": _CRAWLER,
    "glue:GetTables": _CRAWLER,
    "glue:UpdateTable": _CRAWLER,
    "glue:GetPartition": _CRAWLER,
    "glue:GetPartitions": _CRAWLER,
    "glue:BatchGetPartition": _CRAWLER,
    "glue:CreatePartition": _CRAWLER,
    "glue:BatchCreatePartition": _CRAWLER,
    "glue:UpdatePartition": _CRAWLER,
    "glue:BatchUpdatePartition": _CRAWLER,
    "sqs:ReceiveMessage": _EVENT_MODE,
    "sqs:DeleteMessage": _EVENT_MODE,
    "sqs:GetQueueUrl": _EVENT_MODE,
    "sqs:GetQueueAttributes": _EVENT_MODE,
    "sqs:ListDeadLetterSourceQueues": _EVENT_MODE,
    "sqs:ListQueueTags": _EVENT_MODE,
    "sqs:SetQueueAttributes": _EVENT_MODE,
    "sqs:PurgeQueue": _EVENT_MODE,
    "sqs:SendMessage": "Glue's crawler sets aside events it cannot process in its"
    " DlqEventQueueArn (the local crawler leaves them to the queue's redrive policy)",
}


@dataclass(frozen=True)
class Grant:
    """One granted action on one granted resource of a role's Allow statements."""

    action: str
    resource: str

    def needed_by(self, call: RecordedCall) -> bool:
        return (
            call.allowed
            and action_matches(self.action, call.action)
            and (self.resource == "*" or arn_matches(self.resource, call.resource, None))
        )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants_of(policies: Iterable[Mapping[str, Any]]) -> list[Grant]:
    """Every (action, resource) pair of the policies' Allow statements."""
    grants: list[Grant] = []
    for policy in policies:
        for statement in _as_list(policy.get("Statement") or []):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement.get("Resource", "*")):
                    grants.append(Grant(str(action), str(resource)))
    return grants


def aws_only_reason(role_name: str, grant: Grant) -> str:
    """Why ``grant`` is kept although no local call needed it ("" when nothing says so)."""
    for key, reason in AWS_ONLY_GRANTS.items():
        role, _, action = key.rpartition("/")
        if role and f"-{role}-" not in f"-{role_name}-":
            continue
        if grant.action == action or (action.endswith(":") and grant.action.startswith(action)):
            return reason
    return ""


def role_report(role_name: str, grants: Sequence[Grant], calls: Sequence[RecordedCall]) -> dict:
    """One role: the calls it made (allowed and refused), its grants no call needed."""
    used = sorted({(c.action, c.resource) for c in calls if c.allowed})
    refused = sorted({(c.action, c.resource) for c in calls if not c.allowed})
    unused = [g for g in grants if not any(g.needed_by(c) for c in calls)]
    return {
        "role": role_name,
        "calls": len(calls),
        "used": [{"action": a, "resource": r} for a, r in used],
        "refused": [{"action": a, "resource": r} for a, r in refused],
        "granted": len(grants),
        "unused": [
            {
                "action": g.action,
                "resource": g.resource,
                "kept_because": aws_only_reason(role_name, g),
            }
            for g in unused
        ],
    }


def snapshot(calls: Sequence[RecordedCall], role_names: Mapping[str, str]) -> dict[str, Any]:
    """What a stack's run leaves for the report: its roles' grants (read while the emulated
    IAM still exists) and its recorded calls."""
    return {
        "roles": {
            arn: {
                "name": name,
                "grants": [g.__dict__ for g in grants_of(role_policies(name))],
            }
            for arn, name in role_names.items()
        },
        "calls": [call.__dict__ for call in calls],
    }


def report(snapshots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per role, over every run's snapshot: the calls it made against what it is granted."""
    grants: dict[str, tuple[str, list[Grant]]] = {}
    made: dict[str, list[RecordedCall]] = {}
    for taken in snapshots:
        for arn, role in taken["roles"].items():
            grants.setdefault(arn, (role["name"], [Grant(**g) for g in role["grants"]]))
            made.setdefault(arn, [])
        for call in taken["calls"]:
            made.setdefault(call["role_arn"], []).append(RecordedCall(**call))
    # One role name per logical role: stacks of one template give their roles the same names.
    by_name: dict[str, tuple[list[Grant], list[RecordedCall]]] = {}
    for arn, (name, role_grants) in grants.items():
        entry = by_name.setdefault(name, (role_grants, []))
        entry[1].extend(made.get(arn, []))
    return [role_report(name, g, c) for name, (g, c) in sorted(by_name.items())]


def read_snapshots(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    ]


def format_report(roles: Sequence[Mapping[str, Any]]) -> str:
    """The report as text: per role, its calls, the actions used, and each unused grant."""
    lines = []
    for role in roles:
        used = sorted({u["action"] for u in role["used"]})
        lines.append(
            f"{role['role']}: {role['calls']} calls, {len(used)} actions used of"
            f" {role['granted']} grants; {len(role['refused'])} refused"
        )
        lines.extend(f"  used    {action}" for action in used)
        for unused in role["unused"]:
            reason = unused["kept_because"] or "NOT NEEDED: remove it"
            lines.append(f"  unused  {unused['action']} on {unused['resource']}: {reason}")
    return "\n".join(lines)


def markdown_table(roles: Sequence[Mapping[str, Any]]) -> str:
    """Per role: calls recorded, actions used, grants, and the grants no call needed (each
    kept for its reason, or to be removed)."""
    lines = [
        "| role | calls | actions used | grants (action, resource pairs) | unused, kept for AWS"
        " | unused, no reason |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for role in roles:
        kept = sum(1 for u in role["unused"] if u["kept_because"])
        lines.append(
            f"| {_logical_name(role['role'])} | {role['calls']} |"
            f" {len({u['action'] for u in role['used']})} | {role['granted']} | {kept} |"
            f" {len(role['unused']) - kept} |"
        )
    return "\n".join(lines)


def _logical_name(role_name: str) -> str:
    """``flightpipe-dev-EtlJobRole-70ABC599`` → ``EtlJobRole`` (the template's logical id)."""
    parts = role_name.split("-")
    return parts[-2] if len(parts) >= 3 else role_name


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m flightpipe_local.iam.least_privilege DIR [--json OUT]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="the stacks' call snapshots")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the summary table only")
    args = parser.parse_args(argv)
    roles = report(read_snapshots(args.directory))
    if args.markdown:
        print(markdown_table(roles))
        return 0
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(roles, indent=2) + "\n", encoding="utf-8")
    print(format_report(roles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
