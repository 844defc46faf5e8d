"""The Glue crawl that covers an uploaded file: requested once, shared by every file it covers.

Step Functions has no ``.sync`` integration for crawlers, so the state machine
requests a crawl and then polls. A file is covered by a crawl that *started after
the file was written*: that crawl saw it. One crawl therefore serves every file
written before it started, and a burst of uploads shares a handful of crawls
instead of queueing one each (crawls of one crawler run one at a time). A busy
crawler is never an error: the file waits for the running crawl to end and for
the next one, which the next poll starts when the crawler is idle.

Crawls are read from the Glue API's crawl history (``ListCrawls``, filtered on
``START_TIME``, an epoch timestamp in milliseconds:
https://docs.aws.amazon.com/glue/latest/webapi/API_ListCrawls.html,
https://docs.aws.amazon.com/glue/latest/webapi/API_CrawlsFilter.html).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.aws_ports import CrawlerApi, ObjectStore
from flightpipe.retryable import raise_if_throttled
from flightpipe.s3keys import resolve_event_key

# S3 reports LastModified to the second; a crawl must start after the whole second the
# object was written in to be sure it saw the object.
WRITE_TIME_RESOLUTION = dt.timedelta(seconds=1)
CRAWLED, WAITING, FAILED = "CRAWLED", "WAITING", "FAILED"


def request_crawl(glue: CrawlerApi, name: str) -> dict[str, Any]:
    """Start a crawl of crawler ``name`` now if it is idle; a busy crawler is fine.

    A crawl already running may have started before the file was written; the
    poll then waits for it and starts the next one (see :func:`crawl_for_object`).
    """
    try:
        glue.start_crawler(Name=name)
    except ClientError as error:
        if _code(error) == "CrawlerRunningException":
            return {"crawler": name, "started": False}
        raise_if_throttled(error)
        raise
    return {"crawler": name, "started": True}


def crawl_for_object(
    glue: CrawlerApi,
    s3: ObjectStore,
    name: str,
    bucket: str,
    key: str,
    version_id: Optional[str] = None,
) -> dict[str, Any]:
    """Where the crawl covering ``s3://bucket/key`` stands: CRAWLED, WAITING or FAILED.

    CRAWLED when a crawl that started after the object was written completed;
    FAILED when such a crawl failed (and none completed); otherwise WAITING, after
    starting a crawl if the crawler is idle and no covering crawl exists yet.
    """
    written_at = object_written_at(s3, bucket, key, version_id)
    crawls = crawls_started_after(glue, name, written_at + WRITE_TIME_RESOLUTION)
    result: dict[str, Any] = {
        "crawler": name,
        "written_at": written_at.isoformat(),
        "crawl_id": None,
        "error": None,
        "started_crawl": False,
    }
    by_state: dict[str, list[dict[str, Any]]] = {}
    for crawl in crawls:
        by_state.setdefault(crawl.get("State", ""), []).append(crawl)
    for state, status in (("COMPLETED", CRAWLED), ("RUNNING", WAITING), ("FAILED", FAILED)):
        if by_state.get(state):
            crawl = max(by_state[state], key=lambda c: c["StartTime"])
            error = (crawl.get("ErrorMessage") or "no error message") if status == FAILED else None
            return {**result, "status": status, "crawl_id": crawl.get("CrawlId"), "error": error}
    # No crawl has started since the file was written (stopped ones do not count).
    started = request_crawl(glue, name)["started"]
    return {**result, "status": WAITING, "started_crawl": started}


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
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=dt.timezone.utc)
    return modified.astimezone(dt.timezone.utc)


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


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
