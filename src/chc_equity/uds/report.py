"""Build the UDS report: per-center Tables 3A, 3B, 4, 6B, 7, the network roll-up, and the edits.

I/O lives here (warehouse queries); the tables themselves are pure functions of the fetched facts
(:mod:`~chc_equity.uds.demographics`, :mod:`~chc_equity.uds.quality`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np

from chc_equity.equity.suppression import DEFAULT_THRESHOLD, LinearTable, suppress
from chc_equity.uds import edits as E
from chc_equity.uds.config import UdsConfig
from chc_equity.uds.demographics import table_3a, table_3b, table_4
from chc_equity.uds.model import Line, UdsTable, rate
from chc_equity.uds.patients import PATIENTS, build_uds_patients
from chc_equity.uds.quality import quality_flags, t7_row, table_6b, table_7

NETWORK = "NETWORK"
TABLES = ("3A", "3B", "4", "6B", "7")


@dataclass
class UdsReport:
    year: int
    tables: dict[str, dict[str, UdsTable]]  # scope (center id or NETWORK) -> table id -> table
    edits: list[E.Edit] = field(default_factory=list)
    suppressed: bool = False

    @property
    def scopes(self) -> list[str]:
        return list(self.tables)


def _bad_values(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, dict[str, int]]:
    rows = con.execute(
        f"""
        SELECT center,
          count(*) FILTER (WHERE sex NOT IN ('Male', 'Female')) AS sex_unknown,
          count(*) FILTER (WHERE age IS NULL OR age > 120) AS age_invalid,
          count(*) FILTER (WHERE insurance = 'none') AS insurance_none
        FROM {PATIENTS} GROUP BY ALL
        """
    ).fetchall()
    out = {c: {"sex_unknown": s, "age_invalid": a, "insurance_none": n} for c, s, a, n in rows}
    income = con.execute(
        f"""
        SELECT o.center, count(DISTINCT o.id)
        FROM flat.observation o JOIN flat.observation_code oc USING (center, id)
        JOIN {PATIENTS} u ON u.center = o.center AND u.patient_id = o.patient_id
        WHERE oc.system = 'http://loinc.org' AND oc.code = '99500-1'
          AND left(coalesce(o.effective_datetime, o.issued), 10) <= ?
          AND (o.value_quantity_value < 0 OR o.value_quantity_value > 10000)
        GROUP BY ALL
        """,
        [f"{year}-12-31"],
    ).fetchall()
    for c, n in income:
        out.setdefault(c, {})["income_impossible"] = n
    return out


def build_report(
    con: duckdb.DuckDBPyConnection,
    year: int,
    *,
    centers: list[str] | None = None,
    config: UdsConfig | None = None,
    prior: Mapping[str, Mapping[str, UdsTable]] | None = None,
    network: bool | None = None,
    suppress_network: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
) -> UdsReport:
    """Tables and edits for ``year`` (calendar year) for ``centers`` (default: all) and the network.

    ``network`` defaults to True unless exactly one center was asked for. ``prior`` (scope -> table id
    -> table, e.g. from :func:`chc_equity.uds.export.read_json` of last year's ``uds.json``) enables the
    year-over-year edits. ``suppress_network`` returns the small-cell-suppressed roll-up *only* (no
    center scopes, no edits: see :func:`publication`).
    """
    config = config or UdsConfig()
    centers = build_uds_patients(con, year, centers, config)
    cur = con.execute(f"SELECT * FROM {PATIENTS} ORDER BY center, patient_id")
    names = [d[0] for d in cur.description]
    facts = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    flags = quality_flags(con, year)
    rows_of = {(p["center"], p["patient_id"]): t7_row(p["race_line"], p["ethnicity_col"]) for p in facts}
    bad = _bad_values(con, year)
    report = UdsReport(year, {})
    for center in centers:
        mine = [p for p in facts if p["center"] == center]
        tables = {
            "3A": table_3a(center, mine),
            "3B": table_3b(center, mine),
            "4": table_4(center, mine),
            "6B": table_6b(center, flags),
            "7": table_7(center, rows_of, flags),
        }
        report.tables[center] = tables
        report.edits += center_edits(center, tables, bad.get(center, {}), config, prior)
    if network is None:
        network = len(centers) != 1 or suppress_network
    if network:
        rolled = {t: roll_up([report.tables[c][t] for c in centers]) for t in TABLES}
        report.edits += center_edits(NETWORK, rolled, _sum_bad(bad, centers), config, prior)
        if suppress_network:
            return publication(year, suppress_tables(rolled, threshold))
        report.tables[NETWORK] = rolled
    elif suppress_network:
        raise ValueError("suppress_network publishes the network roll-up: it needs network=True")
    return report


def publication(year: int, rolled: dict[str, UdsTable]) -> UdsReport:
    """The suppressed roll-up on its own: no center's (unsuppressed) filing and no edit next to it.

    Shipping the centers' rows in the same files would let anyone subtract them from the roll-up, and the
    edits quote unsuppressed values; both are for the centers' own filings, not for publication.
    """
    return UdsReport(year, {NETWORK: rolled}, [], suppressed=True)


def _sum_bad(bad: Mapping[str, Mapping[str, int]], centers: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in centers:
        for k, v in bad.get(c, {}).items():
            out[k] = out.get(k, 0) + v
    return out


def center_edits(
    center: str,
    tables: Mapping[str, UdsTable],
    bad: Mapping[str, int],
    config: UdsConfig,
    prior: Mapping[str, Mapping[str, UdsTable]] | None,
) -> list[E.Edit]:
    th = config.edits
    total = tables["3B"].count("8", "d")
    out = E.cross_table(center, tables) + E.internal_sums(center, tables)
    out += E.impossible_values(center, tables, bad)
    out += E.unknown_rates(center, tables, th)
    out += E.insurance_not_recorded(center, bad.get("insurance_none", 0), total, th)
    if prior and center in prior:
        out += E.year_over_year(center, tables, prior[center], th)
    return out


def roll_up(tables: list[UdsTable]) -> UdsTable:
    """Cell-wise sum of the centers' tables (a patient seen at two centers counts at both, as in the
    centers' own filings); rates recomputed from the summed counts; a count missing anywhere stays
    missing."""
    first = tables[0]
    lines = []
    for row in first.lines:
        values: dict[str, int | float | str | None] = {}
        for col in first.columns:
            if col.key not in row.values:
                continue
            cells = [t.line(row.line).values.get(col.key) for t in tables]
            if col.kind == "text":
                values[col.key] = cells[0]
            elif col.kind == "count":
                values[col.key] = sum(cells) if all(isinstance(v, int) for v in cells) else None  # type: ignore[arg-type]
            else:
                values[col.key] = None  # rates: recomputed below
        lines.append(Line(row.line, row.label, values, row.note))
    out = replace(first, center=NETWORK, lines=lines)
    for (r_line, r_col), num, den in first.rates:
        out.line(r_line).values[r_col] = rate(out.get(*num), out.get(*den))
    return out


# Cells every table carries for the same total (3A line 39 a+b = 3B line 8 d = 4 line 6 = 4 line 12 a+b =
# 3B lines 19 and 26): (table, line, columns) -- suppression treats them as one quantity across tables.
SAME_TOTAL: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("3A", "39", ("a", "b")),
    ("4", "6", ("a",)),
    ("4", "12", ("a", "b")),
    ("3B", "19", ("d",)),
    ("3B", "26", ("d",)),
)
TOTAL_PATIENTS = ("3B", "8", "d")

Key = tuple[str, str, str]  # (table, line, column)


def suppress_tables(
    tables: Mapping[str, UdsTable], threshold: int = DEFAULT_THRESHOLD
) -> dict[str, UdsTable]:
    """Small-cell suppression of a roll-up's tables together, with :mod:`chc_equity.equity.suppression`.

    One plan over every table, because they share their total (:data:`SAME_TOTAL`): a total hidden in one
    table and published in another would be no protection. Each table's own sums are published
    margins. Each rate adds its hidden "not met" quantity (denominator = met + not met, with the
    denominator's margins), so a rate whose numerator or complement is small is hidden too. Mirror
    columns (records reviewed = denominator) follow the column they copy.
    """
    index: dict[Key, int] = {}
    values: list[int] = []
    names: list[str] = []
    equations: list[tuple[int, tuple[int, ...]]] = []
    for tid, table in tables.items():
        for row in table.lines:
            for col in table.columns:
                v = row.values.get(col.key)
                if col.kind == "count" and col.key not in table.mirrors and isinstance(v, int):
                    index[(tid, row.line, col.key)] = len(values)
                    values.append(v)
                    names.append(f"{tid}:{row.line}:{col.key}")
        eq_of = [((tid, *t), tuple((tid, *m) for m in ms)) for t, ms in table.equations]
        for total, members in eq_of:
            if total in index and all(m in index for m in members):
                equations.append((index[total], tuple(index[m] for m in members)))
        comp: dict[Key, int] = {}
        for _, num, den in table.rates:
            n_key, d_key = (tid, *num), (tid, *den)
            if n_key in index and d_key in index:
                comp[d_key] = len(values)
                values.append(values[index[d_key]] - values[index[n_key]])
                names.append(f"{tid}:{den[0]}:not met")
                equations.append((index[d_key], (index[n_key], comp[d_key])))
        for total, members in eq_of:
            if total in comp and all(m in comp for m in members):
                equations.append((comp[total], tuple(comp[m] for m in members)))
    if TOTAL_PATIENTS in index:
        for tid, line, cols in SAME_TOTAL:
            keys = [(tid, line, c) for c in cols]
            if all(k in index for k in keys):
                equations.append((index[TOTAL_PATIENTS], tuple(index[k] for k in keys)))
    if not values:
        return dict(tables)
    result = suppress(
        LinearTable(np.asarray(values, dtype=np.int64), tuple(equations), tuple(names)), threshold
    )
    hidden = {key for key, i in index.items() if result.suppressed[i]}
    return {tid: _blank(table, tid, hidden, threshold) for tid, table in tables.items()}


def _blank(table: UdsTable, tid: str, hidden_keys: set[Key], threshold: int) -> UdsTable:
    """``table`` with the hidden cells (and their mirrors and rates) set to None and a note per line."""
    hidden = {(line, col) for t, line, col in hidden_keys if t == tid}
    hidden |= {
        (line, mirror)
        for mirror, source in table.mirrors.items()
        for line, col in list(hidden)
        if col == source
    }
    out = replace(table, lines=[Line(r.line, r.label, dict(r.values), r.note) for r in table.lines])
    for line, col in hidden:
        out.line(line).values[col] = None
    for (r_line, r_col), num, den in table.rates:
        if num in hidden or den in hidden:
            out.line(r_line).values[r_col] = None
    for row in out.lines:
        if any((row.line, c) in hidden for c in row.values):
            row.note = (row.note + "; " if row.note else "") + f"small cells (<{threshold}) suppressed"
    return out
