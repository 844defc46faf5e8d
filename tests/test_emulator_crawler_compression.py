"""The emulator's crawler reads compressed uploads as Glue's built-in classifiers do.

Glue classifies gzip, bzip2 and single-file ZIP CSVs (https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html)
and records their compression type in the table; what it cannot classify is skipped and
the crawl still succeeds.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flightpipe_local.moto_glue_crawler import (
    CrawlerEmulator,
    compression_of,
    decompressed_sample,
    table_name,
)

BUCKET = "data"
DATABASE = "flights"
CSV = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\nAA,10397,11298,-3.00,5\n"
COLUMNS = [
    {"Name": "carrier", "Type": "string"},
    {"Name": "originairportid", "Type": "bigint"},
    {"Name": "destairportid", "Type": "bigint"},
    {"Name": "depdelay", "Type": "double"},
    {"Name": "arrdelay", "Type": "bigint"},
]


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        glue = boto3.client("glue", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        glue.create_database(DatabaseInput={"Name": DATABASE})
        yield s3, glue


def crawl(s3: Any, glue: Any, objects: dict[str, bytes]) -> tuple[Any, dict[str, dict]]:
    """Put ``objects`` under incoming/, crawl it; (the crawl, tables by name)."""
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{key}", Body=body)
    crawler = SimpleNamespace(
        name="incoming",
        targets={"S3Targets": [{"Path": f"s3://{BUCKET}/incoming/"}]},
        table_prefix="",
        database_name=DATABASE,
    )
    run = SimpleNamespace(status="RUNNING")
    CrawlerEmulator(lambda: s3, lambda: glue, min_crawl_seconds=0).crawl(crawler, run)
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    return run, tables


@pytest.mark.parametrize(
    ("key", "body", "compression"),
    [
        ("flights.csv", CSV, "none"),
        ("flights.csv.gz", gzip.compress(CSV), "gzip"),
        ("FLIGHTS.CSV.GZ", gzip.compress(CSV[:40]) + gzip.compress(CSV[40:]), "gzip"),
        ("flights.csv.bz2", bz2.compress(CSV), "bzip2"),
        ("flights.zip", zipped(("flights.csv", CSV)), "zip"),
        ("folder.zip", zipped(("data/", b""), ("data/flights.csv", CSV)), "zip"),
        ("named-plain.csv.gz", CSV, "none"),
        ("named-plain.csv", gzip.compress(CSV), "gzip"),
    ],
    ids=[
        "plain",
        "gzip",
        "gzip-two-members",
        "bzip2",
        "zip",
        "zip-with-folder",
        "plain-named-gz",
        "gzip-named-csv",
    ],
)
def test_a_compressed_csv_is_catalogued_with_its_columns_and_compression_type(
    aws: tuple[Any, Any], key: str, body: bytes, compression: str
) -> None:
    run, tables = crawl(*aws, {key: body})
    assert (run.status, run.error_message) == ("COMPLETED", None)
    table = tables["incoming"]
    assert table["StorageDescriptor"]["Columns"] == COLUMNS
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/incoming/"
    assert table["Parameters"]["classification"] == "csv"
    assert table["Parameters"]["compressionType"] == compression


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("two.zip", zipped(("a.csv", CSV), ("b.csv", CSV))),
        ("mac.zip", zipped(("f.csv", CSV), ("__MACOSX/._f.csv", b"\x00\x05\x16\x07"))),
        ("empty.zip", zipped()),
        ("cut.csv.gz", gzip.compress(CSV * 50)[:-30]),
        ("broken.csv.bz2", b"BZh9" + b"\x00" * 64),
        ("flights.csv.lz4", b"\x04\x22\x4d\x18" + b"\x00" * 16),
        ("flights.csv.xz", lzma.compress(CSV)),
        ("binary.gz", gzip.compress(bytes(range(256)) * 4)),
        ("empty.csv.gz", gzip.compress(b"")),
        ("empty.csv", b""),
    ],
)
def test_what_glue_cannot_classify_is_skipped_and_the_crawl_still_succeeds(
    aws: tuple[Any, Any], key: str, body: bytes
) -> None:
    run, tables = crawl(*aws, {key: body, "good.csv.gz": gzip.compress(CSV)})
    assert (run.status, run.error_message) == ("COMPLETED", None)
    assert list(tables) == ["incoming"]
    assert tables["incoming"]["StorageDescriptor"]["Columns"] == COLUMNS
    assert tables["incoming"]["Parameters"]["compressionType"] == "gzip"


def test_a_crawl_of_only_unclassifiable_objects_succeeds_and_writes_no_table(
    aws: tuple[Any, Any],
) -> None:
    run, tables = crawl(
        *aws, {"two.zip": zipped(("a.csv", CSV), ("b.csv", CSV)), "x.lz4": b"\x04\x22\x4d\x18"}
    )
    assert (run.status, run.error_message) == ("COMPLETED", None)
    assert tables == {}


def test_files_of_one_layout_compressed_differently_make_one_table(aws: tuple[Any, Any]) -> None:
    run, tables = crawl(
        *aws,
        {
            "a.csv": CSV,
            "b.csv.gz": gzip.compress(CSV),
            "c.csv.bz2": bz2.compress(CSV),
            "d.zip": zipped(("d.csv", CSV)),
        },
    )
    assert run.status == "COMPLETED"
    assert list(tables) == ["incoming"]
    assert tables["incoming"]["StorageDescriptor"]["Columns"] == COLUMNS
    assert "compressionType" not in tables["incoming"]["Parameters"]


def test_files_of_different_layouts_make_a_table_each_with_its_own_compression(
    aws: tuple[Any, Any],
) -> None:
    bts = b"FL_DATE,OP_UNIQUE_CARRIER\n2023-01-01,AA\n"
    run, tables = crawl(
        *aws, {"tutorial.csv.gz": gzip.compress(CSV), "bts.zip": zipped(("b.csv", bts))}
    )
    assert run.status == "COMPLETED"
    assert tables["tutorial"]["Parameters"]["compressionType"] == "gzip"
    assert (
        tables["tutorial"]["StorageDescriptor"]["Location"]
        == f"s3://{BUCKET}/incoming/tutorial.csv.gz"
    )
    assert tables["bts"]["Parameters"]["compressionType"] == "zip"
    assert [c["Name"] for c in tables["bts"]["StorageDescriptor"]["Columns"]] == [
        "fl_date",
        "op_unique_carrier",
    ]


def test_a_large_compressed_file_is_sampled_from_its_beginning_only() -> None:
    rows = b"".join(b"AA,%d,11298,1.5,2\n" % i for i in range(200_000))
    data = gzip.compress(CSV + rows)
    sample = decompressed_sample(io.BytesIO(data), "gzip", "big.csv.gz")
    assert 0 < len(sample) <= 256 * 1024
    assert sample.startswith(CSV)


def test_compression_is_told_by_the_first_bytes() -> None:
    assert compression_of(gzip.compress(b"x")) == "gzip"
    assert compression_of(bz2.compress(b"x")) == "bzip2"
    assert compression_of(zipped(("a.csv", b"x"))) == "zip"
    assert compression_of(b"\x04\x22\x4d\x18") == "lz4"
    assert compression_of(b"\xff\x06\x00\x00sNaPpY") == "snappy"
    assert compression_of(CSV) == "none"
    assert table_name("incoming/Zipped.CSV.GZ") == "zipped"
    assert table_name("incoming/flights.zip") == "flights"
