"""Build src/chc_equity/terminology/data/terminology.json.gz from the eCQM content in ../shared.

Usage (from the repository root):
    .venv/bin/python scripts/build_terminology.py [--shared ../shared] [--report]

Reads the ValueSet expansions (ecqm/input/vocabulary/valueset/external), the ELM of every library
(ecqm/elm) and, as a cross-check, the CQL (ecqm/input/cql). Fails loudly (non-zero exit) when a
truncated expansion cannot be rebuilt to the size VSAC reported or when ELM and CQL disagree. The output
is deterministic (sorted, gzip mtime 0) so a rebuild from the same input changes no bytes.
``--report`` also prints what the official test bundles (ecqm/tests) use that the truncated pages lack,
and codes that the test data carries under a system different from the value sets'.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from chc_equity.terminology.build import BuiltValueSet, build_valuesets, is_truncated, shipped_codes
from chc_equity.terminology.catalog import DATA_FILE, FORMAT_VERSION
from chc_equity.terminology.elm import direct_codes, parse_cql, used_valuesets, valueset_declarations

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "chc_equity" / "terminology" / "data" / DATA_FILE


def read_json_dir(folder: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def source_line(ecqm: Path) -> str:
    """Provenance: the upstream repository and commit, from ecqm/SOURCE.txt."""
    text = (ecqm / "SOURCE.txt").read_text(encoding="utf-8")
    spec_commit = next((ln.split("commit", 1)[1].split()[0] for ln in text.splitlines()
                        if "spec:" in ln and "commit" in ln), "unknown")
    return (f"github.com/cqframework/dqm-content-qicore-2025 commit {spec_commit} (CC0): "
            "input/vocabulary/valueset/external, elm; codes and systems only, no display text")


def encode(built: list[BuiltValueSet], libraries: dict[str, dict], source: str) -> dict:
    """The package-data document: compact (codes grouped under a system index), no display text."""
    systems = sorted({s for vs in built for s, _ in vs.codes})
    index = {s: i for i, s in enumerate(systems)}
    valuesets = []
    for vs in built:
        by_system: dict[int, list[str]] = defaultdict(list)
        for system, code in vs.codes:
            by_system[index[system]].append(code)
        row = {
            "url": vs.url, "oid": vs.oid, "name": vs.name, "title": vs.title, "version": vs.version,
            "complete": vs.complete, "expected_total": vs.expected_total, "code_count": len(vs.codes),
            "source": vs.source, "children": list(vs.children),
            "codes": [[i, sorted(by_system[i])] for i in sorted(by_system)],
        }
        if vs.note:
            row["note"] = vs.note
        valuesets.append(row)
    return {
        "format_version": FORMAT_VERSION,
        "source": source,
        "systems": systems,
        "valuesets": valuesets,
        "cql_valuesets": [list(d) for d in valueset_declarations(libraries)],
        "direct_codes": [list(d) for d in direct_codes(libraries)],
    }


def write(doc: dict, path: Path) -> int:
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(raw)
    return path.stat().st_size


def cross_check_cql(ecqm: Path, libraries: dict[str, dict]) -> None:
    """ELM and CQL must declare the same codes and value sets, or the ELM export is stale."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((ecqm / "input" / "cql").glob("*.cql"))]
    cql_codes, cql_vs = parse_cql(texts)
    if cql_codes != direct_codes(libraries):
        diff = set(cql_codes) ^ set(direct_codes(libraries))
        sys.exit(f"ELM and CQL disagree on direct codes: {sorted(diff)[:10]}")
    if cql_vs != valueset_declarations(libraries):
        diff = set(cql_vs) ^ set(valueset_declarations(libraries))
        sys.exit(f"ELM and CQL disagree on value set declarations: {sorted(diff)[:10]}")


def bundle_codings(tests: Path) -> Iterator[tuple[str, str, str]]:
    """(system, code, test file name) for every Coding in the official test bundles' patient data."""

    def walk(node: object) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
                yield node["system"], node["code"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for path in sorted(tests.glob("*/*/*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") != "MeasureReport":
                for system, code in walk(resource):
                    yield system, code, path.name


def report(ecqm: Path, resources: list[dict], built: list[BuiltValueSet]) -> None:
    used: dict[tuple[str, str], set[str]] = defaultdict(set)
    for system, code, name in bundle_codings(ecqm / "tests"):
        used[(system, code)].add(name)
    by_url = {vs.url: vs for vs in built}
    print("\nTest-bundle codes in a rebuilt value set but not on its truncated first page:")
    for res in resources:
        if is_truncated(res):
            vs = by_url[res["url"].split("|")[0]]
            extra = sorted((vs.codes - set(shipped_codes(res))) & used.keys())
            for sc in extra:
                print(f"  {vs.name} {vs.oid}: {sc[0]} {sc[1]} in {sorted(used[sc])}")
    vs_systems = defaultdict(set)
    for vs in built:
        for system, code in vs.codes:
            vs_systems[code].add(system)
    print("\nTest-bundle codings whose code is in a value set only under another system:")
    for (system, code), files in sorted(used.items()):
        others = vs_systems.get(code, set())
        if others and system not in others:
            print(f"  {system} {code}: value sets use {sorted(others)}; e.g. {sorted(files)[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    ecqm = args.shared / "ecqm"
    resources = read_json_dir(ecqm / "input" / "vocabulary" / "valueset" / "external")
    libraries = {elm["library"]["identifier"]["id"]: elm for elm in read_json_dir(ecqm / "elm")}
    cross_check_cql(ecqm, libraries)
    built = build_valuesets(resources)  # raises RebuildError (non-zero exit) when a rebuild is off

    known = {vs.url for vs in built}
    missing = {d for d in valueset_declarations(libraries) if d.url not in known}
    if missing & used_valuesets(libraries):
        sys.exit(f"value sets used by the CQL but not shipped: {sorted(missing & used_valuesets(libraries))}")

    size = write(encode(built, libraries, source_line(ecqm)), args.out)
    rebuilt = [vs for vs in built if vs.source != "expansion"]
    print(f"{len(built)} value sets, {sum(len(vs.codes) for vs in built)} codes, "
          f"{len(direct_codes(libraries))} direct codes -> {args.out} ({size:,} bytes)")
    for vs in rebuilt:
        flag = "exact" if vs.complete else f"INCOMPLETE ({vs.note})"
        print(f"  rebuilt {vs.name} {vs.oid} from {vs.source}: {len(vs.codes)} codes, "
              f"expected {vs.expected_total}: {flag}")
    for d in sorted(missing):
        print(f"  declared but not shipped (and not used by any expression): {d.library} {d.name!r} {d.url}")
    if args.report:
        report(ecqm, resources, built)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
