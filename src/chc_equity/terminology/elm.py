"""Terminology declared by CQL libraries: direct-reference codes and value set declarations.

The ELM (compiled CQL) is the primary source because it has already resolved every name: a code's
code system may live in an included library (``QICoreCommon."SNOMEDCT"``) and ELM says which. The CQL
text parser below exists only to cross-check the ELM, so a stale ELM export cannot go unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple


class DirectCode(NamedTuple):
    """A ``code "Name": 'code' from "CodeSystem"`` declaration, resolved to the code system's URL."""

    library: str
    name: str
    system: str
    code: str


class ValueSetDeclaration(NamedTuple):
    """A ``valueset "Name": 'url'`` declaration."""

    library: str
    name: str
    url: str


def library_id(elm: dict) -> str:
    """The library's name, e.g. ``CMS165FHIRControllingHighBP``."""
    return elm["library"]["identifier"]["id"]


def _defs(elm: dict, section: str) -> list[dict]:
    return elm["library"].get(section, {}).get("def", [])


def _includes(elm: dict) -> dict[str, str]:
    """Local alias -> library id, for resolving ``libraryName`` references."""
    return {d["localIdentifier"]: d["path"] for d in _defs(elm, "includes")}


def direct_codes(libraries: Mapping[str, dict]) -> list[DirectCode]:
    """Every direct-reference code of every library, with its code system resolved across includes."""
    systems = {
        (lib_id, d["name"]): d["id"] for lib_id, elm in libraries.items() for d in _defs(elm, "codeSystems")
    }
    out: list[DirectCode] = []
    for lib_id, elm in libraries.items():
        aliases = _includes(elm)
        for d in _defs(elm, "codes"):
            ref = d["codeSystem"]
            owner = aliases[ref["libraryName"]] if ref.get("libraryName") else lib_id
            try:
                system = systems[(owner, ref["name"])]
            except KeyError as exc:
                where = f"{owner}.{ref['name']}"
                raise KeyError(f"{lib_id}: code {d['name']!r} uses unknown code system {where}") from exc
            out.append(DirectCode(lib_id, d["name"], system, d["id"]))
    return sorted(out)


def valueset_declarations(libraries: Mapping[str, dict]) -> list[ValueSetDeclaration]:
    """Every ``valueset`` declaration, URL as written (unversioned canonical for VSAC)."""
    return sorted(
        ValueSetDeclaration(lib_id, d["name"], d["id"])
        for lib_id, elm in libraries.items()
        for d in _defs(elm, "valueSets")
    )


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def used_valuesets(libraries: Mapping[str, dict]) -> set[ValueSetDeclaration]:
    """Declarations that some expression actually references (``ValueSetRef``), resolved to their URL.

    A declared but unused value set does not affect any result, so its absence is harmless.
    """
    declared = {(d.library, d.name): d for d in valueset_declarations(libraries)}
    used: set[ValueSetDeclaration] = set()
    for lib_id, elm in libraries.items():
        aliases = _includes(elm)
        for node in _walk(elm["library"].get("statements", {})):
            if node.get("type") == "ValueSetRef":
                owner = aliases[node["libraryName"]] if node.get("libraryName") else lib_id
                used.add(declared[(owner, node["name"])])
    return used


# --- CQL text (cross-check only) -------------------------------------------------------------------

_NAME = r'(?:"(?P<name>(?:[^"\\]|\\.)*)"|(?P<bare>\w+))'
_CODESYSTEM = re.compile(rf"^\s*(?:public\s+|private\s+)?codesystem\s+{_NAME}\s*:\s*'(?P<url>[^']*)'", re.M)
_VALUESET = re.compile(rf"^\s*(?:public\s+|private\s+)?valueset\s+{_NAME}\s*:\s*'(?P<url>[^']*)'", re.M)
_CODE = re.compile(
    rf"^\s*(?:public\s+|private\s+)?code\s+{_NAME}\s*:\s*'(?P<code>[^']*)'\s+from\s+"
    r"(?:(?P<lib>\w+)\.)?(?P<cs>\"[^\"]*\"|\w+)",
    re.M,
)
_INCLUDE = re.compile(
    r"^\s*include\s+(?P<path>\w+)(?:\s+version\s+'[^']*')?(?:\s+called\s+(?P<alias>\w+))?", re.M
)
_LIBRARY = re.compile(r"^\s*library\s+(?P<name>\w+)", re.M)


def _name(match: re.Match[str]) -> str:
    return match["name"] if match["name"] is not None else match["bare"]


def parse_cql(texts: Iterable[str]) -> tuple[list[DirectCode], list[ValueSetDeclaration]]:
    """Direct codes and value set declarations from CQL source text (for cross-checking the ELM)."""
    sources = {}
    for text in texts:
        match = _LIBRARY.search(text)
        if match:
            sources[match["name"]] = text
    systems = {(lib, _name(m)): m["url"] for lib, text in sources.items() for m in _CODESYSTEM.finditer(text)}
    codes: list[DirectCode] = []
    valuesets: list[ValueSetDeclaration] = []
    for lib, text in sources.items():
        aliases = {m["alias"] or m["path"]: m["path"] for m in _INCLUDE.finditer(text)}
        for m in _CODE.finditer(text):
            owner = aliases[m["lib"]] if m["lib"] else lib
            codes.append(DirectCode(lib, _name(m), systems[(owner, m["cs"].strip('"'))], m["code"]))
        valuesets.extend(ValueSetDeclaration(lib, _name(m), m["url"]) for m in _VALUESET.finditer(text))
    return sorted(codes), sorted(valuesets)
