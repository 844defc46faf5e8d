"""The Glue crawl that covers an uploaded file: requested once, shared by every file it covers.

Step Functions has no ``.sync`` integration for crawlers, so the state machine
requests a crawl and then polls. A file is covered by a crawl that *started after
the file was written*: that crawl saw it. One crawl therefore serves every file
written before it started, and a burst of uploads shares a handful of crawls
instead of queueing one each (crawls of one crawler run one at a time). A busy
crawler is never an error: the file waits for the running crawl to end and for
the next one, which the next poll starts when the crawler is idle.

The crawl never decides a load: the job reads the file itself, not the Data Catalog.
So a crawler that cannot be used — deleted, or its calls refused — is reported as
``UNAVAILABLE`` with the service's own message, for the state machine to record as a
warning, rather than raised; only throttling is raised (``ServiceThrottledError``), for
the state machine to retry.

Crawls are read from the Glue API's crawl history (``ListCrawls``, filtered on
``START_TIME``, an epoch timestamp in milliseconds:
https://docs.aws.amazon.com/glue/latest/webapi/API_ListCrawls.html,
https://docs.aws.amazon.com/glue/latest/webapi/API_CrawlsFilter.html). The same
listing measures how long this crawler's crawls take (``StartTime`` to ``EndTime``,
https://docs.aws.amazon.com/glue/latest/webapi/API_CrawlerHistory.html), from which
each poll says when the next one is worth making (``next_poll_s``).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from typing import Any, Callable, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import CrawlerApi, ObjectStore
from flightpipe.retryable import raise_if_throttled
from flightpipe.s3keys import resolve_event_key

# S3 reports LastModified to the second; a crawl must start after the whole second the
# object was written in to be sure it saw the object.
WRITE_TIME_RESOLUTION = dt.timedelta(seconds=1)
CRAWLED, WAITING, FAILED, UNAVAILABLE = "CRAWLED", "WAITING", "FAILED", "UNAVAILABLE"
STARTED, BUSY = "STARTED", "BUSY"

# When to poll again. A poll costs a Lambda invocation, a ListCrawls call and about four
# state transitions, and a burst of files polls together, so polls aim at the moment the
# crawl a file waits for should end: its start plus this crawler's measured crawl duration
# (the median of its last MEASURED_CRAWLS completed crawls within DURATION_WINDOW), never
# sooner than MIN_POLL_SECONDS nor later than MAX_POLL_SECONDS.
# - Before the crawler has a measured crawl, DEFAULT_CRAWL_SECONDS: a Glue crawl is billed a
#   10-minute minimum but runs for about a minute and a half on a small S3 event-mode target
#   (docs/latency.md, "Glue crawl"); the measured median takes over from the first crawl on.
# - MIN_POLL_SECONDS: a crawl that outlives its median is checked every 10 s, which adds at
#   most 10 s (5 s on average) to a minute-long crawl; 1,000 files waiting on one crawl then
#   make at most 100 ListCrawls calls a second, within Glue's API rates (throttling is
#   retried).
# - MAX_POLL_SECONDS: a crawl that ends well before the median (the median includes the first,
#   full-listing crawl) is noticed within a minute.
# The first poll is never delayed: the crawl may be over already (a re-driven file, a slow
# prepare step). Locally, crawls take about a second, so polls run at MIN_POLL_SECONDS.
MIN_POLL_SECONDS = 10
MAX_POLL_SECONDS = 60
DEFAULT_CRAWL_SECONDS = 90.0
MEASURED_CRAWLS = 10
DURATION_WINDOW = dt.timedelta(hours=1)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def request_crawl(glue: CrawlerApi, name: str) -> dict[str, Any]:
    """Start a crawl of crawler ``name`` now if it is idle; a busy crawler is fine.

    ``status`` is STARTED, BUSY (a crawl is running: the poll waits for it and starts the
    next one, see :func:`crawl_for_object`) or UNAVAILABLE (the crawler is missing or the
    call was refused: ``error`` is Glue's code and message).
    """
    try:
        glue.start_crawler(Name=name)
    except ClientError as error:
        if _code(error) == "CrawlerRunningException":
            return {"crawler": name, "started": False, "status": BUSY, "error": None}
        raise_if_throttled(error)
        return {"crawler": name, "started": False, "status": UNAVAILABLE, "error": _message(error)}
    return {"crawler": name, "started": True, "status": STARTED, "error": None}


def crawl_for_object(
    glue: CrawlerApi,
    s3: ObjectStore,
    name: str,
    bucket: str,
    key: str,
    version_id: Optional[str] = None,
    now: Clock = _utcnow,
) -> dict[str, Any]:
    """Where the crawl covering ``s3://bucket/key`` stands: CRAWLED, WAITING, FAILED or
    UNAVAILABLE (the crawler, or the object's write time, could not be read).

    CRAWLED when a crawl that started after the object was written completed;
    FAILED when such a crawl failed (and none completed); otherwise WAITING, after
    starting a crawl if the crawler is idle and no covering crawl exists yet, with
    ``next_poll_s``: the seconds until the next poll is worth making.
    """
    result: dict[str, Any] = {
        "crawler": name,
        "written_at": None,
        "crawl_id": None,
        "error": None,
        "started_crawl": False,
        "next_poll_s": 0,
    }
    try:
        written_at = object_written_at(s3, bucket, key, version_id)
        result["written_at"] = written_at.isoformat()
        recent = crawls_started_after(glue, name, written_at - DURATION_WINDOW)
    except ClientError as error:
        raise_if_throttled(error)
        return {**result, "status": UNAVAILABLE, "error": _message(error)}
    covers_from = written_at + WRITE_TIME_RESOLUTION
    covering = [c for c in recent if _utc(c["StartTime"]) >= covers_from]
    crawl_seconds = measured_crawl_seconds(recent)
    by_state: dict[str, list[dict[str, Any]]] = {}
    for crawl in covering:
        by_state.setdefault(crawl.get("State", ""), []).append(crawl)
    for state, status in (("COMPLETED", CRAWLED), ("RUNNING", WAITING), ("FAILED", FAILED)):
        if by_state.get(state):
            crawl = max(by_state[state], key=lambda c: _utc(c["StartTime"]))
            error = (crawl.get("ErrorMessage") or "no error message") if status == FAILED else None
            found = {**result, "status": status, "crawl_id": crawl.get("CrawlId"), "error": error}
            if status == WAITING:
                found["next_poll_s"] = next_poll_seconds(
                    _utc(crawl["StartTime"]), crawl_seconds, now()
                )
            return found
    # No crawl has started since the file was written (stopped ones do not count).
    started = request_crawl(glue, name)
    if started["status"] == UNAVAILABLE:
        return {**result, "status": UNAVAILABLE, "error": started["error"]}
    if started["started"]:
        running_since = now()
    else:  # busy with a crawl that began before the file: wait for its end, then the next
        earlier = [c for c in recent if c.get("State") == "RUNNING"]
        running_since = max((_utc(c["StartTime"]) for c in earlier), default=now())
    wait = next_poll_seconds(running_since, crawl_seconds, now())
    return {**result, "status": WAITING, "started_crawl": started["started"], "next_poll_s": wait}


def measured_crawl_seconds(crawls: list[dict[str, Any]]) -> float:
    """The median duration of the last :data:`MEASURED_CRAWLS` completed crawls listed
    (:data:`DEFAULT_CRAWL_SECONDS` when none completed)."""
    done = sorted(
        (c for c in crawls if c.get("State") == "COMPLETED" and c.get("EndTime")),
        key=lambda c: _utc(c["StartTime"]),
    )[-MEASURED_CRAWLS:]
    if not done:
        return DEFAULT_CRAWL_SECONDS
    return statistics.median(
        max(0.0, (_utc(c["EndTime"]) - _utc(c["StartTime"])).total_seconds()) for c in done
    )


def next_poll_seconds(running_since: dt.datetime, crawl_seconds: float, now: dt.datetime) -> int:
    """Seconds until a crawl that started at ``running_since`` should have ended, given crawls
    of ``crawl_seconds``: at least :data:`MIN_POLL_SECONDS`, at most :data:`MAX_POLL_SECONDS`
    (a whole number: a Wait state's ``SecondsPath`` takes an integer)."""
    remaining = (running_since - now).total_seconds() + crawl_seconds
    return int(min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, math.ceil(remaining))))


def object_written_at(
    s3: ObjectStore, bucket: str, key: str, version_id: Optional[str] = None
) -> dt.datetime:
    """When the object (at ``version_id``) was written: its ``LastModified``, in UTC."""
    resolved = resolve_event_key(s3, bucket, key, version_id)
    request = {"Bucket": bucket, "Key": resolved.key}
    if version_id:
        request["VersionId"] = version_id
    try:
        modified = s3.head_object(**request)["LastModified"]
    except ClientError as error:
        raise_if_throttled(error)
        raise
    return _utc(modified)


def crawls_started_after(glue: CrawlerApi, name: str, instant: dt.datetime) -> list[dict[str, Any]]:
    """The crawls of crawler ``name`` that started at or after ``instant``."""
    epoch_ms = str(int(instant.timestamp() * 1000))
    request: dict[str, Any] = {
        "CrawlerName": name,
        "Filters": [{"FieldName": "START_TIME", "FilterOperator": "GE", "FieldValue": epoch_ms}],
        "MaxResults": 100,
    }
    crawls: list[dict[str, Any]] = []
    while True:
        try:
            page = glue.list_crawls(**request)
        except ClientError as error:
            raise_if_throttled(error)
            raise
        crawls.extend(page.get("Crawls") or [])
        if not page.get("NextToken"):
            return crawls
        request["NextToken"] = page["NextToken"]


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    """Glue's (or S3's) own words: the error code and message, and the operation refused."""
    details = error.response.get("Error", {})
    message = details.get("Message") or "no message"
    operation = getattr(error, "operation_name", "") or "the call"
    return f"{details.get('Code') or 'ClientError'} on {operation}: {message}"
