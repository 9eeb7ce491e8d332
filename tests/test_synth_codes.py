"""Every curated synth code belongs to the value set it claims (checked against ../shared expansions)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from chc_equity.synth.codes import CODES
from conftest import shared_dir


@cache
def _expansions(vs_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """OID -> set of (system, code) over all stored versions of that value set."""
    out: dict[str, set[tuple[str, str]]] = {}
    for path in vs_dir.glob("*.json"):
        vs = json.loads(path.read_text())
        oid = vs["url"].rsplit("/", 1)[-1]
        members = out.setdefault(oid, set())
        for item in vs.get("expansion", {}).get("contains", []):
            members.add((item["system"], item["code"]))
    return out


@pytest.mark.shared
@pytest.mark.parametrize("concept", sorted(k for k, v in CODES.items() if v.valueset))
def test_curated_code_is_in_its_value_set(concept: str) -> None:
    vs_dir = shared_dir("ecqm", "input", "vocabulary", "valueset", "external")
    entry = CODES[concept]
    expansions = _expansions(vs_dir)
    assert entry.valueset in expansions, f"{concept}: value set {entry.valueset} not in ../shared"
    assert (entry.system, entry.code) in expansions[entry.valueset], (
        f"{concept}: {entry.system}|{entry.code} is not in value set {entry.valueset}"
    )


@pytest.mark.shared
def test_direct_reference_codes_appear_in_measure_cql() -> None:
    """Codes without a value set are the CQL's direct-reference codes (or deliberately off-measure)."""
    cql = "\n".join(p.read_text() for p in shared_dir("ecqm", "input", "cql").glob("*.cql"))
    off_measure = {"chw_visit", "bmi_percentile", "body_height", "body_weight", "smoking_status", "no"}
    for concept, entry in CODES.items():
        if entry.valueset is None and concept not in off_measure:
            assert f"'{entry.code}'" in cql, f"{concept}: code {entry.code} not referenced by any measure CQL"
