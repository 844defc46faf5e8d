"""Reading a file's records and validating them: the one definition both engines run.

The Python shell job runs :func:`validate_records` once over the whole object;
the Spark job runs it once per split in its tasks (flightpipe.etl.spark_engine)
and adds their counts up with :meth:`RecordCounts.add`. The header, the layout, the
reject rules and the value parsing are the same code either way, so the two
engines cannot drift apart.
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Optional

from flightpipe.etl.errors import FileRejected
from flightpipe.etl.layouts import ColumnMap, resolve_columns
from flightpipe.etl.reader import BlockPrefetcher, CsvRecordReader
from flightpipe.etl.staging import SpoolFiles
from flightpipe.etl.validate import BlockValidator
from flightpipe.etl.values import date_from_key


@dataclass
class RecordCounts:
    """What validating some records produced (the rows themselves went to a spool)."""

    rows_read: int = 0
    rows_valid: int = 0
    unmatched_airport_rows: int = 0
    unknown_airport_ids: set[int] = field(default_factory=set)
    blank_lines: int = 0
    read_wait_s: float = 0.0
    stage_wait_s: float = 0.0

    def add(self, other: RecordCounts) -> None:
        self.rows_read += other.rows_read
        self.rows_valid += other.rows_valid
        self.unmatched_airport_rows += other.unmatched_airport_rows
        self.unknown_airport_ids |= other.unknown_airport_ids
        self.blank_lines += other.blank_lines
        self.read_wait_s += other.read_wait_s
        self.stage_wait_s += other.stage_wait_s


@dataclass
class ReadResult:
    """What reading and validating the whole object produced, whichever engine read it."""

    columns: ColumnMap
    flight_date_source: str
    counts: RecordCounts = field(default_factory=RecordCounts)
    rows_rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    # Staged parts the engine already wrote to the work bucket (the Spark tasks write
    # theirs); empty when the rows are in the local spool, to be uploaded as one part.
    staged_keys: list[str] = field(default_factory=list)
    splits: int = 1  # how many parts the object was read in (the Spark job's tasks)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return self.counts.rows_read

    @property
    def rows_valid(self) -> int:
        return self.counts.rows_valid

    def check_accounting(self) -> None:
        """Every row read is staged or rejected: anything else is a bug, never a load."""
        if self.rows_read != self.rows_valid + self.rows_rejected:
            raise RuntimeError(
                f"row accounting broke: {self.rows_read} read, {self.rows_valid} valid, "
                f"{self.rows_rejected} rejected"
            )


@dataclass(frozen=True)
class FileLayout:
    """What the header says about every record of the file: given to each split's reader."""

    columns: ColumnMap
    key_date: Optional[dt.date]

    @property
    def flight_date_source(self) -> str:
        if self.columns.has_date:
            return f"column {self.columns.names['flight_date']}"
        if self.key_date:
            return f"object key date={self.key_date.isoformat()}"
        return "none (flight_date is NULL)"


def read_layout(reader: CsvRecordReader, key: str) -> FileLayout:
    """The file's layout from its header record (the reader moves past it)."""
    _, header = reader.header()
    return FileLayout(resolve_columns(header_fields(header)), date_from_key(key))


def header_fields(header: bytes) -> list[str]:
    try:
        return next(csv.reader([header.decode("utf-8")], strict=True))
    except (csv.Error, UnicodeDecodeError, StopIteration) as error:
        raise FileRejected(f"the header row is not valid CSV text: {error}") from error


def validate_records(
    reader: CsvRecordReader, layout: FileLayout, known: frozenset[int], spool: SpoolFiles
) -> RecordCounts:
    """Validate the reader's data records: valid rows to the staged spool, rejects (line
    number, raw text, reason) to the rejects spool; return the counts."""
    validator = BlockValidator(layout.columns, known, layout.key_date)
    counts = RecordCounts()
    # Three threads overlap: reading and splitting the next block, validating this one
    # (here), gzip-compressing the staged rows of the previous one.
    with BlockPrefetcher(reader.data_blocks()) as blocks:
        for block in blocks:
            result = validator.validate(block)
            spool.staged.write(result.staged_bytes)
            spool.rejects.write(result.rejects)
            counts.rows_read += result.rows_read
            counts.rows_valid += result.rows_valid
            counts.unmatched_airport_rows += result.unmatched_airport_rows
            counts.unknown_airport_ids |= result.unknown_airport_ids
    spool.close()
    counts.blank_lines = reader.blank_lines
    counts.read_wait_s = blocks.waited
    counts.stage_wait_s = spool.staged.waited
    return counts


def read_whole_object(
    stream: BinaryIO, key: str, known: frozenset[int], spool: SpoolFiles, block_bytes: int
) -> ReadResult:
    """Read and validate a whole object in this process (the Python shell engine)."""
    timer = time.monotonic()
    reader = CsvRecordReader(stream, block_bytes)
    layout = read_layout(reader, key)
    read = ReadResult(layout.columns, layout.flight_date_source)
    read.counts = validate_records(reader, layout, known, spool)
    read.rows_rejected = spool.rejects.count
    read.rejects_by_reason = dict(sorted(spool.rejects.reasons.items()))
    read.timings_s = {
        "read_validate": round(time.monotonic() - timer, 3),
        "read_wait": round(read.counts.read_wait_s, 3),
        "stage_wait": round(read.counts.stage_wait_s, 3),
    }
    read.check_accounting()
    return read
