"""``flightpipe backfill``: start executions for objects already under ``incoming/``.

Each execution gets exactly the input the EventBridge rule gives an upload
(:class:`flightpipe.execution_input.ExecutionInput`), so a backfilled file goes through
the same crawl, job and ledger as an uploaded one; the ledger turns a version already
LOADED into a recorded duplicate, never a second load. Starting is throttled to
``max_concurrency`` running backfill executions, so the crawler and the job's
``MaxConcurrentRuns`` see a steady stream rather than the whole prefix at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

from flightpipe.bucket_layout import INCOMING_PREFIX
from flightpipe.execution_input import ExecutionInput
from flightpipe.ops import executions
from flightpipe.ops.target import Target
from flightpipe.ops.warehouse import Queryable, query_ledger

DEFAULT_MAX_CONCURRENCY = 10


@dataclass
class Backfilled:
    """One object and the execution started for it (``flightpipe backfill --json`` entries)."""

    key: str
    version_id: Optional[str]
    last_status: Optional[str]
    execution_arn: Optional[str] = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def current_objects(s3: Any, bucket: str, prefix: str) -> Iterator[ExecutionInput]:
    """The current version of each object under ``prefix`` (folder markers left out)."""
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if not version.get("IsLatest") or version["Key"].endswith("/"):
                continue
            yield ExecutionInput.from_head(bucket, version["Key"], version)


def last_statuses(warehouse: Queryable, bucket: str, prefix: str) -> dict[str, str]:
    """The last ledger status of each file under the prefix, by key."""
    pattern = _like_prefix(f"s3://{bucket}/{prefix}") + "%"
    rows = query_ledger(warehouse, "ops_last_status_by_file.sql", source_prefix_pattern=pattern)
    start = len(f"s3://{bucket}/")
    return {str(row["source_file"])[start:]: str(row["status"]) for row in rows}


def _like_prefix(text: str) -> str:
    """``text`` with LIKE's wildcards escaped by backslash, LIKE's default escape character
    in Redshift (https://docs.aws.amazon.com/redshift/latest/dg/r_patternmatching_condition_like.html)
    and PostgreSQL; the literal quoting then doubles each backslash as Redshift reads it."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plan(
    target: Target, warehouse: Queryable, prefix: str, failed_only: bool
) -> list[tuple[ExecutionInput, Optional[str]]]:
    """The objects to start, each with its last ledger status (None: never attempted)."""
    prefix = prefix or INCOMING_PREFIX
    if not prefix.startswith(INCOMING_PREFIX):
        prefix = INCOMING_PREFIX + prefix
    statuses = last_statuses(warehouse, target.bucket, prefix)
    picked = []
    for document in current_objects(target.client("s3"), target.bucket, prefix):
        status = statuses.get(document.key)
        if failed_only and status == "LOADED":
            continue
        picked.append((document, status))
    return picked


def start_all(
    sfn: Any,
    state_machine_arn: str,
    picked: list[tuple[ExecutionInput, Optional[str]]],
    max_concurrency: int,
    on_start: Callable[[Backfilled], None],
    poll_s: float = 2.0,
) -> list[Backfilled]:
    """Start one execution per object, never more than ``max_concurrency`` running at once."""
    running: list[str] = []
    started = []
    for document, status in picked:
        while len(running) >= max_concurrency:
            running = [arn for arn in running if _is_running(sfn, arn)]
            if len(running) >= max_concurrency:
                time.sleep(poll_s)
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=f"backfill-{uuid.uuid4()}",
            input=document.to_json(),
        )
        item = Backfilled(document.key, document.version_id, status, response["executionArn"])
        running.append(item.execution_arn or "")
        started.append(item)
        on_start(item)
    return started


def _is_running(sfn: Any, arn: str) -> bool:
    return sfn.describe_execution(executionArn=arn)["status"] not in executions.TERMINAL
