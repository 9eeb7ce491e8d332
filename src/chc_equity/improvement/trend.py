"""One measure's series as it leaves the system: rows of ``measure_series``, suppressed, and its chart.

:func:`published_series` reads one measure x center (or the network) x stratum over the periods of a
series (a period with no subject is a point with zero counts, never a missing row) and hides every
point that would disclose a small cell (:func:`hidden_points`), and every point that would let one be
rebuilt from the other published series of the same period (:func:`planned_hidden`: the network point
minus the centers' points, a center minus its strata, or the same period's web overview cells);
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

from chc_equity.equity.joint import Partition, plan_group
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
_CENTERS = "center"  # partition name of the split of the network into centers


def _plan(totals: tuple[int, int], parts: dict[str, list[tuple[str, int, int]]], threshold: int):
    """One joint plan over the partitions of a total: (total hidden, {(partition, label) hidden}), or
    None. Partitions that do not add up to ``totals`` (e.g. only some centers stored) are left out:
    they are not splits of that total."""
    ok = {
        name: Partition.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        for name, rows in parts.items()
        if rows and (sum(r[1] for r in rows), sum(r[2] for r in rows)) == totals
    }
    if not ok:
        return None
    plan = plan_group(ok, threshold)
    total_hidden = bool(plan.network.met[0] | plan.network.not_met[0] | plan.network.denominator[0])
    hidden = set()
    for name, p in ok.items():
        h = plan.partitions[name]
        hidden |= {(name, p.labels[i]) for i in np.flatnonzero(h.met | h.not_met | h.denominator)}
    return total_hidden, hidden


def planned_hidden(
    con: duckdb.DuckDBPyConnection,
    module: MeasureModule,
    periods: Sequence[Period],
    threshold: int = DEFAULT_THRESHOLD,
) -> set[PointKey]:
    """Points of every stored series of ``module`` over ``periods`` that must be hidden so that no
    small cell can be rebuilt by combining the series files (and the web pages) of one period.

    Per group and period, one joint plan (:func:`chc_equity.equity.joint.plan_group`, the plan the web
    overview uses) over the network point, the centers' points and the network's strata of every
    stored dimension; then, per center, one over its strata with its own point as the total (all of a
    center's strata are hidden when its own point is). Deterministic in the stored counts, so every
    file of a period hides the same points whichever scope it was asked for. Points hidden by the
    precomputed web plan of the same period (``agg_suppression``, ``agg_equity``) are hidden too: a
    point shown here and hidden there would undo that plan's complements.
    """
    m = module.measure
    wanted = {(p.start, p.end) for p in periods}
    rows = con.execute(
        f"""SELECT group_id, period_start, period_end, center, stratum_dimension, stratum, numerator,
                   performance_denominator
            FROM {SERIES_TABLE} WHERE measure = ?""",
        [m.name],
    ).fetchall()
    by_period: dict[tuple[str, date, date], list] = defaultdict(list)
    for g, start, end, *rest in rows:
        if (start, end) in wanted:
            by_period[(g, start, end)].append(tuple(rest))
    out: set[PointKey] = set()
    for (g, start, end), points in by_period.items():
        own = {c: (int(x), int(d)) for c, dim, _s, x, d in points if dim is None}
        strata: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for c, dim, st, x, d in points:
            if dim is not None:
                strata[c][dim].append((st, int(x), int(d)))
        hidden_centers: set[str] = set()
        if NETWORK in own:
            parts = {_CENTERS: [(c, *own[c]) for c in sorted(own) if c != NETWORK], **strata.get(NETWORK, {})}
            planned = _plan(own[NETWORK], parts, threshold)
            if planned is not None:
                total_hidden, hidden = planned
                if total_hidden:
                    hidden_centers.add(NETWORK)
                hidden_centers |= {label for name, label in hidden if name == _CENTERS}
                out |= {(g, start, end, NETWORK, name, lab) for name, lab in hidden if name != _CENTERS}
        for c, dims in strata.items():
            if c in hidden_centers:  # a hidden total: none of its strata is shown
                out |= {(g, start, end, c, dim, r[0]) for dim, rs in dims.items() for r in rs}
                continue
            if c == NETWORK or c not in own:
                continue
            planned = _plan(own[c], dict(dims), threshold)
            if planned is not None:
                out |= {(g, start, end, c, name, lab) for name, lab in planned[1]}
        out |= {(g, start, end, c, None, None) for c in hidden_centers}
    return out | _overview_hidden(con, m.name, wanted)


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
