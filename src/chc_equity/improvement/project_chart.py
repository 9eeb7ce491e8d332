"""A project's chart: its measure's series (table ``measure_series``), the rules, and its PDSA cycles.

What a project page shows: the measure of one of its links (center, optionally a stratum) over the
periods of the project's series kind that ``measure_series`` holds, suppressed as every published
series is (:func:`chc_equity.improvement.trend.published_series`), as a run chart (Anhøj and IHI
rules) or a p-chart. The project's cycles become the chart's context:

* each PDSA cycle is an annotation at the first point whose period ends on or after the cycle began;
* a cycle marked ``new_phase`` (a change adopted for good) starts a new phase at the first point whose
  period ends after the cycle ended: centre line and limits are recomputed from there;
* ``baseline_end`` freezes phase 0's centre (and limits) on the points ending on or before it, so the
  months after the change are judged against the time before it (docs/improvement.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import duckdb
import numpy as np

from chc_equity.improvement.charts import Annotation, frame, spc_chart
from chc_equity.improvement.runs import RunChart, run_chart
from chc_equity.improvement.sdoh_trend import published_sdoh_series, sdoh_periods_in
from chc_equity.improvement.spc import ControlChart, p_chart
from chc_equity.improvement.trend import published_series
from chc_equity.measures.registry import find
from chc_equity.measures.series import SERIES_TABLE
from chc_equity.measures.vocabulary import Period
from chc_equity.sdoh import series as sdoh_series

ChartKind = Literal["run", "p"]
_LENGTH = {"rolling12": 12, "month": 1, "quarter": 3}


@dataclass(frozen=True)
class CycleMark:
    """What the chart needs of a PDSA cycle."""

    label: str
    started_on: date
    ended_on: date | None
    new_phase: bool


@dataclass(frozen=True)
class ProjectChart:
    title: str
    chart: RunChart | ControlChart
    spec: dict[str, Any]
    points: list[dict[str, Any]]  # period, rate (None: suppressed), centre, phase, signal rules
    signals: list[str]  # the signals in words
    suppressed: int


def _months(p: Period) -> int:
    return (p.end.year - p.start.year) * 12 + p.end.month - p.start.month + 1


def series_periods_in(
    con: duckdb.DuckDBPyConnection, measure_name: str, center: str, dimension: str | None, kind: str
) -> list[Period]:
    """The periods of ``kind`` the series table holds for this measure and center (oldest first)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [SERIES_TABLE]
    ).fetchone()[0]
    if not exists:
        return []
    rows = con.execute(
        f"""SELECT DISTINCT period_start, period_end FROM {SERIES_TABLE}
            WHERE measure = ? AND center = ? AND stratum_dimension IS NOT DISTINCT FROM ?
            ORDER BY period_end""",
        [measure_name, center, dimension],
    ).fetchall()
    return [p for p in (Period(s, e) for s, e in rows) if _of_kind(p, kind)]


def _of_kind(p: Period, kind: str) -> bool:
    """Whether ``p`` is a period of the series kind: 12, 1 or 3 months (a calendar quarter)."""
    return _months(p) == _LENGTH[kind] and (kind != "quarter" or p.start.month % 3 == 1)


def first_point_on_or_after(periods: Sequence[Period], day: date) -> int | None:
    return next((i for i, p in enumerate(periods) if p.end >= day), None)


def project_chart(
    con: duckdb.DuckDBPyConnection,
    cms: str,
    center: str,
    *,
    kind: str = "rolling12",
    dimension: str | None = None,
    stratum: str | None = None,
    cycles: Sequence[CycleMark] = (),
    baseline_end: date | None = None,
    chart: ChartKind = "run",
) -> ProjectChart | None:
    """The chart of ``cms`` at ``center`` (a stratum when given), or None when the series table has
    no point of that kind for it yet. ``cms`` is a CMS id (``measure_series``) or a social-needs metric
    ``sdoh:<metric>[:<domain>]`` (``sdoh_series``)."""
    if sdoh_series.is_key(cms):  # a social-needs metric (sdoh_series), e.g. sdoh:closure:food
        metric, domain = sdoh_series.parse_key(cms)
        stored = sdoh_periods_in(con, metric, domain, center, dimension)
        periods = [p for p in stored if _of_kind(p, kind)]
        if not periods:
            return None
        rows = published_sdoh_series(
            con, metric, domain, periods, center=center, dimension=dimension, stratum=stratum
        )
        rows = rows.rename(columns={"denominator": "performance_denominator"})
        what = f"Social needs: {metric.replace('_', ' ')}" + ("" if domain == "any" else f" ({domain})")
        hib = sdoh_series.HIGHER_IS_BETTER[metric]
    else:
        (module,) = find([cms])
        m = module.measure
        periods = series_periods_in(con, m.name, center, dimension, kind)
        if not periods:
            return None
        df = published_series(con, module, periods, center=center, dimension=dimension, stratum=stratum)
        rows = df[df["group_id"] == m.groups[0].id].reset_index(drop=True)
        what, hib = f"{m.cms_id} {m.title}", not m.inverse
    labels = list(rows["label"])
    phase_starts = sorted(
        {
            i
            for c in cycles
            if c.new_phase and c.ended_on is not None
            for i in [next((k for k, p in enumerate(periods) if p.end > c.ended_on), None)]
            if i is not None and i > 0
        }
    )
    baseline = None
    if baseline_end is not None:
        n = sum(1 for p in periods if p.end <= baseline_end)
        first_phase_end = phase_starts[0] if phase_starts else len(periods)
        baseline = n if 2 <= n < first_phase_end else None
    computed: RunChart | ControlChart
    if chart == "p":
        num = rows["numerator"].fillna(0).astype(float).to_numpy()
        den = rows["performance_denominator"].fillna(0).astype(float).to_numpy()
        computed = p_chart(
            num, den, labels=labels, phase_starts=phase_starts, baseline=baseline, higher_is_better=hib
        )
    else:
        computed = run_chart(
            rows["rate"].astype(float).to_numpy(),
            labels=labels,
            phase_starts=phase_starts,
            baseline=baseline,
            higher_is_better=hib,
        )
    notes = []
    for c in cycles:
        i = first_point_on_or_after(periods, c.started_on)
        if i is not None:
            notes.append(Annotation(i, c.label))
    who = center if dimension is None else f"{center}, {stratum}"
    title = f"{what} -- {who}"
    spec = spc_chart(computed, title, annotations=notes, y_title="rate").to_dict()
    spec["width"] = "container"
    table = frame(computed)
    points = [
        {
            "period": r.period,
            "rate": None if np.isnan(r.value) else float(r.value),
            "centre": None if np.isnan(r.centre) else float(r.centre),
            "phase": int(r.phase) + 1,
            "rules": r.rules,
        }
        for r in table.itertuples()
    ]
    words = [s.description for s in computed.signals]
    return ProjectChart(title, computed, spec, points, words, int(rows["suppressed"].sum()))
