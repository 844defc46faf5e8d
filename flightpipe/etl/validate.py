"""Validating a block of records, column by column, with every rejected row explained.

A block is checked in three passes, all vectorised:

1. records with the wrong number of fields, NUL bytes or invalid UTF-8 are
   rejected from the raw bytes (numpy), before any parsing;
2. the rest is parsed by pandas' C reader (``dtype=str``, only the needed
   columns);
3. each column is factorised: its *distinct* values are parsed once by the
   functions in :mod:`flightpipe.etl.values` (results cached across blocks)
   and the outcome is broadcast back to the rows. A daily file has a few
   hundred airports, carriers, dates and delay values, so Python code runs per
   distinct value, not per row.

The rows that pass are rendered as the staged CSV (carrier, dep and arr airport
ids, delays, flight date); each rejected row keeps its line number, raw text
and the reasons.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Callable, Optional

import numpy as np
import pandas as pd

from flightpipe.etl import values
from flightpipe.etl.layouts import ColumnMap
from flightpipe.etl.reader import RecordBlock

STAGED_COLUMNS: tuple[str, ...] = (
    "carrier",
    "dep_airport_id",
    "arr_airport_id",
    "dep_delay",
    "arr_delay",
    "flight_date",
)
_CACHE_LIMIT = 200_000


@dataclass
class Reject:
    """One rejected row: where it was, what it said, and why it was turned away."""

    line: int
    raw: bytes
    reason: str


@dataclass
class BlockResult:
    """What one block produced for staging, rejects and the summary."""

    staged_csv: str = ""
    rows_read: int = 0
    rows_valid: int = 0
    rejects: list[Reject] = field(default_factory=list)
    unmatched_airport_rows: int = 0
    unknown_airport_ids: set[int] = field(default_factory=set)


class _FieldParser:
    """Parses the distinct values of one column, remembering results across blocks."""

    def __init__(self, parse: Callable[[str], values.Parsed]) -> None:
        self._parse = parse
        self._cache: dict[str, values.Parsed] = {}

    def parse(self, column: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Factorise ``column``: (codes, staged text and error per distinct value)."""
        codes, uniques = pd.factorize(column)
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        results = [self._cached(value) for value in uniques]
        texts = np.array([text for text, _ in results], dtype=object)
        errors = [error for _, error in results]
        return codes, texts, errors

    def _cached(self, value: str) -> values.Parsed:
        result = self._cache.get(value)
        if result is None:
            result = self._parse(value)
            self._cache[value] = result
        return result


class BlockValidator:
    """Validates blocks of one file against its column map."""

    def __init__(
        self,
        columns: ColumnMap,
        known_airport_ids: Iterable[int],
        key_date: Optional[dt.date] = None,
    ) -> None:
        self._columns = columns
        self._known = frozenset(int(airport_id) for airport_id in known_airport_ids)
        self._key_date = key_date
        self._parsers = {
            "carrier": _FieldParser(values.parse_carrier),
            "dep_airport_id": _FieldParser(lambda v: values.parse_airport_id(v, "dep_airport_id")),
            "arr_airport_id": _FieldParser(lambda v: values.parse_airport_id(v, "arr_airport_id")),
            "dep_delay": _FieldParser(lambda v: values.parse_delay(v, "dep_delay")),
            "arr_delay": _FieldParser(lambda v: values.parse_delay(v, "arr_delay")),
            "flight_date": _FieldParser(lambda v: values.parse_flight_date(v, key_date)),
        }
        self._fields = [name for name in STAGED_COLUMNS if columns.position(name) is not None]
        self._default_date = key_date.isoformat() if key_date else ""

    def validate(self, block: RecordBlock) -> BlockResult:
        result = BlockResult(rows_read=len(block))
        keep = self._check_records(block, result.rejects)
        parsed_block = block.select(keep)
        frame, parsed_keep = self._parse(parsed_block, result.rejects)
        if parsed_keep is not None:
            parsed_block = parsed_block.select(parsed_keep)
        self._check_values(parsed_block, frame, result)
        result.rejects.sort(key=lambda reject: reject.line)
        return result

    def _check_records(self, block: RecordBlock, rejects: list[Reject]) -> np.ndarray:
        """Reject records with the wrong field count, NUL bytes or invalid UTF-8."""
        expected = self._columns.field_count
        counts = block.field_counts()
        keep = counts == expected
        for index in np.flatnonzero(~keep).tolist():
            rejects.append(
                Reject(
                    int(block.lines[index]),
                    block.record(index),
                    f"wrong number of fields: expected {expected}, found {int(counts[index])}",
                )
            )
        if b"\x00" in block.data or not _is_utf8(block.data):
            for index in np.flatnonzero(keep).tolist():
                reason = _encoding_problem(block.record(index))
                if reason:
                    keep[index] = False
                    rejects.append(Reject(int(block.lines[index]), block.record(index), reason))
        return keep

    def _parse(
        self, block: RecordBlock, rejects: list[Reject]
    ) -> tuple[dict[str, np.ndarray], Optional[np.ndarray]]:
        """The needed columns as arrays of str; falls back to the csv module if pandas disagrees."""
        positions = [self._columns.positions[name] for name in self._fields]
        if not len(block):
            return {name: np.array([], dtype=object) for name in self._fields}, None
        frame = pd.read_csv(
            io.BytesIO(block.data),
            header=None,
            usecols=positions,
            dtype=str,
            na_filter=False,
            keep_default_na=False,
            engine="c",
            encoding="utf-8",
            skip_blank_lines=False,
            low_memory=False,
        )
        if len(frame) == len(block):
            return {
                name: frame[pos].to_numpy(dtype=object)
                for name, pos in zip(self._fields, positions)
            }, None
        return self._parse_each(block, positions, rejects)

    def _parse_each(
        self, block: RecordBlock, positions: list[int], rejects: list[Reject]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Record-by-record parsing for the rare block whose quoting pandas reads differently."""
        keep = np.ones(len(block), dtype=bool)
        rows: list[list[str]] = []
        for index in range(len(block)):
            raw = block.record(index)
            try:
                fields = next(csv.reader([raw.decode("utf-8")], strict=True))
            except (csv.Error, StopIteration) as error:
                fields, problem = [], f"malformed CSV quoting: {error}"
            else:
                problem = ""
                if len(fields) != self._columns.field_count:
                    problem = (
                        f"malformed CSV quoting: expected {self._columns.field_count} fields, "
                        f"found {len(fields)}"
                    )
            if problem:
                keep[index] = False
                rejects.append(Reject(int(block.lines[index]), raw, problem))
            else:
                rows.append([fields[pos] for pos in positions])
        columns = list(zip(*rows)) if rows else [() for _ in positions]
        return {
            name: np.array(column, dtype=object) for name, column in zip(self._fields, columns)
        }, keep

    def _check_values(
        self, block: RecordBlock, frame: dict[str, np.ndarray], result: BlockResult
    ) -> None:
        count = len(block)
        bad = np.zeros(count, dtype=bool)
        texts: list = []
        reasons: list[tuple[np.ndarray, list]] = []
        parsed_ids = {}
        for name in STAGED_COLUMNS:
            if name not in frame:
                texts.append(repeat(self._default_date))
                continue
            codes, column_texts, errors = self._parsers[name].parse(frame[name])
            failed = np.array([error is not None for error in errors], dtype=bool)
            if failed.any():
                bad |= failed[codes]
                reasons.append((codes, errors))
            texts.append(column_texts[codes] if count else column_texts)
            if name.endswith("_airport_id"):
                parsed_ids[name] = (codes, column_texts, failed)
        ok = ~bad
        result.rows_valid = int(ok.sum())
        for index in np.flatnonzero(bad).tolist():
            why = [errors[codes[index]] for codes, errors in reasons if errors[codes[index]]]
            result.rejects.append(
                Reject(int(block.lines[index]), block.record(index), "; ".join(why))
            )
        self._count_unknown_airports(parsed_ids, ok, result)
        if result.rows_valid:
            columns = [column[ok] if isinstance(column, np.ndarray) else column for column in texts]
            result.staged_csv = "\n".join(map(",".join, zip(*columns))) + "\n"

    def _count_unknown_airports(
        self, parsed_ids: dict, ok: np.ndarray, result: BlockResult
    ) -> None:
        unmatched = np.zeros(len(ok), dtype=bool)
        for codes, texts, failed in parsed_ids.values():
            unknown = np.array(
                [not bad and int(text) not in self._known for text, bad in zip(texts, failed)],
                dtype=bool,
            )
            if not unknown.any() or not len(codes):
                continue
            rows = unknown[codes] & ok
            unmatched |= rows
            for code in np.unique(codes[rows]).tolist():
                result.unknown_airport_ids.add(int(texts[code]))
        result.unmatched_airport_rows = int(unmatched.sum())


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _encoding_problem(raw: bytes) -> str:
    if b"\x00" in raw:
        return "the row contains a NUL byte"
    if not _is_utf8(raw):
        return "the row is not valid UTF-8 text"
    return ""
