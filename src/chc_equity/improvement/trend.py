"""One measure's series as it leaves the system: rows of ``measure_series``, suppressed, and its chart.

:func:`published_series` reads one measure x center (or the network) x stratum over the periods of a
series (a period with no subject is a point with zero counts, never a missing row) and hides every
point that would disclose a small cell (:func:`hidden_points`), and every point that would let one be
rebuilt from the other published series of the same period (:func:`planned_hidden`: the network point
minus the centers' points, a center minus its strata, the network's stratum minus the other centers'
same stratum, or the same period's web overview cells);
:func:`trend_chart` draws the rest as
a run chart or a p-chart with the rules of :mod:`chc_equity.improvement.runs` / ``spc``. A hidden
point is a gap in the chart and blank cells in the CSV; it never takes part in a median or a p-bar.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from chc_equity.equity.joint import plan_crossed
from chc_equity.equity.suppression import DEFAULT_THRESHOLD, primary_mask
from chc_equity.improvement.runs import RunChart, run_chart
from chc_equity.improvement.spc import ControlChart, p_chart
from chc_equity.measures.engine import MeasureModule
from chc_equity.measures.series import NETWORK, SERIES_TABLE
from chc_equity.measures.vocabulary import Period

ChartKind = Literal["run", "p"]
COLUMNS = (
    "measure",
    "measure_name",
    "group_id",
    "center",
    "period_start",
    "period_end",
    "label",
    "stratum_dimension",
    "stratum",
    "numerator",
    "performance_denominator",
    "rate",
    "suppressed",
)


def period_label(p: Period) -> str:
    """Short label of a period by its last month: ``Dec 2026``; a calendar quarter: ``2026 Q4``."""
    months = (p.end.year - p.start.year) * 12 + p.end.month - p.start.month + 1
    if months == 3 and p.start.month % 3 == 1:
        return f"{p.end.year} Q{(p.end.month - 1) // 3 + 1}"
    return p.end.strftime("%b %Y")


def hidden_points(
    numerator: np.ndarray, denominator: np.ndarray, threshold: int = DEFAULT_THRESHOLD
) -> np.ndarray:
    """Points that must not leave the system: a performance denominator under ``threshold`` (a rate of
    a handful of people), or a numerator or a "not met" count from 1 to ``threshold - 1`` (the CMS
    cell-size rule of :mod:`chc_equity.equity.suppression`, applied to met and not met as the equity
    tables do)."""
    num, den = np.asarray(numerator), np.asarray(denominator)
    return (den < threshold) | primary_mask(num, threshold) | primary_mask(den - num, threshold)


# A point of a series: (group_id, period_start, period_end, center, stratum_dimension, stratum).
PointKey = tuple[str, date, date, str, str | None, str | None]


def planned_hidden(
    con: duckdb.DuckDBPyConnection,
    module: MeasureModule,
    periods: Sequence[Period],
    threshold: int = DEFAULT_THRESHOLD,
) -> set[PointKey]:
    """Points of every stored series of ``module`` over ``periods`` that must be hidden so that no
    small cell can be rebuilt by combining the series files (and the web pages) of one period.

    Per group and period, one crossed plan (:func:`chc_equity.equity.joint.plan_crossed`) over the
    network point, the centers' points, the network's strata and every center's strata of every stored
    dimension: a center's stratum is tied both to its center (the center's strata add up to it) and to
    the network's stratum (the centers' same strata add up to it), so a cell hidden in one file cannot
    be rebuilt from the others. Points hidden by the precomputed web plan of the same period
    (``agg_suppression``, ``agg_equity``) enter the plan as already hidden, so its complements protect
    them too. Deterministic in the stored counts: every file of a period hides the same points
    whichever scope it was asked for.
    """
    m = module.measure
    wanted = {(p.start, p.end) for p in periods}
    rows = con.execute(
        f"""SELECT group_id, period_start, period_end, center, stratum_dimension, stratum, numerator,
                   performance_denominator
            FROM {SERIES_TABLE} WHERE measure = ?""",
        [m.name],
    ).fetchall()
    return plan_series_points(rows, wanted, _overview_hidden(con, m.name, wanted), threshold)


def plan_series_points(
    rows: Sequence[tuple], wanted: set[tuple[date, date]], before: set[PointKey], threshold: int
) -> set[PointKey]:
    """The crossed plan of :func:`planned_hidden` for stored rows ``(group, start, end, center,
    dimension, stratum, met, denominator)``, per group and period in ``wanted``; ``before``: points
    hidden by another publication (kept hidden, and protected). Returns the hidden points, ``before``
    included."""
    by_period: dict[tuple[str, date, date], dict] = defaultdict(dict)
    for g, start, end, c, dim, st, x, d in rows:
        if (start, end) in wanted:
            by_period[(g, start, end)][(c, dim, st)] = (int(x), int(d))
    out: set[PointKey] = set(before)
    for (g, start, end), points in by_period.items():
        already = {(c, dim, st) for (gg, s, e, c, dim, st) in before if (gg, s, e) == (g, start, end)}
        hidden = plan_crossed(points, NETWORK, threshold, hidden_before=already)
        out |= {(g, start, end, *k) for k in hidden}
    return out


def _overview_hidden(con: duckdb.DuckDBPyConnection, measure: str, wanted: set) -> set[PointKey]:
    """Points the precomputed web plan hides for the same periods (nothing when it has not run)."""
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    out: set[PointKey] = set()
    if "agg_suppression" in tables:
        for g, start, end, c in con.execute(
            """SELECT group_id, period_start, period_end, center FROM agg_suppression
               WHERE measure = ? AND (numerator_hidden OR not_met_hidden OR denominator_hidden)""",
            [measure],
        ).fetchall():
            if (start, end) in wanted:
                out.add((g, start, end, c, None, None))
    if "agg_equity" in tables:
        for g, start, end, c, dim, st in con.execute(
            """SELECT group_id, period_start, period_end, center, dimension, stratum FROM agg_equity
               WHERE measure = ? AND (numerator IS NULL OR denominator IS NULL)""",
            [measure],
        ).fetchall():
            if (start, end) in wanted:
                out.add((g, start, end, c, dim, st))
    return out


def published_series(
    con: duckdb.DuckDBPyConnection,
    module: MeasureModule,
    periods: Sequence[Period],
    *,
    center: str | None = None,
    dimension: str | None = None,
    stratum: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """Every group of ``module`` over ``periods`` for ``center`` (None: the network) and the stratum
    (both None: all patients), one row per group x period in period order, small cells blanked."""
    m = module.measure
    rows = con.execute(
        f"""
        SELECT group_id, period_start, period_end, numerator, performance_denominator
        FROM {SERIES_TABLE}
        WHERE measure = ? AND center = ? AND stratum_dimension IS NOT DISTINCT FROM ?
          AND stratum IS NOT DISTINCT FROM ?
        """,
        [m.name, center or NETWORK, dimension, stratum],
    ).fetchall()
    found = {(g, s, e): (n, d) for g, s, e, n, d in rows}
    records = []
    for group in m.groups:
        for p in periods:
            num, den = found.get((group.id, p.start, p.end), (0, 0))
            records.append(
                {
                    "measure": m.cms_id,
                    "measure_name": m.name,
                    "group_id": group.id,
                    "center": center or NETWORK,
                    "period_start": p.start,
                    "period_end": p.end,
                    "label": period_label(p),
                    "stratum_dimension": dimension,
                    "stratum": stratum,
                    "numerator": num,
                    "performance_denominator": den,
                }
            )
    df = pd.DataFrame.from_records(records, columns=COLUMNS[:-2])
    hidden = hidden_points(df["numerator"].to_numpy(), df["performance_denominator"].to_numpy(), threshold)
    planned = planned_hidden(con, module, periods, threshold)
    scope = (center or NETWORK, dimension, stratum)
    hidden |= np.array(
        [(r.group_id, r.period_start, r.period_end, *scope) in planned for r in df.itertuples()], dtype=bool
    )
    df["rate"] = (
        df["numerator"] / df["performance_denominator"].where(df["performance_denominator"] > 0)
    ).where(~hidden)
    df["numerator"] = df["numerator"].astype("Int64").mask(hidden)
    df["performance_denominator"] = df["performance_denominator"].astype("Int64").mask(hidden)
    df["suppressed"] = hidden
    return df


def trend_chart(
    group_rows: pd.DataFrame, kind: ChartKind, *, higher_is_better: bool
) -> RunChart | ControlChart:
    """The run chart (rates; hidden points skipped) or p-chart (hidden points have no limits and do not
    enter p-bar) of one group's published rows."""
    labels = list(group_rows["label"])
    if kind == "run":
        return run_chart(
            group_rows["rate"].astype(float).to_numpy(), labels=labels, higher_is_better=higher_is_better
        )
    if kind == "p":
        num = group_rows["numerator"].fillna(0).astype(float).to_numpy()
        den = group_rows["performance_denominator"].fillna(0).astype(float).to_numpy()
        return p_chart(num, den, labels=labels, higher_is_better=higher_is_better)
    raise ValueError(f"unknown chart kind {kind!r}; use run or p")
