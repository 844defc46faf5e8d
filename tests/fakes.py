"""The one fake of S3 the tests (and the benchmark) use where moto is not the point.

:class:`FolderS3` keeps objects as files under a folder (``<root>/<bucket>/<key>``), so a
benchmark's multi-gigabyte file is never held in memory. It serves both sides of S3:

- the calls the product makes (:class:`flightpipe.aws_ports.ObjectStore`), for the job
  run directly in a benchmark;
- the stand-in warehouse's ``COPY … FROM 's3://…'`` (``read`` and ``list_keys``), with
  an optional ``fallback`` client (the test's moto S3), so that COPY also sees what the
  code under test put there through moto.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Optional


class FolderS3:
    """S3 over a folder; objects not found here are read from ``fallback`` when it is set."""

    def __init__(self, root: Path, fallback: Optional[Any] = None) -> None:
        self.root = root
        self.fallback = fallback

    @contextlib.contextmanager
    def falling_back_to(self, client: Any) -> Iterator[Any]:
        """``client`` as the fallback for the block (a test's moto S3); yields it."""
        self.fallback = client
        try:
            yield client
        finally:
            self.fallback = None

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def _writable(self, bucket: str, key: str) -> Path:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- the product's calls (ObjectStore) ------------------------------------------------

    def get_object(self, Bucket: str, Key: str, Range: str = "", **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        size = path.stat().st_size
        if Range:  # "bytes=first-last", what a zip's ranged reads ask for
            first, last = (int(part) for part in Range.split("=", 1)[1].split("-"))
            with path.open("rb") as handle:
                handle.seek(first)
                return {"Body": io.BytesIO(handle.read(last - first + 1)), "ContentLength": size}
        return {"Body": path.open("rb"), "ContentLength": size}

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        path = self._path(Bucket, Key)
        if not path.is_file():
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": path.stat().st_size}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._writable(Bucket, Key).write_bytes(Body)
        return {}

    def upload_file(self, filename: str, bucket: str, key: str, **_: Any) -> None:
        shutil.copyfile(filename, self._writable(bucket, key))

    def delete_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._path(Bucket, Key).unlink(missing_ok=True)
        return {}

    def list_objects_v2(self, Bucket: str, Prefix: str = "", **_: Any) -> dict[str, Any]:
        keys = self._local_keys(Bucket, Prefix)
        return {"Contents": [{"Key": key} for key in keys], "KeyCount": len(keys)}

    # -- the stand-in's COPY ---------------------------------------------------------------

    def read(self, bucket: str, key: str) -> BinaryIO:
        path = self._path(bucket, key)
        if not path.is_file() and self.fallback is not None:
            return self.fallback.get_object(Bucket=bucket, Key=key)["Body"]
        return path.open("rb")

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys = self._local_keys(bucket, prefix)
        if not keys and self.fallback is not None:
            listing = self.fallback.list_objects_v2(Bucket=bucket, Prefix=prefix)
            keys = [item["Key"] for item in listing.get("Contents", [])]
        return keys

    def _local_keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        if not base.is_dir():
            return []
        found = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(key for key in found if key.startswith(prefix))
