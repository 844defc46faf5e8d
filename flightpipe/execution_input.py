"""The input of one pipeline execution: which object version to load.

The EventBridge rule in ``serverless.yml`` builds it from the S3 event with its input
transformer; ``flightpipe backfill`` and ``flightpipe smoke`` build the same document
from ``HeadObject``/``ListObjectVersions``; the state machine reads it as ``$``; the Glue
job receives it as ``--bucket``, ``--key``, ``--version_id``, ``--etag`` and
``--sequencer``. ``tests/test_template.py`` holds the rule's template to these fields.

``sequencer`` orders the versions of one key (:mod:`flightpipe.sequencer`): the S3 event's
``detail.object.sequencer``; an execution started without an event has none, unless
``flightpipe backfill`` gives it the ordering key of the version it re-drives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ExecutionInput:
    """``{"bucket", "key", "size", "etag", "version_id", "sequencer"}``; etag, version_id
    and sequencer may be null."""

    bucket: str
    key: str
    size: Optional[int] = None
    etag: Optional[str] = None
    version_id: Optional[str] = None
    sequencer: Optional[str] = None

    @classmethod
    def from_json(cls, text: str) -> ExecutionInput:
        document = json.loads(text or "{}")
        return cls(**{name: document.get(name) for name in cls.field_names()})

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def from_head(cls, bucket: str, key: str, head: dict[str, Any]) -> ExecutionInput:
        """The input for an object as ``HeadObject`` or a ``ListObjectVersions`` entry
        describes it: what its S3 event carries but the sequencer, which neither gives. An
        object written while the bucket was unversioned has the version id "null", and its
        event no version id at all
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/manage-objects-versioned-bucket.html)."""
        version_id = head.get("VersionId")
        return cls(
            bucket=bucket,
            key=key,
            size=int(head.get("ContentLength", head.get("Size", 0))),
            etag=str(head.get("ETag", "")).strip('"') or None,
            version_id=None if version_id in (None, "", "null") else version_id,
        )

    @property
    def source_version(self) -> Optional[str]:
        """How the warehouse's ledger names the version: its version id, else its ETag."""
        return self.version_id or self.etag

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def source_file(self) -> str:
        """How the warehouse's ledger and fact table name the file."""
        return f"s3://{self.bucket}/{self.key}"


def input_of_status_change(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The input the execution a "Step Functions Execution Status Change" event reports
    started with (the detail's ``input``, a JSON string): ``{}`` when it is missing or is not
    a JSON object."""
    try:
        started_with = json.loads(detail.get("input") or "{}")
    except ValueError:
        return {}
    return started_with if isinstance(started_with, dict) else {}
