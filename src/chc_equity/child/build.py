"""Build every ``child_*`` table for one period, in order (the CLI and the demo call this)."""

from __future__ import annotations

from datetime import date

import duckdb

from chc_equity.child import bh, guardians, lists, pediatric, referrals
from chc_equity.equity.attributes import ensure_patient_attributes
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.views.build import quote_literal

TABLES = (
    pediatric.TABLE, guardians.TABLE, referrals.REFERRAL, referrals.METRICS, referrals.EQUITY, bh.FOLLOWUP,
    bh.DEPRESSION_OPEN, lists.GAPS,
)  # fmt: skip


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    period_start: date,
    period_end: date,
    center: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    measures: bool = True,
) -> None:
    """(Re)build the child-health tables (all centers, or one). The pediatric view reads the measures'
    ``measure_results`` of the same period (``measures=False`` skips it, e.g. before a measure run)."""
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    ensure_patient_attributes(con, period_start=period_start, period_end=period_end)
    pe = f"DATE '{period_end.isoformat()}'"
    cf = f"center = {quote_literal(center)}" if center else "center IS NOT NULL"
    guardians.build(con, period_end_sql=pe, cf=cf)
    referrals.build(con, period_start=period_start, period_end=period_end, center=center, threshold=threshold)
    bh.build(con, period_start=period_start, period_end=period_end, center=center)
    if measures:
        pediatric.build(con, period_start=period_start, period_end=period_end, threshold=threshold)
        lists.build_gaps(con, period_start=period_start, period_end=period_end)
