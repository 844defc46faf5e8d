"""A run's timeline (``flightpipe show``) and its upload-to-loaded seconds (``flightpipe status``),
read from an execution's history."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from flightpipe.ops import runs, timeline

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


class History:
    """A history written event by event, each at a given second after T0."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, second: float, **details: Any) -> History:
        moment = T0 + dt.timedelta(seconds=second)
        self.events.append(
            {"id": len(self.events) + 1, "type": kind, "timestamp": moment, **details}
        )
        return self

    def state(
        self, kind: str, name: str, entered: float, exited: float, data: Any = None
    ) -> History:
        text = json.dumps(data or {})
        self.add(
            f"{kind}StateEntered", entered, stateEnteredEventDetails={"name": name, "input": text}
        )
        return self.add(
            f"{kind}StateExited", exited, stateExitedEventDetails={"name": name, "output": text}
        )

    def task(self, name: str, entered: float, exited: float, resource: str = "lambda") -> History:
        self.add("TaskStateEntered", entered, stateEnteredEventDetails={"name": name})
        self.add("TaskScheduled", entered, taskScheduledEventDetails={"resourceType": resource})
        self.add("TaskSucceeded", exited, taskSucceededEventDetails={"resourceType": resource})
        return self.add("TaskStateExited", exited, stateExitedEventDetails={"name": name})


def crawl_first() -> History:
    """Crawl, then load: two polls 20 s apart, the load 40 s, the notice, the end."""
    history = History().add("ExecutionStarted", 2.0)
    history.task("PrepareWarehouse", 2.0, 3.0).task("StartCrawler", 3.0, 3.5)
    history.task("PollCrawler", 3.5, 4.0).state("Wait", "WaitForCrawler", 4.0, 24.0)
    history.task("PollCrawler", 24.0, 24.5)
    history.state("Pass", "Crawled", 24.5, 24.5, {"crawl": {"status": "CRAWLED", "warning": None}})
    history.task("RunEtlJob", 24.5, 64.5, resource="glue")
    history.task("NotifySuccess", 64.5, 65.0)
    history.add("SucceedStateEntered", 65.0, stateEnteredEventDetails={"name": "Succeeded"})
    return history.add("ExecutionSucceeded", 65.0)


def crawl_beside() -> History:
    """Load at once (40 s), then wait 20 s for the crawl, the notice, the end."""
    history = History().add("ExecutionStarted", 2.0)
    history.task("PrepareWarehouse", 2.0, 3.0).task("StartCrawler", 3.0, 3.5)
    history.task("RunEtlJob", 3.5, 43.5, resource="glue")
    history.task("PollCrawler", 43.5, 44.0).state("Wait", "WaitForCrawler", 44.0, 64.0)
    history.task("PollCrawler", 64.0, 64.5)
    history.task("NotifySuccess", 64.5, 65.0)
    return history.add("ExecutionSucceeded", 65.0)


def steps(line: timeline.Timeline) -> list[tuple[str, float, float | None, float, bool]]:
    return [(s.name, s.start_s, s.seconds, s.waited_s, s.critical) for s in line.steps]


def test_crawl_first_puts_the_crawl_waits_on_the_critical_path_to_loaded() -> None:
    line = timeline.build(crawl_first().events, uploaded_at=T0)
    assert (line.origin, line.loaded_s, line.ended_s) == ("upload", 64.5, 65.0)
    assert steps(line) == [
        (timeline.DELIVERY, 0.0, 2.0, 0.0, True),
        ("PrepareWarehouse", 2.0, 1.0, 0.0, True),
        ("StartCrawler", 3.0, 0.5, 0.0, True),
        ("PollCrawler", 3.5, 0.5, 0.0, True),
        ("WaitForCrawler", 4.0, 20.0, 20.0, True),
        ("PollCrawler", 24.0, 0.5, 0.0, True),
        ("Crawled", 24.5, 0.0, 0.0, True),
        ("RunEtlJob", 24.5, 40.0, 0.0, True),
        ("NotifySuccess", 64.5, 0.5, 0.0, False),
        ("Succeeded", 65.0, 0.0, 0.0, False),
    ]
    assert line.waited_s == 20.0


def test_crawl_beside_the_load_keeps_the_crawl_waits_off_the_critical_path() -> None:
    line = timeline.build(crawl_beside().events, uploaded_at=T0)
    assert (line.loaded_s, line.ended_s, line.waited_s) == (43.5, 65.0, 0.0)
    critical = [s.name for s in line.steps if s.critical]
    assert critical == [timeline.DELIVERY, "PrepareWarehouse", "StartCrawler", "RunEtlJob"]
    wait = next(s for s in line.steps if s.name == "WaitForCrawler")
    assert (wait.start_s, wait.waited_s, wait.critical) == (44.0, 20.0, False)


def test_a_retry_s_backoff_counts_as_waiting_inside_its_task() -> None:
    history = History().add("ExecutionStarted", 0.0)
    history.add("TaskStateEntered", 0.0, stateEnteredEventDetails={"name": "RunEtlJob"})
    history.add("TaskScheduled", 0.0, taskScheduledEventDetails={"resourceType": "glue"})
    history.add("TaskFailed", 1.0, taskFailedEventDetails={"resourceType": "glue"})
    history.add("TaskScheduled", 31.0, taskScheduledEventDetails={"resourceType": "glue"})
    history.add("TaskSucceeded", 41.0, taskSucceededEventDetails={"resourceType": "glue"})
    history.add("TaskStateExited", 41.0, stateExitedEventDetails={"name": "RunEtlJob"})
    history.add("ExecutionSucceeded", 42.0)
    line = timeline.build(history.events)
    (job,) = line.steps
    assert (line.origin, job.seconds, job.waited_s, job.outcome) == (
        "execution start",
        41.0,
        30.0,
        "retried",
    )
    assert line.loaded_s == 41.0


def test_a_run_that_loaded_nothing_has_every_step_on_its_critical_path() -> None:
    history = History().add("ExecutionStarted", 0.0)
    history.task("PrepareWarehouse", 0.0, 1.0)
    history.add("FailStateEntered", 1.0, stateEnteredEventDetails={"name": "Failed"})
    history.add("ExecutionFailed", 1.5)
    line = timeline.build(history.events, uploaded_at=T0 - dt.timedelta(seconds=1))
    assert line.loaded_s is None and line.ended_s == 2.5
    assert [(s.name, s.seconds, s.critical, s.outcome) for s in line.steps] == [
        (timeline.DELIVERY, 1.0, True, "ok"),
        ("PrepareWarehouse", 1.0, True, "ok"),
        ("Failed", 0.5, True, "ended the execution"),
    ]


def test_the_crawl_beside_the_states_is_shown_and_never_on_the_critical_path() -> None:
    crawl = timeline.Crawl(
        "c-1", "COMPLETED", T0 + dt.timedelta(seconds=3.2), T0 + dt.timedelta(seconds=60)
    )
    line = timeline.build(crawl_beside().events, uploaded_at=T0, crawl=crawl)
    (shown,) = [s for s in line.steps if s.kind == "crawl"]
    assert (shown.name, shown.start_s, shown.seconds, shown.critical, shown.outcome) == (
        "crawl c-1",
        3.2,
        56.8,
        False,
        "COMPLETED",
    )


def test_the_crawl_outcome_is_read_from_the_last_state_data_carrying_it() -> None:
    assert timeline.crawl_outcome(crawl_first().events) == {"status": "CRAWLED", "warning": None}
    assert timeline.crawl_outcome(crawl_beside().events) is None


def test_the_printed_timeline_marks_the_critical_path_and_says_when_it_loaded() -> None:
    out = io.StringIO()
    timeline.print_timeline(timeline.build(crawl_beside().events, uploaded_at=T0).as_json(), out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("timeline (seconds from the upload;")
    assert lines[2].split() == ["path", "start_s", "seconds", "waited_s", "step", "outcome"]
    run_line = next(line for line in lines if "RunEtlJob" in line)
    wait_line = next(line for line in lines if "WaitForCrawler" in line)
    assert run_line.startswith("*") and not wait_line.startswith("*")
    assert lines[-1] == "  loaded at 43.5 s; ended at 65.0 s; the critical path waited 0.0 s"


def test_upload_to_loaded_runs_from_the_object_s_write_time_to_the_load_s_commit() -> None:
    row = {"status": "LOADED", "finished_at": dt.datetime(2026, 1, 1, 12, 1, 5, 500000)}
    assert runs.upload_to_loaded_seconds(T0, row) == 65.5
    assert runs.upload_to_loaded_seconds(None, row) is None
    assert runs.upload_to_loaded_seconds(T0, {**row, "status": "REJECTED"}) is None
    assert runs.upload_to_loaded_seconds(T0, {**row, "finished_at": "2026-01-01T12:00:30"}) == 30.0
