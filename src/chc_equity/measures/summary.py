"""Population counts and performance rates from ``measure_results``, by eCQM convention.

rate = numerator / (denominator - denominator exclusions - denominator exceptions); None when that
is zero. Counts are of subjects (patients, or encounters for episode measures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.registry import all_measures


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
) -> list[Summary]:
    """Counts per measure x group (x center unless ``by_center`` is False, then center = '*')."""
    cms = {m.measure.name: m.measure.cms_id for m in all_measures()}
    center_col = "center" if by_center else "'*'"
    params: list[object] = [list(measures), period_start, period_end]
    where = "measure IN (SELECT unnest(?)) AND period_start = ? AND period_end = ?"
    if centers:
        where += " AND center IN (SELECT unnest(?))"
        params.append(list(centers))
    rows = con.execute(
        f"""
        SELECT measure, group_id, {center_col} AS center,
               count(*) FILTER (WHERE initial_population),
               count(*) FILTER (WHERE denominator),
               count(*) FILTER (WHERE denominator_exclusion),
               count(*) FILTER (WHERE denominator_exception),
               count(*) FILTER (WHERE numerator),
               count(*) FILTER (WHERE numerator_exclusion)
        FROM {RESULTS_TABLE} WHERE {where}
        GROUP BY ALL ORDER BY measure, group_id, center
        """,
        params,
    ).fetchall()
    return [Summary(r[0], cms.get(r[0], r[0]), r[1], r[2], *map(int, r[3:])) for r in rows]
