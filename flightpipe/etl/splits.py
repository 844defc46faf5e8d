"""Cutting a plain CSV object into splits that start on record boundaries, in parallel.

A distributed read needs each task to start at the first byte of a record and
know the physical line that record starts on — what the rejects file reports.
A record ends at a line feed outside quotes (RFC 4180, as
:mod:`flightpipe.etl.reader` reads it), and whether a line feed is inside
quotes depends on every quote before it. So the object is read twice, both
times in parallel:

1. :func:`scan_interval` counts, over one byte interval of the object, its
   quotes and line feeds, and finds its first record start for either quote
   parity at the interval's start (it cannot know which applies yet);
2. :func:`plan_splits` takes the intervals in order, carries the quote parity
   and the line count from one to the next, and so knows each interval's real
   first record start and its line: those are the splits. An interval with no
   record start (one long quoted field) joins the split before it.

Each split is then read by :class:`flightpipe.etl.reader.CsvRecordReader` from
its first byte with ``first_line`` — records, blank lines, line numbers and
rejects come out exactly as one reader over the whole object makes them.
Compressed objects cannot be cut: they are one split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

import numpy as np

_LF, _QUOTE = 10, 34
MIN_SPLIT_BYTES = 16 << 20
# Spark's own default size of a file split (spark.sql.files.maxPartitionBytes).
MAX_SPLIT_BYTES = 128 << 20


@dataclass(frozen=True)
class IntervalScan:
    """What one byte interval ``[start, end)`` of the object holds.

    ``record_starts[p]`` is the first record start (the byte after a line feed outside
    quotes) for quote parity ``p`` at ``start``, and ``line_feeds_before[p]`` the line
    feeds in ``[start, that line feed)``; None when there is none.
    """

    start: int
    end: int
    quotes: int
    line_feeds: int
    record_starts: tuple[Optional[int], Optional[int]]
    line_feeds_before: tuple[Optional[int], Optional[int]]


@dataclass(frozen=True)
class Split:
    """Bytes ``[start, end)`` of the object: whole records, the first on ``first_line``."""

    index: int
    start: int
    end: int
    first_line: int

    @property
    def at_object_start(self) -> bool:
        return self.start == 0


def split_bytes(size: int, parallelism: int) -> int:
    """The split size for an object: about two splits per core, within Spark's own bounds."""
    wanted = -(-size // max(1, 2 * parallelism))
    return min(MAX_SPLIT_BYTES, max(MIN_SPLIT_BYTES, wanted))


def intervals(size: int, bytes_per_split: int) -> list[tuple[int, int]]:
    """The byte intervals whose line feeds can start split 1, 2, …: ``[k·n - 1, (k+1)·n - 1)``.

    A record starting at ``k·n`` follows a line feed at ``k·n - 1``, so each interval begins
    one byte early. Together they cover ``[0, size - 1)``: a line feed in the last byte
    starts no record.
    """
    if size <= 1:
        return [(0, max(size - 1, 0))]
    cuts = list(range(bytes_per_split - 1, size - 1, bytes_per_split))
    bounds = [0, *cuts, size - 1]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo] or [(0, size - 1)]


def scan_interval(start: int, end: int, chunks: Iterable[bytes]) -> IntervalScan:
    """Scan ``[start, end)``, given as consecutive chunks, for quotes and line feeds."""
    quotes = line_feeds = 0
    found: list[Optional[tuple[int, int]]] = [None, None]
    offset = start
    for chunk in chunks:
        array = np.frombuffer(chunk, dtype=np.uint8)
        feeds = np.flatnonzero(array == _LF)
        quote_positions = np.flatnonzero(array == _QUOTE) if b'"' in chunk else feeds[:0]
        if len(feeds):
            before = quotes + np.searchsorted(quote_positions, feeds)
            for parity in (0, 1):
                if found[parity] is None:
                    outside = np.flatnonzero(((before + parity) & 1) == 0)
                    if len(outside):
                        first = int(outside[0])
                        found[parity] = (offset + int(feeds[first]) + 1, line_feeds + first)
        quotes += len(quote_positions)
        line_feeds += len(feeds)
        offset += len(chunk)
    if offset != end:
        raise ValueError(f"scanned {offset - start} bytes of the interval [{start}, {end})")
    return IntervalScan(
        start,
        end,
        quotes,
        line_feeds,
        (found[0][0] if found[0] else None, found[1][0] if found[1] else None),
        (found[0][1] if found[0] else None, found[1][1] if found[1] else None),
    )


def plan_splits(size: int, scans: list[IntervalScan]) -> list[Split]:
    """The splits of an object of ``size`` bytes from the scans of its intervals, in order."""
    starts: list[tuple[int, int]] = [(0, 1)]
    parity = line_feeds = 0
    expected = 0
    for number, scan in enumerate(scans):
        if scan.start != expected:
            raise ValueError(f"interval {number} starts at {scan.start}, not at {expected}")
        expected = scan.end
        record_start = scan.record_starts[parity]
        if number > 0 and record_start is not None:
            before = scan.line_feeds_before[parity]
            assert before is not None
            # The record after a line feed is on line 1 + every line feed up to and with it.
            starts.append((record_start, line_feeds + before + 2))
        parity = (parity + scan.quotes) & 1
        line_feeds += scan.line_feeds
    ends = [start for start, _ in starts[1:]] + [size]
    return [
        Split(index, start, end, line)
        for index, ((start, line), end) in enumerate(zip(starts, ends))
    ]


def whole_object(size: int) -> list[Split]:
    """One split: a compressed object, or one too small to be worth cutting."""
    return [Split(0, 0, size, 1)]
