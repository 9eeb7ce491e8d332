"""The shipped terminology: reading the package data and pure-Python lookups.

The package data (``data/terminology.json.gz``) is produced by ``scripts/build_terminology.py`` from
the eCQM content in ``../shared``; nothing here needs ``../shared``. It holds codes and systems only,
no display text, so no code-system licence terms travel with the package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources

from chc_equity.terminology.build import VSAC_PREFIX, canonical_url
from chc_equity.terminology.elm import DirectCode, ValueSetDeclaration

DATA_FILE = "terminology.json.gz"
FORMAT_VERSION = 1
_OID = re.compile(r"^\d+(\.\d+)+$")


class IncompleteValueSetWarning(UserWarning):
    """A value set whose shipped codes are not exactly its official expansion."""


@dataclass(frozen=True)
class ValueSetInfo:
    """One shipped value set's metadata (its codes come from :func:`codes`)."""

    url: str
    oid: str
    name: str
    title: str
    version: str
    code_count: int
    expected_total: int
    complete: bool
    source: str
    note: str | None
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class Terminology:
    """Everything in the package data, decoded once."""

    valuesets: dict[str, ValueSetInfo]
    codes: dict[str, frozenset[tuple[str, str]]]
    declarations: tuple[ValueSetDeclaration, ...]
    direct_codes: tuple[DirectCode, ...]
    source: str


def decode(payload: dict) -> Terminology:
    """Turn the package-data JSON into lookups. Pure: the caller supplies the parsed document."""
    if payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version")
        raise ValueError(f"terminology data format {found}, expected {FORMAT_VERSION}: rebuild it")
    systems: list[str] = payload["systems"]
    infos: dict[str, ValueSetInfo] = {}
    codes: dict[str, frozenset[tuple[str, str]]] = {}
    for vs in payload["valuesets"]:
        members = frozenset((systems[i], code) for i, block in vs["codes"] for code in block)
        infos[vs["url"]] = ValueSetInfo(
            url=vs["url"],
            oid=vs["oid"],
            name=vs["name"],
            title=vs["title"],
            version=vs["version"],
            code_count=len(members),
            expected_total=vs["expected_total"],
            complete=vs["complete"],
            source=vs["source"],
            note=vs.get("note"),
            children=tuple(vs.get("children", ())),
        )
        codes[vs["url"]] = members
    return Terminology(
        valuesets=infos,
        codes=codes,
        declarations=tuple(ValueSetDeclaration(*row) for row in payload["cql_valuesets"]),
        direct_codes=tuple(DirectCode(*row) for row in payload["direct_codes"]),
        source=payload.get("source", ""),
    )


def _data() -> bytes:
    return resources.files("chc_equity.terminology").joinpath("data", DATA_FILE).read_bytes()


@cache
def terminology() -> Terminology:
    """The shipped terminology, read from package data on first use and then kept in memory."""
    return decode(json.loads(gzip.decompress(_data())))


@cache
def data_fingerprint() -> str:
    """A short name of the shipped data file's exact bytes: tables loaded from it carry it
    (:func:`chc_equity.terminology.load.load_terminology`), so they are rebuilt when the data changes."""
    return f"terminology sha256:{hashlib.sha256(_data()).hexdigest()[:16]}"


def incomplete_valuesets() -> list[ValueSetInfo]:
    """Value sets whose shipped codes differ from the official expansion (see docs/terminology.md)."""
    return [info for info in terminology().valuesets.values() if not info.complete]


def warn_incomplete(info: ValueSetInfo, *, stacklevel: int = 3) -> None:
    """Say loudly that results using this value set can be off, and by how much."""
    warnings.warn(
        f"value set {info.title or info.name} ({info.oid}, {info.url}) is incomplete: "
        f"{info.code_count} codes shipped, official expansion has {info.expected_total}. {info.note or ''}",
        IncompleteValueSetWarning,
        stacklevel=stacklevel,
    )


def valueset_url(name_or_oid: str, *, library: str | None = None) -> str:
    """Canonical URL of a shipped value set, given its URL, OID (``urn:oid:`` optional) or name.

    Names are matched first against CQL ``valueset`` declarations (optionally within ``library``), then
    against ValueSet ``title`` and ``name``. Raises KeyError when nothing matches and ValueError when a
    name is ambiguous: many VSAC titles are shared by a grouping value set and its children, so a
    silent first match would join the wrong codes.
    """
    term = terminology()
    key = name_or_oid.strip()
    if key.startswith(("http://", "https://")):
        url = canonical_url(key)
    elif _OID.match(key.removeprefix("urn:oid:")):
        url = VSAC_PREFIX + key.removeprefix("urn:oid:")
    else:
        url = _resolve_name(term, key, library)
    if url not in term.valuesets:
        raise KeyError(f"value set {name_or_oid!r} ({url}) is not in the shipped terminology")
    return url


def _resolve_name(term: Terminology, name: str, library: str | None) -> str:
    decl = {d.url for d in term.declarations if d.name == name and library in (None, d.library)}
    candidates = [
        decl,
        {i.url for i in term.valuesets.values() if i.title == name},
        {i.url for i in term.valuesets.values() if i.name == name},
    ]
    for found in candidates:
        if len(found) == 1:
            return next(iter(found))
        if len(found) > 1:
            raise ValueError(f"value set name {name!r} is ambiguous; use the OID or URL: {sorted(found)}")
    raise KeyError(f"no value set named {name!r}" + (f" in library {library}" if library else ""))


def valueset_oid(name_or_url: str, *, library: str | None = None) -> str:
    """The OID of a shipped value set (inverse of :func:`valueset_url` for VSAC URLs)."""
    return terminology().valuesets[valueset_url(name_or_url, library=library)].oid


def valueset_info(name_or_oid: str, *, library: str | None = None) -> ValueSetInfo:
    """Metadata of a shipped value set: version, counts, completeness."""
    return terminology().valuesets[valueset_url(name_or_oid, library=library)]


def codes(valueset: str, *, library: str | None = None) -> frozenset[tuple[str, str]]:
    """The (system, code) members of a value set, by URL, OID or name; warns if it is incomplete."""
    url = valueset_url(valueset, library=library)
    term = terminology()
    info = term.valuesets[url]
    if not info.complete:
        warn_incomplete(info)
    return term.codes[url]
