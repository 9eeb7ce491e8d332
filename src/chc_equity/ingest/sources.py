"""Finding input files and turning each into a stream of Resources and Rejects.

Formats are told apart by name: ``*.ndjson`` / ``*.jsonl`` (optionally ``.gz``) are bulk NDJSON,
read line by line so memory does not grow with file size; anything else is one JSON document
(a single resource or a Bundle), parsed whole. Compression is told by content (gzip magic), and a
``.gz`` name on a non-gzip file is a reject. Directories are walked recursively in sorted order
(so "last seen" is reproducible), taking only ``.json``/``.ndjson``/``.jsonl`` (+``.gz``) files.

Bulk-export ``log.ndjson`` files hold export events, not resources. They are read like any other
input and quarantined as missing-resourceType: the Bulk Data spec gives no file-name rule that
would let us skip them safely, and quarantining keeps them visible instead of silently dropped.
Blank lines in NDJSON are skipped (trailing newlines are common); they are not resources.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
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

Item = Resource | Reject
ByteCallback = Callable[[int], None]


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Input files for the given paths; a missing path is a usage error raised before any load starts."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.name.lower().endswith(INPUT_SUFFIXES)
            )
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


def is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def read_file(path: Path, on_bytes: ByteCallback | None = None) -> Iterator[Item]:
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
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        reader = _read_ndjson if is_ndjson(path) else _read_document
        yield from reader(stream, raw, on_bytes)
    except OSError as exc:
        yield Reject(None, "unreadable-file", type(exc).__name__)
    finally:
        raw.close()


def _report(raw: IO[bytes], on_bytes: ByteCallback | None, done: int) -> int:
    """Tell the callback how many (compressed) bytes were consumed since ``done``; return the new total."""
    if on_bytes is None:
        return done
    now = raw.tell()
    if now > done:
        on_bytes(now - done)
    return max(now, done)


def _read_document(stream: IO[bytes], raw: IO[bytes], on_bytes: ByteCallback | None) -> Iterator[Item]:
    """A whole-file JSON document: one resource, or a Bundle to expand."""
    try:
        data = stream.read()
    except _GZIP_ERRORS as exc:
        yield Reject(None, "bad-gzip", f"{type(exc).__name__}: {exc}")
        return
    _report(raw, on_bytes, 0)
    if not data.strip():
        yield Reject(None, "empty-file")
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield Reject(None, "malformed-json", str(exc), raw=raw_text(data))
        return
    yield from _items(obj, "")


def _items(obj: object, prefix: str) -> Iterator[Item]:
    if is_expandable(obj):
        yield from expand_bundle(obj, prefix)  # type: ignore[arg-type]
    else:
        yield check_resource(obj, prefix.strip() or None)  # type: ignore[arg-type]


def _read_ndjson(stream: IO[bytes], raw: IO[bytes], on_bytes: ByteCallback | None) -> Iterator[Item]:
    """Bulk NDJSON, one line at a time; a line holding a Bundle is expanded (``line N entry M``)."""
    lineno = 0
    seen_content = broken = False
    done = 0
    while True:
        try:
            line = stream.readline()
        except _GZIP_ERRORS as exc:
            yield Reject(f"line {lineno + 1}", "bad-gzip", f"{type(exc).__name__}: {exc}")
            broken = True
            break
        if not line:
            break
        lineno += 1
        if lineno % _PROGRESS_EVERY == 0:
            done = _report(raw, on_bytes, done)
        if not line.strip():
            continue
        seen_content = True
        pos = f"line {lineno}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Reject(pos, "malformed-json", str(exc), raw=raw_text(line.rstrip(b"\r\n")))
            continue
        yield from _items(obj, pos + " ")
    _report(raw, on_bytes, done)
    if not seen_content and not broken:
        yield Reject(None, "empty-file", "only blank lines" if lineno else None)
