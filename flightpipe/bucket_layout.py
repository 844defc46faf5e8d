"""Where things live in the data bucket: one name for each prefix the pipeline uses, and
every key built under them.

Everything one load stages lives under ``staging/<load_id>/``: the parts (one from the
Python shell job, one per split from the Spark job), the Spark tasks' rejects parts, and the
COPY manifest naming exactly the parts to load. Their keys follow from the load id and the
part number alone, so whoever cleans up after a load — a failed one too — knows every key
without listing the bucket. The airports COPY's manifests live under ``staging/manifests/``,
which the COPY role reads and the bucket's lifecycle rule expires.

``serverless.yml`` and the state machine (YAML) cannot import these, so
``tests/test_template.py`` holds their copies of the prefixes to the values here.
"""

from __future__ import annotations

INCOMING_PREFIX = "incoming/"  # uploads: every object created here starts an execution
REPORTS_PREFIX = "reports/"  # the job's summary of each execution: reports/<execution>.json
REJECTED_PREFIX = "rejected/"  # rejected rows of each load: rejected/<load id>.csv
STAGING_PREFIX = "staging/"  # validated rows COPY reads, removed after the load
DIMENSION_MANIFEST_PREFIX = f"{STAGING_PREFIX}manifests/"  # the airports COPY's manifests
DEFAULT_AIRPORTS_KEY = "dimensions/airports.csv"  # the airports dimension's source file


def summary_key(execution_name: str) -> str:
    """The key of the summary the job writes for one execution."""
    return f"{REPORTS_PREFIX}{execution_name}.json"


def staging_prefix(load_id: str) -> str:
    return f"{STAGING_PREFIX}{load_id}/"


def staged_part_key(load_id: str, part: int) -> str:
    return f"{staging_prefix(load_id)}part-{part:05d}.csv.gz"


def rejects_part_key(load_id: str, part: int) -> str:
    """A Spark task's rejects, gathered into the one rejects file by the driver."""
    return f"{staging_prefix(load_id)}rejects/part-{part:05d}.csv"


def manifest_key(load_id: str) -> str:
    return f"{staging_prefix(load_id)}manifest.json"


def load_staging_keys(load_id: str, parts: int) -> list[str]:
    """Every key a load with ``parts`` parts may have staged."""
    keys = [staged_part_key(load_id, part) for part in range(parts)]
    keys += [rejects_part_key(load_id, part) for part in range(parts)]
    return [*keys, manifest_key(load_id)]


def rejects_key(load_id: str) -> str:
    return f"{REJECTED_PREFIX}{load_id}.csv"


def dimension_manifest_key(source_key: str) -> str:
    """The key of the COPY manifest naming exactly the dimension file ``source_key``."""
    return f"{DIMENSION_MANIFEST_PREFIX}{source_key}.manifest"
