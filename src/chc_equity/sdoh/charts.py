"""The social-needs funnel as a chart (Vega-Lite through Altair): per center and the network, for each
domain, the rates of the funnel steps (positive, documented, referred, closed with an outcome).

Built only from the rows that leave the system (:func:`chc_equity.sdoh.export.suppress_metrics`), so a
chart never shows more than its table: a suppressed rate is a labelled empty bar, not a dropped one.
Rendered with :func:`chc_equity.equity.charts.save_chart` (vl-convert, no browser).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from chc_equity.sdoh.mapping import DOMAINS, HRSN
from chc_equity.sdoh.metrics import ALL_SITES, ANY, NETWORK

STEPS = {
    "positive": "Positive",
    "documented": "Documented",
    "referred": "Referred",
    "closure": "Closed with outcome",
}
FUNNEL_DOMAINS = (ANY, *HRSN)  # the five CMS HRSNs (housing as its two domains) and all domains


def funnel_frame(shown: pd.DataFrame) -> pd.DataFrame:
    """One row per (center, domain, step) of the suppressed ``sdoh_metrics`` rows (site All)."""
    df = shown[
        (shown["site"] == ALL_SITES)
        & shown["metric"].isin(list(STEPS))
        & shown["domain"].isin(FUNNEL_DOMAINS)
    ]
    rows = []
    for r in df.itertuples():
        hidden = bool(r.suppressed) or pd.isna(r.value)
        rows.append(
            {
                "center": "Network" if r.center == NETWORK else str(r.center),
                "domain": "All domains" if r.domain == ANY else DOMAINS[str(r.domain)],
                "step": STEPS[str(r.metric)],
                "order": list(STEPS).index(str(r.metric)),
                "rate": None if hidden else float(r.value),
                "label": "suppressed" if r.suppressed else ("" if hidden else f"{float(r.value):.0%}"),
            }
        )
    return pd.DataFrame(rows, columns=["center", "domain", "step", "order", "rate", "label"])


def funnel_chart(shown: pd.DataFrame) -> alt.TopLevelMixin | None:
    """Bars of each step's rate per domain, one row of panels per center (None: nothing to draw)."""
    df = funnel_frame(shown)
    if df.empty:
        return None
    order = [s for s in STEPS.values()]
    base = alt.Chart(df).encode(
        y=alt.Y("step:N", sort=order, title=None),
        tooltip=["center", "domain", "step", alt.Tooltip("rate:Q", format=".1%"), "label"],
    )
    bars = base.mark_bar().encode(
        x=alt.X("rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="rate"),
        color=alt.Color("step:N", sort=order, legend=None),
    )
    text = base.mark_text(align="left", dx=3).encode(x=alt.value(2), text="label:N")
    return (
        alt.layer(bars, text, data=df)
        .properties(width=160, height=90)
        .facet(
            row=alt.Row("center:N", title=None),
            column=alt.Column(
                "domain:N", title=None, sort=[DOMAINS.get(d, "All domains") for d in FUNNEL_DOMAINS]
            ),
        )
        .properties(title="Social needs funnel: each step's rate (docs/sdoh.md); suppressed cells left empty")
    )


def write_charts(out: Path, shown: pd.DataFrame, formats: Sequence[str]) -> list[Path]:
    """``sdoh_funnel.<fmt>`` for each of html / png / svg in ``formats``; returns the paths written."""
    from chc_equity.equity.charts import save_chart

    chart = funnel_chart(shown)
    if chart is None or not formats:
        return []
    return save_chart(chart, out, "sdoh_funnel", formats)
