"""Record-aligned splits: reading an object split by split gives exactly what one reader gives."""

from __future__ import annotations

import random

import pytest

from flightpipe.etl.reader import CsvRecordReader
from flightpipe.etl.splits import Split, intervals, plan_splits, scan_interval, split_bytes


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk, self._at = self._data[self._at : end], min(end, len(self._data))
        return chunk


def _records(reader: CsvRecordReader) -> list[tuple[int, bytes]]:
    return [
        (int(block.lines[i]), block.record(i))
        for block in reader.data_blocks()
        for i in range(len(block))
    ]


def whole(data: bytes) -> tuple[int, list[tuple[int, bytes]], int]:
    reader = CsvRecordReader(_Bytes(data), block_bytes=64)
    line, _ = reader.header()
    return line, _records(reader), reader.blank_lines


def by_splits(data: bytes, size: int) -> tuple[list[Split], list[tuple[int, bytes]], int]:
    scans = []
    for start, end in intervals(len(data), size):
        chunks = [data[at : min(at + 7, end)] for at in range(start, end, 7)]
        scans.append(scan_interval(start, end, chunks))
    splits = plan_splits(len(data), scans)
    records, blank = [], 0
    for split in splits:
        reader = CsvRecordReader(
            _Bytes(data[split.start : split.end]),
            block_bytes=64,
            first_line=split.first_line,
            at_object_start=split.at_object_start,
        )
        if split.at_object_start:
            reader.header()
        records += _records(reader)
        blank += reader.blank_lines
    return splits, records, blank


def _random_file(seed: int) -> bytes:
    rng = random.Random(seed)
    fields = ["DL", "11433", "", '"a,b"', '"multi\nline"', '"say ""hi"""', '"\r\n"', "-3"]
    ends = [b"\n", b"\r\n"]
    lines = [b"\xef\xbb\xbfCarrier,A,B"] if rng.random() < 0.5 else [b"Carrier,A,B"]
    for _ in range(rng.randint(0, 60)):
        if rng.random() < 0.1:
            lines.append(b"")
            continue
        lines.append(",".join(rng.choice(fields) for _ in range(3)).encode())
    end = rng.choice(ends)
    body = end.join(lines)
    return body + (end if rng.random() < 0.5 else b"")


@pytest.mark.parametrize("seed", range(40))
def test_every_split_size_reads_the_same_records_lines_and_blank_lines_as_one_reader(seed):
    data = _random_file(seed)
    _, expected, expected_blank = whole(data)
    for size in (1, 2, 3, 5, 8, 13, 64, len(data) + 1):
        splits, records, blank = by_splits(data, size)
        assert records == expected, (seed, size)
        assert blank == expected_blank, (seed, size)
        assert splits[0].start == 0 and splits[-1].end == len(data)
        assert all(a.end == b.start for a, b in zip(splits, splits[1:]))


def test_a_quoted_field_spanning_intervals_joins_its_record_to_the_split_before():
    data = b'h1,h2\n1,"' + b"x\n" * 20 + b'"\n2,3\n'
    _, expected, _ = whole(data)
    splits, records, _ = by_splits(data, 4)
    assert records == expected
    assert [record for _, record in records] == [b'1,"' + b"x\n" * 20 + b'"', b"2,3"]
    assert records[1][0] == 23  # the physical line the record starts on
    # No split starts inside the quoted field.
    quoted = range(data.index(b'"'), data.rindex(b'"'))
    assert not any(split.start in quoted for split in splits[1:])


def test_an_unterminated_quote_leaves_the_rest_of_the_object_to_one_split():
    data = b'h1,h2\n1,2\n3,"open\n4,5\n6,7\n'
    splits, records, _ = by_splits(data, 3)
    assert records == whole(data)[1]
    assert splits[-1].end == len(data) and splits[-1].start <= data.index(b'3,"')


def test_split_size_is_about_two_per_core_within_sparks_bounds():
    assert split_bytes(10 << 30, 8) == 128 << 20
    assert split_bytes(1 << 20, 8) == 16 << 20
    assert split_bytes(320 << 20, 4) == 40 << 20
