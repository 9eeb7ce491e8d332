"""The one mapping table from screening answers and codes to social-need domains (``mapping.csv``).

Every row says what one code means for one domain; the source of each row is documented in
docs/sdoh.md (column ``source`` names the reference). Kinds of rows:

- ``question``: a LOINC screening item (``item``) that asks about ``domain``: any answer to it counts
  the domain as *asked*, a decline (below) as *declined*;
- ``answer``: a LOINC answer (``code``, an ``LA`` code) to ``item`` that is ``positive`` or ``negative``
  for ``domain``; ``risk_points`` is what the answer adds to the PRAPARE risk score;
- ``decline``: an answer to any item (``item`` is ``*``) meaning the patient declined it;
- ``icd10``: an ICD-10-CM code prefix (dot ignored; the longest matching prefix wins), e.g. ``Z59.0``;
- ``snomed``: a SNOMED CT code (exact);
- ``category``: a Gravity SDOH category code (ServiceRequest / Condition ``category``);
- ``score``: an answer's points (``score``) toward a screener's total, positive for ``domain`` above a
  threshold: AHC-HRSN's HITS items (each 1-5, a total over :data:`HITS_POSITIVE_ABOVE` is positive for
  interpersonal safety), summed per screening day.

The table is loaded into a DuckDB temp table by :func:`load`, so the SQL joins it like any other table.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import duckdb

TABLE = "sdoh_map"
KINDS = ("question", "answer", "decline", "icd10", "snomed", "category", "score")
RESULTS = {
    "question": ("asks",),
    "answer": ("positive", "negative"),
    "decline": ("declined",),
    "score": ("points",),
}
# kinds icd10 / snomed / category are always "positive": a recorded problem or a referral for the domain

DOMAINS: dict[str, str] = {
    "food": "Food insecurity",
    "housing_instability": "Housing instability",
    "homelessness": "Homelessness",
    "transportation": "Transportation",
    "utilities": "Utilities",
    "interpersonal_safety": "Interpersonal safety",
    "employment": "Employment",
    "education": "Education",
    "insurance": "Insurance",
    "income": "Income and material security",
    "stress": "Stress",
    "social_isolation": "Social isolation",
    "incarceration": "Incarceration",
    "refugee": "Refugee status",
}
# The five CMS health-related social needs (MIPS #487 / #498): domain -> HRSN group. Housing
# instability and homelessness are one HRSN ("housing instability" in CMS's wording).
HRSN: dict[str, str] = {
    "food": "food",
    "housing_instability": "housing",
    "homelessness": "housing",
    "transportation": "transportation",
    "utilities": "utilities",
    "interpersonal_safety": "interpersonal_safety",
}
HRSN_GROUPS = ("food", "housing", "transportation", "utilities", "interpersonal_safety")
# Codes that are rules rather than rows (shared with the CHW worklist, chc_equity.outreach.worklist):
PRAPARE_PANEL = "93025-5"  # LOINC PRAPARE panel: an Observation whose components are the items
SOCIAL_REFERRAL = "410606002"  # SNOMED "Social service procedure": a social referral, domain unspecified
CLOSED_TASK = ("completed", "cancelled", "rejected", "failed", "entered-in-error")  # a Task no longer open
PRAPARE_CORE = "PRAPARE"  # screener value of PRAPARE's core social-risk items (completeness counts these)
HITS_POSITIVE_ABOVE = 10  # AHC-HRSN: a HITS total (4 items, 1-5 each) over 10 is positive for safety
# PRAPARE income (annual household income, a number) and household size: income below the federal poverty
# guideline for the household (fpl.csv) is positive for income and the PRAPARE risk score's 22nd point.
INCOME_ITEM = "63586-2"
HOUSEHOLD_ITEM = "63512-8"
POVERTY_RATIO = 1.0  # below 100 % of the guideline (our reading; see docs/sdoh.md "Uncertainty")


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    system: str
    item: str
    code: str
    domain: str
    result: str
    risk_points: int
    score: int
    screener: str
    source: str


@functools.cache
def rows() -> tuple[Row, ...]:
    """The mapping table as shipped (package data ``chc_equity/sdoh/mapping.csv``)."""
    text = resources.files("chc_equity.sdoh").joinpath("mapping.csv").read_text(encoding="utf-8")
    out = []
    for r in csv.DictReader(text.splitlines()):
        out.append(
            Row(
                kind=r["kind"],
                system=r["system"],
                item=r["item"],
                code=r["code"],
                domain=r["domain"],
                result=r["result"],
                risk_points=int(r["risk_points"] or 0),
                score=int(r["score"] or 0),
                screener=r["screener"],
                source=r["source"],
            )
        )
    return tuple(out)


def prapare_core_items() -> tuple[str, ...]:
    """LOINC items of PRAPARE's core social-risk questions in the table (the completeness denominator)."""
    return tuple(sorted({r.item for r in rows() if r.kind == "question" and r.screener == PRAPARE_CORE}))


@functools.cache
def poverty_guidelines() -> dict[int, tuple[int, int]]:
    """Year -> (guideline for one person, for each additional person), 48 contiguous states (``fpl.csv``)."""
    text = resources.files("chc_equity.sdoh").joinpath("fpl.csv").read_text(encoding="utf-8")
    return {
        int(r["year"]): (int(r["first_person"]), int(r["each_additional"]))
        for r in csv.DictReader(text.splitlines())
    }


def load(con: duckdb.DuckDBPyConnection) -> str:
    """Create (or replace) the temp table ``sdoh_map`` with the mapping; ``code_key`` is the code with
    dots removed (ICD-10 prefix matching). Returns the table name."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {TABLE} (kind VARCHAR, system VARCHAR, item VARCHAR, code VARCHAR,
            code_key VARCHAR, domain VARCHAR, result VARCHAR, risk_points INTEGER, score INTEGER,
            screener VARCHAR)"""
    )
    con.executemany(
        f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (r.kind, r.system, r.item or None, r.code or None, r.code.replace(".", "").upper() or None,
             r.domain or None, r.result, r.risk_points, r.score, r.screener or None)
            for r in rows()
        ],
    )  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE sdoh_fpl (year INTEGER, first_person INTEGER, each_additional INTEGER)"
    )
    con.executemany(
        "INSERT INTO sdoh_fpl VALUES (?, ?, ?)", [(y, *v) for y, v in poverty_guidelines().items()]
    )
    return TABLE
