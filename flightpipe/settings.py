"""Settings the Lambda functions read from their environment (declared in serverless.yml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY


class MissingSettingError(RuntimeError):
    """A required environment variable is not set: the deployment is incomplete."""


def required(environment: Mapping[str, str], name: str) -> str:
    value = environment.get(name, "")
    if not value:
        raise MissingSettingError(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class FunctionSettings:
    """Where the pipeline's resources are, as serverless.yml tells each function."""

    data_bucket: str
    airports_key: str
    crawler_name: str
    copy_role_arn: str
    # Secret of a superuser, given to the prepare function only: it bootstraps the schema and
    # the pipeline role with it; every other statement runs as the pipeline identity.
    admin_secret_arn: str = ""

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] = os.environ) -> FunctionSettings:
        return cls(
            data_bucket=environment.get("DATA_BUCKET", ""),
            airports_key=environment.get("AIRPORTS_KEY") or DEFAULT_AIRPORTS_KEY,
            crawler_name=environment.get("CRAWLER_NAME", ""),
            copy_role_arn=environment.get("REDSHIFT_COPY_ROLE_ARN", ""),
            admin_secret_arn=environment.get("REDSHIFT_ADMIN_SECRET_ARN", ""),
        )

    def require(self, *names: str) -> None:
        """Fail clearly when a setting this function needs is empty."""
        for name in names:
            if not getattr(self, name):
                raise MissingSettingError(f"setting {name} is not configured for this function")
