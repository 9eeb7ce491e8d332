"""Stratified (equity) rows for ``agg_equity``: :func:`chc_equity.equity.stratify.analyse` run once per
dimension for the whole network (``center = '*'``) and once per center, mapped onto the ``agg_equity``
columns.

A center's rows compare its own strata with its own reference group (the center equity page and the
per-center "largest inequities"); they carry the equity package's one-way suppression of that center's
table. They are shown to the roles that see a center's unsuppressed counts (never to viewers), so they
are not part of the viewers' joint publication plan (:mod:`chc_equity.network.plan`), which covers the
network rows only.

The statistics and the suppression belong to the equity package; this module only chooses the
dimensions the measure page shows and renames a few fields. When the warehouse lacks the demographic
tables (a warehouse loaded without views), the reason is returned and the measure page says "not
computed" -- never a half-filled table. Any other failure is a bug and propagates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb

from chc_equity.equity.attributes import DIMENSIONS, ensure_patient_attributes
from chc_equity.equity.stratify import Counts, EquityRow, analyse, stratum_counts
from chc_equity.measures.registry import all_measures

NETWORK = "*"
# Dimensions shown on the measure page, in this order.
DEFAULT_DIMENSIONS: tuple[str, ...] = (
    "race_ethnicity",
    "language",
    "lep",
    "income",
    "insurance",
    "sex",
    "age_band",
    "sdoh_risk",
)


def _clean(value: Any) -> Any:
    """NaN / infinity (e.g. a ratio against a 0 % reference) is stored as NULL."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def map_row(row: EquityRow, *, label: str, center: str = NETWORK) -> dict[str, Any]:
    """One equity row as an agg_equity row (of the network, or of one center)."""
    return {
        "measure": row.measure_name,
        "dimension": row.dimension,
        "dimension_label": label,
        "center": center,
        "group_id": row.group_id,
        "stratum": row.label,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "rate": _clean(row.rate),
        "ci_low": _clean(row.ci_low),
        "ci_high": _clean(row.ci_high),
        "is_reference": row.is_reference,
        "rate_difference": _clean(row.rate_difference),
        "diff_ci_low": _clean(row.rd_ci_low),
        "diff_ci_high": _clean(row.rd_ci_high),
        "rate_ratio": _clean(row.rate_ratio),
        "p_value": _clean(row.p_value),
        "q_value": _clean(row.q_value),
        "gap_to_equity": row.gap_to_equity,
        "worse": row.worse_than_reference,
        "better": row.better_than_reference,
        "unreliable": None if row.suppressed else row.unreliable,
        "suppressed": row.suppressed,
    }


StrataKey = tuple[str, str, str]  # (measure, group_id, dimension)


def equity_rows(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    by_center: bool = True,
) -> tuple[list[dict[str, Any]], str, dict[StrataKey, Counts]]:
    """agg_equity rows for every measure x dimension (network-wide, and per center unless ``by_center`` is
    False), a status line for agg_runs, and the unsuppressed network stratum counts behind them (for the
    joint suppression plan of the precompute)."""
    dims = [d for d in dimensions if d in DIMENSIONS]
    try:
        ensure_patient_attributes(con, period_start=period_start, period_end=period_end)
    except duckdb.CatalogException:
        return [], "not computed: the demographic tables are missing (run `chc-equity views build`)", {}
    info = {m.measure.name: (m.measure.cms_id, m.measure.inverse) for m in all_measures()}
    out: list[dict[str, Any]] = []
    counts: dict[StrataKey, Counts] = {}
    for dim in dims:
        for c in stratum_counts(con, list(measures), [dim], period_start=period_start, period_end=period_end):
            cms_id, inverse = info.get(c.measure, (c.measure, False))
            rows, _summary = analyse(c, [dim], cms_id=cms_id, inverse=inverse)
            out.extend(map_row(r, label=DIMENSIONS[dim]) for r in rows)
            counts[(c.measure, c.group_id, dim)] = c
        if by_center:
            out.extend(_center_rows(con, measures, dim, info, period_start, period_end))
    return out, f"computed: {len(dims)} dimensions", counts


def _center_rows(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str],
    dim: str,
    info: dict[str, tuple[str, bool]],
    period_start: date,
    period_end: date,
) -> list[dict[str, Any]]:
    """Each center's strata of ``dim``, compared within the center (one query for every center)."""
    out: list[dict[str, Any]] = []
    crossed = stratum_counts(
        con, list(measures), ["center", dim], period_start=period_start, period_end=period_end
    )
    for c in crossed:
        cms_id, inverse = info.get(c.measure, (c.measure, False))
        for center in sorted({s[0] for s in c.strata}):
            idx = [i for i, s in enumerate(c.strata) if s[0] == center]
            mine = Counts(
                measure=c.measure,
                group_id=c.group_id,
                strata=tuple((c.strata[i][1],) for i in idx),
                numerators=c.numerators[idx],
                denominators=c.denominators[idx],
            )
            rows, _summary = analyse(mine, [dim], cms_id=cms_id, inverse=inverse)
            out.extend(map_row(r, label=DIMENSIONS[dim], center=center) for r in rows)
    return out
