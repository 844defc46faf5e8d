"""Settings the Lambda functions read from their environment (declared in serverless.yml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flightpipe.bucket_layout import DEFAULT_AIRPORTS_KEY


class Env:
    """The environment variables serverless.yml gives the functions (one name each)."""

    DATA_BUCKET = "DATA_BUCKET"
    AIRPORTS_KEY = "AIRPORTS_KEY"
    CRAWLER_NAME = "CRAWLER_NAME"
    COPY_ROLE_ARN = "REDSHIFT_COPY_ROLE_ARN"
    ADMIN_SECRET_ARN = "REDSHIFT_ADMIN_SECRET_ARN"
    DATABASE = "REDSHIFT_DATABASE"
    WORKGROUP = "REDSHIFT_WORKGROUP"
    CLUSTER_ID = "REDSHIFT_CLUSTER_ID"
    SECRET_ARN = "REDSHIFT_SECRET_ARN"
    DB_USER = "REDSHIFT_DB_USER"


class MissingSettingError(RuntimeError):
    """A required environment variable is not set: the deployment is incomplete."""


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
            data_bucket=environment.get(Env.DATA_BUCKET, ""),
            airports_key=environment.get(Env.AIRPORTS_KEY) or DEFAULT_AIRPORTS_KEY,
            crawler_name=environment.get(Env.CRAWLER_NAME, ""),
            copy_role_arn=environment.get(Env.COPY_ROLE_ARN, ""),
            admin_secret_arn=environment.get(Env.ADMIN_SECRET_ARN, ""),
        )

    def require(self, *names: str) -> None:
        """Fail clearly when a setting this function needs is empty."""
        for name in names:
            if not getattr(self, name):
                raise MissingSettingError(f"setting {name} is not configured for this function")
