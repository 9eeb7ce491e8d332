"""Run and control charts as Vega-Lite (Altair): the series, its centre line and limits per phase,
the points of every signal highlighted, phase breaks and annotations (change ideas, PDSA cycles).

The chart only draws what ``runs.run_chart`` / ``spc.*_chart`` computed: the rules live there, once.
Each point carries the words of the signals it belongs to in its tooltip. PNG/SVG/HTML export goes
through ``equity.charts.save_chart`` (vl-convert, no browser).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from chc_equity.improvement.runs import RunChart
from chc_equity.improvement.spc import ControlChart


@dataclass(frozen=True)
class Annotation:
    """A dated note on the chart: a change idea, a PDSA cycle. ``point`` is the 0-based position."""

    point: int
    text: str


def frame(chart: RunChart | ControlChart) -> pd.DataFrame:
    """One row per point: label, value, centre, limits (control charts), phase, signal rules/words."""
    n = chart.values.size
    rules: list[list[str]] = [[] for _ in range(n)]
    words: list[list[str]] = [[] for _ in range(n)]
    for s in chart.signals:
        for i in s.points:
            rules[i].append(s.rule)
            words[i].append(s.description)
    phase = np.zeros(n, dtype=int)
    for ph in chart.phases:
        phase[ph.start : ph.stop] = ph.index
    df = pd.DataFrame(
        {
            "order": np.arange(n),
            "period": list(chart.labels),
            "value": chart.values,
            "centre": chart.centre,
            "phase": phase,
            "signal": [bool(r) for r in rules],
            "rules": [", ".join(dict.fromkeys(r)) for r in rules],
            "signals": [" | ".join(dict.fromkeys(w)) for w in words],
        }
    )
    if isinstance(chart, ControlChart):
        df["lcl"], df["ucl"] = chart.lcl, chart.ucl
    return df


def spc_chart(
    chart: RunChart | ControlChart,
    title: str,
    *,
    annotations: Sequence[Annotation] = (),
    y_title: str = "",
    width: int = 560,
    height: int = 260,
) -> alt.LayerChart:
    """The chart as layers: limits (dashed), centre line (solid, one segment per phase), the series
    (grey line, points red where a signal fired), phase breaks and annotations (vertical rules with
    their text)."""
    df = frame(chart)
    order = list(df["period"])
    x = alt.X("period:O", sort=order, title=None, axis=alt.Axis(labelAngle=-45))
    base = alt.Chart(df).encode(x=x)
    layers: list[alt.Chart] = []
    if "ucl" in df:
        for col in ("lcl", "ucl"):
            layers.append(
                base.mark_line(strokeDash=[4, 3], color="#9e9e9e", interpolate="step-after").encode(
                    y=alt.Y(f"{col}:Q"), detail="phase:N"
                )
            )
    layers.append(base.mark_line(color="#1f77b4").encode(y=alt.Y("centre:Q"), detail="phase:N"))
    layers.append(base.mark_line(color="#616161").encode(y=alt.Y("value:Q", title=y_title)))
    tooltip = ["period:N", alt.Tooltip("value:Q", format=".4g"), "signals:N"]
    layers.append(
        base.mark_point(filled=True, size=50).encode(
            y="value:Q",
            color=alt.Color(
                "signal:N",
                scale=alt.Scale(domain=[False, True], range=["#616161", "#d62728"]),
                legend=alt.Legend(title="signal"),
            ),
            tooltip=tooltip,
        )
    )
    marks = [(ph.start, f"phase {ph.index + 1}") for ph in chart.phases[1:]]
    marks += [(a.point, a.text) for a in annotations]
    if marks:
        notes = pd.DataFrame({"period": [order[i] for i, _ in marks], "note": [t for _, t in marks]})
        rule = alt.Chart(notes).mark_rule(color="#ff7f0e", strokeDash=[2, 2]).encode(x=x)
        text = (
            alt.Chart(notes)
            .mark_text(align="left", baseline="top", dx=3, dy=3, color="#ff7f0e")
            .encode(x=x, y=alt.value(0), text="note:N")
        )
        layers += [rule, text]
    return alt.layer(*layers).properties(title=title, width=width, height=height)
