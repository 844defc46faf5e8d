"""``flightpipe airports load``: a new airports dimension, loaded by the pipeline's own step.

The file goes to the key every execution's PrepareWarehouse step reads
(``dimensions/airports.csv``); then that step's function is invoked, as the state machine
invokes it, and reloads ``airlines.airports_dim`` because the object's version changed
(flightpipe/warehouse/setup.py). Nothing else loads the dimension, so the reload is the
same COPY, under the same lock and identity, as in a pipeline run. The function is the one
the state machine's definition names, so the command needs no name of its own.

Fact rows keep the names they were loaded with: the command counts those that now differ
from the dimension, and ``--refresh-facts`` re-joins them in one transaction
(sql/ops_refresh_fact_airports.sql). A file that would break the reload (wrong header,
an id that is no integer or appears twice) is refused before it is uploaded; a reload that
fails all the same puts the previous version of the file back, so that the next execution
does not fail on it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY
from flightpipe.ops.target import Target
from flightpipe.ops.warehouse import Queryable, query_file
from flightpipe.sql import read_sql, split_statements
from flightpipe.warehouse.port import Warehouse

# The columns COPY loads, in order (sql/load_airports.sql: FORMAT AS CSV, IGNOREHEADER 1).
AIRPORT_COLUMNS = ("airport_id", "city", "state", "name")
PREPARE_STATE = "PrepareWarehouse"
# The prepare function may take its whole timeout (serverless.yml: 300 s) on a slow reload.
INVOKE_READ_TIMEOUT_S = 330


class AirportsFileError(ValueError):
    """The file is not an airports dimension the reload could load."""


class ReloadFailed(RuntimeError):
    """The prepare function failed; its error is the message."""


@dataclass(frozen=True)
class Airport:
    airport_id: int
    city: Optional[str]
    state: Optional[str]
    name: Optional[str]


@dataclass
class AirportsLoad:
    """What ``flightpipe airports load`` did (its ``--json`` document)."""

    file: str
    bucket: str
    key: str
    version_id: Optional[str]
    function: str
    rows_before: int
    rows_after: int
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    renamed: list[dict[str, Any]] = field(default_factory=list)
    fact_rows_differing: int = 0
    fact_rows_refreshed: bool = False
    fact_rows_differing_after: Optional[int] = None

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "function": self.function,
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "added": self.added,
            "removed": self.removed,
            "renamed": self.renamed,
            "fact_rows_differing": self.fact_rows_differing,
            "fact_rows_refreshed": self.fact_rows_refreshed,
            "fact_rows_differing_after": self.fact_rows_differing_after,
        }


def check_airports_file(path: Path) -> int:
    """The data rows of an airports CSV the reload can load; :class:`AirportsFileError`
    naming the first problem otherwise."""
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise AirportsFileError(f"{path}: empty; expected a header {','.join(AIRPORT_COLUMNS)}")
    header = tuple(name.strip().lower() for name in rows[0])
    if header != AIRPORT_COLUMNS:
        raise AirportsFileError(
            f"{path}: header {','.join(rows[0])}; the reload loads the columns "
            f"{','.join(AIRPORT_COLUMNS)} in that order"
        )
    seen: set[int] = set()
    data = 0
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(AIRPORT_COLUMNS):
            raise AirportsFileError(f"{path}, line {line}: {len(row)} fields, expected 4")
        try:
            airport_id = int(row[0])
        except ValueError:
            raise AirportsFileError(
                f"{path}, line {line}: airport_id {row[0]!r} is not an integer"
            ) from None
        if airport_id in seen:
            raise AirportsFileError(f"{path}, line {line}: airport_id {airport_id} appears twice")
        seen.add(airport_id)
        data += 1
    if not data:
        raise AirportsFileError(f"{path}: no airports below the header")
    return data


def airports_dim(warehouse: Queryable) -> dict[int, Airport]:
    """The loaded dimension, by airport id."""
    rows = query_file(warehouse, "ops_airports_dim.sql")
    return {
        int(row["airport_id"]): Airport(
            int(row["airport_id"]), row.get("city"), row.get("state"), row.get("name")
        )
        for row in rows
    }


def differences(
    before: Mapping[int, Airport], after: Mapping[int, Airport]
) -> tuple[list[int], list[int], list[dict[str, Any]]]:
    """Ids added, ids removed, and the airports whose name, city or state changed."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    renamed = [
        {
            "airport_id": airport_id,
            "before": _described(before[airport_id]),
            "after": _described(after[airport_id]),
        }
        for airport_id in sorted(set(before) & set(after))
        if before[airport_id] != after[airport_id]
    ]
    return added, removed, renamed


def _described(airport: Airport) -> dict[str, Optional[str]]:
    return {"name": airport.name, "city": airport.city, "state": airport.state}


def stale_fact_rows(warehouse: Queryable) -> int:
    """Fact rows whose airport names differ from the dimension as loaded now."""
    (row,) = query_file(warehouse, "ops_fact_rows_with_stale_airports.sql")
    return int(row["stale_rows"] or 0)


def refresh_fact_airports(warehouse: Warehouse) -> None:
    """Re-join the fact rows with the dimension, in one transaction."""
    warehouse.execute_batch(split_statements(read_sql("ops_refresh_fact_airports.sql")))


def prepare_function(target: Target) -> str:
    """The function the state machine's PrepareWarehouse step invokes (its ARN)."""
    sfn = target.client("stepfunctions")
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=target.state_machine_arn)["definition"]
    )
    state = _find_state(definition, PREPARE_STATE)
    name = ((state or {}).get("Parameters") or {}).get("FunctionName")
    if not isinstance(name, str) or not name:
        raise ReloadFailed(
            f"the state machine {target.state_machine_arn} has no {PREPARE_STATE} step naming "
            "a function: is it a flightpipe stack?"
        )
    return name


def _find_state(definition: Mapping[str, Any], name: str) -> Optional[Mapping[str, Any]]:
    """A state by name, also inside Parallel branches and Map iterators."""
    states = definition.get("States") or {}
    if name in states:
        return states[name]
    for state in states.values():
        nested: Iterable[Mapping[str, Any]] = [
            *state.get("Branches", []),
            *[state[key] for key in ("Iterator", "ItemProcessor") if key in state],
        ]
        for branch in nested:
            found = _find_state(branch, name)
            if found is not None:
                return found
    return None


def invoke_prepare(target: Target, function: str, key: str) -> dict[str, Any]:
    """Invoke the prepare function as the state machine does and return its result."""
    from botocore.config import Config

    client = target.client("lambda", config=Config(read_timeout=INVOKE_READ_TIMEOUT_S))
    response = client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps({"bucket": target.bucket, "key": key}).encode("utf-8"),
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        error = payload if isinstance(payload, Mapping) else {}
        raise ReloadFailed(
            f"{function} failed: {error.get('errorType', 'error')}: "
            f"{error.get('errorMessage', payload)}"
        )
    return dict(payload or {})


def load_airports(
    target: Target,
    warehouse: Warehouse,
    path: Path,
    *,
    refresh_facts: bool,
    key: str = DEFAULT_AIRPORTS_KEY,
) -> AirportsLoad:
    """Upload ``path`` as the dimension's source file, reload it through the prepare step,
    and compare the dimension before and after (re-joining the fact rows if asked)."""
    check_airports_file(path)
    function = prepare_function(target)
    s3 = target.client("s3")
    previous = _current_version(s3, target.bucket, key)
    before = airports_dim(warehouse)
    s3.upload_file(str(path), target.bucket, key)
    version = s3.head_object(Bucket=target.bucket, Key=key).get("VersionId")
    try:
        invoke_prepare(target, function, key)
    except ReloadFailed:
        _restore(s3, target.bucket, key, previous)
        raise
    after = airports_dim(warehouse)
    added, removed, renamed = differences(before, after)
    result = AirportsLoad(
        file=str(path),
        bucket=target.bucket,
        key=key,
        version_id=version,
        function=function,
        rows_before=len(before),
        rows_after=len(after),
        added=added,
        removed=removed,
        renamed=renamed,
        fact_rows_differing=stale_fact_rows(warehouse),
    )
    if refresh_facts:
        refresh_fact_airports(warehouse)
        result.fact_rows_refreshed = True
        result.fact_rows_differing_after = stale_fact_rows(warehouse)
    return result


def _current_version(s3: Any, bucket: str, key: str) -> Optional[str]:
    """The version id of the dimension's file now (None when there is none, or unversioned)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _restore(s3: Any, bucket: str, key: str, version: Optional[str]) -> None:
    """Put the previous version of the dimension's file back as the current one."""
    if version:
        s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version}
        )


def describe(result: AirportsLoad) -> Sequence[str]:
    """The lines ``flightpipe airports load`` prints for a person."""
    lines = [
        f"{result.file} -> s3://{result.bucket}/{result.key} (version {result.version_id or '-'})",
        f"airlines.airports_dim reloaded by {result.function}: "
        f"{result.rows_before} rows before, {result.rows_after} after",
        f"added ({len(result.added)}): {_ids(result.added)}",
        f"removed ({len(result.removed)}): {_ids(result.removed)}",
        f"renamed ({len(result.renamed)}):",
    ]
    for change in result.renamed:
        was, now = change["before"], change["after"]
        lines.append(
            f"  {change['airport_id']}: {was['name']} ({was['city']}, {was['state']}) -> "
            f"{now['name']} ({now['city']}, {now['state']})"
        )
    lines.append(
        f"fact rows whose airport names differ from the new dimension: {result.fact_rows_differing}"
    )
    if result.fact_rows_refreshed:
        lines.append(
            f"re-joined with the new dimension: {result.fact_rows_differing_after} differ now"
        )
    elif result.fact_rows_differing:
        lines.append("they keep the names they were loaded with (--refresh-facts re-joins them)")
    return lines


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(airport_id) for airport_id in ids) or "-"
