"""COPY manifests: the exact list of objects a Redshift ``COPY`` loads."""

from __future__ import annotations

import json

from flightpipe.aws_ports import ObjectStore


def write_copy_manifest(s3: ObjectStore, bucket: str, key: str, uris: list[str]) -> str:
    """Write a manifest naming exactly ``uris`` at ``s3://bucket/key``; return its URI.

    COPY treats ``FROM 's3://…'`` as a key prefix, so ``dimensions/airports.csv`` would
    also load ``dimensions/airports.csv.bak``; a manifest lists the objects to load, and
    ``mandatory`` makes COPY fail if one of them is missing
    (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
    """
    body = {"entries": [{"url": uri, "mandatory": True} for uri in uris]}
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body).encode("utf-8"),
        ContentType="application/json",
    )
    return f"s3://{bucket}/{key}"
