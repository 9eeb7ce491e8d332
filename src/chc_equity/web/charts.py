"""Vega-Lite specs built server-side as plain dicts, embedded in pages as JSON.

Plain dicts (not Altair) because the specs are small and fixed, and a dict is exactly what the page
embeds; the vendored vega-embed renders them with Vega's expression *interpreter* (CSP without
'unsafe-eval'). Every chart has an HTML table next to it with the same numbers (accessibility, print,
tests). Only values the user may see are put into a spec: callers pass already scoped/suppressed rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chc_equity.equity.palette import REFERENCE, ROLE_COLORS, ROLES, role_of
from chc_equity.web.analytics import Cell, EquityStratum, FunnelPoint

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
Spec = dict[str, Any]


def _base(width: int | str = "container", height: int = 320) -> Spec:
    """Common settings. ``aria: false``: the marks stay out of the accessibility tree -- every chart has a
    data table next to it and a sentence under it, which screen readers read instead of 200 points."""
    return {
        "$schema": SCHEMA,
        "width": width,
        "height": height,
        "config": {"view": {"stroke": None}, "aria": False},
    }


def heatmap(cells: Sequence[Cell], centers: Sequence[str], keys: Sequence[str]) -> Spec:
    """Centers x measure groups, colored by performance (rate, or 1 - rate for inverse measures).

    A triangle marks a center worse than the network: outside the 95 % funnel on the bad side, the one
    rule of :func:`chc_equity.equity.significance.network_comparison` (see network.stats).
    """
    values = [
        {
            "center": "Network" if c.is_network else c.center,
            "measure": c.key,
            "title": c.title,
            "rate": c.rate,
            "performance": None if c.rate is None else (1 - c.rate if c.inverse else c.rate),
            "ci": None if c.ci_low is None else f"{c.ci_low:.1%} to {c.ci_high:.1%}",
            "denominator": c.performance_denominator,
            "signal": c.signal or "",
            "direction": "lower is better" if c.inverse else "higher is better",
        }
        for c in cells
    ]
    tooltip = [
        {"field": "center", "title": "Center"},
        {"field": "measure", "title": "Measure"},
        {"field": "title", "title": "Title"},
        {"field": "rate", "title": "Rate", "format": ".1%"},
        {"field": "ci", "title": "95% CI"},
        {"field": "denominator", "title": "Denominator"},
        {"field": "signal", "title": "vs network"},
        {"field": "direction", "title": "Direction"},
    ]
    y_sort = ["Network", *centers]
    enc_x = {
        "field": "measure",
        "type": "nominal",
        "sort": list(keys),
        "title": None,
        "axis": {"labelAngle": -45},
    }
    enc_y = {"field": "center", "type": "nominal", "sort": y_sort, "title": None}
    return {
        **_base(height=max(120, 28 * len(y_sort))),
        "data": {"values": values},
        "layer": [
            {
                "mark": {"type": "rect", "stroke": "white"},
                "encoding": {
                    "x": enc_x,
                    "y": enc_y,
                    "color": {
                        "field": "performance",
                        "type": "quantitative",
                        "scale": {"scheme": "blues", "domain": [0, 1]},
                        "legend": {"title": "Performance", "format": ".0%"},
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "transform": [{"filter": "datum.signal == 'worse'"}],
                "mark": {"type": "text", "text": "\u25bc", "color": "#a8231b", "fontSize": 13},
                "encoding": {"x": enc_x, "y": enc_y, "tooltip": tooltip},
            },
        ],
    }


def funnel(cells: Sequence[Cell], limits: Sequence[FunnelPoint], title: str) -> Spec:
    """Funnel plot: each center's rate against its denominator, with 95 % and 99.8 % limits."""
    lines = [
        {"n": p.n, "limit": name, "value": value}
        for p in limits
        for name, value in (
            ("network", p.network_rate),
            ("95% lower", p.lo95),
            ("95% upper", p.hi95),
            ("99.8% lower", p.lo998),
            ("99.8% upper", p.hi998),
        )
    ]
    points = [
        {"center": c.center, "n": c.performance_denominator, "rate": c.rate, "signal": c.signal or ""}
        for c in cells
        if c.rate is not None and c.performance_denominator
    ]
    x = {"field": "n", "type": "quantitative", "title": "Denominator (patients)"}
    return {
        **_base(),
        "title": title,
        "layer": [
            {
                "data": {"values": lines},
                "mark": {"type": "line", "strokeWidth": 1.5},
                "encoding": {
                    "x": x,
                    "y": {
                        "field": "value",
                        "type": "quantitative",
                        "title": "Rate",
                        "axis": {"format": ".0%"},
                    },
                    "detail": {"field": "limit"},
                    "strokeDash": {
                        "field": "limit",
                        "type": "nominal",
                        "scale": {
                            "domain": ["network", "95% lower", "95% upper", "99.8% lower", "99.8% upper"],
                            "range": [[1, 0], [4, 2], [4, 2], [1, 3], [1, 3]],
                        },
                        "legend": {"title": "Limits"},
                    },
                    "color": {"value": "#5b6475"},
                },
            },
            {
                "data": {"values": points},
                "mark": {"type": "point", "filled": True, "size": 70},
                "encoding": {
                    "x": x,
                    "y": {"field": "rate", "type": "quantitative"},
                    "color": {
                        "field": "signal",
                        "type": "nominal",
                        "scale": {
                            "domain": ["worse", "better", "as expected"],
                            "range": ["#a8231b", "#1f7a3a", "#1f5fae"],
                        },
                        "legend": {"title": "vs network"},
                    },
                    "tooltip": [
                        {"field": "center", "title": "Center"},
                        {"field": "n", "title": "Denominator"},
                        {"field": "rate", "title": "Rate", "format": ".1%"},
                        {"field": "signal", "title": "vs network"},
                    ],
                },
            },
        ],
    }


def trend(cells: Sequence[Cell]) -> Spec:
    """Rate by period for the network and each visible center."""
    values = [
        {
            "period": c.period_end.isoformat(),
            "center": "Network" if c.is_network else c.center,
            "rate": c.rate,
            "group": c.group_id,
        }
        for c in cells
        if c.rate is not None
    ]
    return {
        **_base(height=240),
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "period", "type": "ordinal", "title": "Period ending"},
            "y": {"field": "rate", "type": "quantitative", "title": "Rate", "axis": {"format": ".0%"}},
            "color": {"field": "center", "type": "nominal", "title": "Center"},
            "strokeDash": {"field": "group", "type": "nominal", "title": "Group"},
            "tooltip": [
                {"field": "center"},
                {"field": "group"},
                {"field": "period"},
                {"field": "rate", "format": ".1%"},
            ],
        },
    }


def forest(strata: Sequence[EquityStratum], *, inverse: bool = False, description: str | None = None) -> Spec:
    """Forest plot: each stratum's rate with its 95 % interval, one row per dimension: stratum.

    A dark tick on every row marks its reference group's rate (the comparison line), the x axis says
    whether lower or higher is better, and colours follow :mod:`chc_equity.equity.palette` (the report's).
    Suppressed strata are not drawn (the table under the chart lists them, labelled); the legend keeps
    the "suppressed" entry so the colour key is the same on every chart.
    """
    refs = {(s.group_id, s.dimension): s.rate for s in strata if s.is_reference and s.rate is not None}
    values = []
    for s in strata:
        if s.rate is None:  # suppressed: in the table (labelled), not drawn at a made-up position
            continue
        values.append(
            {
                "row": f"{s.dimension_label}: {s.stratum}",
                "rate": s.rate,
                "low": s.ci_low,
                "high": s.ci_high,
                "reference": refs.get((s.group_id, s.dimension)),
                "kind": role_of(
                    is_reference=s.is_reference, worse=s.worse, better=None, suppressed=s.suppressed
                ),
            }
        )
    y = {"field": "row", "type": "nominal", "title": None, "sort": None, "axis": {"labelLimit": 320}}
    better = "lower is better" if inverse else "higher is better"
    spec = {
        **_base(height=max(120, 18 * len(values))),
        "data": {"values": values},
        "layer": [
            {
                "mark": {"type": "rule"},
                "encoding": {
                    "y": y,
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "title": f"Rate with 95% interval ({better}); dark tick: the reference group's rate",
                        "axis": {"format": ".0%"},
                    },
                    "x2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "tick", "color": ROLE_COLORS[REFERENCE], "thickness": 2, "opacity": 0.6},
                "encoding": {"y": y, "x": {"field": "reference", "type": "quantitative"}},
            },
            {
                "mark": {"type": "point", "filled": True, "size": 60},
                "encoding": {
                    "y": y,
                    "x": {"field": "rate", "type": "quantitative"},
                    "color": {
                        "field": "kind",
                        "type": "nominal",
                        "scale": {"domain": list(ROLES), "range": [ROLE_COLORS[r] for r in ROLES]},
                        "legend": {"title": "vs reference (q < 0.05)"},
                    },
                    "tooltip": [{"field": "row"}, {"field": "rate", "format": ".1%"}, {"field": "kind"}],
                },
            },
        ],
    }
    if description:
        spec["description"] = description
    return spec
