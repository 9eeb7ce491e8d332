"""Finding input files and turning each into a stream of Resources and Rejects.

Formats are told apart by name first: ``*.ndjson`` / ``*.jsonl`` (optionally ``.gz``) are bulk
NDJSON, read line by line so memory does not grow with file size; anything else is one JSON
document (a single resource, a Bundle, or a top-level array of either), parsed whole. A ``.json``
file that is not one document but several lines of JSON objects is read as NDJSON (a common export
mistake), so its records are not lost as one reject. Compression is told by content (gzip magic),
and a ``.gz`` name on a non-gzip file is a reject. Text encodings: a UTF-8 byte-order mark is
skipped; UTF-16 (told by its BOM) is transcoded to UTF-8. Lines end with LF, CRLF or a lone CR.

Directories are walked recursively in sorted order (so "last seen" is reproducible), taking only
``.json``/``.ndjson``/``.jsonl`` (+``.gz``) regular files; everything else found there (other
suffixes, FIFOs, sockets, dangling links) is reported back as skipped, never dropped silently. A
path given explicitly must be a regular file or directory: a FIFO would block the reader forever
(while the load holds the warehouse's write lock), so it is refused before the load starts.

One record (an NDJSON line, or a whole document) larger than ``max_record_bytes`` is not read into
memory: it becomes a ``too-large`` reject naming its byte offset in the (uncompressed) file, and the
reader skips to the next line. Bulk-export ``log.ndjson`` files hold export events, not resources.
They are read like any other input and quarantined as missing-resourceType: the Bulk Data spec
gives no file-name rule that would let us skip them safely. Blank lines in NDJSON are skipped.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from chc_equity.ingest.bundle import expand_bundle, is_expandable
from chc_equity.ingest.records import Reject, Resource, check_resource, raw_text

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
INPUT_SUFFIXES = (*NDJSON_SUFFIXES, ".json", ".json.gz")
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
# How often (lines) an NDJSON reader reports bytes consumed to the progress callback.
_PROGRESS_EVERY = 2000
# Per-record size limit: far above real resources (Synthea's largest are well under 1 MB; an
# attachment-carrying DocumentReference a few MB), far below what would exhaust a load's memory.
DEFAULT_MAX_RECORD_BYTES = 16 << 20
_SKIP_CHUNK = 1 << 20
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

Item = Resource | Reject
ByteCallback = Callable[[int], None]


class InputError(OSError):
    """A path given on the command line cannot be read as input (raised before any load starts)."""


class MissingInput(InputError, FileNotFoundError):
    """A path given on the command line does not exist."""


@dataclass
class Inputs:
    """The files to read, and what a directory walk found but will not read (path, why)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _skip_reason(path: Path) -> str | None:
    """Why a file found in a directory walk is not read, or None when it is input."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "dangling symbolic link"
    except OSError as exc:
        return f"cannot stat ({type(exc).__name__})"
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        return "not a regular file (FIFO, socket or device)"
    if not path.name.lower().endswith(INPUT_SUFFIXES):
        return "not a .json/.ndjson/.jsonl file (optionally .gz)"
    return ""


def find_inputs(paths: Iterable[str | os.PathLike[str]]) -> Inputs:
    """Input files for the given paths, and skipped directory entries; a missing or non-regular
    path given explicitly is a usage error (``InputError``) raised before any load starts."""
    found = Inputs()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                why = _skip_reason(p)
                if why == "":
                    found.files.append(p)
                elif why is not None:
                    found.skipped.append((str(p), why))
        elif path.is_file():
            found.files.append(path)
        elif path.exists():
            raise InputError(f"not a regular file (FIFO, socket or device): {path}")
        else:
            raise MissingInput(f"no such file or directory: {path}")
    return found


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Input files for the given paths (see :func:`find_inputs`)."""
    return find_inputs(paths).files


def is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def read_file(
    path: Path, on_bytes: ByteCallback | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[Item]:
    """Every Resource / Reject in one file. Never raises for bad content; reports bytes consumed."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in the finally below, shared with gzip
    except OSError as exc:
        yield Reject(None, "unreadable-file", type(exc).__name__)
        return
    try:
        head = raw.read(2)
        raw.seek(0)
        if not head:
            yield Reject(None, "empty-file")
            return
        compressed = head == GZIP_MAGIC
        if not compressed and path.name.lower().endswith(".gz"):
            yield Reject(None, "bad-gzip", "file name ends in .gz but the content is not gzip")
            return
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            stream = _utf8(stream)
        except _GZIP_ERRORS as exc:
            yield Reject(None, "bad-gzip", f"{type(exc).__name__}: {exc}")
            return
        if is_ndjson(path):
            yield from _read_ndjson(stream, raw, on_bytes, max_record_bytes)
        else:
            yield from _read_document(stream, raw, on_bytes, max_record_bytes)
    except OSError as exc:
        yield Reject(None, "unreadable-file", type(exc).__name__)
    finally:
        raw.close()


class _Transcoded(io.RawIOBase):
    """A UTF-16 byte stream read as UTF-8 bytes (decoded incrementally, so memory stays bounded)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-16", errors="surrogateescape", newline="")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._text.read(1 << 16)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8", errors="surrogateescape")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _utf8(stream: IO[bytes]) -> IO[bytes]:
    """The stream as UTF-8 without a byte-order mark: a UTF-8 BOM is skipped, UTF-16 transcoded.

    ``peek`` (both an opened file and a GzipFile have it) does one underlying read, so a truncated
    gzip still yields its good lines before its error.
    """
    head = stream.peek(3)[:3]  # type: ignore[attr-defined]
    if head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    elif head[:2] in _UTF16_BOMS:
        return io.BufferedReader(_Transcoded(stream))
    return stream


def _report(raw: IO[bytes], on_bytes: ByteCallback | None, done: int) -> int:
    """Tell the callback how many (compressed) bytes were consumed since ``done``; return the new total."""
    if on_bytes is None:
        return done
    now = raw.tell()
    if now > done:
        on_bytes(now - done)
    return max(now, done)


def _too_large(pos: str | None, offset: int, size: int, limit: int, complete: bool = True) -> Reject:
    where = (
        f"bytes {offset}-{offset + size} of the (uncompressed) file" if complete else f"byte offset {offset}"
    )
    return Reject(
        pos,
        "too-large",
        f"{'over ' if not complete else ''}{size:,} bytes, over the per-record limit of {limit:,}; "
        f"raw text not copied: {where}",
    )


def _read_document(
    stream: IO[bytes], raw: IO[bytes], on_bytes: ByteCallback | None, limit: int
) -> Iterator[Item]:
    """A whole-file JSON document: one resource, a Bundle to expand, or an array of those."""
    try:
        data = stream.read(limit + 1)
    except _GZIP_ERRORS as exc:
        yield Reject(None, "bad-gzip", f"{type(exc).__name__}: {exc}")
        return
    if len(data) > limit:
        _report(raw, on_bytes, 0)
        yield _too_large(None, 0, len(data), limit, complete=False)
        return
    _report(raw, on_bytes, 0)
    if not data.strip():
        yield Reject(None, "empty-file")
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if _looks_like_ndjson(data):
            yield from _read_ndjson(io.BytesIO(data), io.BytesIO(), None, limit)
            return
        yield Reject(None, "malformed-json", str(exc), raw=raw_text(data))
        return
    if isinstance(obj, list) and obj:
        for index, element in enumerate(obj):
            yield from _items(element, f"item {index} ", data)
        return
    yield from _items(obj, "", data)


def _looks_like_ndjson(data: bytes) -> bool:
    """Several lines, the first of them a JSON object on its own: NDJSON under a .json name."""
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict)
    except orjson.JSONDecodeError:
        return False


def _items(obj: object, prefix: str, source: bytes | None) -> Iterator[Item]:
    """Resources / rejects of one parsed record; ``source`` (its text) is kept for a reject whose
    object cannot be re-serialized (too deep)."""
    items = (
        expand_bundle(obj, prefix) if is_expandable(obj) else [check_resource(obj, prefix.strip() or None)]
    )  # type: ignore[arg-type]
    for item in items:
        if (
            isinstance(item, Reject)
            and item.raw is None
            and source is not None
            and item.reason != "too-large"
        ):
            item.raw = raw_text(source)
        yield item


def _read_ndjson(
    stream: IO[bytes], raw: IO[bytes], on_bytes: ByteCallback | None, limit: int
) -> Iterator[Item]:
    """Bulk NDJSON, one line at a time; a line holding a Bundle is expanded (``line N entry M``)."""
    lineno = 0
    seen_content = broken = False
    done = offset = 0
    while True:
        try:
            line = stream.readline(limit + 1)
            if len(line) > limit and not line.endswith(b"\n"):
                size = len(line) + _skip_line(stream)
                lineno += 1
                seen_content = True
                yield _too_large(f"line {lineno}", offset, size, limit)
                offset += size
                continue
        except _GZIP_ERRORS as exc:
            yield Reject(f"line {lineno + 1}", "bad-gzip", f"{type(exc).__name__}: {exc}")
            broken = True
            break
        if not line:
            break
        offset += len(line)
        # A lone CR also ends a line (old Mac exports); splitlines() splits LF, CRLF and CR alike.
        parts = line.splitlines() if b"\r" in line.rstrip(b"\r\n") else [line]
        for part in parts:
            lineno += 1
            if lineno % _PROGRESS_EVERY == 0:
                done = _report(raw, on_bytes, done)
            if not part.strip():
                continue
            seen_content = True
            pos = f"line {lineno}"
            try:
                obj = orjson.loads(part)
            except orjson.JSONDecodeError as exc:
                yield Reject(pos, "malformed-json", str(exc), raw=raw_text(part.rstrip(b"\r\n")))
                continue
            yield from _items(obj, pos + " ", part.rstrip(b"\r\n"))
    _report(raw, on_bytes, done)
    if not seen_content and not broken:
        yield Reject(None, "empty-file", "only blank lines" if lineno else None)


def _skip_line(stream: IO[bytes]) -> int:
    """Read past the rest of an over-long line without keeping it; returns the bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped
