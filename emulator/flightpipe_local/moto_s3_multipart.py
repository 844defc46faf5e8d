"""S3 patch: a completed multipart upload sends one Object Created event, as S3 does.

moto's ``complete_multipart_upload`` stores the assembled object through
``put_object``, which sends an ``ObjectCreated:Put`` event, and then sends the
``ObjectCreated:CompleteMultipartUpload`` event too: two events, so two
executions, for one upload (measured with ``aws s3 cp`` of a 12 MB file). S3
sends only the second
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html).
Here the inner ``put_object`` of a multipart completion sends nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3 import models as s3_models

from flightpipe_local._patching import PatchSet

SEAM_OWNER = s3_models.S3Backend
COMPLETE_NAME = "complete_multipart_upload"
PUT_NAME = "put_object"

_completing = threading.local()


def install(patches: PatchSet) -> None:
    original_complete = SEAM_OWNER.__dict__[COMPLETE_NAME]
    original_put = SEAM_OWNER.__dict__[PUT_NAME]

    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        _completing.active = True
        try:
            return original_complete(self, *args, **kwargs)
        finally:
            _completing.active = False

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_completing, "active", False):
            kwargs["disable_notification"] = True
        return original_put(self, *args, **kwargs)

    patches.replace(SEAM_OWNER, COMPLETE_NAME, complete_multipart_upload)
    patches.replace(SEAM_OWNER, PUT_NAME, put_object)
