"""The AWS APIs the pipeline's code calls, as ports: the subset of each boto3 client used.

A boto3 client satisfies these structurally (its methods take keyword arguments); so do
the tests' moto clients and the benchmark's file-backed S3. Naming the subset keeps the
code honest about what it needs from each service, and shows a fake what to provide.
The warehouse has its own port (:mod:`flightpipe.warehouse.port`).
"""

from __future__ import annotations

from typing import Any, Protocol


class ObjectStore(Protocol):
    """The S3 calls of the job, the crawler checks and the prepare step."""

    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def head_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def delete_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...

    def upload_file(self, *args: Any, **kwargs: Any) -> None: ...


class CrawlerApi(Protocol):
    """The Glue calls that start a crawl and find the crawls that cover a file."""

    def start_crawler(self, **kwargs: Any) -> dict[str, Any]: ...

    def list_crawls(self, **kwargs: Any) -> dict[str, Any]: ...


class RedshiftDataApi(Protocol):
    """The Redshift Data API calls of :class:`flightpipe.warehouse.data_api.DataApiWarehouse`."""

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]: ...

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_statement(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_statement_result(self, **kwargs: Any) -> dict[str, Any]: ...

    def cancel_statement(self, **kwargs: Any) -> dict[str, Any]: ...
