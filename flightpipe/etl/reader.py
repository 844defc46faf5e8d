"""Streaming an object as blocks of complete CSV records, with their line numbers.

The object is read in fixed-size chunks, so memory does not grow with the
file. Each block ends at a record boundary: a line feed that is not inside a
quoted field (RFC 4180 — a quote toggles "inside", a doubled quote toggles
twice). The boundaries are found with numpy over the raw bytes, so a block is
never scanned by Python code, and every record keeps its exact raw bytes and
the physical line number it starts on — what a rejects file needs.

A UTF-8 byte-order mark is dropped, CRLF line ends are accepted, and a file
without a final newline has its last record all the same.
"""

from __future__ import annotations

import codecs
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Optional

import numpy as np

from flightpipe.etl.errors import FileRejected

DEFAULT_BLOCK_BYTES = 8 << 20
# A record longer than this means an unterminated quote swallowed the rest of
# the file; the file is rejected rather than read into memory whole.
MAX_RECORD_BYTES = 1 << 20
_BOM = codecs.BOM_UTF8
_LF, _CR, _QUOTE, _COMMA = 10, 13, 34, 44
_TEXT_SNIFF_BYTES = 64 << 10


@dataclass
class RecordBlock:
    """Complete records: ``data[starts[i]:ends[i]]`` is record i without its line end."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    _separators: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default=None, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, index: int) -> bytes:
        return self.data[self.starts[index] : self.ends[index]]

    def separators(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(commas outside quotes, index of each record's first comma in them, quotes).

        Record i's commas are ``commas[first[i]:first[i] + field_count - 1]``. Computed once
        per block: the field counts and the field boundaries both come from them.
        """
        if self._separators is None:
            array = np.frombuffer(self.data, dtype=np.uint8)
            commas = np.flatnonzero(array == _COMMA)
            quotes = _positions(self.data, array, _QUOTE)
            if len(quotes):
                commas = commas[(np.searchsorted(quotes, commas) & 1) == 0]
            self._separators = (commas, np.searchsorted(commas, self.starts), quotes)
        return self._separators

    def field_counts(self) -> np.ndarray:
        """Number of fields of each record: commas outside quotes, plus one."""
        commas, first, _ = self.separators()
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        # Records one after the other, only line ends between them (a reader's blocks):
        # the commas before the next record's start are those before this one's end.
        gaps = self.starts[1:] - self.ends[:-1]
        array = np.frombuffer(self.data, dtype=np.uint8)
        if len(gaps) == 0 or (
            gaps.max() <= 2
            and not (array[self.ends[:-1]] == _COMMA).any()
            and not (array[self.starts[1:] - 1] == _COMMA).any()
        ):
            following = np.empty(len(self), dtype=np.int64)
            following[:-1] = first[1:]
            following[-1] = np.searchsorted(commas, self.ends[-1])
            return following - first + 1
        return np.searchsorted(commas, self.ends) - first + 1

    def without_first(self) -> RecordBlock:
        """The block minus its first record, sharing the bytes that follow it."""
        offset = int(self.starts[1]) if len(self) > 1 else len(self.data)
        return RecordBlock(
            self.data[offset:], self.starts[1:] - offset, self.ends[1:] - offset, self.lines[1:]
        )

    def subset(self, keep: np.ndarray) -> RecordBlock:
        """The kept records over the same bytes (no copy): records need not be contiguous."""
        if keep.all():
            return self
        return RecordBlock(self.data, self.starts[keep], self.ends[keep], self.lines[keep])

    def select(self, keep: np.ndarray) -> RecordBlock:
        """A block of the kept records only (copies bytes only when some are dropped)."""
        if keep.all():
            return self
        starts, ends = self.starts[keep], self.ends[keep]
        pieces = [self.data[start:end] for start, end in zip(starts.tolist(), ends.tolist())]
        lengths = ends - starts + 1
        new_ends = np.cumsum(lengths) - 1
        new_starts = new_ends - (ends - starts)
        return RecordBlock(b"\n".join(pieces) + b"\n", new_starts, new_ends, self.lines[keep])


class CsvRecordReader:
    """Reads a binary stream as a header record followed by blocks of data records."""

    def __init__(
        self,
        stream: BinaryIO,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        *,
        first_line: int = 1,
        at_object_start: bool = True,
    ) -> None:
        """``stream`` starts at the object's first byte, or (``at_object_start=False``) at the
        start of a record on line ``first_line``: a split of the object (flightpipe.etl.splits),
        where a byte-order mark is data, not a mark."""
        self._stream = stream
        self._block_bytes = block_bytes
        self._first_line = first_line
        self._at_object_start = at_object_start
        self._blocks = self._read_blocks()
        self._pending: list[RecordBlock] = []
        self.blank_lines = 0

    def header(self) -> tuple[int, bytes]:
        """The first non-blank record and its line number; rejects an empty file."""
        for block in self._blocks:
            self._check_text(block.data)
            nonblank = self._drop_blank(block)
            if len(nonblank):
                rest = nonblank.without_first()
                if len(rest):
                    self._pending.append(rest)
                return int(nonblank.lines[0]), nonblank.record(0)
        raise FileRejected("the object is empty: no header and no data rows")

    def data_blocks(self) -> Iterator[RecordBlock]:
        """The remaining records, blank lines skipped (and counted)."""
        yield from self._pending
        self._pending = []
        for block in self._blocks:
            nonblank = self._drop_blank(block)
            if len(nonblank):
                yield nonblank

    def _drop_blank(self, block: RecordBlock) -> RecordBlock:
        lengths = block.ends - block.starts
        blank = lengths == 0
        if blank.any():
            self.blank_lines += int(blank.sum())
            return block.select(~blank)
        return block

    def _check_text(self, data: bytes) -> None:
        """Reject binary content: NUL bytes or invalid UTF-8 at the start of the object."""
        sample = data[:_TEXT_SNIFF_BYTES]
        if b"\x00" in sample:
            raise FileRejected("the object is not text: it contains NUL bytes (binary data?)")
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        except UnicodeDecodeError as error:
            raise FileRejected(
                f"the object is not UTF-8 text: invalid byte at offset {error.start}"
            ) from error

    def _read_blocks(self) -> Iterator[RecordBlock]:
        buffer = b""
        line = self._first_line
        first = self._at_object_start
        while True:
            chunk = self._stream.read(self._block_bytes)
            eof = not chunk
            if first and chunk:
                # Wait for three bytes before deciding about a byte-order mark.
                while len(chunk) < 3:
                    more = self._stream.read(self._block_bytes)
                    if not more:
                        break
                    chunk += more
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM) :]
                first = False
            buffer = buffer + chunk if buffer else chunk
            if not buffer:
                if eof:
                    return
                continue
            block, consumed, newlines = _split_records(buffer, line, final=eof)
            if block is None:
                if len(buffer) > MAX_RECORD_BYTES:
                    raise FileRejected(
                        f"a record starting at line {line} is longer than "
                        f"{MAX_RECORD_BYTES} bytes: an unterminated quoted field?"
                    )
                continue
            yield block
            buffer = buffer[consumed:]
            line += newlines
            if eof:
                return


class BlockPrefetcher:
    """The next block read on a background thread while the current one is used.

    Reading (the S3 stream, decompression) and the scans for record and field
    boundaries run beside whoever consumes the blocks; most of it releases the GIL
    (socket and file reads, zlib/bz2, numpy). The thread starts on a block only once
    the previous one has been taken, so at most two blocks are alive: memory stays
    flat. An error on the reading thread is raised where the next block is asked
    for. ``close`` stops the thread and waits for it, so the source can be closed
    safely after it.
    """

    def __init__(self, blocks: Iterator[RecordBlock]) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._may_read = threading.Semaphore(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(blocks,), name="read-blocks", daemon=True
        )
        self._thread.start()
        self.waited = 0.0  # seconds the consumer spent waiting for a block

    def __iter__(self) -> Iterator[RecordBlock]:
        while True:
            asked = time.monotonic()
            block, error = self._queue.get()
            self.waited += time.monotonic() - asked
            if error is not None:
                raise error
            if block is None:
                return
            self._may_read.release()
            yield block

    def close(self) -> None:
        self._stop.set()
        self._may_read.release()
        self._thread.join()

    def __enter__(self) -> BlockPrefetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _produce(self, blocks: Iterator[RecordBlock]) -> None:
        try:
            while True:
                self._may_read.acquire()
                if self._stop.is_set():
                    return
                block = next(blocks, None)
                if block is not None:
                    block.separators()
                self._queue.put((block, None))
                if block is None:
                    return
        except BaseException as error:  # re-raised on the consuming thread
            self._queue.put((None, error))


def _split_records(
    buffer: bytes, first_line: int, final: bool
) -> tuple[RecordBlock | None, int, int]:
    """Cut ``buffer`` after its last record boundary.

    Returns the block of complete records, how many bytes it consumed and how
    many physical lines those bytes hold. At the end of the stream the rest
    is the last record even without a final newline.
    """
    array = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(array == _LF)
    quotes = _positions(buffer, array, _QUOTE)
    inside = (np.searchsorted(quotes, newlines) & 1) == 1 if len(quotes) else None
    boundaries = newlines if inside is None else newlines[~inside]
    if final:
        consumed = len(buffer)
        if len(boundaries) and boundaries[-1] == len(buffer) - 1:
            terminators = boundaries
        else:
            terminators = np.append(boundaries, len(buffer))
    else:
        if not len(boundaries):
            return None, 0, 0
        terminators = boundaries
        consumed = int(boundaries[-1]) + 1
    starts = np.empty(len(terminators), dtype=np.int64)
    starts[0] = 0
    starts[1:] = terminators[:-1] + 1
    ends = terminators.astype(np.int64)
    # A CR before the LF belongs to the line end (CRLF files).
    has_cr = ends > starts
    has_cr[has_cr] = array[ends[has_cr] - 1] == _CR
    ends = ends - has_cr
    if len(terminators) == len(newlines):  # no quoted line feed: record i starts line i
        lines = first_line + np.arange(len(terminators), dtype=np.int64)
    else:
        lines = first_line + np.searchsorted(newlines, starts)
    newline_count = int(np.searchsorted(newlines, consumed))
    return RecordBlock(buffer[:consumed], starts, ends, lines), consumed, newline_count


def _positions(data: bytes, array: np.ndarray, byte: int) -> np.ndarray:
    """Where ``byte`` occurs in ``data`` (``array`` is its uint8 view); a memchr first."""
    if data.find(bytes((byte,))) < 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(array == byte)
