"""Where exported UDS+ packages live, what each holds, and the zip of one package.

``chc-equity udsplus export`` needs the warehouse (it writes the encrypted re-link rows there) and the
operator's key, so it runs on the operator's side; the web app never runs it. Instead the export writes
each package to a known folder beside the warehouse, ``<warehouse>.udsplus/<center>/<year>/<submission
id>/`` (named like ``<warehouse>.serving/`` and ``<warehouse>.app.sqlite``: two warehouses in one folder
keep their packages apart), and the web UDS page lists that folder for network admins and streams a zip
of one package.

What travels is decided here and only here (:func:`package_files`): the manifest, the NDJSON files the
manifest names, and the validation report -- an allow-list, so a stray file an operator leaves in the
folder (a key file, an editor backup) is never served. The re-link table is a warehouse table and the key
is the operator's file: neither is ever in a package folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"  # the $import manifest (Parameters)
REPORT = "validation.csv"  # every profile violation found before the package was written
SUFFIX = ".udsplus"
# Submission ids we write are UUIDs; the pattern also keeps any other folder name out of a path.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CHUNK = 1 << 16


def root_for(warehouse: Path) -> Path:
    """The folder holding every exported package of ``warehouse``."""
    return warehouse.with_name(warehouse.name + SUFFIX)


def default_folder(warehouse: Path, center: str, year: int, submission_id: str) -> Path:
    """Where ``udsplus export`` writes a package when ``--out`` is not given."""
    for part in (center, submission_id):
        if not _SAFE.match(part):
            raise ValueError(f"{part!r} cannot name a package folder (letters, digits, '.', '_', '-' only)")
    return root_for(warehouse) / center / str(year) / submission_id


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """One exported package, as the web page lists it (read from its manifest and validation report)."""

    center: str
    year: int
    submission_id: str
    submitted: datetime | None
    files: int  # NDJSON files the manifest names
    resources: int  # lines over those files
    violations: int | None  # rows of the validation report; None: no report
    partial: str | None
    replaces: str | None
    folder: Path

    @property
    def valid(self) -> bool:
        return self.violations == 0


def _param(manifest: dict[str, Any], name: str) -> Any:
    for p in manifest.get("parameter", []):
        if p.get("name") == name:
            return next((v for k, v in p.items() if k.startswith("value")), None)
    return None


def _ndjson_names(manifest: dict[str, Any]) -> list[str]:
    """The file names the manifest's ``udsData`` entries point to (the last URL segment)."""
    names = []
    for p in manifest.get("parameter", []):
        if p.get("name") != "udsData":
            continue
        url = next((q.get("valueUrl", "") for q in p.get("part", []) if q.get("name") == "url"), "")
        name = url.rsplit("/", 1)[-1]
        if _SAFE.match(name) and name.endswith(".ndjson"):
            names.append(name)
    return names


def package_files(folder: Path) -> list[Path]:
    """The files of the package in ``folder``: manifest, the NDJSON it names, the validation report."""
    manifest = json.loads((folder / MANIFEST).read_text())
    names = [MANIFEST, *_ndjson_names(manifest), REPORT]
    return [folder / n for n in names if (folder / n).is_file()]


def _violations(folder: Path) -> int | None:
    path = folder / REPORT
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)  # minus the header


def _lines(path: Path) -> int:
    """Resources in an NDJSON file we wrote (one per line, each ending in a newline), counted in chunks:
    the page lists every package on each view, and a large center's package is tens of megabytes."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(CHUNK * 16), b""))


def _read(folder: Path, center: str, year: int) -> PackageInfo | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None  # an export still writing, or not a package
    names = _ndjson_names(manifest)
    resources = sum(_lines(folder / n) for n in names if (folder / n).is_file())
    when = _param(manifest, "submissionTime")
    partial = _param(manifest, "partialSubmissionName")
    return PackageInfo(
        center=center,
        year=year,
        submission_id=str(_param(manifest, "submissionId") or folder.name),
        submitted=datetime.fromisoformat(when) if isinstance(when, str) else None,
        files=len(names),
        resources=resources,
        violations=_violations(folder),
        partial=partial if isinstance(partial, str) else None,
        replaces=_param(manifest, "replaceSubmissionId"),
        folder=folder,
    )


def list_packages(root: Path) -> list[PackageInfo]:
    """Every package under ``root`` (``<center>/<year>/<submission id>/``), newest first per center/year."""
    found: list[PackageInfo] = []
    if not root.is_dir():
        return found
    for folder in root.glob("*/*/*/"):
        center, year, sid = folder.parts[-3:]
        if not (year.isdigit() and _SAFE.match(center) and _SAFE.match(sid)):
            continue
        info = _read(folder, center, int(year))
        if info is not None:
            found.append(info)
    found.sort(key=lambda p: (p.center, -p.year, -(p.submitted.timestamp() if p.submitted else 0)))
    return found


def find_package(root: Path, submission_id: str) -> PackageInfo | None:
    """The package with ``submission_id`` (looked up in the listing: the id never builds a path)."""
    return next((p for p in list_packages(root) if p.submission_id == submission_id), None)


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream that hands back what was written since the last take."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def zip_stream(info: PackageInfo) -> Iterator[bytes]:
    """The package as a zip, produced file by file in chunks (never whole in memory).

    Entries are ``<submission id>/<file>``; zipfile writes data descriptors because the sink cannot seek.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in package_files(info.folder):
            with path.open("rb") as src, zf.open(f"{info.submission_id}/{path.name}", "w") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()
