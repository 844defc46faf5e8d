"""``flightpipe backfill``: start executions for objects already under ``incoming/``.

Each execution gets the input the EventBridge rule gives an upload
(:class:`flightpipe.execution_input.ExecutionInput`) of the key's current version, so a
backfilled file goes through the same crawl, job and ledger as an uploaded one; the ledger
turns a version already LOADED into a recorded duplicate, never a second load.

No event, no sequencer: the input's ``sequencer`` is the ordering key the ledger recorded
for that version (its event's, when an attempt recorded one), else the key just after the
greatest one recorded for the file — the version was current when the ledger was read, so
it is newer than every version recorded and older than any uploaded since
(:mod:`flightpipe.sequencer`). Its load then replaces older versions' rows and never a newer
version's.

``--failed-only`` picks the keys whose current version nothing has settled: no attempt of
it LOADED it, found it already loaded (DUPLICATE) or found a newer version loaded
(SUPERSEDED) — whatever became of the key's other versions, and including a version no
execution has recorded. Starting is throttled to ``max_concurrency`` running backfill
executions, so the crawler and the job's ``MaxConcurrentRuns`` see a steady stream rather
than the whole prefix at once.
"""

from __future__ import annotations

import dataclasses
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
from flightpipe.sequencer import after

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


@dataclass(frozen=True)
class VersionOutcome:
    """What the ledger says of one version of one file (``sql/ops_version_outcomes.sql``)."""

    status: str
    settled: bool
    sequencer: Optional[str]


@dataclass
class LedgerView:
    """The outcomes of the versions of the files under a prefix, and each file's greatest
    recorded ordering key."""

    versions: dict[tuple[str, Optional[str]], VersionOutcome]
    file_sequencers: dict[str, Optional[str]]

    def outcome(self, document: ExecutionInput) -> Optional[VersionOutcome]:
        return self.versions.get((document.key, document.source_version))

    def redrive_sequencer(self, document: ExecutionInput) -> str:
        """The ordering key to re-drive the key's current version with: the one recorded for
        it, else just after every one recorded for the file."""
        outcome = self.outcome(document)
        if outcome is not None and outcome.sequencer:
            return outcome.sequencer
        return after(self.file_sequencers.get(document.key))


def read_ledger(warehouse: Queryable, bucket: str, prefix: str) -> LedgerView:
    """What the ledger says of every version of every file under the prefix, by key."""
    pattern = _like_prefix(f"s3://{bucket}/{prefix}") + "%"
    rows = query_ledger(warehouse, "ops_version_outcomes.sql", source_prefix_pattern=pattern)
    start = len(f"s3://{bucket}/")
    view = LedgerView({}, {})
    for row in rows:
        key = str(row["source_file"])[start:]
        version = row.get("source_version")
        view.versions[(key, None if version is None else str(version))] = VersionOutcome(
            status=str(row["status"]),
            settled=bool(int(row["settled"] or 0)),
            sequencer=row.get("sequencer") or None,
        )
        view.file_sequencers[key] = row.get("file_sequencer") or None
    return view


def _like_prefix(text: str) -> str:
    """``text`` with LIKE's wildcards escaped by backslash, LIKE's default escape character
    in Redshift (https://docs.aws.amazon.com/redshift/latest/dg/r_patternmatching_condition_like.html)
    and PostgreSQL; the literal quoting then doubles each backslash as Redshift reads it."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plan(
    target: Target, warehouse: Queryable, prefix: str, failed_only: bool
) -> list[tuple[ExecutionInput, Optional[str]]]:
    """The objects to start, each with the last ledger status of its current version (None:
    never attempted). The ledger is read before the bucket is listed, so every version it
    knows of a key is at most as new as the current version the listing then finds."""
    prefix = prefix or INCOMING_PREFIX
    if not prefix.startswith(INCOMING_PREFIX):
        prefix = INCOMING_PREFIX + prefix
    ledger = read_ledger(warehouse, target.bucket, prefix)
    picked = []
    for document in current_objects(target.client("s3"), target.bucket, prefix):
        outcome = ledger.outcome(document)
        if failed_only and outcome is not None and outcome.settled:
            continue
        document = dataclasses.replace(document, sequencer=ledger.redrive_sequencer(document))
        picked.append((document, outcome.status if outcome else None))
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
