"""Where things live in the data bucket: one name for each prefix the pipeline uses.

``serverless.yml`` and the state machine (YAML) cannot import these, so
``tests/test_template.py`` holds their copies of the prefixes to the values here.
"""

from __future__ import annotations

INCOMING_PREFIX = "incoming/"  # uploads: every object created here starts an execution
REPORTS_PREFIX = "reports/"  # the job's summary of each execution: reports/<execution>.json
REJECTED_PREFIX = "rejected/"  # rejected rows of each load: rejected/<load id>.csv
STAGING_PREFIX = "staging/"  # validated rows COPY reads, removed after the load
DEFAULT_AIRPORTS_KEY = "dimensions/airports.csv"  # the airports dimension's source file


def summary_key(execution_name: str) -> str:
    """The key of the summary the job writes for one execution."""
    return f"{REPORTS_PREFIX}{execution_name}.json"
