"""Starting and polling the Glue crawler that catalogues ``incoming/``.

Step Functions has no ``.sync`` integration for crawlers, so the state machine
starts the crawler and polls it. A crawler that is already running belongs to
another upload's execution: that is not success for this upload, so it is
raised as :class:`CrawlerRunningException` for the state machine to wait and
start a fresh crawl.
"""

from __future__ import annotations

from typing import Any, Optional

from botocore.exceptions import ClientError

from flightpipe.retryable import raise_if_throttled


class CrawlerRunningException(RuntimeError):
    """The crawler is already running; wait for that crawl to end and crawl again.

    The class name is the Lambda error type the state machine's Retry matches.
    """


def start_crawler(glue: Any, name: str) -> dict[str, Any]:
    """Start crawler ``name``; raise :class:`CrawlerRunningException` when it is busy."""
    try:
        glue.start_crawler(Name=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "CrawlerRunningException":
            raise CrawlerRunningException(
                f"crawler {name} is already running another crawl; retry when it has finished"
            ) from error
        raise_if_throttled(error)
        raise
    return {"crawler": name, "started": True}


def crawler_status(glue: Any, name: str) -> dict[str, Optional[str]]:
    """The crawler's state and the outcome of its last crawl, for the state machine's Choice."""
    try:
        crawler = glue.get_crawler(Name=name)["Crawler"]
    except ClientError as error:
        raise_if_throttled(error)
        raise
    last_crawl = crawler.get("LastCrawl") or {}
    return {
        "crawler": name,
        "state": crawler["State"],
        "last_crawl_status": last_crawl.get("Status"),
        "last_crawl_error": last_crawl.get("ErrorMessage"),
    }
