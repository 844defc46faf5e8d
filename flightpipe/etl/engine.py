"""The read engine contract: what the job asks an engine to read, and the engines' shape.

``run_job`` (flightpipe/etl/job.py) hands an engine a :class:`ReadRequest`; an engine reads
and validates the whole object and returns a ``ReadResult``. :class:`PythonShellEngine` reads
in this process (the Glue Python shell job); ``flightpipe.etl.spark_engine.SparkEngine`` splits
the object over Spark tasks (the Glue Spark job). Both engines and the job import this module,
and neither engine imports the job.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Protocol

from flightpipe.etl.read import ReadResult, read_whole_object
from flightpipe.etl.reader import DEFAULT_BLOCK_BYTES
from flightpipe.etl.sources import Source
from flightpipe.etl.staging import SpoolFiles


@dataclasses.dataclass(frozen=True)
class ReadRequest:
    """Which object an engine reads, what it validates against, and where it may stage."""

    bucket: str
    key: str
    version_id: Optional[str]
    known_airport_ids: frozenset[int]
    work_bucket: str
    load_id: str
    block_bytes: int = DEFAULT_BLOCK_BYTES


class ReadEngine(Protocol):
    """Reads and validates a whole object: in this process, or split over Spark tasks.

    ``read`` fills the rejects spool (line number, reason, raw text) and either the staged
    spool or, for parts it wrote itself, ``ReadResult.staged_keys``; it adds every key it
    may write to ``staged`` first, so they are removed whatever happens.
    """

    name: str

    def runtime(self) -> dict[str, str]: ...

    def read(
        self, source: Source, request: ReadRequest, spool: SpoolFiles, staged: list[str]
    ) -> ReadResult: ...


class PythonShellEngine:
    """One process reads the object once, start to end (the Glue Python shell job)."""

    name = "pythonshell"

    def runtime(self) -> dict[str, str]:
        return {"engine": self.name}

    def read(
        self, source: Source, request: ReadRequest, spool: SpoolFiles, staged: list[str]
    ) -> ReadResult:
        return read_whole_object(
            source.stream, request.key, request.known_airport_ids, spool, request.block_bytes
        )
