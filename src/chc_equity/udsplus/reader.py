"""Recompute UDS Tables 3A, 3B, 4, 6B and 7 from a UDS+ package alone (no warehouse table).

This is the receiving side of the round trip: it reads the NDJSON files the manifest lists, derives each
patient's UDS categories from the IG's representation (age and sex extensions, race/ethnicity codes by
the 3B rules, the income range, the insurance code, the agricultural, housing and veteran extensions,
the Locations of the Encounters, the Reporting Parameters' den/num flags) and counts them with the same
pure table functions the filing uses. If the submission carries what UDS needs, the tables are equal
cell for cell (tests/test_udsplus.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chc_equity.uds.demographics import table_3a, table_3b, table_4
from chc_equity.uds.model import UdsTable
from chc_equity.uds.patients import (
    ANOTHER_HISPANIC,
    ASIAN_DETAIL,
    HISPANIC_DETAIL,
    HISPANIC_UNSPECIFIED,
    NHPI_DETAIL,
    OMB_RACE_LINE,
    OTHER_ASIAN,
    OTHER_PI,
)
from chc_equity.uds.quality import DM, HTN, LINES_6B, t7_row, table_6b, table_7
from chc_equity.udsplus import ig
from chc_equity.udsplus.store import MANIFEST

Resource = dict[str, Any]

INSURANCE = {
    "none-or-uninsured": "uninsured",
    "medicaid-title-19-21": "medicaid",
    "chip-medicaid": "chip",
    "dually-eligible-medicaid-medicare": "dual",
    "medicare": "medicare",
    "medicare-and-private": "medicare",
    "other-non-chip-public-insurance": "other_public",
    "other-public-insurance-chip": "other_public_chip",
    "private-insurance": "private",
}
GENDER = {
    "446151000124109": "20",
    "446141000124107": "21",
    "407377005": "22",
    "407376001": "23",
    "446131000124102": "24",
    "OTH": "24",
    "ASKU": "25",
}
ORIENTATION = {"38628009": "13", "20430005": "14", "42035005": "15", "OTH": "16", "UNK": "17", "ASKU": "18"}
HOUSING = {
    "homeless-shelter": "17",
    "transitional": "18",
    "doubling-up": "19",
    "street": "20",
    "other": "21",
    "permanent-supportive-housing": "21a",
    "unknown": "22",
}
AGRICULTURE = {"migratory": "14", "seasonal": "15"}  # any other code: line 16 only


def read_package(folder: Path) -> dict[str, list[Resource]]:
    """Resources by type from the files the manifest lists (by the last segment of each udsData url)."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    out: dict[str, list[Resource]] = defaultdict(list)
    for p in manifest["parameter"]:
        if p["name"] != "udsData":
            continue
        parts = {q["name"]: q for q in p["part"]}
        name = parts["url"]["valueUrl"].rsplit("/", 1)[1]
        with (folder / name).open() as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out[parts["type"]["valueCode"]].append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{folder / name}: line {line_no}: not JSON ({exc.msg})") from None
    return out


def _ext(resource: Resource, url: str) -> Resource | None:
    return next((e for e in resource.get("extension", []) if ig.canonical(e.get("url", "")) == url), None)


def _codes(concept: Resource | None) -> list[str]:
    return [c.get("code", "") for c in (concept or {}).get("coding", [])]


def _sub(ext: Resource | None, url: str) -> list[str]:
    return [e["valueCoding"]["code"] for e in (ext or {}).get("extension", []) if e.get("url") == url]


def race_line(race: Resource | None) -> str:
    """Table 3B race line from the race extension, by the rules of docs/uds.md (uds.patients)."""
    omb = [c for c in _sub(race, "ombCategory") if c in OMB_RACE_LINE]
    detailed = _sub(race, "detailed")
    cats = list(dict.fromkeys(omb))
    if any(d in ASIAN_DETAIL for d in detailed) and "2028-9" not in cats:
        cats.append("2028-9")
    if any(d in NHPI_DETAIL for d in detailed) and "2076-8" not in cats:
        cats.append("2076-8")
    asian = {ASIAN_DETAIL[d] for d in detailed if d in ASIAN_DETAIL}
    nhpi = {NHPI_DETAIL[d] for d in detailed if d in NHPI_DETAIL}
    if not cats:
        return "7"
    if len(cats) > 1:
        return "6"
    if cats[0] == "2028-9":
        return next(iter(asian)) if len(asian) == 1 else OTHER_ASIAN
    if cats[0] == "2076-8":
        return next(iter(nhpi)) if len(nhpi) == 1 else OTHER_PI
    return OMB_RACE_LINE[cats[0]]


def ethnicity_col(eth: Resource | None) -> str:
    omb, detailed = _sub(eth, "ombCategory"), _sub(eth, "detailed")
    if "2135-2" in omb or detailed:
        if not detailed:
            return HISPANIC_UNSPECIFIED
        cols = {HISPANIC_DETAIL.get(d, ANOTHER_HISPANIC) for d in detailed}
        return next(iter(cols)) if len(cols) == 1 else ANOTHER_HISPANIC
    return "b" if "2186-5" in omb else "c"


def income_line(obs: Resource | None) -> str:
    if obs is None:
        return "5"
    if "valueQuantity" in obs and "value" in obs["valueQuantity"]:
        pct = obs["valueQuantity"]["value"]
    else:
        rng = obs.get("valueRange", {})
        pct = rng.get("low", {}).get("value", rng.get("high", {}).get("value"))
    if pct is None:
        return "5"
    return "1" if pct <= 100 else "2" if pct <= 150 else "3" if pct <= 200 else "4"


def _ref_id(ref: Resource | None) -> str:
    return (ref or {}).get("reference", "").rsplit("/", 1)[-1]


def patient_facts(res: dict[str, list[Resource]]) -> Iterator[dict[str, Any]]:
    """One dict per Patient with the columns the UDS table functions count (as ``uds_patients`` has)."""
    income: dict[str, Resource] = {}
    orientation: dict[str, str] = {}
    for o in res.get("Observation", []):
        codes = _codes(o.get("code"))
        pid = _ref_id(o.get("subject"))
        if ig.INCOME_LOINC in codes:
            income[pid] = o
        elif ig.ORIENTATION_LOINC in codes:
            orientation[pid] = next(
                (ORIENTATION[c] for c in _codes(o.get("valueCodeableConcept")) if c in ORIENTATION), "18a"
            )
    insurance = {}
    for c in res.get("Coverage", []):
        code = next((x for x in _codes(c.get("type")) if x in INSURANCE), None)
        if code:
            insurance[_ref_id(c.get("beneficiary"))] = INSURANCE[code]
    loc_types = {
        loc["id"]: [cd for t in loc.get("type", []) for cd in _codes(t)] for loc in res.get("Location", [])
    }
    sites: dict[str, set[str]] = defaultdict(set)
    for e in res.get("Encounter", []):
        for entry in e.get("location", []):
            for code in loc_types.get(_ref_id(entry.get("location")), []):
                sites[_ref_id(e.get("subject"))].add(code)
    for p in res.get("Patient", []):
        pid = p["id"]
        age = _ext(p, ig.EXT_AGE)
        sex = _ext(p, ig.EXT_BIRTHSEX)
        gi = _ext(p, ig.EXT_GENDER_IDENTITY)
        ag = _ext(p, ig.EXT_AG)
        housing = _ext(p, ig.EXT_HOUSING)
        vet = _ext(p, ig.EXT_VETERAN)
        langs = [c for comm in p.get("communication", []) for c in _codes(comm.get("language"))]
        yield {
            "patient_id": pid,
            "age": int(age["valueQuantity"]["value"]) if age else None,
            "sex": {"M": "Male", "F": "Female"}.get(sex["valueCode"]) if sex else None,
            "race_line": race_line(_ext(p, ig.EXT_RACE)),
            "ethnicity_col": ethnicity_col(_ext(p, ig.EXT_ETHNICITY)),
            "lep": any(c.split("-")[0].lower() != "en" for c in langs),
            "orientation_line": orientation.get(pid, "18a"),
            "gender_line": next((GENDER[c] for c in _codes(gi["valueCodeableConcept"]) if c in GENDER), "25a")
            if gi
            else "25a",
            "income_line": income_line(income.get(pid)),
            "insurance": insurance.get(pid, "none"),
            "agricultural_line": AGRICULTURE.get(ag["valueCode"], "16") if ag else None,
            "homeless_line": HOUSING.get(housing["valueCode"], "22") if housing else None,
            "school_based": any(c.upper() == "SCHOOL" for c in sites[pid]),
            "veteran": bool(vet and vet.get("valueBoolean")),
            "public_housing": "public-housing" in sites[pid],
        }


def quality_flags(
    res: dict[str, list[Resource]], center: str
) -> dict[str, dict[tuple[str, str], tuple[bool, bool]]]:
    """CMS id -> (center, patient) -> (in denominator, meets), from the Reporting Parameters' flags:
    denominator = den and not denexcl and not denexp; meets = that and num and not numexcl."""
    cms_of = {ig.REPORT_6B[s.line]: s.cms_id for s in LINES_6B if s.cms_id}
    cms_of |= {ig.REPORT_7[HTN]: HTN, ig.REPORT_7[DM]: DM}
    out: dict[str, dict[tuple[str, str], tuple[bool, bool]]] = {}
    for params in res.get("Parameters", []):
        by_name = {p["name"]: p for p in params.get("parameter", [])}
        pid = _ref_id(by_name["patientReference"].get("valueReference"))
        for part in by_name["reportNames"].get("part", []):
            cms = cms_of.get(part["name"])
            if cms is None or "part" not in part:
                continue
            f = {q["name"][len(part["name"]) + 1 :]: bool(q.get("valueBoolean")) for q in part["part"]}
            den = f.get("den", False) and not f.get("denexcl", False) and not f.get("denexp", False)
            met = den and f.get("num", False) and not f.get("numexcl", False)
            out.setdefault(cms, {})[(center, pid)] = (den, met)
    return out


def tables_from_package(folder: Path, center: str) -> dict[str, UdsTable]:
    """Tables 3A, 3B, 4, 6B and 7 of ``center`` recomputed from the package in ``folder``."""
    res = read_package(folder)
    facts = list(patient_facts(res))
    flags = quality_flags(res, center)
    rows_of = {(center, p["patient_id"]): t7_row(p["race_line"], p["ethnicity_col"]) for p in facts}
    return {
        "3A": table_3a(center, facts),
        "3B": table_3b(center, facts),
        "4": table_4(center, facts),
        "6B": table_6b(center, flags),
        "7": table_7(center, rows_of, flags),
    }
