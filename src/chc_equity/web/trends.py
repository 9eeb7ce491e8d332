"""A measure's trend on the measure pages, from the measure series (table ``measure_series``).

The precomputed periods (``agg_measure``) are usually one or two calendar years; a trend worth reading
needs a point a month. When ``chc-equity series`` has stored the measure's series (rolling 12-month
periods ending each month, or calendar months / quarters), the pages show it instead: every group of the
measure, for the network or one center, suppressed exactly as every published series is
(:func:`chc_equity.improvement.trend.published_series`: a hidden point is a gap, never a number). Only
rates leave this module: no counts, so a center-bound user learns nothing of the network but its rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from chc_equity.improvement.project_chart import series_periods_in
from chc_equity.improvement.trend import published_series
from chc_equity.measures.registry import find
from chc_equity.measures.series import KINDS, NETWORK

KIND_LABELS = {"rolling12": "rolling 12 months", "month": "calendar months", "quarter": "calendar quarters"}


@dataclass(frozen=True, slots=True)
class TrendPoint:
    group_id: str
    label: str
    period_end: str
    rate: float | None  # None: suppressed (a small number) or no subject


@dataclass(frozen=True, slots=True)
class SeriesTrend:
    scope: str  # "Network" or the center id
    kind: str
    points: list[TrendPoint]

    @property
    def periods(self) -> int:
        return len({p.period_end for p in self.points})

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


def series_trend(con: duckdb.DuckDBPyConnection, cms_id: str, center: str | None) -> SeriesTrend | None:
    """The stored series of ``cms_id`` for ``center`` (None: the network), of the kind with the most
    periods; None when the series table holds none for it."""
    try:
        (module,) = find([cms_id])
    except KeyError:
        return None
    scope = center or NETWORK
    best: tuple[str, list] | None = None
    for kind in KINDS:
        periods = series_periods_in(con, module.measure.name, scope, None, kind)
        if periods and (best is None or len(periods) > len(best[1])):
            best = (kind, periods)
    if best is None:
        return None
    kind, periods = best
    df = published_series(con, module, periods, center=center)
    points = [
        TrendPoint(
            r.group_id,
            r.label,
            r.period_end.isoformat(),
            None if r.suppressed or r.rate != r.rate else float(r.rate),  # NaN: no subject
        )
        for r in df.itertuples()
    ]
    return SeriesTrend("Network" if center is None else center, kind, points)


def series_spec(trend: SeriesTrend, group_titles: dict[str, str]) -> dict[str, Any]:
    """Vega-Lite line chart of the series, one line per group (gaps where a point is hidden)."""
    values = [
        {
            "period": p.period_end,
            "label": p.label,
            "rate": p.rate,
            "group": group_titles.get(p.group_id) or p.group_id.replace("_", " "),
        }
        for p in trend.points
    ]
    order = list(dict.fromkeys(p.label for p in sorted(trend.points, key=lambda p: p.period_end)))
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": "container",
        "height": 240,
        "config": {"view": {"stroke": None}},
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "label", "type": "ordinal", "sort": order, "title": "Period ending"},
            "y": {"field": "rate", "type": "quantitative", "title": "Rate", "axis": {"format": ".0%"}},
            "color": {"field": "group", "type": "nominal", "title": "Group"},
            "tooltip": [
                {"field": "group"},
                {"field": "label", "title": "Period"},
                {"field": "rate", "format": ".1%"},
            ],
        },
    }
