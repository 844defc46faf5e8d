"""Glue patch: ``ListCrawls`` answers as AWS documents it.

- AWS compares ``START_TIME`` and ``END_TIME`` filters with "the epoch timestamp in
  milliseconds" (https://docs.aws.amazon.com/glue/latest/webapi/API_CrawlsFilter.html);
  moto compares the filter's string with each crawl's ISO timestamp, so an epoch
  value matches nothing. The responses' filter parsing here turns an epoch value
  into the ISO form moto compares with, so the pipeline's own request works unchanged.
- A crawl reports its ``ErrorMessage`` (https://docs.aws.amazon.com/glue/latest/webapi/API_CrawlerHistory.html);
  moto's crawls carry none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.utils import FilterField

from flightpipe_local._patching import PatchSet

SEAM_OWNER = glue_responses
SEAM_NAME = "validate_crawl_filters"
CRAWL_OWNER = glue_models.FakeCrawl
CRAWL_DESCRIBE = "as_dict"
TIME_FIELDS = (FilterField.START_TIME, FilterField.END_TIME)


def iso_from_epoch_ms(value: str) -> str:
    """An epoch-milliseconds string as moto's naive-UTC ``isoformat`` of a crawl time."""
    instant = dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.timezone.utc)
    return instant.replace(tzinfo=None).isoformat(timespec="microseconds")


def install(patches: PatchSet) -> None:
    original = SEAM_OWNER.__dict__[SEAM_NAME]

    def validate_crawl_filters(filters: Any) -> Any:
        parsed = original(filters)
        for crawl_filter in parsed:
            if crawl_filter.field_name in TIME_FIELDS and str(crawl_filter.field_value).isdigit():
                crawl_filter.field_value = iso_from_epoch_ms(crawl_filter.field_value)
        return parsed

    original_describe = CRAWL_OWNER.__dict__[CRAWL_DESCRIBE]

    def as_dict(self: Any) -> dict[str, Any]:
        data = original_describe(self)
        if getattr(self, "error_message", None):
            data["ErrorMessage"] = self.error_message
        return data

    patches.replace(SEAM_OWNER, SEAM_NAME, validate_crawl_filters)
    patches.replace(CRAWL_OWNER, CRAWL_DESCRIBE, as_dict)
