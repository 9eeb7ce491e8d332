"""One measure's series as it leaves the system: rows of ``measure_series``, suppressed, and its chart.

:func:`published_series` reads one measure x center (or the network) x stratum over the periods of a
series (a period with no subject is a point with zero counts, never a missing row) and hides every
point that would disclose a small cell (:func:`hidden_points`); :func:`trend_chart` draws the rest as
a run chart or a p-chart with the rules of :mod:`chc_equity.improvement.runs` / ``spc``. A hidden
point is a gap in the chart and blank cells in the CSV; it never takes part in a median or a p-bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

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
