"""Compile the UDS+ IG's StructureDefinition snapshots and value-set expansions into the small rules file
the validator ships with (``src/chc_equity/udsplus/data/ig_rules.json``).

Run from the repository root with the IG at ``../shared/uds-plus`` (docs/udsplus.md says where it comes
from)::

    python scripts/udsplus_ig.py [../shared/uds-plus]

Only what the checker reads is kept (element id, path, cardinality, types and their profiles,
fixed/pattern values, bindings, must-support, slicing), so the 3.8 MB of snapshots become one file the
package can carry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEEP = ("id", "path", "sliceName", "min", "max", "mustSupport")
OUT = Path(__file__).resolve().parents[1] / "src" / "chc_equity" / "udsplus" / "data" / "ig_rules.json"


def element(e: dict) -> dict:
    out = {k: e[k] for k in KEEP if k in e}
    if "type" in e:
        out["type"] = [{k: t[k] for k in ("code", "profile") if k in t} for t in e["type"]]
    for k, v in e.items():
        if k.startswith(("fixed", "pattern")):
            out[k] = v
    if "binding" in e and "valueSet" in e["binding"]:
        out["binding"] = {"strength": e["binding"]["strength"], "valueSet": e["binding"]["valueSet"]}
    if "slicing" in e:
        out["slicing"] = {
            "discriminator": e["slicing"].get("discriminator", []),
            "rules": e["slicing"]["rules"],
        }
    return out


def main(ig: Path, out: Path = OUT) -> None:
    defs = ig / "definitions"
    profiles = {}
    for path in sorted(defs.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        profiles[sd["url"]] = {
            "name": sd["id"],
            "type": sd["type"],
            "kind": sd["kind"],
            "elements": [element(e) for e in sd["snapshot"]["element"]],
        }
    valuesets: dict[str, list[list[str]]] = {}
    for entry in json.loads((defs / "expansions.json").read_text())["entry"]:
        vs = entry["resource"]
        valuesets[vs["url"]] = [[c.get("system", ""), c["code"]] for c in vs["expansion"].get("contains", [])]
    codesystems = {}
    for path in sorted(defs.glob("CodeSystem-*.json")):
        cs = json.loads(path.read_text())
        codesystems[cs["url"]] = [c["code"] for c in cs.get("concept", [])]
    source = (ig / "SOURCE.txt").read_text().splitlines()[0]
    out.write_text(
        json.dumps(
            {"source": source, "profiles": profiles, "valuesets": valuesets, "codesystems": codesystems},
            separators=(",", ":"),
            sort_keys=True,
        )
        + "\n"
    )
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {len(profiles)} StructureDefinitions)")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "shared" / "uds-plus"
    )
