"""What an uploaded object is, and its CSV bytes as a stream — whatever it was wrapped in.

Users upload the files they have: ``.csv`` in any letter case, gzip or bzip2
compressed CSV, and the zip BTS hands out (one CSV plus a ``readme.html``).
The format is decided by the object's name AND its leading bytes (magic
numbers): both must agree, so a ``.gz`` that is not gzip, a ``.csv`` that is
really compressed, or a workbook renamed ``.zip`` is turned away with a
reason that says what was found and what is accepted, instead of failing
somewhere inside the CSV parser — and every other object under ``incoming/``
(a workbook, a JSON document, a folder marker) becomes a recorded rejection
rather than silence.

Memory stays bounded whatever the wrapping: gzip and bzip2 are decompressed
incrementally (zlib/bz2 decompressor objects, output capped at each read's
size); a zip needs its central directory at the end of the object, so it is
opened through :class:`RangedObject`, a seekable file over S3 ranged GETs, and
its CSV member streams through :meth:`zipfile.ZipFile.open` — never unpacked
whole. Corrupt or truncated compressed data is a whole-file rejection
(:class:`~flightpipe.etl.errors.FileRejected`), like any other bad file.
"""

from __future__ import annotations

import bz2
import codecs
import io
import logging
import lzma
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flightpipe.aws_ports import ObjectStore
from flightpipe.etl.errors import FileRejected

LOG = logging.getLogger(__name__)

CSV, GZIP, BZIP2, ZIP = "csv", "gzip", "bzip2", "zip"
ACCEPTED = "upload .csv, .csv.gz/.gz, .bz2, or a .zip holding one CSV"

_HEAD_BYTES = 512
_INPUT_BYTES = 1 << 20  # compressed bytes read from S3 per step
_DEFAULT_READ = 8 << 20  # a read without a size still returns at most this much
MAX_RANGE_BYTES = 8 << 20  # the largest single ranged GET of a zip
_ZIP_BUFFER = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_BINARY_MAGICS = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 compound document (an Excel 97-2003 workbook?)"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "Zstandard-compressed data"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xfe", "UTF-16 encoded text (little-endian)"),
    (b"\xfe\xff", "UTF-16 encoded text (big-endian)"),
)
# Names that are not accepted, and what they are (longest suffix first).
_NAMED_KINDS = (
    (".tar.gz", "tar archive (gzip)"),
    (".tar.bz2", "tar archive (bzip2)"),
    (".tgz", "tar archive (gzip)"),
    (".tar", "tar archive"),
    (".xlsx", "Excel workbook (zip of XML)"),
    (".xlsm", "Excel macro-enabled workbook (zip of XML)"),
    (".xls", "Excel 97-2003 workbook"),
    (".ods", "OpenDocument spreadsheet"),
    (".json", "JSON document"),
    (".jsonl", "JSON Lines file"),
    (".ndjson", "JSON Lines file"),
    (".parquet", "Parquet file"),
    (".xml", "XML document"),
    (".tsv", "tab-separated file (.tsv)"),
    (".txt", "text file (.txt)"),
    (".7z", "7-Zip archive"),
    (".xz", "xz-compressed file"),
    (".zst", "Zstandard-compressed file"),
    (".rar", "RAR archive"),
    (".pdf", "PDF document"),
    (".html", "HTML page"),
    (".htm", "HTML page"),
)
_NAME_EXTENSIONS = {GZIP: "gzip", BZIP2: "bzip2", ZIP: "zip"}
_ZIP_METHODS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}
_ZIP_METHOD_NAMES = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 98: "PPMd"}


@dataclass
class Source:
    """The CSV bytes of an uploaded object, and what they came out of."""

    stream: Any  # ``read(size) -> bytes``; ``b""`` only at the end
    format: str
    member: Optional[str] = None  # the CSV member of a zip
    ignored_members: list[str] = field(default_factory=list)
    size: Optional[int] = None  # the object's size in S3, as stored (compressed or not)
    etag: Optional[str] = None  # the ETag of what was read
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # closing a half-read stream must not hide the real outcome
                LOG.debug("closing a source stream failed", exc_info=True)
        self._closers = []


def name_format(key: str) -> Optional[str]:
    """The format an object's name claims: csv, gzip, bzip2, zip, or None (not accepted)."""
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith((".tar.gz", ".tar.bz2")):
        return None
    if name.endswith(".csv"):
        return CSV
    if name.endswith(".gz"):
        return GZIP
    if name.endswith(".bz2"):
        return BZIP2
    if name.endswith(".zip"):
        return ZIP
    return None


def content_format(head: bytes) -> str:
    """The format the leading bytes show: csv (text), gzip, bzip2, zip, empty, or binary."""
    if not head:
        return "empty"
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_BZIP2_MAGIC) and len(head) >= 4 and head[3:4] in b"123456789":
        return BZIP2
    if head.startswith(_ZIP_MAGICS):
        return ZIP
    if any(head.startswith(magic) for magic, _ in _BINARY_MAGICS) or not _looks_like_text(head):
        return "binary"
    return CSV


def describe_content(head: bytes) -> str:
    """What the leading bytes look like, in words, for a rejection's reason."""
    kind = content_format(head)
    if kind == "empty":
        return "empty (0 bytes)"
    if kind == GZIP:
        return "gzip-compressed data"
    if kind == BZIP2:
        return "bzip2-compressed data"
    if kind == ZIP:
        return "a zip archive"
    for magic, what in _BINARY_MAGICS:
        if head.startswith(magic):
            return what
    if kind == "binary":
        return f"binary data (starts with {head[:8].hex(' ')})"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first in (b"{", b"["):
        return "text that looks like JSON"
    if first == b"<":
        return "text that looks like XML or HTML"
    return "text"


def open_source(s3: ObjectStore, bucket: str, key: str, version_id: Optional[str] = None) -> Source:
    """Open ``s3://bucket/key`` (at ``version_id``) as a stream of CSV bytes.

    Raises :class:`FileRejected`, naming the key, what it holds and what is
    accepted, for anything that is not a CSV, gzip or bzip2 CSV, or a zip
    holding exactly one CSV.
    """
    if key.endswith("/"):
        raise FileRejected(
            f"{key}: a folder marker (a key ending in '/', 0 bytes), not a file; {ACCEPTED}"
        )
    named = name_format(key)
    if named is None:
        kind = _named_kind(key)
        if kind:  # rejected by name alone: no need to read it
            raise FileRejected(f"{key}: {kind} is not accepted; {ACCEPTED}")
    request = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    response = s3.get_object(**request)
    body = response["Body"]
    size = int(response.get("ContentLength") or 0)
    etag = response.get("ETag")
    try:
        head = read_at_least(body, _HEAD_BYTES)
        found = content_format(head)
        if named is None:
            raise FileRejected(
                f"{key}: {_describe_name(key)} holding {describe_content(head)} "
                f"is not accepted; {ACCEPTED}"
            )
        if named == CSV:
            if found in (GZIP, BZIP2, ZIP, "binary"):
                raise FileRejected(
                    f"{key}: named .csv but the content is not text (UTF-8): it is "
                    f"{describe_content(head)}; {_rename_hint(found, head)}"
                )
            return Source(_Prefixed(head, body), CSV, size=size, etag=etag, _closers=[body.close])
        if found != named:
            claimed = _NAME_EXTENSIONS[named]
            raise FileRejected(
                f"{key}: the name claims {claimed} but the content is not {claimed}: it is "
                f"{describe_content(head)}; {ACCEPTED}"
            )
        if named in (GZIP, BZIP2):
            stream = _Decompressed(_Prefixed(head, body), named, key)
            return Source(stream, named, size=size, etag=etag, _closers=[body.close])
    except BaseException:
        body.close()
        raise
    body.close()  # a zip is read from its end: ranged GETs instead of this stream
    return _open_zip(RangedObject(s3, request, size, None if version_id else etag), key)


def _open_zip(ranged: RangedObject, key: str) -> Source:
    buffered = io.BufferedReader(ranged, buffer_size=_ZIP_BUFFER)
    closers: list[Callable[[], None]] = [buffered.close]
    try:
        try:
            archive = zipfile.ZipFile(buffered)
        except (zipfile.BadZipFile, EOFError, ValueError) as error:
            raise FileRejected(f"{key}: not a readable zip archive ({error}); {ACCEPTED}") from None
        closers.append(archive.close)
        member, ignored = _pick_member(archive, key)
        if member.flag_bits & 0x1:
            raise FileRejected(
                f"{key}: the CSV member {member.filename!r} is encrypted; upload it unencrypted"
            )
        if member.compress_type not in _ZIP_METHODS:
            method = _ZIP_METHOD_NAMES.get(member.compress_type, str(member.compress_type))
            raise FileRejected(
                f"{key}: the CSV member {member.filename!r} is compressed with method {method}, "
                "which the job cannot read; zip it with standard deflate, or upload .csv.gz"
            )
        try:
            opened = archive.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
            raise FileRejected(
                f"{key}: the CSV member {member.filename!r} cannot be read: {error}"
            ) from None
        closers.append(opened.close)
        if ignored:
            LOG.info("%s: reading %s, ignoring %s", key, member.filename, ", ".join(ignored))
        stream = _ZipMember(opened, key, member.filename)
        return Source(stream, ZIP, member.filename, ignored, size=ranged.size, _closers=closers)
    except BaseException:
        for close in reversed(closers):
            close()
        raise


def _pick_member(archive: zipfile.ZipFile, key: str) -> tuple[zipfile.ZipInfo, list[str]]:
    """The one CSV member, and the names of the other files (ignored)."""
    files = [info for info in archive.infolist() if not info.is_dir()]
    names = [info.filename for info in files]
    if any(name == "[Content_Types].xml" for name in names):
        office = "an Excel workbook" if any(n.startswith("xl/") for n in names) else "a document"
        raise FileRejected(
            f"{key}: {office} (Office Open XML, a zip of XML) named .zip is not accepted; "
            f"{ACCEPTED}"
        )
    csvs = [info for info in files if _is_csv_member(info.filename)]
    if len(csvs) == 1:
        return csvs[0], [name for name in names if name != csvs[0].filename]
    if not files:
        raise FileRejected(f"{key}: the zip archive is empty; {ACCEPTED}")
    if not csvs:
        raise FileRejected(
            f"{key}: the zip holds no CSV member (found: {_listing(names)}); {ACCEPTED}"
        )
    raise FileRejected(
        f"{key}: the zip holds {len(csvs)} CSV members ({_listing([i.filename for i in csvs])}); "
        "a zip must hold exactly one CSV: upload each CSV as its own file"
    )


def _is_csv_member(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    # macOS Finder adds __MACOSX/._name.csv resource forks beside the real file.
    if name.startswith("__MACOSX/") or base.startswith("._"):
        return False
    return base.lower().endswith(".csv")


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _named_kind(key: str) -> Optional[str]:
    name = key.rsplit("/", 1)[-1].lower()
    for suffix, kind in _NAMED_KINDS:
        if name.endswith(suffix):
            return kind
    return None


def _describe_name(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if "." not in name.strip("."):
        return "a file without an extension"
    return f"a file named .{name.rsplit('.', 1)[-1]}"


def _rename_hint(found: str, head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "save it as UTF-8 CSV (Excel: 'CSV UTF-8')"
    if found == GZIP:
        return "name a gzip file .csv.gz or .gz"
    if found == BZIP2:
        return "name a bzip2 file .csv.bz2 or .bz2"
    if found == ZIP:
        return "name a zip archive .zip (holding one CSV)"
    return ACCEPTED


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:  # an incomplete character at the end of the sample is fine
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def read_at_least(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the stream."""
    pieces, total = [], 0
    while total < size:
        piece = body.read(size - total)
        if not piece:
            break
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces)


class _Prefixed:
    """A stream whose first bytes were already read (to look at them): they come first."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _DEFAULT_READ
        if not self._head:
            return self._rest.read(size)
        head, self._head = self._head[:size], self._head[size:]
        if len(head) < size and not self._head:
            return head + self._rest.read(size - len(head))
        return head


class _Decompressed:
    """gzip or bzip2 data decompressed incrementally; each read returns at most ``size`` bytes.

    Concatenated members (``cat a.gz b.gz``, pigz, bgzip; multi-stream bzip2)
    are read one after another; zero padding after the last gzip member is
    ignored, any other trailing bytes are rejected, as are corrupt data, a
    failed checksum and a stream that ends before its end marker.
    """

    def __init__(self, raw: Any, kind: str, key: str) -> None:
        self._raw = raw
        self._kind = kind
        self._key = key
        self._magic = _GZIP_MAGIC if kind == GZIP else _BZIP2_MAGIC
        self._decoder: Any = None
        self._input = b""
        self._raw_eof = False
        self._finished = False
        self._members = 0
        self.compressed_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _DEFAULT_READ
        if size == 0:
            return b""
        while not self._finished:
            if self._decoder is None:
                self._start_member()
                continue
            if self._wants_input() and not self._raw_eof:
                self._fill()
            data, self._input = self._input, b""
            try:
                out = self._decoder.decompress(data, size)
            except (zlib.error, OSError, EOFError, ValueError) as error:
                raise FileRejected(
                    f"{self._key}: the {self._kind} data is corrupt "
                    f"(near compressed byte {self.compressed_bytes}): {error}"
                ) from None
            if self._decoder.eof:
                # All input was passed in: what follows the member is all in unused_data
                # (zlib may still show it in unconsumed_tail too).
                self._input = self._decoder.unused_data
                self._decoder = None
                self._members += 1
            else:
                if self._kind == GZIP:
                    self._input = self._decoder.unconsumed_tail
                if not out and self._raw_eof and self._wants_input():
                    raise FileRejected(
                        f"{self._key}: the {self._kind} data is truncated: it ends before its "
                        "end-of-stream marker (an interrupted upload or copy?)"
                    )
            if out:
                return out
        return b""

    def _wants_input(self) -> bool:
        if self._input:
            return False
        return self._kind == GZIP or self._decoder.needs_input

    def _fill(self) -> None:
        chunk = self._raw.read(_INPUT_BYTES)
        if chunk:
            self.compressed_bytes += len(chunk)
            self._input += chunk
        else:
            self._raw_eof = True

    def _start_member(self) -> None:
        while True:
            if self._kind == GZIP and self._members:
                self._input = self._input.lstrip(b"\x00")  # padding after the last member
            if len(self._input) >= len(self._magic) or self._raw_eof:
                break
            self._fill()
        if not self._input:
            self._finished = True
            return
        if not self._input.startswith(self._magic):
            raise FileRejected(
                f"{self._key}: unexpected bytes after the end of the {self._kind} data "
                f"(near compressed byte {self.compressed_bytes}): not {self._kind}"
            )
        self._decoder = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if self._kind == GZIP else bz2.BZ2Decompressor()
        )


class _ZipMember:
    """A zip member's stream whose decompression errors read as a rejected file."""

    def __init__(self, stream: Any, key: str, member: str) -> None:
        self._stream = stream
        self._key = key
        self._member = member

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _DEFAULT_READ
        try:
            return self._stream.read(size)
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as error:
            raise FileRejected(
                f"{self._key}: the zip member {self._member!r} is corrupt: {error}"
            ) from None


class RangedObject(io.RawIOBase):
    """A seekable, read-only file over one S3 object, read with ranged GETs.

    ``zipfile`` needs to seek to the central directory at the end of an archive;
    this gives it that without downloading the object. Reads are pinned to the
    object the job started with: its version id when there is one, else its
    ETag (``IfMatch``), so an overwrite mid-read fails instead of mixing two
    files. Each GET asks for at most ``max_range`` bytes; ``requests``,
    ``bytes_fetched`` and ``largest_range`` say what was fetched.
    """

    def __init__(
        self,
        s3: ObjectStore,
        request: dict,
        size: int,
        etag: Optional[str] = None,
        max_range: Optional[int] = None,
    ) -> None:
        super().__init__()
        self._s3 = s3
        self._request = dict(request)
        if etag and "VersionId" not in self._request:
            self._request["IfMatch"] = etag
        self._size = size
        self._position = 0
        self._max_range = max_range or MAX_RANGE_BYTES
        self.requests = 0
        self.bytes_fetched = 0
        self.largest_range = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:  # OSError, as a real file says (zipfile relies on it)
            raise OSError(22, f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._max_range, self._size - self._position)
        if length <= 0:
            return 0
        first, last = self._position, self._position + length - 1
        response = self._s3.get_object(**self._request, Range=f"bytes={first}-{last}")
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        if len(data) > length:
            raise RuntimeError(
                f"a ranged GET of bytes {first}-{last} returned {len(data)} bytes: "
                "the S3 endpoint ignored the Range header"
            )
        self.requests += 1
        self.bytes_fetched += len(data)
        self.largest_range = max(self.largest_range, len(data))
        if not data:
            return 0
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
