"""Every second of one run accounted for: its timeline from the upload to the load and to the
execution's end, read from the execution's history.

Each step is a state the execution entered (or the delivery of the upload's event before
it started, or the Glue crawl running beside the states), with its start in seconds from
the upload, its duration, the time it spent waiting — a Wait state's whole duration, a
task's backoff between a failed try and its retry — and whether it lies on the critical
path: the chain of steps that made up the upload-to-loaded time (every step that began
before the load committed; for a run that loaded nothing, every step to its end). The
execution is one path of states (statemachine/pipeline.asl.yml), so its critical path is
its states up to the load; with ``crawlBeforeLoad`` false the crawl's polls come after the
load and are off it.

Pure functions over Step Functions' ``GetExecutionHistory`` events
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Optional, TextIO

from flightpipe.ops.tables import print_table

# The states whose success is the load committing (the two engines' Glue job tasks).
LOAD_STATES = ("RunEtlJob", "RunSparkEtlJob")
DELIVERY = "(upload to execution start)"
_ENDS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")
_FAILURES = ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut")
_RETRY_STARTS = ("TaskScheduled", "LambdaFunctionScheduled")


@dataclass(frozen=True)
class Step:
    """One step of a run's timeline (seconds from the timeline's origin)."""

    name: str
    kind: str
    start_s: float
    seconds: Optional[float]
    waited_s: float
    critical: bool
    outcome: str


@dataclass(frozen=True)
class Crawl:
    """The Glue crawl a run waited for or ran beside (``ListCrawls``' record of it)."""

    crawl_id: str
    state: str
    started: datetime
    ended: Optional[datetime]


@dataclass
class Timeline:
    """A run's steps, and when it was loaded and ended (seconds from ``origin``)."""

    origin: str
    origin_at: datetime
    steps: list[Step] = field(default_factory=list)
    loaded_s: Optional[float] = None
    ended_s: Optional[float] = None

    @property
    def waited_s(self) -> float:
        """Seconds the critical path spent waiting (Wait states, retry backoff)."""
        return round(sum(step.waited_s for step in self.steps if step.critical), 3)

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "origin_at": self.origin_at.isoformat(timespec="milliseconds"),
            "upload_to_loaded_s": self.loaded_s if self.origin == "upload" else None,
            "loaded_s": self.loaded_s,
            "ended_s": self.ended_s,
            "critical_path_waited_s": self.waited_s,
            "steps": [asdict(step) for step in self.steps],
        }


def loaded_at(events: Iterable[dict[str, Any]]) -> Optional[datetime]:
    """When the load committed, as the execution saw it: the success of its load task (the
    Glue job run ended SUCCEEDED; the job commits before it ends). None when nothing loaded."""
    current = ""
    found = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif kind == "TaskSucceeded" and current in LOAD_STATES:
            found = event["timestamp"]
    return found


def build(
    events: Sequence[dict[str, Any]],
    uploaded_at: Optional[datetime] = None,
    crawl: Optional[Crawl] = None,
) -> Timeline:
    """The timeline of one execution from its history, measured from ``uploaded_at`` (the
    object's write time) when known, else from the execution's start."""
    started = next(e["timestamp"] for e in events if e["type"] == "ExecutionStarted")
    from_upload = uploaded_at is not None and uploaded_at <= started
    origin_at = uploaded_at if from_upload and uploaded_at is not None else started
    timeline = Timeline("upload" if from_upload else "execution start", origin_at)
    loaded = loaded_at(events)
    ended = next((e["timestamp"] for e in events if e["type"] in _ENDS), None)

    def offset(moment: datetime) -> float:
        return round((moment - origin_at).total_seconds(), 3)

    def on_path(start: datetime) -> bool:
        # One path of states: each that began before the load committed led up to it.
        return loaded is None or start < loaded

    raw: list[dict[str, Any]] = []
    if from_upload:
        raw.append(_raw(DELIVERY, "delivery", origin_at, started, 0.0, "ok"))
    open_index: Optional[int] = None
    failed_at: Optional[datetime] = None
    for event in events:
        kind, moment = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            raw.append(_raw(name, kind[: -len("StateEntered")], moment, None, 0.0, "running"))
            open_index, failed_at = len(raw) - 1, None
        elif kind.endswith("StateExited") and open_index is not None:
            step = raw[open_index]
            step["end"] = moment
            if step["kind"] == "Wait":
                step["waited"] = (moment - step["start"]).total_seconds()
            if step["outcome"] == "running":
                step["outcome"] = "ok"
            open_index = None
        elif kind in _FAILURES and open_index is not None:
            failed_at = moment
            raw[open_index]["outcome"] = "caught"
        elif kind in _RETRY_STARTS and open_index is not None and failed_at is not None:
            raw[open_index]["waited"] += (moment - failed_at).total_seconds()
            raw[open_index]["outcome"] = "retried"
            failed_at = None
        elif kind in _ENDS:
            closing = "ok" if kind == "ExecutionSucceeded" else "ended the execution"
            for step in raw:
                if step["end"] is None:
                    step["end"], step["outcome"] = moment, closing
    if crawl is not None:
        raw.append(
            _raw(f"crawl {crawl.crawl_id}", "crawl", crawl.started, crawl.ended, 0.0, crawl.state)
        )
    for step in sorted(raw, key=lambda s: s["start"]):
        end = step["end"]
        timeline.steps.append(
            Step(
                name=step["name"],
                kind=step["kind"],
                start_s=offset(step["start"]),
                seconds=None if end is None else round((end - step["start"]).total_seconds(), 3),
                waited_s=round(step["waited"], 3),
                critical=step["kind"] != "crawl" and on_path(step["start"]),
                outcome=step["outcome"],
            )
        )
    timeline.loaded_s = None if loaded is None else offset(loaded)
    timeline.ended_s = None if ended is None else offset(ended)
    return timeline


def _raw(
    name: str,
    kind: str,
    start: datetime,
    end: Optional[datetime],
    waited: float,
    outcome: str,
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "start": start,
        "end": end,
        "waited": waited,
        "outcome": outcome,
    }


def crawl_of(glue: Any, crawler: str, crawl_id: Optional[str]) -> Optional[Crawl]:
    """The crawl ``crawl_id`` of ``crawler`` from its history (None when unknown or gone)."""
    if not crawl_id:
        return None
    try:
        found = glue.list_crawls(
            CrawlerName=crawler,
            Filters=[{"FieldName": "CRAWL_ID", "FilterOperator": "EQ", "FieldValue": crawl_id}],
        ).get("Crawls", [])
    except Exception:  # the crawler deleted, or no access: the timeline goes without it
        return None
    if not found:
        return None
    item = found[0]
    return Crawl(crawl_id, str(item.get("State")), item["StartTime"], item.get("EndTime"))


def crawl_outcome(events: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """What became of the run's crawl (the state machine's ``$.crawl``: status, warning,
    before_load, crawl_id), from the last state data that carries it."""
    for event in reversed(events):
        details = event.get("stateExitedEventDetails") or event.get("stateEnteredEventDetails")
        text = (details or {}).get("output") or (details or {}).get("input")
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("crawl"), dict):
            return dict(data["crawl"])
    return None


def print_timeline(timeline: dict[str, Any], out: TextIO) -> None:
    """The timeline as a table, ``*`` marking the critical path."""
    origin = timeline["origin"]
    print(f"\ntimeline (seconds from the {origin}; * on the critical path to loaded):", file=out)
    rows = [
        {
            "path": "*" if step["critical"] else "",
            "start_s": step["start_s"],
            "seconds": step["seconds"],
            "waited_s": step["waited_s"] or "",
            "step": step["name"],
            "outcome": step["outcome"],
        }
        for step in timeline["steps"]
    ]
    print_table(rows, out, ("path", "start_s", "seconds", "waited_s", "step", "outcome"))
    loaded, ended = timeline["loaded_s"], timeline["ended_s"]
    parts = [
        f"loaded at {loaded} s" if loaded is not None else "not loaded",
        f"ended at {ended} s" if ended is not None else "still running",
        f"the critical path waited {timeline['critical_path_waited_s']} s",
    ]
    print("  " + "; ".join(parts), file=out)
