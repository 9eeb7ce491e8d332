"""Load ELM JSON libraries and resolve what an expression names: includes, defines, functions,
value sets, codes and code systems.

A package directory holds one ``<Name>.json`` (and optionally ``<Name>-<version>.json``) per library;
an include resolves by name and version (``Hospice-6.15.000.json`` before ``Hospice.json``), so two
measures of one package may pin different versions of a shared library. The file must hold the version
the include names (its ELM identifier); no other version stands in for a missing one.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Node = dict[str, Any]


class ElmError(ValueError):
    """An ELM library that cannot be loaded or compiled (the message names library and define)."""


@dataclass
class Library:
    """One ELM library: its statements by name and its declarations."""

    name: str
    version: str
    elm: Node
    includes: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (name, version)
    defines: dict[str, Node] = field(default_factory=dict)
    functions: dict[str, list[Node]] = field(default_factory=dict)
    valuesets: dict[str, str] = field(default_factory=dict)  # name -> canonical URL
    codesystems: dict[str, Node] = field(default_factory=dict)  # name -> CodeSystemDef (id: system URL)
    codes: dict[str, Node] = field(default_factory=dict)  # name -> CodeDef (its codeSystem may be included)
    parameters: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def parse(cls, doc: Node) -> Library:
        lib = doc["library"]
        ident = lib["identifier"]
        out = cls(ident["id"], ident.get("version", ""), lib)
        for inc in lib.get("includes", {}).get("def", []):
            name = inc["path"].rsplit("/", 1)[-1]
            out.includes[inc.get("localIdentifier", name)] = (name, inc.get("version"))
        for vs in lib.get("valueSets", {}).get("def", []):
            out.valuesets[vs["name"]] = vs["id"]
        for cs in lib.get("codeSystems", {}).get("def", []):
            out.codesystems[cs["name"]] = cs
        for code in lib.get("codes", {}).get("def", []):
            out.codes[code["name"]] = code
        for p in lib.get("parameters", {}).get("def", []):
            out.parameters[p["name"]] = p
        for stmt in lib.get("statements", {}).get("def", []):
            if stmt.get("type") == "FunctionDef":
                out.functions.setdefault(stmt["name"], []).append(stmt)
            else:
                out.defines[stmt["name"]] = stmt
        return out


class Package:
    """The ELM libraries of a package directory, loaded on demand by name and version."""

    def __init__(self, elm_dir: str | Path) -> None:
        self.dir = Path(elm_dir)
        if not self.dir.is_dir():
            raise ElmError(f"ELM directory not found: {self.dir}")
        self._loaded: dict[tuple[str, str | None], Library] = {}

    def library(self, name: str, version: str | None = None) -> Library:
        """Library ``name`` at ``version``: the file ``<name>-<version>.json`` or ``<name>.json`` whose ELM
        identifier has that version (any version of ``<name>.json`` when none is asked). Another version
        is never taken in its place: libraries change between versions (QICoreCommon 3 and 4 differ),
        so a missing version is an error naming the version wanted and those the package has."""
        key = (name, version)
        if key not in self._loaded:
            candidates = ([self.dir / f"{name}-{version}.json"] if version else []) + [
                self.dir / f"{name}.json"
            ]
            for path in candidates:
                if not path.exists():
                    continue
                with open(path, "rb") as fh:
                    lib = Library.parse(json.load(fh))
                if version is None or lib.version == version:
                    self._loaded[key] = lib
                    break
            else:
                raise ElmError(self._missing(name, version))
        return self._loaded[key]

    def _missing(self, name: str, version: str | None) -> str:
        """Why library ``name`` ``version`` cannot be loaded: the versions present, and what the package's
        ``MANIFEST.tsv`` (when it has one) says of the version wanted."""
        present = []
        for path in sorted([*self.dir.glob(f"{name}.json"), *self.dir.glob(f"{name}-*.json")]):
            with open(path, "rb") as fh:
                ident = json.load(fh).get("library", {}).get("identifier", {})
            if ident.get("id") == name:
                present.append(f"{path.name} (version {ident.get('version') or 'none'})")
        wanted = f"{name} {version}" if version else name
        msg = f"library missing: {wanted} not in {self.dir} (present: {', '.join(present) or 'none'})"
        manifest = self.dir / "MANIFEST.tsv"
        if manifest.exists():
            with open(manifest, newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    same = row.get("library") == name and version in (None, row.get("version"))
                    if same and row.get("status"):
                        msg += f"; MANIFEST.tsv: {row['status']}"
        return msg

    def load_includes(self, lib: Library) -> None:
        """Load every library ``lib`` includes, transitively, as a CQL translator resolves includes before
        anything runs: a missing library stops compilation even where no reference reaches it yet."""
        seen, todo = set(), [lib]
        while todo:
            current = todo.pop()
            for name, version in current.includes.values():
                if (name, version) not in seen:
                    seen.add((name, version))
                    todo.append(self.library(name, version))

    def included(self, lib: Library, alias: str) -> Library:
        """The library ``lib`` includes under ``alias`` (``libraryName`` of a reference)."""
        if alias not in lib.includes:
            raise ElmError(f"{lib.name} includes no library called {alias!r}")
        name, version = lib.includes[alias]
        return self.library(name, version)
