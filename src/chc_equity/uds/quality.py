"""Tables 6B (quality of care) and 7 (health outcomes and disparities) from ``measure_results``.

Each 6B/7 line is its eCQM's result for the center's UDS patients (a patient counted in a CQM must be a
UDS patient of that center). Per patient: *in the denominator* = denominator and not excluded/excepted;
*meets the measure* = in the denominator and numerator and not numerator-excluded -- the eCQM convention
of :mod:`chc_equity.measures.summary`, evaluated per patient so multi-rate measures can be combined the
way UDS reports them (``combine``): CMS138 by its combined rate (population 3), CMS155 requiring all three
rates, CMS347 by any of its four risk groups (a patient counts once).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.registry import all_measures
from chc_equity.uds.model import NOT_AVAILABLE, Cell, Column, Line, UdsTable, rate
from chc_equity.uds.patients import PATIENTS

Combine = Literal["single", "all", "any"]


@dataclass(frozen=True)
class QualityLine:
    line: str
    label: str
    cms_id: str | None  # None: HRSA-defined or not implemented -> "not available"
    combine: Combine = "single"
    group: str | None = None  # use only this population group
    why_unavailable: str = ""


PRENATAL = "prenatal care / delivery data are not modelled in the warehouse"
LINES_6B: tuple[QualityLine, ...] = (
    QualityLine("1-6", "Age categories of prenatal care patients", None, why_unavailable=PRENATAL),
    QualityLine("7-9", "Early entry into prenatal care", None, why_unavailable=PRENATAL),
    QualityLine("10", "Childhood immunization status", "CMS117"),
    QualityLine("11", "Cervical cancer screening", "CMS124"),
    QualityLine("11a", "Breast cancer screening", "CMS125"),
    QualityLine(
        "12",
        "Weight assessment and counseling for nutrition and physical activity for children and adolescents",
        "CMS155",
        combine="all",
    ),
    QualityLine("13", "Preventive care and screening: BMI screening and follow-up plan", "CMS69"),
    QualityLine(
        "14a",
        "Preventive care and screening: tobacco use: screening and cessation intervention",
        "CMS138",
        group="Group_3",
    ),
    QualityLine(
        "17a",
        "Statin therapy for the prevention and treatment of cardiovascular disease",
        "CMS347",
        combine="any",
    ),
    QualityLine(
        "18",
        "Ischemic vascular disease: use of aspirin or another antiplatelet (CMS164)",
        None,
        why_unavailable="CMS164 is not implemented (no 2025 CMS version)",
    ),
    QualityLine("19", "Colorectal cancer screening", "CMS130"),
    QualityLine("20", "HIV linkage to care", None, why_unavailable="HRSA-defined measure, not implemented"),
    QualityLine("20a", "HIV screening", "CMS349"),
    QualityLine("21", "Preventive care and screening: screening for depression and follow-up plan", "CMS2"),
    QualityLine("21a", "Depression remission at twelve months", "CMS159"),
    QualityLine(
        "22",
        "Dental sealants for children between 6-9 years (CMS277)",
        None,
        why_unavailable="CMS277 (draft, HRSA-maintained) is not implemented",
    ),
)
HTN, DM = "CMS165", "CMS122"

COLS_6B = [
    Column("measure", "eCQM", "text"),
    Column("a", "Number of patients in the denominator"),
    Column("b", "Number of records reviewed (EHR total)"),
    Column("c", "Number of patients meeting the measure"),
    Column("rate", "Rate (c / b)", "rate"),
]


def _patient_flags(
    con: duckdb.DuckDBPyConnection, cms_id: str, start: date, end: date, spec: QualityLine
) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(center, patient) -> (in denominator, meets measure), combined over groups, UDS patients only."""
    names = [m.measure.name for m in all_measures() if m.measure.cms_id == cms_id]
    if not names:
        return {}
    agg = "bool_and" if spec.combine == "all" else "bool_or"
    group = "AND r.group_id = ?" if spec.group else ""
    params: list[object] = [names[0], start, end] + ([spec.group] if spec.group else [])
    rows = con.execute(
        f"""
        WITH per_group AS (
          SELECT r.center, r.patient_id, r.group_id,
            bool_or(r.denominator AND NOT coalesce(r.denominator_exclusion, false)
                    AND NOT coalesce(r.denominator_exception, false)) AS den,
            bool_or(r.denominator AND NOT coalesce(r.denominator_exclusion, false)
                    AND NOT coalesce(r.denominator_exception, false)
                    AND r.numerator AND NOT coalesce(r.numerator_exclusion, false)) AS met
          FROM {RESULTS_TABLE} r
          JOIN {PATIENTS} u ON u.center = r.center AND u.patient_id = r.patient_id
          WHERE r.measure = ? AND r.period_start = ? AND r.period_end = ? AND r.subject_type = 'Patient'
            {group}
          GROUP BY ALL
        )
        SELECT center, patient_id, {agg}(den), {agg}(met) FROM per_group GROUP BY ALL
        """,
        params,
    ).fetchall()
    return {(c, p): (bool(d), bool(m) and bool(d)) for c, p, d, m in rows}


def table_6b(center: str, flags: dict[str, dict[tuple[str, str], tuple[bool, bool]]]) -> UdsTable:
    """Table 6B for one center from per-measure patient flags (see :func:`quality_flags`)."""
    lines: list[Line] = []
    rates: list[tuple[Cell, Cell, Cell]] = []
    for spec in LINES_6B:
        if spec.cms_id is None or spec.cms_id not in flags:
            why = spec.why_unavailable or f"{spec.cms_id} results not found for the period"
            values = {"measure": spec.cms_id or "", "a": None, "b": None, "c": None, "rate": None}
            lines.append(Line(spec.line, spec.label, values, note=f"{NOT_AVAILABLE}: {why}"))
            continue
        mine = [v for (c, _), v in flags[spec.cms_id].items() if c == center]
        den = sum(d for d, _ in mine)
        met = sum(m for d, m in mine if d)
        lines.append(
            Line(
                spec.line,
                spec.label,
                {"measure": spec.cms_id, "a": den, "b": den, "c": met, "rate": rate(met, den)},
            )
        )
        rates.append(((spec.line, "rate"), (spec.line, "c"), (spec.line, "b")))
    return UdsTable("6B", "Quality of Care Measures", center, COLS_6B, lines, [], rates, {"a": "b"})


def quality_flags(
    con: duckdb.DuckDBPyConnection, year: int
) -> dict[str, dict[tuple[str, str], tuple[bool, bool]]]:
    """Per measure (CMS id) -> (center, patient) -> flags, for every 6B line and the two Table 7 sections.

    Measures with no results for the calendar year are left out (their lines are "not available").
    """
    start, end = date(year, 1, 1), date(year, 12, 31)
    specs = [s for s in LINES_6B if s.cms_id] + [QualityLine("2", "", HTN), QualityLine("3", "", DM)]
    out: dict[str, dict[tuple[str, str], tuple[bool, bool]]] = {}
    have = (
        {
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT measure FROM {RESULTS_TABLE} WHERE period_start = ? AND period_end = ?",
                [start, end],
            ).fetchall()
        }
        if _has_results(con)
        else set()
    )
    names = {m.measure.cms_id: m.measure.name for m in all_measures()}
    for spec in specs:
        assert spec.cms_id
        if names.get(spec.cms_id) in have:
            out[spec.cms_id] = _patient_flags(con, spec.cms_id, start, end, spec)
    return out


def _has_results(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [RESULTS_TABLE]
        ).fetchone()[0]  # type: ignore[index]
    )


# --- Table 7 ----------------------------------------------------------------------------------------
T7_RACES = [
    ("a", "Asian"),
    ("b1", "Native Hawaiian"),
    ("b2", "Other Pacific Islander"),
    ("c", "Black/African American"),
    ("d", "American Indian/Alaska Native"),
    ("e", "White"),
    ("f", "More than one race"),
    ("g", "Unreported/Chose not to disclose race"),
]
RACE_3B_TO_7 = {"1": "a", "2a": "b1", "3": "c", "4": "d", "5": "e", "6": "f", "7": "g"}


def t7_row(race_line: str, ethnicity_col: str) -> str:
    """Table 7 row of a patient from the 3B cell: '1x' Hispanic, '2x' non-Hispanic, 'h' both unreported.

    Reported race with unreported ethnicity goes to the non-Hispanic rows (docs/uds.md: unconfirmed).
    """
    race = (
        "a"
        if race_line.startswith("1")
        else "b1"
        if race_line == "2a"
        else "b2"
        if race_line.startswith("2")
        else RACE_3B_TO_7[race_line]
    )
    if ethnicity_col.startswith("a"):
        return "1" + race
    if ethnicity_col == "c" and race == "g":
        return "h"
    return "2" + race


T7_ROWS: list[tuple[str, str]] = (
    [("1" + k, f"Hispanic/Latino/a: {v}") for k, v in T7_RACES]
    + [("Subtotal Hispanic", "Subtotal Hispanic/Latino/a")]
    + [("2" + k, f"Non-Hispanic/Latino/a: {v}") for k, v in T7_RACES]
    + [("Subtotal Non-Hispanic", "Subtotal Non-Hispanic/Latino/a")]
    + [("h", "Unreported/Chose not to disclose race and ethnicity"), ("i", "Total")]
)
COLS_7 = [
    Column("2a", "Patients with hypertension (CMS165 denominator)"),
    Column("2b", "Number of records reviewed (EHR total)"),
    Column("2c", "Patients with hypertension controlled"),
    Column("htn_rate", "Hypertension controlled rate (2c / 2b)", "rate"),
    Column("3a", "Patients with diabetes (CMS122 denominator)"),
    Column("3b", "Number of records reviewed (EHR total)"),
    Column("3f", "Patients with most recent HbA1c > 9% or no test during the year"),
    Column("dm_rate", "HbA1c > 9% or untested rate (3f / 3b, lower is better)", "rate"),
]


def table_7(
    center: str,
    rows_of: dict[tuple[str, str], str],
    flags: dict[str, dict[tuple[str, str], tuple[bool, bool]]],
) -> UdsTable:
    """Table 7 sections B (CMS165) and C (CMS122) by race x ethnicity; section A not available.

    ``rows_of`` maps (center, patient) to its Table 7 row (:func:`t7_row`).
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    available = {}
    for cms, (den_col, rev_col, num_col) in ((HTN, ("2a", "2b", "2c")), (DM, ("3a", "3b", "3f"))):
        available[cms] = cms in flags
        for (c, pid), (den, met) in flags.get(cms, {}).items():
            if c != center or not den:
                continue
            row = rows_of.get((c, pid))
            if row is None:
                continue
            counts[(row, den_col)] += 1
            counts[(row, rev_col)] += 1
            counts[(row, num_col)] += met
    detail = [r for r, _ in T7_ROWS if r[0] in "12" and not r.startswith("Subtotal")]
    count_cols = ["2a", "2b", "2c", "3a", "3b", "3f"]
    for col in count_cols:
        counts[("Subtotal Hispanic", col)] = sum(counts[(r, col)] for r in detail if r[0] == "1")
        counts[("Subtotal Non-Hispanic", col)] = sum(counts[(r, col)] for r in detail if r[0] == "2")
        counts[("i", col)] = sum(
            counts[(r, col)] for r in ("Subtotal Hispanic", "Subtotal Non-Hispanic", "h")
        )
    lines = []
    for row, label in T7_ROWS:
        values: dict[str, int | float | str | None] = {}
        for cms, cols, rate_col in (
            (HTN, ("2a", "2b", "2c"), "htn_rate"),
            (DM, ("3a", "3b", "3f"), "dm_rate"),
        ):
            if available[cms]:
                values.update({c: counts[(row, c)] for c in cols})
                values[rate_col] = rate(counts[(row, cols[2])], counts[(row, cols[1])])
            else:
                values.update({c: None for c in cols} | {rate_col: None})
        lines.append(Line(row, label, values))
    lines.insert(
        0,
        Line(
            "A",
            "Section A: deliveries and birth weight (lines 0, 2, 1a-1d)",
            {},
            note=f"{NOT_AVAILABLE}: {PRENATAL}",
        ),
    )
    eqs: list[tuple[Cell, tuple[Cell, ...]]] = []
    rates: list[tuple[Cell, Cell, Cell]] = []
    for cms, cols, rate_col in ((HTN, ("2a", "2b", "2c"), "htn_rate"), (DM, ("3a", "3b", "3f"), "dm_rate")):
        if not available[cms]:
            continue
        for col in cols:
            eqs.append((("Subtotal Hispanic", col), tuple((r, col) for r in detail if r[0] == "1")))
            eqs.append((("Subtotal Non-Hispanic", col), tuple((r, col) for r in detail if r[0] == "2")))
            eqs.append((("i", col), (("Subtotal Hispanic", col), ("Subtotal Non-Hispanic", col), ("h", col))))
        rates += [((r, rate_col), (r, cols[2]), (r, cols[1])) for r, _ in T7_ROWS]
    return UdsTable(
        "7", "Health Outcomes and Disparities", center, COLS_7, lines, eqs, rates, {"2a": "2b", "3a": "3b"}
    )
