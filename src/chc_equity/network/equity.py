"""Stratified (equity) rows for ``agg_equity``: :func:`chc_equity.equity.stratify.equity_tables` run once
per dimension for the whole network, mapped onto the ``agg_equity`` columns.

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


def map_row(row: EquityRow, *, label: str) -> dict[str, Any]:
    """One equity row as an agg_equity row."""
    return {
        "measure": row.measure_name,
        "dimension": row.dimension,
        "dimension_label": label,
        "center": NETWORK,
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
) -> tuple[list[dict[str, Any]], str, dict[StrataKey, Counts]]:
    """agg_equity rows for every measure x dimension (network-wide), a status line for agg_runs, and the
    unsuppressed stratum counts behind them (for the joint suppression plan of the precompute)."""
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
    return out, f"computed: {len(dims)} dimensions", counts
