"""Which S3 object an event's key names: the key as given, else its URL-decoded form.

S3's classic event notifications (to Lambda, SQS, SNS) carry the object key
URL-encoded, form style — "The object key name value is URL encoded. For
example, "red flower.jpg" becomes "red+flower.jpg"":
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html

S3's EventBridge events ("Object Created") carry the key in ``detail.object.key``;
the page on their structure shows ``"key": "example-key"`` and says nothing
about encoding either way:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html

Since the documentation does not settle it, the pipeline accepts both forms
(DESIGN.md, fidelity principle): the key as given wins when that object exists
— a literal ``a+b.csv`` stays ``a+b.csv`` — and only otherwise is its
:func:`urllib.parse.unquote_plus` form used, and only when *that* object exists.
No other key is ever tried, so a wrong file is never read. With a version id
from the event, existence means "this key has this version", and the object is
then read at that version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote_plus

from flightpipe.aws_ports import ObjectStore

# HEAD answers without an error code body; S3 says 404 for a missing key or
# version (400 for a malformed version id), and 403 instead of 404 when the
# caller may not list the bucket — then "absent" and "unreadable" look alike.
_ABSENT_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchVersion", "400", "403", "AccessDenied"}


class SourceObjectNotFound(LookupError):
    """Neither the event's key nor its URL-decoded form names an object (at that version)."""

    def __init__(self, bucket: str, tried: list[tuple[str, str]], version_id: Optional[str]):
        at = f" at version {version_id}" if version_id else ""
        named = [f"s3://{bucket}/{key} ({answer})" for key, answer in tried]
        if len(named) == 1:
            message = f"no object{at} under the event's key {named[0]}"
        else:
            message = (
                f"no object{at} under the event's key {named[0]} "
                f"nor under its URL-decoded form {named[1]}"
            )
        super().__init__(message)
        self.bucket = bucket
        self.tried = [key for key, _ in tried]
        self.version_id = version_id


@dataclass(frozen=True)
class ResolvedKey:
    """The key the object really has, and the key the event carried."""

    key: str
    event_key: str

    @property
    def decoded(self) -> bool:
        return self.key != self.event_key


def candidate_keys(event_key: str) -> list[str]:
    """The keys an event's key may stand for, in the order they are tried."""
    decoded = unquote_plus(event_key)
    return [event_key] if decoded == event_key else [event_key, decoded]


def resolve_event_key(
    s3: ObjectStore, bucket: str, event_key: str, version_id: Optional[str] = None
) -> ResolvedKey:
    """The object an S3 event names: its key as given if it exists, else the decoded key.

    ``s3`` is a boto3 S3 client. Raises :class:`SourceObjectNotFound` naming every
    key tried when none exists (at ``version_id``, when given); other S3 errors
    propagate.
    """
    tried: list[tuple[str, str]] = []
    for key in candidate_keys(event_key):
        answer = _head(s3, bucket, key, version_id)
        if answer is None:
            return ResolvedKey(key=key, event_key=event_key)
        tried.append((key, answer))
    raise SourceObjectNotFound(bucket, tried, version_id)


def _head(s3: ObjectStore, bucket: str, key: str, version_id: Optional[str]) -> Optional[str]:
    """None when the object exists; else why it does not (the HEAD's error code)."""
    request = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        s3.head_object(**request)
    except Exception as error:  # botocore's ClientError, without importing botocore here
        response = getattr(error, "response", None)
        if not isinstance(response, dict):
            raise
        code = str((response.get("Error") or {}).get("Code", ""))
        if code not in _ABSENT_CODES:
            raise
        return {"404": "not found", "403": "403 Forbidden", "400": "400 Bad Request"}.get(
            code, code
        )
    return None
