"""Streaming records: BOM, CRLF, RFC 4180 quoting, line numbers, empty and binary objects."""

from __future__ import annotations

import io

import pytest

from flightpipe.etl.errors import FileRejected
from flightpipe.etl.reader import MAX_RECORD_BYTES, CsvRecordReader


def read_all(data: bytes, block_bytes: int = 1 << 20):
    reader = CsvRecordReader(io.BytesIO(data), block_bytes)
    header_line, header = reader.header()
    records = [
        (int(block.lines[i]), block.record(i))
        for block in reader.data_blocks()
        for i in range(len(block))
    ]
    return header_line, header, records, reader


def test_records_keep_their_line_numbers_and_raw_bytes():
    _, header, records, _ = read_all(b"a,b\n1,2\n3,4\n")
    assert header == b"a,b"
    assert records == [(2, b"1,2"), (3, b"3,4")]


def test_last_record_without_a_final_newline_is_read():
    _, _, records, _ = read_all(b"a,b\n1,2\n3,4")
    assert records[-1] == (3, b"3,4")


def test_byte_order_mark_is_dropped_and_crlf_line_ends_are_stripped():
    _, header, records, _ = read_all(b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4\r\n")
    assert header == b"a,b"
    assert records == [(2, b"1,2"), (3, b"3,4")]


def test_quoted_newlines_stay_in_one_record_and_later_line_numbers_count_them():
    data = b'a,b\n"x\ny",1\n"he said ""hi""",2\nz,3\n'
    _, _, records, _ = read_all(data)
    assert records == [(2, b'"x\ny",1'), (4, b'"he said ""hi""",2'), (5, b"z,3")]


def test_blank_lines_are_skipped_and_counted():
    _, _, records, reader = read_all(b"a,b\n\n1,2\r\n\r\n3,4\n")
    assert records == [(3, b"1,2"), (5, b"3,4")]
    assert reader.blank_lines == 2


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 7, 64])
def test_tiny_blocks_give_the_same_records_as_one_block(block_bytes):
    data = b'\xef\xbb\xbfh1,h2\r\n"q,\r\nq",1\r\nplain,2\r\n"""",3\r\nlast,4'
    assert read_all(data, block_bytes)[1:3] == read_all(data)[1:3]


def test_field_counts_ignore_commas_inside_quotes():
    reader = CsvRecordReader(io.BytesIO(b'h\n"a,b",c\nx,y,z\n,\n'))
    reader.header()
    block = next(reader.data_blocks())
    assert block.field_counts().tolist() == [2, 3, 2]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b"\r\n"])
def test_an_empty_object_is_rejected(data):
    with pytest.raises(FileRejected, match="empty"):
        read_all(data)


def test_binary_content_is_rejected_as_not_text():
    with pytest.raises(FileRejected, match="not text"):
        read_all(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03a,b\n")


def test_invalid_utf8_at_the_start_is_rejected_as_not_utf8_text():
    with pytest.raises(FileRejected, match="not UTF-8 text"):
        read_all(b"Carrier,\xff\xfeOrigin\n1,2\n")


def test_an_unterminated_quote_rejects_the_file_instead_of_reading_it_whole():
    data = b'a,b\n"open,1\n' + b"x,2\n" * (MAX_RECORD_BYTES // 4 + 10)
    with pytest.raises(FileRejected, match="unterminated quoted field"):
        read_all(data, block_bytes=64 << 10)
