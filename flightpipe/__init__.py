"""flightpipe: a serverless flight-data pipeline (S3 -> Step Functions -> Glue -> Redshift)."""

from __future__ import annotations

__version__ = "0.1.0"
