"""Equity charts as Vega-Lite (Altair): a forest plot of stratum rates and a gap-to-equity bar chart.

Charts are built only from exported (already suppressed) rows, so a chart can never show more than the
table it accompanies: suppressed strata are drawn as labelled empty rows, not dropped, so readers see
that the group exists. PNG/SVG are rendered by vl-convert (no browser).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from chc_equity.equity.palette import REFERENCE, ROLE_COLORS, ROLES, role_of
from chc_equity.equity.stratify import NETWORK_REFERENCE, EquityRow


def _frame(rows: Sequence[EquityRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "panel": f"{r.measure} {r.group_id}" + (" (lower is better)" if r.inverse else ""),
                "stratum": r.label
                + (" (suppressed)" if r.suppressed else "")
                + (" *" if r.unreliable else ""),
                "rate": r.rate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "role": role_of(
                    is_reference=r.is_reference,
                    worse=r.worse_than_reference,
                    better=r.better_than_reference,
                    suppressed=r.suppressed,
                ),
                "reference_rate": _reference_rate(rows, r),
                "gap_to_equity": r.gap_to_equity,
                "q_value": r.q_value,
            }
            for r in rows
        ]
    )


def _reference_rate(rows: Sequence[EquityRow], row: EquityRow) -> float | None:
    """The comparator's rate: the reference stratum's, or the network's for ``--by center``."""
    for o in rows:
        if (o.measure, o.group_id) != (row.measure, row.group_id):
            continue
        if o.is_reference:
            return o.rate
        if o.reference == NETWORK_REFERENCE and o.rate is not None and o.rate_difference is not None:
            return o.rate - o.rate_difference
    return None


_COLORS = alt.Scale(domain=list(ROLES), range=[ROLE_COLORS[r] for r in ROLES])  # same as the web app


def forest_plot(rows: Sequence[EquityRow], title: str) -> alt.FacetChart:
    """Rates with 95 % Wilson intervals per stratum; dashed rule at the reference; a panel per measure."""
    df = _frame(rows)
    base = alt.Chart(df).encode(y=alt.Y("stratum:N", sort=None, title=None))
    ci = base.mark_rule().encode(
        x=alt.X("ci_low:Q", title="rate (95 % Wilson interval)", axis=alt.Axis(format="%")), x2="ci_high:Q"
    )
    point = base.mark_point(filled=True, size=60).encode(
        x="rate:Q",
        color=alt.Color("role:N", scale=_COLORS, title="vs reference (q < 0.05)"),
        tooltip=["stratum", alt.Tooltip("rate:Q", format=".1%"), alt.Tooltip("q_value:Q", format=".3g")],
    )
    ref = (
        alt.Chart(df)
        .mark_rule(strokeDash=[4, 4], color=ROLE_COLORS[REFERENCE])
        .encode(x="mean(reference_rate):Q")
    )
    return (
        alt.layer(ci, point, ref, data=df)
        .properties(width=420)
        .facet(row=alt.Row("panel:N", title=None), title=title)
        .resolve_scale(y="independent")
    )


def gap_chart(rows: Sequence[EquityRow], title: str) -> alt.FacetChart:
    """Patients who would need to change status for each stratum to reach the reference rate."""
    df = _frame(rows)
    df = df[df["gap_to_equity"].notna() & (df["role"] != "reference")]
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("gap_to_equity:Q", title="gap to equity (patients)"),
            y=alt.Y("stratum:N", sort="-x", title=None),
            color=alt.Color("role:N", scale=_COLORS, title="vs reference (q < 0.05)"),
            tooltip=["stratum", "gap_to_equity"],
        )
        .properties(width=420)
    )
    return bars.facet(row=alt.Row("panel:N", title=None), title=title).resolve_scale(y="independent")


def save_chart(chart: alt.TopLevelMixin, out: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Write ``stem.<fmt>`` for each of html/png/svg requested; returns the paths written.

    HTML inlines the Vega JavaScript (about 0.9 MB) instead of linking a CDN: reports are opened on
    machines without internet access, and a health center's analyst must not need one.
    """
    written: list[Path] = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        if fmt == "html":
            chart.save(str(path), format=fmt, inline=True)
        else:
            chart.save(str(path), format=fmt)
        written.append(path)
    return written
