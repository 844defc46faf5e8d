"""The input of one pipeline execution: which object version to load.

The EventBridge rule in ``serverless.yml`` builds it from the S3 event with its input
transformer; ``flightpipe backfill`` and ``flightpipe smoke`` build the same document
from ``HeadObject``/``ListObjectVersions``; the state machine reads it as ``$``; the Glue
job receives it as ``--bucket``, ``--key``, ``--version_id`` and ``--etag``.
``tests/test_execution_input.py`` holds the rule's template to these fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ExecutionInput:
    """``{"bucket", "key", "size", "etag", "version_id"}``; etag and version_id may be null."""

    bucket: str
    key: str
    size: Optional[int] = None
    etag: Optional[str] = None
    version_id: Optional[str] = None

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
        describes it (what its S3 event carries). An object written while the bucket was
        unversioned has the version id "null", and its event no version id at all
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/manage-objects-versioned-bucket.html)."""
        version_id = head.get("VersionId")
        return cls(
            bucket=bucket,
            key=key,
            size=int(head.get("ContentLength", head.get("Size", 0))),
            etag=str(head.get("ETag", "")).strip('"') or None,
            version_id=None if version_id in (None, "", "null") else version_id,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def source_file(self) -> str:
        """How the warehouse's ledger and fact table name the file."""
        return f"s3://{self.bucket}/{self.key}"
