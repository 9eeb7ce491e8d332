"""Population counts and performance rates from ``measure_results``, by eCQM convention.

rate = numerator / (denominator - denominator exclusions - denominator exceptions); None when that
is zero. Counts are of subjects (patients, or encounters for episode measures).

Stratified measures (CMS74, 125, 130, 155, 159: age bands the CQL defines as "Stratification n") get one
extra row per declared stratum when ``strata=True``: the same counts restricted to the subjects whose
``measure_results.strata`` holds that stratifier. Every declared stratum is listed, with zeros when no
subject falls in it, so a stratum is never silently missing from a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.model import Group
from chc_equity.measures.registry import all_measures

_COUNTS = """
               count(*) FILTER (WHERE initial_population),
               count(*) FILTER (WHERE denominator),
               count(*) FILTER (WHERE denominator_exclusion),
               count(*) FILTER (WHERE denominator_exception),
               count(*) FILTER (WHERE numerator),
               count(*) FILTER (WHERE numerator_exclusion)"""


@dataclass(frozen=True)
class Summary:
    measure: str
    cms_id: str
    group_id: str
    center: str
    initial_population: int
    denominator: int
    denominator_exclusion: int
    denominator_exception: int
    numerator: int
    numerator_exclusion: int
    stratum: str | None = None  # CQL stratifier name ("Stratification 1"); None for the group's total

    @property
    def performance_denominator(self) -> int:
        return self.denominator - self.denominator_exclusion - self.denominator_exception

    @property
    def rate(self) -> float | None:
        d = self.performance_denominator
        return self.numerator / d if d > 0 else None


def summarize(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str],
    period_start: date,
    period_end: date,
    *,
    centers: Sequence[str] | None = None,
    by_center: bool = True,
    strata: bool = False,
) -> list[Summary]:
    """Counts per measure x group (x center unless ``by_center`` is False, then center = '*').

    With ``strata``, each group's total row is followed by one row per declared stratifier (in the
    Measure's order; ``Summary.stratum`` set).
    """
    groups = {(m.measure.name, g.id): g for m in all_measures() for g in m.measure.groups}
    cms = {m.measure.name: m.measure.cms_id for m in all_measures()}
    center_col = "center" if by_center else "'*'"
    params: list[object] = [list(measures), period_start, period_end]
    where = "measure IN (SELECT unnest(?)) AND period_start = ? AND period_end = ?"
    if centers:
        where += " AND center IN (SELECT unnest(?))"
        params.append(list(centers))
    rows = con.execute(
        f"""
        SELECT measure, group_id, {center_col} AS center, {_COUNTS}
        FROM {RESULTS_TABLE} WHERE {where}
        GROUP BY ALL ORDER BY measure, group_id, center
        """,
        params,
    ).fetchall()
    totals = [Summary(r[0], cms.get(r[0], r[0]), r[1], r[2], *map(int, r[3:])) for r in rows]
    if not strata:
        return totals
    stratum_rows = con.execute(
        f"""
        SELECT measure, group_id, {center_col} AS center, stratum, {_COUNTS}
        FROM (SELECT *, unnest(strata) AS stratum FROM {RESULTS_TABLE} WHERE {where})
        GROUP BY ALL
        """,
        params,
    ).fetchall()
    by_key = {(r[0], r[1], r[2], r[3]): tuple(map(int, r[4:])) for r in stratum_rows}
    out: list[Summary] = []
    for total in totals:
        out.append(total)
        group = groups.get((total.measure, total.group_id), Group(total.group_id, ()))
        for name in group.stratifiers:
            counts = by_key.get((total.measure, total.group_id, total.center, name), (0,) * 6)
            out.append(
                Summary(total.measure, total.cms_id, total.group_id, total.center, *counts, stratum=name)
            )
    return out
