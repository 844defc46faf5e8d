"""What the code is running on: recorded by the job in its summary and by each Lambda in its result.

A deployment that fails only on AWS usually fails because of the runtime (the
interpreter, the SDK the runtime preinstalls), so every run says what it ran on.
"""

from __future__ import annotations

import platform

import boto3
import botocore


def runtime_versions() -> dict[str, str]:
    """The interpreter's and the AWS SDK's versions of this process."""
    return {
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
    }
