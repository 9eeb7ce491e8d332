"""Validation edits in the spirit of HRSA's UDS edit checks: errors block a filing, warnings ask why.

Pure functions over the built tables (and a few counts of bad source values gathered by the report):
cross-table totals (3A = 3B = 4), sums inside a table, impossible values, unknown-rate warnings, and
year-over-year swings against a prior year's report when one is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from chc_equity.uds.config import EditThresholds
from chc_equity.uds.model import UdsTable

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Edit:
    center: str
    edit: str  # stable id, e.g. "E01-3A-3B-TOTAL"
    severity: Severity
    table: str
    line: str
    message: str
    value: float | int | None = None
    expected: float | int | None = None

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def _sum(table: UdsTable, line: str, cols: str) -> int:
    return sum(table.count(line, c) for c in cols)


def cross_table(center: str, tables: Mapping[str, UdsTable]) -> list[Edit]:
    """3A line 39 (a+b) = 3B line 8 (d) = 4 line 6 = 4 line 12 (a+b) = 3B lines 19 and 26."""
    out: list[Edit] = []
    t3b = _sum(tables["3B"], "8", "d")
    checks = [
        (
            "E01-3A-3B-TOTAL",
            "3A",
            "39",
            _sum(tables["3A"], "39", "ab"),
            "Table 3A total patients differ from Table 3B",
        ),
        (
            "E02-4-INCOME-TOTAL",
            "4",
            "6",
            _sum(tables["4"], "6", "a"),
            "Table 4 income total (line 6) differs from Table 3B",
        ),
        (
            "E03-4-INSURANCE-TOTAL",
            "4",
            "12",
            _sum(tables["4"], "12", "ab"),
            "Table 4 insurance total (line 12) differs from Table 3B",
        ),
        (
            "E04-3B-SO-TOTAL",
            "3B",
            "19",
            _sum(tables["3B"], "19", "d"),
            "Table 3B sexual orientation total differs from total patients",
        ),
        (
            "E05-3B-GI-TOTAL",
            "3B",
            "26",
            _sum(tables["3B"], "26", "d"),
            "Table 3B gender identity total differs from total patients",
        ),
    ]
    for edit, table, line, value, msg in checks:
        if value != t3b:
            out.append(Edit(center, edit, "error", table, line, msg, value, t3b))
    return out


def internal_sums(center: str, tables: Mapping[str, UdsTable]) -> list[Edit]:
    """Every declared total equals the sum of its members (guards hand-edited or merged files)."""
    out = []
    for t in tables.values():
        for (line, col), members in t.equations:
            total = t.get(line, col)
            parts = [t.get(m_line, m_col) for m_line, m_col in members]
            if not isinstance(total, int) or not all(isinstance(p, int) for p in parts):
                continue
            if total != sum(parts):  # type: ignore[arg-type]
                out.append(
                    Edit(
                        center,
                        "E06-SUM",
                        "error",
                        t.table,
                        line,
                        f"column {col} is not the sum of its lines",
                        total,
                        sum(parts),
                    )
                )  # type: ignore[arg-type]
    return out


def impossible_values(center: str, tables: Mapping[str, UdsTable], bad: Mapping[str, int]) -> list[Edit]:
    """Values that cannot be true: numerator > denominator, a CQM denominator above all patients,
    patients that cannot be placed (no sex at birth, no/impossible birth date), impossible incomes."""
    out: list[Edit] = []
    total = _sum(tables["3B"], "8", "d")
    for t, pairs in (("6B", [("c", "b")]), ("7", [("2c", "2b"), ("3f", "3b")])):
        for row in tables[t].lines:
            for num_col, den_col in pairs:
                num, den = row.values.get(num_col), row.values.get(den_col)
                if isinstance(num, int) and isinstance(den, int):
                    if num > den:
                        out.append(
                            Edit(
                                center,
                                "E07-NUM-GT-DEN",
                                "error",
                                t,
                                row.line,
                                f"column {num_col} exceeds column {den_col}",
                                num,
                                den,
                            )
                        )
                    if den > total:
                        out.append(
                            Edit(
                                center,
                                "E08-DEN-GT-PATIENTS",
                                "error",
                                t,
                                row.line,
                                f"column {den_col} exceeds total patients",
                                den,
                                total,
                            )
                        )
    messages = {
        "sex_unknown": (
            "E09-SEX-UNKNOWN",
            "3A",
            "39",
            "patients without sex assigned at birth (not on Table 3A)",
        ),
        "age_invalid": (
            "E10-AGE-INVALID",
            "3A",
            "39",
            "patients with missing, partial or future birth date, or older than 120",
        ),
        "income_impossible": (
            "E11-INCOME-IMPOSSIBLE",
            "4",
            "1",
            "income observations below 0% or above 10,000% of poverty",
        ),
    }
    for key, (edit, table, line, msg) in messages.items():
        if bad.get(key, 0):
            out.append(Edit(center, edit, "error", table, line, msg, bad[key], 0))
    return out


def unknown_rates(center: str, tables: Mapping[str, UdsTable], th: EditThresholds) -> list[Edit]:
    """Share of patients whose income / race / ethnicity / orientation / insurance is not known."""
    total = _sum(tables["3B"], "8", "d")
    if total == 0:
        return []
    t3b, t4 = tables["3B"], tables["4"]
    checks = [
        ("W01-INCOME-UNKNOWN", "4", "5", t4.count("5", "a"), th.income_unknown, "income unknown"),
        ("W02-RACE-UNREPORTED", "3B", "7", t3b.count("7", "d"), th.race_unreported, "race unreported"),
        (
            "W03-ETHNICITY-UNREPORTED",
            "3B",
            "8",
            t3b.count("8", "c"),
            th.ethnicity_unreported,
            "ethnicity unreported",
        ),
        (
            "W04-ORIENTATION-UNKNOWN",
            "3B",
            "18a",
            t3b.count("18a", "d"),
            th.sexual_orientation_unknown,
            "sexual orientation not recorded",
        ),
    ]
    out = []
    for edit, table, line, n, limit, what in checks:
        share = n / total
        if share > limit:
            out.append(
                Edit(
                    center,
                    edit,
                    "warning",
                    table,
                    line,
                    f"{what} for {share:.1%} of patients (limit {limit:.0%})",
                    round(share, 4),
                    limit,
                )
            )
    return out


def insurance_not_recorded(center: str, n_none: int, total: int, th: EditThresholds) -> list[Edit]:
    """Patients with no usable coverage are reported as uninsured (line 7); warn when that is common."""
    if total and n_none / total > th.insurance_not_recorded:
        share = n_none / total
        return [
            Edit(
                center,
                "W05-INSURANCE-NOT-RECORDED",
                "warning",
                "4",
                "7",
                f"no coverage recorded for {share:.1%} of patients (counted as uninsured)",
                round(share, 4),
                th.insurance_not_recorded,
            )
        ]
    return []


def year_over_year(
    center: str, tables: Mapping[str, UdsTable], prior: Mapping[str, UdsTable], th: EditThresholds
) -> list[Edit]:
    """Counts that moved by more than ``yoy_relative_change`` (on >= ``yoy_min_count`` patients) and
    rates that moved by more than ``yoy_rate_points`` (on denominators >= ``yoy_min_denominator``)."""
    out = []
    for key, now in tables.items():
        before = prior.get(key)
        if before is None:
            continue
        rate_cols = {c.key for c in now.columns if c.kind == "rate"}
        dens = {r[0]: r[2] for r in now.rates}
        for row in now.lines:
            try:
                old_row = before.line(row.line)
            except KeyError:
                continue
            for col, v in row.values.items():
                o = old_row.values.get(col)
                if col in rate_cols:
                    den_cell = dens.get((row.line, col))
                    if not (isinstance(v, float) and isinstance(o, float) and den_cell):
                        continue
                    d_now, d_old = now.get(*den_cell), before.get(*den_cell)
                    if (
                        isinstance(d_now, int)
                        and isinstance(d_old, int)
                        and min(d_now, d_old) >= th.yoy_min_denominator
                        and abs(v - o) > th.yoy_rate_points
                    ):
                        out.append(
                            Edit(
                                center,
                                "W07-YOY-RATE",
                                "warning",
                                key,
                                row.line,
                                f"rate {col} moved {v - o:+.1%} from the prior year",
                                v,
                                o,
                            )
                        )
                elif isinstance(v, int) and isinstance(o, int) and max(v, o) >= th.yoy_min_count:
                    change = abs(v - o) / max(o, 1)
                    if change > th.yoy_relative_change:
                        out.append(
                            Edit(
                                center,
                                "W06-YOY-COUNT",
                                "warning",
                                key,
                                row.line,
                                f"column {col} changed {change:.0%} from the prior year ({o} -> {v})",
                                v,
                                o,
                            )
                        )
    return out
