"""A social-needs metric's series as it leaves the system: rows of ``sdoh_series``, suppressed.

The counterpart of :func:`chc_equity.improvement.trend.published_series` for the metrics of
:mod:`chc_equity.sdoh.series`: one metric x domain x center (or the network) x stratum over the periods
of a series, a period without a row a point with zero counts, and hidden where a small cell would be
disclosed (:func:`~chc_equity.improvement.trend.hidden_points`) or could be rebuilt from the other
series files of the same period (the same crossed plan over network, centers, network strata and
center strata, :func:`~chc_equity.improvement.trend.plan_series_points`). The strata the social-needs
page and files hid for the period they were built for (table ``sdoh_equity``) enter that plan as
already hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.improvement.trend import PointKey, hidden_points, period_label, plan_series_points
from chc_equity.measures.vocabulary import Period
from chc_equity.sdoh.metrics import METRICS, NETWORK
from chc_equity.sdoh.series import TABLE, key
from chc_equity.sdoh.strata import TABLE as EQUITY

COLUMNS = (
    "metric",
    "domain",
    "key",
    "center",
    "period_start",
    "period_end",
    "label",
    "stratum_dimension",
    "stratum",
    "numerator",
    "denominator",
    "rate",
    "suppressed",
)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }


def _page_hidden(con: duckdb.DuckDBPyConnection, metric: str, domain: str, wanted: set) -> set[PointKey]:
    """Strata the social-needs equity table hides, for the period the sdoh tables were built for."""
    tables = _tables(con)
    if EQUITY not in tables or METRICS not in tables:
        return set()
    period = con.execute(f"SELECT any_value(period_start), any_value(period_end) FROM {METRICS}").fetchone()
    if period is None or tuple(period) not in wanted:
        return set()
    rows = con.execute(
        f"""SELECT center, dimension, stratum FROM {EQUITY}
            WHERE metric = ? AND domain = ? AND (numerator IS NULL OR denominator IS NULL)""",
        [metric, domain],
    ).fetchall()
    return {(domain, period[0], period[1], c, d, s) for c, d, s in rows}


def planned_sdoh_hidden(
    con: duckdb.DuckDBPyConnection,
    metric: str,
    domain: str,
    periods: Sequence[Period],
    threshold: int = DEFAULT_THRESHOLD,
) -> set[PointKey]:
    """Points of every stored series of ``metric`` x ``domain`` over ``periods`` to hide (the group key
    of a point is the domain)."""
    wanted = {(p.start, p.end) for p in periods}
    rows = con.execute(
        f"""SELECT domain, period_start, period_end, center, stratum_dimension, stratum, numerator,
                   denominator
            FROM {TABLE}
            WHERE metric = ? AND domain = ? AND numerator IS NOT NULL AND denominator IS NOT NULL""",
        [metric, domain],
    ).fetchall()
    return plan_series_points(rows, wanted, _page_hidden(con, metric, domain, wanted), threshold)


def sdoh_periods_in(
    con: duckdb.DuckDBPyConnection, metric: str, domain: str, center: str, dimension: str | None
) -> list[Period]:
    """The periods the series table holds for this metric, domain and center (oldest first)."""
    if TABLE not in _tables(con):
        return []
    rows = con.execute(
        f"""SELECT DISTINCT period_start, period_end FROM {TABLE}
            WHERE metric = ? AND domain = ? AND center = ? AND stratum_dimension IS NOT DISTINCT FROM ?
            ORDER BY period_end, period_start""",
        [metric, domain, center, dimension],
    ).fetchall()
    return [Period(s, e) for s, e in rows]


def published_sdoh_series(
    con: duckdb.DuckDBPyConnection,
    metric: str,
    domain: str,
    periods: Sequence[Period],
    *,
    center: str | None = None,
    dimension: str | None = None,
    stratum: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """``metric`` x ``domain`` over ``periods`` for ``center`` (None: the network) and the stratum (both
    None: all patients), one row per period in period order, small cells blanked."""
    where = center or NETWORK
    rows = con.execute(
        f"""SELECT period_start, period_end, numerator, denominator FROM {TABLE}
            WHERE metric = ? AND domain = ? AND center = ? AND stratum_dimension IS NOT DISTINCT FROM ?
              AND stratum IS NOT DISTINCT FROM ?""",
        [metric, domain, where, dimension, stratum],
    ).fetchall()
    found: dict[tuple[date, date], tuple[int, int]] = {(s, e): (n or 0, d or 0) for s, e, n, d in rows}
    records = []
    for p in periods:
        num, den = found.get((p.start, p.end), (0, 0))
        records.append(
            {
                "metric": metric,
                "domain": domain,
                "key": key(metric, domain),
                "center": where,
                "period_start": p.start,
                "period_end": p.end,
                "label": period_label(p),
                "stratum_dimension": dimension,
                "stratum": stratum,
                "numerator": num,
                "denominator": den,
            }
        )
    df = pd.DataFrame.from_records(records, columns=COLUMNS[:-2])
    hidden = hidden_points(df["numerator"].to_numpy(), df["denominator"].to_numpy(), threshold)
    planned = planned_sdoh_hidden(con, metric, domain, periods, threshold)
    hidden |= np.array(
        [
            (domain, r.period_start, r.period_end, where, dimension, stratum) in planned
            for r in df.itertuples()
        ],
        dtype=bool,
    )
    df["rate"] = (df["numerator"] / df["denominator"].where(df["denominator"] > 0)).where(~hidden)
    df["numerator"] = df["numerator"].astype("Int64").mask(hidden)
    df["denominator"] = df["denominator"].astype("Int64").mask(hidden)
    df["suppressed"] = hidden
    return df
