"""Validating a block of records, column by column, with every rejected row explained.

A block is checked in three passes, all vectorised:

1. records with the wrong number of fields, NUL bytes or invalid UTF-8 are
   rejected from the raw bytes (numpy), before any parsing;
2. the needed columns are cut out of the raw bytes and factorised there
   (numpy: each field's bytes become fixed-width integer keys, pandas'
   hash-table ``factorize`` numbers the distinct keys), so no Python object is
   made per row. A block whose quoting is not plain RFC 4180 (a quote inside
   an unquoted field, a bare carriage return, a needed field longer than
   :data:`_MAX_FIELD_BYTES`) goes through pandas' C reader (``dtype=str``)
   instead, and its values are factorised from there;
3. the *distinct* values of each column are parsed once by the functions in
   :mod:`flightpipe.etl.values` (results cached across blocks) and the outcome
   is broadcast back to the rows. A daily file has a few hundred airports,
   carriers, dates and delay values, so Python code runs per distinct value,
   not per row.

The rows that pass are rendered as the staged CSV (carrier, dep and arr airport
ids, delays, flight date) with numpy too: a row-major byte matrix of the
distinct values' staged texts, NUL-padded, with the padding then dropped; each
rejected row keeps its line number, raw text and the reasons.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
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
# A needed field longer than this sends its block to pandas' reader: every
# value this job accepts is far shorter, and the byte matrix stays small.
_MAX_FIELD_BYTES = 56
_LF, _CR, _QUOTE, _COMMA = 10, 13, 34, 44
# _WORD_MASKS[w][n] keeps, of the little-endian uint64 read at byte 8 * w of a field
# n bytes long, the bytes that are the field's.
_WORD_MASKS = np.array(
    [
        [(1 << (8 * min(max(n - 8 * w, 0), 8))) - 1 for n in range(_MAX_FIELD_BYTES + 1)]
        for w in range(_MAX_FIELD_BYTES // 8)
    ],
    dtype=np.uint64,
)


@dataclass
class Reject:
    """One rejected row: where it was, what it said, and why it was turned away."""

    line: int
    raw: bytes
    reason: str


@dataclass
class BlockResult:
    """What one block produced for staging, rejects and the summary."""

    staged_bytes: bytes = b""
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

    def parse(self, uniques: list) -> tuple[list, list]:
        """The staged text and error of each distinct value."""
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        results = [self._cached(value) for value in uniques]
        return [text for text, _ in results], [error for _, error in results]

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
        # The file's columns are the staged ones, in their order (the tutorial layout, with
        # or without the date last): a block whose values all stage as they are written
        # is its own staged CSV, plus the key's date when the file has no date column.
        self._verbatim_suffix: Optional[bytes] = None
        if [columns.position(name) for name in self._fields] == list(range(columns.field_count)):
            missing = STAGED_COLUMNS[len(self._fields) :]
            if missing in ((), ("flight_date",)):
                self._verbatim_suffix = b"," + self._default_date.encode() if missing else b""

    def validate(self, block: RecordBlock) -> BlockResult:
        result = BlockResult(rows_read=len(block))
        keep = self._check_records(block, result.rejects)
        columns = _columns_from_bytes(block, keep, self._columns, self._fields)
        verbatim = None
        if columns is not None:
            parsed_block = block.subset(keep)
            if parsed_block is block:
                verbatim = self._verbatim_suffix
        else:  # quoting pandas may read differently: its C reader, as always
            parsed_block = block.select(keep)
            columns, parsed_keep = self._parse(parsed_block, result.rejects)
            if parsed_keep is not None:
                parsed_block = parsed_block.select(parsed_keep)
        self._check_values(parsed_block, columns, result, verbatim)
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
    ) -> tuple[dict[str, _Column], Optional[np.ndarray]]:
        """The needed columns factorised; falls back to the csv module if pandas disagrees."""
        positions = [self._columns.positions[name] for name in self._fields]
        if not len(block):
            return _factorised({name: np.array([], dtype=object) for name in self._fields}), None
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
            return _factorised(
                {
                    name: frame[pos].to_numpy(dtype=object)
                    for name, pos in zip(self._fields, positions)
                }
            ), None
        columns, keep = self._parse_each(block, positions, rejects)
        return _factorised(columns), keep

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
        self,
        block: RecordBlock,
        columns: dict[str, _Column],
        result: BlockResult,
        verbatim_suffix: Optional[bytes] = None,
    ) -> None:
        """Parse the distinct values, reject the rows with a bad one, stage the rest.

        With ``verbatim_suffix``, the block is the file's own records in the staged
        column order: if every row is valid and every value stages as written, its
        bytes (each line with the suffix) are the staged CSV, not re-rendered.
        """
        count = len(block)
        bad = np.zeros(count, dtype=bool)
        staged: list[tuple[Optional[np.ndarray], list]] = []
        reasons: list[tuple[np.ndarray, list]] = []
        parsed_ids = {}
        for name in STAGED_COLUMNS:
            if name not in columns:
                staged.append((None, [self._default_date]))
                continue
            codes, uniques = columns[name]
            column_texts, errors = self._parsers[name].parse(uniques)
            failed = np.array([error is not None for error in errors], dtype=bool)
            if failed.any():
                bad |= failed[codes]
                reasons.append((codes, errors))
            staged.append((codes, column_texts))
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
        if not result.rows_valid:
            return
        verbatim = verbatim_suffix is not None and result.rows_valid == count
        verbatim = verbatim and all(
            codes is None or texts == columns[name][1]
            for name, (codes, texts) in zip(STAGED_COLUMNS, staged)
        )
        if verbatim:
            result.staged_bytes = _as_staged(block, verbatim_suffix)
        if not result.staged_bytes:
            result.staged_bytes = _render_csv(staged, ok, result.rows_valid)

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


# A column of a block: each row's code, and the distinct values the codes number.
_Column = tuple[np.ndarray, list]


def _factorised(columns: dict[str, np.ndarray]) -> dict[str, _Column]:
    """Columns of str values (pandas' or the csv module's) as codes and distinct values."""
    factorised = {}
    for name, column in columns.items():
        codes, uniques = pd.factorize(column)
        factorised[name] = (codes, list(uniques))
    return factorised


def _columns_from_bytes(
    block: RecordBlock, keep: np.ndarray, columns: ColumnMap, names: list[str]
) -> Optional[dict[str, _Column]]:
    """The needed columns of the kept records, factorised straight from the raw bytes.

    None when the block's quoting is not plain RFC 4180 (then pandas' reader, which the
    job has always used, decides what the fields say) or a needed field is too long.
    Plain quoting makes a field's value unambiguous: its bytes, or for a field in
    quotes the bytes between them with each doubled quote made single.
    """
    array = np.frombuffer(block.data, dtype=np.uint8)
    commas, first, quotes = block.separators()
    if not _plain_quoting(block.data, array, quotes, block.ends):
        return None
    starts, ends = block.starts, block.ends
    if not keep.all():
        rows = np.flatnonzero(keep)
        starts, ends, first = starts[rows], ends[rows], first[rows]
    last = columns.field_count - 1
    padded = np.concatenate([array, np.zeros(_MAX_FIELD_BYTES + 8, dtype=np.uint8)])
    after: dict[int, np.ndarray] = {}  # the comma after field k of each record

    def comma_after(position: int) -> np.ndarray:
        if position not in after:
            after[position] = commas[first + position]
        return after[position]

    factorised = {}
    for name in names:
        position = columns.positions[name]
        field_starts = starts if position == 0 else comma_after(position - 1) + 1
        field_ends = ends if position == last else comma_after(position)
        column = _factorise_spans(block.data, padded, field_starts, field_ends)
        if column is None:
            return None
        factorised[name] = column
    return factorised


def _plain_quoting(
    data: bytes, array: np.ndarray, quotes: np.ndarray, record_ends: np.ndarray
) -> bool:
    """Whether every quote opens a field, closes one, or is doubled inside one (RFC 4180),
    and every carriage return ends a record (CRLF).

    A block starting with a UTF-8 byte-order mark also goes to pandas, whose reader
    drops one there, so that such a record stages as it always has.
    """
    if data.startswith(codecs.BOM_UTF8):
        return False
    if b"\r" in data:  # a memchr; CR is rare outside CRLF files
        returns = np.flatnonzero(array == _CR)
        at = np.minimum(np.searchsorted(record_ends, returns), len(record_ends) - 1)
        if not len(record_ends) or not (record_ends[at] == returns).all():
            return False
    if not len(quotes):
        return True
    if len(quotes) % 2:
        return False
    size = len(array)
    opening, closing = quotes[0::2], quotes[1::2]
    before = array[np.maximum(opening - 1, 0)]
    at_start = (opening == 0) | (before == _COMMA) | (before == _LF)
    doubled_open = np.zeros(len(opening), dtype=bool)
    doubled_open[1:] = opening[1:] == closing[:-1] + 1
    if not (at_start | doubled_open).all():
        return False
    after = array[np.minimum(closing + 1, size - 1)]
    at_end = (closing == size - 1) | (after == _COMMA) | (after == _LF) | (after == _CR)
    doubled_close = np.zeros(len(closing), dtype=bool)
    doubled_close[:-1] = closing[:-1] + 1 == opening[1:]
    return bool((at_end | doubled_close).all())


def _factorise_spans(
    data: bytes, padded: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> Optional[_Column]:
    """Codes and distinct values of the fields ``data[starts[i]:ends[i]]``.

    Each field's bytes, NUL-padded to a multiple of 8, are read as uint64 words (a
    kept row has no NUL byte, so the padding cannot make two values equal); the
    words are factorised one after the other, the codes so far combined with the next.
    ``padded`` is the block's bytes followed by ``_MAX_FIELD_BYTES + 8`` NULs.
    """
    count = len(starts)
    if not count:
        return np.zeros(0, dtype=np.intp), []
    lengths = ends - starts
    width = int(lengths.max())
    if width > _MAX_FIELD_BYTES:
        return None
    # Every 8 bytes from each offset as one uint64 (an overlapping, unaligned view).
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    codes = None
    for offset in range(0, max(width, 1), 8):
        key = words[starts + offset] & np.take(_WORD_MASKS[offset // 8], lengths)
        more, distinct = pd.factorize(key)
        if codes is None:
            codes = more
        else:
            codes, _ = pd.factorize(codes.astype(np.int64) * len(distinct) + more)
    # Codes count up in order of first appearance: a new code is a new running maximum.
    running = np.maximum.accumulate(codes)
    new = np.empty(count, dtype=bool)
    new[0] = True
    np.greater(running[1:], running[:-1], out=new[1:])
    firsts = np.flatnonzero(new)
    uniques = [
        _field_value(data[start:end])
        for start, end in zip(starts[firsts].tolist(), ends[firsts].tolist())
    ]
    return codes, uniques


def _field_value(raw: bytes) -> str:
    text = raw.decode("utf-8")
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _as_staged(block: RecordBlock, suffix: bytes) -> bytes:
    """The block's own bytes as the staged CSV, when they already are it but for ``suffix``.

    Every value stages as written, so each record is its staged row (without the
    ``suffix`` field) as long as the bytes hold the records one after the other, each
    ended by one line feed: no carriage return, no quote (a quoted value is unquoted
    when staged, unless it needs the quotes), nothing between the records.
    """
    data = block.data
    starts, ends = block.starts, block.ends
    if b"\r" in data or b'"' in data or starts[0] != 0:
        return b""
    if not (starts[1:] == ends[:-1] + 1).all() or len(data) not in (ends[-1], ends[-1] + 1):
        return b""
    if len(data) == ends[-1]:
        data += b"\n"
    return data.replace(b"\n", suffix + b"\n") if suffix else data


def _render_csv(
    columns: list[tuple[Optional[np.ndarray], list]], ok: np.ndarray, rows: int
) -> bytes:
    """The kept rows as CSV: each column's codes pick its staged texts, comma-joined.

    Every row becomes one line of a NUL-padded byte matrix (the widest text of each
    column, then a comma or the line feed); dropping the NULs leaves the CSV. A staged
    text never holds a NUL: rows with one are rejected before their values are parsed.
    """
    tables, width = [], 0
    for codes, texts in columns:
        encoded = [text.encode("utf-8") for text in texts]
        table = _text_table(encoded)
        tables.append((None if codes is None else codes[ok], table))
        width += table.shape[1] + 1
    matrix = np.zeros((rows, width), dtype=np.uint8)
    position = 0
    for codes, table in tables:
        column_width = table.shape[1]
        if column_width:
            matrix[:, position : position + column_width] = (
                table[0] if codes is None else np.take(table, codes, axis=0)
            )
        position += column_width
        matrix[:, position] = _COMMA
        position += 1
    matrix[:, -1] = _LF
    return matrix.tobytes().translate(None, b"\x00")


def _text_table(texts: list[bytes]) -> np.ndarray:
    """The texts as rows of a NUL-padded uint8 matrix."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    width = int(lengths.max()) if len(texts) else 0
    table = np.zeros((len(texts), width), dtype=np.uint8)
    if width:
        flat = np.frombuffer(b"".join(texts), dtype=np.uint8)
        row_of = np.repeat(np.arange(len(texts)), lengths)
        offsets = np.cumsum(lengths) - lengths
        table[row_of, np.arange(len(flat)) - np.repeat(offsets, lengths)] = flat
    return table


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
