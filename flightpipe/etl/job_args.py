"""The Glue job's arguments: Glue passes ``--name value`` pairs on the command line.

Glue also passes arguments of its own (``--job-bookmark-option``,
``--JOB_ID``…); unknown names are kept but not required. The same parser
serves the local emulator, which runs the job in-process with the same list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from flightpipe.warehouse.data_api import DEFAULT_DATABASE, WarehouseTarget

DEFAULT_REJECT_THRESHOLD = 0.05
# The job arguments naming the warehouse it loads and how it signs in (serverless.yml).
WAREHOUSE_ARGUMENTS = (
    "redshift_database",
    "redshift_workgroup",
    "redshift_cluster_id",
    "redshift_secret_arn",
    "redshift_db_user",
)


class JobArgumentError(ValueError):
    """The job was started with missing or malformed arguments."""


def parse_argv(argv: Sequence[str]) -> dict[str, str]:
    """``['--a', '1', '--b=2', '--flag']`` -> ``{'a': '1', 'b': '2', 'flag': ''}``."""
    values: dict[str, str] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if not token.startswith("--"):
            continue
        name = token[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif index < len(argv) and not argv[index].startswith("--"):
            value = argv[index]
            index += 1
        else:
            value = ""
        values[name] = value
    return values


def job_log_keys(argv: Sequence[str]) -> dict[str, Optional[str]]:
    """The keys every log line of a run carries: its execution id and file key (the
    execution's arguments), and the job run Glue passes (``--JOB_RUN_ID``). Read before the
    arguments are checked, so that a run started with bad ones logs its error with them."""
    from flightpipe.logs import run_keys

    values = parse_argv(argv)
    return run_keys(
        values.get("execution_id"), values.get("key"), job_run_id=values.get("JOB_RUN_ID") or None
    )


@dataclass(frozen=True)
class JobArgs:
    """What one run needs: the object, where to report, and the warehouse target."""

    # The uploaded object (the execution input's bucket and key) ...
    bucket: str
    key: str
    execution_id: Optional[str] = None
    version_id: Optional[str] = None
    etag: Optional[str] = None
    # The S3 event's sequencer, or the ordering key a re-drive passes (flightpipe/sequencer.py).
    sequencer: Optional[str] = None
    summary_key: Optional[str] = None
    # ... and the pipeline's own bucket, where its work goes (see work_bucket). They are the
    # same bucket when deployed; a run by hand may read a file from elsewhere.
    data_bucket: Optional[str] = None
    copy_role_arn: Optional[str] = None
    reject_threshold: float = DEFAULT_REJECT_THRESHOLD
    redshift_database: Optional[str] = None
    redshift_workgroup: Optional[str] = None
    redshift_cluster_id: Optional[str] = None
    redshift_secret_arn: Optional[str] = None
    redshift_db_user: Optional[str] = None

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> JobArgs:
        return cls.from_mapping(parse_argv(argv))

    @classmethod
    def from_mapping(cls, values: dict[str, str]) -> JobArgs:
        def get(name: str) -> Optional[str]:
            value = values.get(name)
            return value.strip() if value and value.strip() else None

        missing = [name for name in ("bucket", "key") if not get(name)]
        if missing:
            raise JobArgumentError(f"missing job arguments: {', '.join('--' + m for m in missing)}")
        return cls(
            bucket=get("bucket") or "",
            key=values["key"],
            execution_id=get("execution_id"),
            version_id=get("version_id"),
            etag=get("etag"),
            sequencer=get("sequencer"),
            summary_key=get("summary_key"),
            data_bucket=get("data_bucket"),
            copy_role_arn=get("copy_role_arn"),
            reject_threshold=_threshold(get("reject_threshold")),
            redshift_database=get("redshift_database"),
            redshift_workgroup=get("redshift_workgroup"),
            redshift_cluster_id=get("redshift_cluster_id"),
            redshift_secret_arn=get("redshift_secret_arn"),
            redshift_db_user=get("redshift_db_user"),
        )

    @property
    def work_bucket(self) -> str:
        """Where staging/, rejected/ and the summary in reports/ go: the data bucket, else the
        file's bucket."""
        return self.data_bucket or self.bucket

    @property
    def source_file(self) -> str:
        """How the file is known in the warehouse: its ``s3://`` URI (the reload key)."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def source_version(self) -> Optional[str]:
        return self.version_id or self.etag

    def warehouse_target(self) -> WarehouseTarget:
        """The warehouse this run loads, from its ``--redshift_*`` arguments."""
        return warehouse_target_from_arguments(
            {name: getattr(self, name) or "" for name in WAREHOUSE_ARGUMENTS}
        )


def warehouse_target_from_arguments(values: Mapping[str, str]) -> WarehouseTarget:
    """The warehouse named by the job's ``redshift_*`` arguments (names without ``--``): the
    job reads it at run time, the operations commands from the deployed job's arguments."""

    def get(name: str) -> Optional[str]:
        return (values.get(name) or "").strip() or None

    return WarehouseTarget(
        database=get("redshift_database") or DEFAULT_DATABASE,
        workgroup=get("redshift_workgroup"),
        cluster_id=get("redshift_cluster_id"),
        secret_arn=get("redshift_secret_arn"),
        db_user=get("redshift_db_user"),
    )


def _threshold(text: Optional[str]) -> float:
    if text is None:
        return DEFAULT_REJECT_THRESHOLD
    try:
        value = float(text)
    except ValueError as error:
        raise JobArgumentError(f"--reject_threshold must be a number, got {text!r}") from error
    if not 0.0 <= value <= 1.0:
        raise JobArgumentError(f"--reject_threshold must be between 0 and 1, got {value}")
    return value
