"""The files users have: any-case .csv, gzip, bzip2, a BTS-style zip — and nothing else, loudly.

Each accepted wrapping loads exactly what the plain CSV loads; every other
object under ``incoming/`` ends REJECTED with a reason naming what it is and
what is accepted, and nothing loaded. Zip members and compressed data stream:
bounded ranged GETs, bounded memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from etl_fixtures import (
    BUCKET,
    SUMMARY_COUNTS,
    facts,
    ledger,
    load_airports,
    read_object,
    run_on,
)

from flightpipe.etl import sources
from flightpipe.etl.errors import FileRejected
from flightpipe.etl.job import JobFailed
from flightpipe.etl.sources import ACCEPTED, open_source

BTS_MEMBER = "On_Time_Reporting_Carrier_On_Time_Performance_(1987_present)_2023_1.csv"
README = b"<html><body><h1>Reporting Carrier On-Time Performance</h1></body></html>\n"


@pytest.fixture
def loaded(warehouse, object_store, shared_data, s3):
    load_airports(warehouse, object_store, shared_data / "airports.csv")
    return warehouse, s3


@pytest.fixture(scope="module")
def bts(shared_data: Path) -> bytes:
    return (shared_data / "bts_ontime_2023_01_OK.csv").read_bytes()


def bts_zip(csv_body: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip laid out like BTS's download: the month's CSV and a readme.html."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr(BTS_MEMBER, csv_body)
        archive.writestr("readme.html", README)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def xlsx() -> bytes:
    """The skeleton of an Excel workbook: Office Open XML parts in a zip."""
    return zip_of(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"<worksheet/>",
        }
    )


def two_gzip_members(body: bytes) -> bytes:
    """``cat a.gz b.gz``: what pigz, bgzip and split-then-concatenate produce."""
    cut = body.index(b"\n", len(body) // 2) + 1
    return gzip.compress(body[:cut]) + gzip.compress(body[cut:]) + b"\x00" * 16


def deflate64_zip(body: bytes) -> bytes:
    """A zip whose CSV member says compression method 9 (Deflate64, Windows' large-file zip)."""
    data = bytearray(zip_of({"flights.csv": body}))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.index(signature) + offset
        data[at : at + 2] = (9).to_bytes(2, "little")
    return bytes(data)


WRAPPINGS = {
    "upper-case-CSV": ("incoming/BTS_ONTIME.CSV", lambda body: body, "csv"),
    "mixed-case-Csv": ("incoming/Bts.Csv", lambda body: body, "csv"),
    "csv.gz": ("incoming/bts.csv.gz", gzip.compress, "gzip"),
    "GZ": ("incoming/BTS.GZ", gzip.compress, "gzip"),
    "concatenated-gzip": ("incoming/bts-pigz.csv.gz", two_gzip_members, "gzip"),
    "bz2": ("incoming/bts.csv.bz2", bz2.compress, "bzip2"),
    "bts-zip": ("incoming/bts_2023_1.zip", bts_zip, "zip"),
    "stored-zip": (
        "incoming/bts_stored.ZIP",
        lambda body: bts_zip(body, zipfile.ZIP_STORED),
        "zip",
    ),
    "bzip2-zip": ("incoming/bts_bz.zip", lambda body: bts_zip(body, zipfile.ZIP_BZIP2), "zip"),
}


def _fact_values(warehouse: Any, key: str) -> list[tuple]:
    rows = facts(warehouse, f"s3://{BUCKET}/{key}")
    values = [
        tuple(v for k, v in row.items() if k not in ("source_file", "load_id")) for row in rows
    ]
    return sorted(values, key=repr)


@pytest.mark.warehouse
@pytest.mark.parametrize("wrapping", list(WRAPPINGS), ids=list(WRAPPINGS))
def test_each_accepted_wrapping_loads_exactly_what_the_plain_csv_loads(loaded, bts, wrapping):
    warehouse, s3 = loaded
    key, wrap, expected_format = WRAPPINGS[wrapping]
    plain = run_on(s3, warehouse, "incoming/bts_plain.csv", bts)
    assert plain.status == "LOADED", plain.error
    summary = run_on(s3, warehouse, key, wrap(bts))
    assert summary.status == "LOADED", summary.error
    assert {name: getattr(summary, name) for name in SUMMARY_COUNTS} == {
        name: getattr(plain, name) for name in SUMMARY_COUNTS
    }
    assert summary.rows_read == 6068
    assert summary.source_format == expected_format and plain.source_format == "csv"
    assert _fact_values(warehouse, key) == _fact_values(warehouse, "incoming/bts_plain.csv")
    entries = {entry["source_file"]: entry for entry in ledger(warehouse)}
    entry = entries[f"s3://{BUCKET}/{key}"]
    assert entry["status"] == "LOADED" and entry["rows_loaded"] == plain.rows_loaded


@pytest.mark.warehouse
def test_a_bts_zip_loads_its_csv_and_names_the_ignored_readme_in_the_summary(loaded, bts):
    warehouse, s3 = loaded
    summary = run_on(s3, warehouse, "incoming/bts_2023_1.zip", bts_zip(bts))
    assert summary.status == "LOADED", summary.error
    assert summary.source_member == BTS_MEMBER
    assert summary.ignored_members == ["readme.html"]
    document = json.loads(read_object(s3, "reports/run-1.json"))
    assert document["source_format"] == "zip"
    assert document["source_member"] == BTS_MEMBER
    assert document["ignored_members"] == ["readme.html"]


@pytest.mark.warehouse
def test_a_macos_zip_ignores_its_resource_fork_beside_the_csv(loaded, shared_data):
    warehouse, s3 = loaded
    sample = (shared_data / "sample_flights.csv").read_bytes()
    body = zip_of(
        {"flights/sample.csv": sample, "__MACOSX/flights/._sample.csv": b"\x00\x05\x16\x07"}
    )
    summary = run_on(s3, warehouse, "incoming/date=2023-01-01/finder.zip", body)
    assert summary.status == "LOADED", summary.error
    assert summary.rows_loaded == 13 and summary.source_member == "flights/sample.csv"
    assert summary.ignored_members == ["__MACOSX/flights/._sample.csv"]


CSV_TEXT = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nDL,11433,13303,-3,1\n"

REJECTIONS = {
    "xlsx": (
        "incoming/x.xlsx",
        xlsx(),
        f"incoming/x.xlsx: Excel workbook (zip of XML) is not accepted; {ACCEPTED}",
    ),
    "json": (
        "incoming/flights.json",
        b'{"flights": [{"Carrier": "DL"}]}',
        f"incoming/flights.json: JSON document is not accepted; {ACCEPTED}",
    ),
    "zip-with-two-csvs": (
        "incoming/two.zip",
        zip_of({"a.csv": CSV_TEXT, "b.csv": CSV_TEXT, "readme.html": README}),
        "incoming/two.zip: the zip holds 2 CSV members (a.csv, b.csv); a zip must hold exactly "
        "one CSV: upload each CSV as its own file",
    ),
    "zip-without-csv": (
        "incoming/none.zip",
        zip_of({"readme.html": README, "data.xlsx": b"PK"}),
        f"incoming/none.zip: the zip holds no CSV member (found: readme.html, data.xlsx); "
        f"{ACCEPTED}",
    ),
    "empty-zip": ("incoming/empty.zip", zip_of({}), "incoming/empty.zip: the zip archive is empty"),
    "workbook-renamed-zip": (
        "incoming/book.zip",
        xlsx(),
        "incoming/book.zip: an Excel workbook (Office Open XML, a zip of XML) named .zip",
    ),
    "fake-gzip": (
        "incoming/fake.csv.gz",
        CSV_TEXT,
        "incoming/fake.csv.gz: the name claims gzip but the content is not gzip: it is text; "
        + ACCEPTED,
    ),
    "fake-bz2-holding-gzip": (
        "incoming/fake.bz2",
        gzip.compress(CSV_TEXT),
        "the name claims bzip2 but the content is not bzip2: it is gzip-compressed data",
    ),
    "fake-zip": (
        "incoming/fake.zip",
        CSV_TEXT,
        "incoming/fake.zip: the name claims zip but the content is not zip: it is text",
    ),
    "empty-gzip": (
        "incoming/empty.gz",
        b"",
        "incoming/empty.gz: the name claims gzip but the content is not gzip: it is empty",
    ),
    "gzip-named-csv": (
        "incoming/packed.csv",
        gzip.compress(CSV_TEXT),
        "incoming/packed.csv: named .csv but the content is not text (UTF-8): it is "
        "gzip-compressed data; name a gzip file .csv.gz or .gz",
    ),
    "utf16-csv": (
        "incoming/excel-unicode.csv",
        CSV_TEXT.decode().encode("utf-16"),
        "incoming/excel-unicode.csv: named .csv but the content is not text (UTF-8): it is "
        "UTF-16 encoded text (little-endian); save it as UTF-8 CSV (Excel: 'CSV UTF-8')",
    ),
    "truncated-gzip": (
        "incoming/cut.csv.gz",
        gzip.compress(CSV_TEXT * 2000)[:-40],
        "incoming/cut.csv.gz: the gzip data is truncated",
    ),
    "corrupt-gzip": (
        "incoming/bad.csv.gz",
        gzip.compress(CSV_TEXT)[:12] + b"\xff" * 8 + gzip.compress(CSV_TEXT)[20:],
        "incoming/bad.csv.gz: the gzip data is corrupt",
    ),
    "gzip-trailing-garbage": (
        "incoming/tail.csv.gz",
        gzip.compress(CSV_TEXT) + b"garbage",
        "incoming/tail.csv.gz: unexpected bytes after the end of the gzip data",
    ),
    "truncated-bz2": (
        "incoming/cut.bz2",
        bz2.compress(CSV_TEXT * 2000)[:-30],
        "incoming/cut.bz2: the bzip2 data is",
    ),
    "deflate64-zip": (
        "incoming/windows.zip",
        deflate64_zip(CSV_TEXT),
        "incoming/windows.zip: the CSV member 'flights.csv' is compressed with method "
        "Deflate64, which the job cannot read",
    ),
    "folder-marker": (
        "incoming/sub/",
        b"",
        f"incoming/sub/: a folder marker (a key ending in '/', 0 bytes), not a file; {ACCEPTED}",
    ),
    "prefix-folder-marker": ("incoming/", b"", "incoming/: a folder marker"),
    "no-extension": (
        "incoming/flights",
        CSV_TEXT,
        f"incoming/flights: a file without an extension holding text is not accepted; {ACCEPTED}",
    ),
    "unknown-extension-binary": (
        "incoming/flights.dat",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        "incoming/flights.dat: a file named .dat holding a PNG image is not accepted",
    ),
    "tar-gz": ("incoming/flights.tar.gz", gzip.compress(b"x" * 600), "tar archive (gzip)"),
}


@pytest.mark.warehouse
@pytest.mark.parametrize("case", list(REJECTIONS), ids=list(REJECTIONS))
def test_every_other_object_is_rejected_with_what_it_is_and_nothing_loads(loaded, case):
    warehouse, s3 = loaded
    key, body, reason = REJECTIONS[case]
    summary = run_on(s3, warehouse, key, body)
    assert summary.status == "REJECTED"
    assert reason in summary.error
    assert summary.rows_loaded == 0 and facts(warehouse) == []
    [entry] = ledger(warehouse)
    assert entry["status"] == "REJECTED" and reason in entry["error"]
    assert entry["source_file"] == f"s3://{BUCKET}/{key}" and entry["rows_loaded"] == 0
    document = json.loads(read_object(s3, "reports/run-1.json"))
    assert document["status"] == "REJECTED" and reason in document["error"]
    with pytest.raises(JobFailed) as failure:
        raise JobFailed(summary)
    assert f": REJECTED: {reason}" in str(failure.value) or reason in str(failure.value)


# --- streaming: bounded ranged GETs and bounded memory ------------------------------------------


class RecordingS3:
    """A boto3 S3 client wrapper that records every GET's Range and the bytes it handed out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gets: list[dict[str, Any]] = []

    def get_object(self, **request: Any) -> dict:
        response = self.inner.get_object(**request)
        record = {
            "range": request.get("Range"),
            "read": 0,
            "if_match": request.get("IfMatch"),
            "closed": False,
        }
        self.gets.append(record)
        response["Body"] = _CountingBody(response["Body"], record)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _CountingBody:
    def __init__(self, body: Any, record: dict) -> None:
        self._body, self._record = body, record

    def read(self, size: Any = None) -> bytes:
        data = self._body.read() if size is None else self._body.read(size)
        self._record["read"] += len(data)
        return data

    def close(self) -> None:
        self._record["closed"] = True
        self._body.close()


def _drain(source: sources.Source, size: int = 64 << 10) -> bytes:
    pieces = []
    while True:
        piece = source.stream.read(size)
        assert len(piece) <= size
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)


def test_a_zip_member_is_read_with_bounded_ranged_gets_each_byte_about_once(s3, bts, monkeypatch):
    bound = 256 << 10
    monkeypatch.setattr(sources, "MAX_RANGE_BYTES", bound)
    member = bts * 2  # ~ several MiB, well over the bound
    body = bts_zip(member, zipfile.ZIP_STORED)
    assert len(body) > 8 * bound
    s3.put_object(Bucket=BUCKET, Key="incoming/big.zip", Body=body)
    recording = RecordingS3(s3)
    source = open_source(recording, BUCKET, "incoming/big.zip")
    try:
        assert _drain(source) == member
    finally:
        source.close()
    first, *ranged = recording.gets
    assert first["range"] is None and first["read"] <= 512  # only the magic number was read
    assert ranged and all(get["range"] for get in ranged)
    assert max(get["read"] for get in ranged) <= bound
    assert sum(get["read"] for get in ranged) <= len(body) + 2 * bound
    assert all(get["if_match"] for get in ranged)  # pinned to the object first seen


class FileS3:
    """``get_object`` (with Range) over local files: the object is never in memory whole."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_object(self, Bucket: str, Key: str, Range: str = "", **_: Any) -> dict:
        path = self.root / Key
        handle = path.open("rb")
        size = path.stat().st_size
        if Range:
            first, last = (int(part) for part in Range.removeprefix("bytes=").split("-"))
            handle.seek(first)
            return {"Body": io.BytesIO(handle.read(last - first + 1)), "ContentLength": size}
        return {"Body": handle, "ContentLength": size, "ETag": '"file"'}


def _peak_while_streaming(s3: Any, key: str, expected_bytes: int, read_size: int) -> int:
    tracemalloc.start()
    try:
        source = open_source(s3, BUCKET, key)
        total = 0
        try:
            while True:
                piece = source.stream.read(read_size)
                if not piece:
                    break
                total += len(piece)
        finally:
            source.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == expected_bytes
    return peak


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("big.zip", lambda path, pieces: _write_zip(path, pieces)),
        ("big.csv.gz", lambda path, pieces: _write_compressed(gzip.open, path, pieces)),
        ("big.csv.bz2", lambda path, pieces: _write_compressed(bz2.open, path, pieces)),
    ],
    ids=["zip", "gzip", "bzip2"],
)
def test_peak_memory_stays_bounded_for_a_multi_megabyte_compressed_member(
    tmp_path, bts, name, write
):
    copies = 12  # ~ 40 MiB of CSV
    write(tmp_path / name, (bts,) * copies)
    read_size = 1 << 20
    peak = _peak_while_streaming(FileS3(tmp_path), name, len(bts) * copies, read_size)
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB for {len(bts) * copies / 2**20:.0f} MiB"


def _write_zip(path: Path, pieces: tuple) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(BTS_MEMBER, "w") as member:
            for piece in pieces:
                member.write(piece)
        archive.writestr("readme.html", README)


def _write_compressed(opener: Any, path: Path, pieces: tuple) -> None:
    with opener(path, "wb", 1) as handle:
        for piece in pieces:
            handle.write(piece)


def test_a_gzip_bomb_is_decompressed_a_read_at_a_time(s3):
    body = gzip.compress(b"a" * (64 << 20), 9)  # 64 MiB in ~64 KiB
    s3.put_object(Bucket=BUCKET, Key="incoming/bomb.csv.gz", Body=body)
    tracemalloc.start()
    try:
        source = open_source(s3, BUCKET, "incoming/bomb.csv.gz")
        first = source.stream.read(1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
        source.close()
    finally:
        tracemalloc.stop()
    assert len(first) == 1 << 20
    assert peak < 8 << 20


def test_the_format_needs_both_name_and_magic_number():
    assert sources.name_format("incoming/A.CSV") == "csv"
    assert sources.name_format("incoming/a.CSV.GZ") == "gzip"
    assert sources.name_format("incoming/a.tar.gz") is None
    assert sources.content_format(b"\x1f\x8b\x08") == "gzip"
    assert sources.content_format(b"BZh91AY") == "bzip2"
    assert sources.content_format(b"BZhello") == "csv"  # a CSV may start with BZh
    assert sources.content_format(b"PK\x03\x04") == "zip"
    assert sources.content_format(b"Carrier,Orig") == "csv"
    assert sources.content_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") == "binary"


def test_a_rejected_open_closes_the_object_stream(s3):
    s3.put_object(Bucket=BUCKET, Key="incoming/fake.gz", Body=CSV_TEXT)
    recording = RecordingS3(s3)
    with pytest.raises(FileRejected, match="claims gzip"):
        open_source(recording, BUCKET, "incoming/fake.gz")
    [get] = recording.gets
    assert get["closed"]
