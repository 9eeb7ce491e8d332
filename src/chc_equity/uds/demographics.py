"""Tables 3A, 3B and 4 as pure functions of the per-patient facts in ``uds_patients``.

Every function takes the patients of one center (mappings with the columns of ``uds_patients``) and
returns a :class:`~chc_equity.uds.model.UdsTable` with the UDS line ids; counting is a ``Counter`` over
line ids, so each line is exactly "how many patients carry this line id".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from chc_equity.uds.model import Cell, Column, Line, UdsTable

Patient = Mapping[str, Any]

# --- Table 3A ---------------------------------------------------------------------------------------
AGE_LINES: list[tuple[str, str, int, int]] = (
    [("1", "Under age 1", 0, 0)]
    + [(str(a + 1), f"Age {a}", a, a) for a in range(1, 25)]
    + [(str(26 + i), f"Ages {lo}-{lo + 4}", lo, lo + 4) for i, lo in enumerate(range(25, 85, 5))]
    + [("38", "Age 85 and over", 85, 200)]
)


def age_line(age: int | None) -> str | None:
    if age is None or age < 0:
        return None
    for line, _, lo, hi in AGE_LINES:
        if lo <= age <= hi:
            return line
    return None


def table_3a(center: str, patients: Iterable[Patient]) -> UdsTable:
    """Patients by age on June 30 and sex assigned at birth; unknown sex or age is left off (an edit)."""
    counts: Counter[tuple[str, str]] = Counter()
    for p in patients:
        line = age_line(p["age"])
        col = {"Male": "a", "Female": "b"}.get(p["sex"])
        if line and col:
            counts[(line, col)] += 1
    lines = [Line(line, label, {c: counts[(line, c)] for c in "ab"}) for line, label, _, _ in AGE_LINES]
    lines.append(
        Line(
            "39",
            "Total patients (sum of lines 1-38)",
            {c: sum(counts[(line, c)] for line, *_ in AGE_LINES) for c in "ab"},
        )
    )
    eqs = [(("39", c), tuple((line, c) for line, *_ in AGE_LINES)) for c in "ab"]
    cols = [Column("a", "Male patients"), Column("b", "Female patients")]
    return UdsTable("3A", "Patients by Age and by Sex Assigned at Birth", center, cols, lines, eqs)


# --- Table 3B ---------------------------------------------------------------------------------------
ETH_COLS = [
    Column("a1", "Mexican, Mexican American, Chicano/a"),
    Column("a2", "Puerto Rican"),
    Column("a3", "Cuban"),
    Column("a4", "Another Hispanic, Latino/a, or Spanish origin"),
    Column("a5", "Hispanic, Latino/a, or Spanish origin, combined"),
    Column("a", "Hispanic, Latino/a, or Spanish origin total (sum a1-a5)"),
    Column("b", "Not Hispanic, Latino/a, or Spanish origin"),
    Column("c", "Unreported/Chose not to disclose ethnicity"),
    Column("d", "Total (sum columns a+b+c)"),
]
HISP = ("a1", "a2", "a3", "a4", "a5")
RACE_LINES: list[tuple[str, str]] = [
    ("1a", "Asian Indian"),
    ("1b", "Chinese"),
    ("1c", "Filipino"),
    ("1d", "Japanese"),
    ("1e", "Korean"),
    ("1f", "Vietnamese"),
    ("1g", "Other Asian"),
    ("1", "Total Asian (sum lines 1a-1g)"),
    ("2a", "Native Hawaiian"),
    ("2b", "Other Pacific Islander"),
    ("2c", "Guamanian or Chamorro"),
    ("2d", "Samoan"),
    ("2", "Total Native Hawaiian/Other Pacific Islander (sum lines 2a-2d)"),
    ("3", "Black/African American"),
    ("4", "American Indian/Alaska Native"),
    ("5", "White"),
    ("6", "More than one race"),
    ("7", "Unreported/Chose not to disclose race"),
    ("8", "Total patients (sum lines 1 + 2 + 3 to 7)"),
]
RACE_TOTALS = {"1": ("1a", "1b", "1c", "1d", "1e", "1f", "1g"), "2": ("2a", "2b", "2c", "2d")}
RACE_SUM = ("1", "2", "3", "4", "5", "6", "7")
ORIENTATION_LINES = [
    ("13", "Lesbian or gay"),
    ("14", "Straight (not lesbian or gay)"),
    ("15", "Bisexual"),
    ("16", "Something else"),
    ("17", "Don't know"),
    ("18", "Chose not to disclose"),
    ("18a", "Unknown (not recorded)"),
    ("19", "Total patients (sum lines 13-18a)"),
]
GENDER_LINES = [
    ("20", "Man"),
    ("21", "Woman"),
    ("22", "Transgender man/transmasculine"),
    ("23", "Transgender woman/transfeminine"),
    ("24", "Other (incl. nonbinary)"),
    ("25", "Chose not to disclose"),
    ("25a", "Unknown (not recorded)"),
    ("26", "Total patients (sum lines 20-25a)"),
]


def table_3b(center: str, patients: Iterable[Patient]) -> UdsTable:
    """Race x Hispanic ethnicity grid (disaggregated), language, sexual orientation, gender identity.

    The non-grid lines (12-26) carry their count in column ``d`` (UDS prints them in one column).
    """
    grid: Counter[tuple[str, str]] = Counter()
    single: Counter[str] = Counter()
    for p in patients:
        grid[(p["race_line"], p["ethnicity_col"])] += 1
        single[p["orientation_line"]] += 1
        single[p["gender_line"]] += 1
        single["12"] += bool(p["lep"])
    cells: dict[Cell, int] = {}
    detail = [ln for ln, _ in RACE_LINES if ln not in RACE_TOTALS and ln not in ("8",)]
    for ln in detail:
        for col in (*HISP, "b", "c"):
            cells[(ln, col)] = grid[(ln, col)]
    for total, members in RACE_TOTALS.items():
        for col in (*HISP, "b", "c"):
            cells[(total, col)] = sum(cells[(m, col)] for m in members)
    for col in (*HISP, "b", "c"):
        cells[("8", col)] = sum(cells[(m, col)] for m in RACE_SUM)
    race_rows = [ln for ln, _ in RACE_LINES]
    for ln in race_rows:
        cells[(ln, "a")] = sum(cells[(ln, c)] for c in HISP)
        cells[(ln, "d")] = cells[(ln, "a")] + cells[(ln, "b")] + cells[(ln, "c")]
    lines = [Line(ln, label, {c.key: cells[(ln, c.key)] for c in ETH_COLS}) for ln, label in RACE_LINES]
    lines.append(Line("12", "Patients best served in a language other than English", {"d": single["12"]}))
    for block, total in ((ORIENTATION_LINES, "19"), (GENDER_LINES, "26")):
        members = [ln for ln, _ in block if ln != total]
        for ln, label in block:
            value = sum(single[m] for m in members) if ln == total else single[ln]
            lines.append(Line(ln, label, {"d": value}))
    eqs: list[tuple[Cell, tuple[Cell, ...]]] = []
    for ln in race_rows:
        eqs.append(((ln, "a"), tuple((ln, c) for c in HISP)))
        eqs.append(((ln, "d"), ((ln, "a"), (ln, "b"), (ln, "c"))))
    for col in [c.key for c in ETH_COLS]:
        for total, members in RACE_TOTALS.items():
            eqs.append(((total, col), tuple((m, col) for m in members)))
        eqs.append((("8", col), tuple((m, col) for m in RACE_SUM)))
    for block, total in ((ORIENTATION_LINES, "19"), (GENDER_LINES, "26")):
        eqs.append(((total, "d"), tuple((ln, "d") for ln, _ in block if ln != total)))
    return UdsTable("3B", "Demographic Characteristics", center, ETH_COLS, lines, eqs)


# --- Table 4 ----------------------------------------------------------------------------------------
INCOME_LINES = [
    ("1", "100% and below"),
    ("2", "101-150%"),
    ("3", "151-200%"),
    ("4", "Over 200%"),
    ("5", "Unknown"),
    ("6", "TOTAL (sum lines 1-5)"),
]
INSURANCE_LINES = [
    ("7", "None/Uninsured"),
    ("8a", "Medicaid (Title XIX)"),
    ("8b", "CHIP Medicaid"),
    ("8", "Total Medicaid (sum lines 8a + 8b)"),
    ("9a", "Dually eligible (Medicare and Medicaid)"),
    ("9", "Medicare (inclusive of dually eligible and other Title XVIII beneficiaries)"),
    ("10a", "Other public insurance (non-CHIP)"),
    ("10b", "Other public insurance CHIP"),
    ("10", "Total public insurance (sum lines 10a + 10b)"),
    ("11", "Private insurance"),
    ("12", "TOTAL (sum lines 7 + 8 + 9 + 10 + 11)"),
]
INSURANCE_LINE = {
    "uninsured": "7",
    "none": "7",
    "medicaid": "8a",
    "chip": "8b",
    "dual": "9a",
    "medicare": "9",
    "other_public": "10a",
    "other_public_chip": "10b",
    "private": "11",
}
SPECIAL_LINES = [
    ("14", "Migratory (330g awardees only)"),
    ("15", "Seasonal (330g awardees only)"),
    ("16", "Total agricultural workers or dependents (all health centers report this line)"),
    ("17", "Homeless shelter (330h awardees only)"),
    ("18", "Transitional (330h awardees only)"),
    ("19", "Doubling up (330h awardees only)"),
    ("20", "Street (330h awardees only)"),
    ("21", "Other (330h awardees only)"),
    ("21a", "Permanent supportive housing (330h awardees only)"),
    ("22", "Unknown (330h awardees only)"),
    ("23", "Total homeless (all health centers report this line)"),
    ("24", "Total school-based service site patients"),
    ("25", "Total veterans"),
    (
        "26",
        "Total patients served at a health center site located in or immediately accessible to "
        "a public housing site",
    ),
]
HOMELESS_DETAIL = ("17", "18", "19", "20", "21", "21a", "22")


def table_4(center: str, patients: Iterable[Patient]) -> UdsTable:
    """Income, principal insurance by age group (a: 0-17, b: 18 and older), special populations.

    Counts of lines 1-6 and 14-26 are in column ``a`` (UDS prints them in one column); patients whose
    age is unknown are counted as adults in lines 7-12 (and fire the age edit).
    """
    income: Counter[str] = Counter()
    ins: Counter[tuple[str, str]] = Counter()
    special: Counter[str] = Counter()
    for p in patients:
        income[p["income_line"]] += 1
        col = "a" if p["age"] is not None and p["age"] < 18 else "b"
        ins[(INSURANCE_LINE[p["insurance"]], col)] += 1
        if p["agricultural_line"]:
            special[p["agricultural_line"]] += 1
        if p["homeless_line"]:
            special[p["homeless_line"]] += 1
        special["24"] += bool(p["school_based"])
        special["25"] += bool(p["veteran"])
        special["26"] += bool(p["public_housing"])
    special["16"] += special["14"] + special["15"]
    special["23"] = sum(special[ln] for ln in HOMELESS_DETAIL)
    lines = [Line(ln, label, {"a": income[ln]}) for ln, label in INCOME_LINES[:-1]]
    lines.append(Line("6", INCOME_LINES[-1][1], {"a": sum(income[ln] for ln, _ in INCOME_LINES[:-1])}))
    ic: dict[Cell, int] = {}
    for c in "ab":
        for ln in ("7", "8a", "8b", "9a", "10a", "10b", "11"):
            ic[(ln, c)] = ins[(ln, c)]
        ic[("8", c)] = ic[("8a", c)] + ic[("8b", c)]
        ic[("9", c)] = ins[("9", c)] + ic[("9a", c)]
        ic[("10", c)] = ic[("10a", c)] + ic[("10b", c)]
        ic[("12", c)] = ic[("7", c)] + ic[("8", c)] + ic[("9", c)] + ic[("10", c)] + ic[("11", c)]
    lines += [Line(ln, label, {c: ic[(ln, c)] for c in "ab"}) for ln, label in INSURANCE_LINES]
    lines += [Line(ln, label, {"a": special[ln]}) for ln, label in SPECIAL_LINES]
    eqs: list[tuple[Cell, tuple[Cell, ...]]] = [
        (("6", "a"), tuple((ln, "a") for ln, _ in INCOME_LINES[:-1])),
        (("23", "a"), tuple((ln, "a") for ln in HOMELESS_DETAIL)),
    ]
    for c in "ab":
        eqs += [
            (("8", c), (("8a", c), ("8b", c))),
            (("10", c), (("10a", c), ("10b", c))),
            (("12", c), (("7", c), ("8", c), ("9", c), ("10", c), ("11", c))),
        ]
    cols = [Column("a", "Ages 0-17 (lines 7-12); patients (other lines)"), Column("b", "Ages 18 and older")]
    table = UdsTable("4", "Selected Patient Characteristics", center, cols, lines, eqs)
    table.line("16").note = "includes patients whose farm-work status is not split into migratory/seasonal"
    return table
