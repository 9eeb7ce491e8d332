"""The child-health page's data (web ``/children``, the CLI and the Excel workbook read it here).

Aggregates only. ``child_measure`` and ``child_referral_equity`` are stored suppressed (< 11, with
complementary suppression) for every audience; the referral-loop counts and the ED follow-up counts are
shown as computed to the roles that may see a center's patients and, for everyone else
(``suppressed=True``: viewers), through the equity layer's joint plans over every center and the network
(:mod:`chc_equity.equity.joint`; tests/test_child_inference.py attacks the result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from chc_equity.child import bh, pediatric, referrals
from chc_equity.child.bands import AGE_BANDS, ALL_AGES
from chc_equity.equity.joint import Point, plan_crossed_quantities, plan_nested
from chc_equity.equity.suppression import DEFAULT_THRESHOLD

BAND_ORDER = (ALL_AGES, *AGE_BANDS)


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return bool(row and row[0][0])


def _clean(v: Any) -> Any:
    if v is None:
        return None
    try:
        if v != v or (isinstance(v, float) and math.isnan(v)):  # NaN / pandas NA
            return None
    except TypeError:
        return None
    return v.item() if hasattr(v, "item") else v


@dataclass(slots=True)
class ChildView:
    available: bool
    suppressed: bool
    measures: list[dict[str, Any]] = field(default_factory=list)  # overall rows: center x measure x band
    strata: list[dict[str, Any]] = field(default_factory=list)  # 0-17 rows by equity dimension
    flagged: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    followup: list[dict[str, Any]] = field(default_factory=list)
    depression_open: dict[str, int | None] = field(default_factory=dict)


def _suppress_referrals(loops: list[dict[str, Any]], organizations: list[dict[str, Any]]) -> None:
    """Hide small referral-loop counts of every center and the network in place, for a viewer.

    The rows are crossed: the network row is the sum of the centers' rows, a center's ``any`` row the sum
    of its referral types and of its receiving organizations. So the closures (closed of referrals) are
    planned together by :func:`~chc_equity.equity.joint.plan_crossed_quantities`, the open counts (30+
    >= 60+ >= 90+ days, whose differences are counts too) by
    :func:`~chc_equity.equity.joint.plan_nested`. (One table per center before: the network row minus
    one center's gave a small center back; tests/test_child_inference.py.)"""
    point: dict[int, Point] = {}
    for r in loops:
        t = r["referral_type"]
        point[id(r)] = (r["center"], None, None) if t == referrals.ANY else (r["center"], "type", t)
    for r in organizations:
        point[id(r)] = (r["center"], "organization", str(r["organization_id"]))
    rows = loops + organizations
    closure = plan_crossed_quantities(
        {point[id(r)]: (int(r["closed"] or 0), int(r["referrals"] or 0)) for r in rows}, referrals.NETWORK
    )
    opens = tuple(f"open_{d}" for d in referrals.OPEN_AGES)
    open_hidden = plan_nested(
        {point[id(r)]: tuple(int(r[k] or 0) for k in opens) for r in rows}, referrals.NETWORK
    )
    for r in rows:
        met, not_met, den = closure[point[id(r)]]
        if met:
            r["closed"] = None
        if den:
            r["referrals"] = None
        if met or not_met or den:
            for k in ("closure_rate", "days_to_closure_median", "days_to_closure_p90"):
                r[k] = None
        if point[id(r)] in open_hidden:
            for k in opens:
                r[k] = None


def load(con: duckdb.DuckDBPyConnection, center: str | None, *, suppressed: bool) -> ChildView:
    """The page for ``center`` (None: every center and the network rows)."""
    if not _has(con, referrals.METRICS):
        return ChildView(available=False, suppressed=suppressed)
    view = ChildView(available=True, suppressed=suppressed)
    where, params = ("center = ?", [center]) if center else ("TRUE", [])
    if _has(con, pediatric.TABLE):
        df = con.execute(f"SELECT * FROM {pediatric.TABLE} WHERE {where}", params).df()
        recs = [{k: _clean(v) for k, v in r.items()} for r in df.to_dict("records")]
        order = {b: i for i, b in enumerate(BAND_ORDER)}
        view.measures = sorted(
            (r for r in recs if r["dimension"] == pediatric.OVERALL),
            key=lambda r: (r["center"], int(r["cms_id"][3:]), r["group_id"], order.get(r["age_band"], 9)),
        )
        view.strata = [r for r in recs if r["dimension"] != pediatric.OVERALL and r["age_band"] == ALL_AGES]
        view.flagged = [
            {**r, "metric": f"{r['cms_id']} {r['group_id']}"}
            for r in recs
            if r.get("worse_than_reference") and not r["suppressed"] and r["dimension"] != pediatric.OVERALL
        ]
    if _has(con, referrals.EQUITY):
        df = con.execute(
            f"SELECT * FROM {referrals.EQUITY} WHERE {where} AND NOT suppressed AND worse_than_reference",
            params,
        ).df()
        view.flagged += [
            {**{k: _clean(v) for k, v in r.items()}, "metric": f"referral closure ({r['referral_type']})"}
            for r in df.to_dict("records")
        ]
    view.flagged.sort(key=lambda r: (r["center"], r.get("q_value") or 1))

    # Every center's rows are read and suppressed together, then the center's kept: a center's page must
    # hide what the network page hides (the two are published side by side).
    def mine(r: dict[str, Any]) -> bool:
        return center is None or r["center"] == center

    rows = con.execute(
        f"SELECT * FROM {referrals.METRICS} WHERE organization_id = 'All' AND age_band = '{ALL_AGES}' "
        "ORDER BY center, referral_type"
    ).df()
    loops = [{k: _clean(v) for k, v in r.items()} for r in rows.to_dict("records")]
    orgs = con.execute(
        f"""SELECT * FROM {referrals.METRICS} WHERE organization_id <> 'All'
              AND referral_type = 'any' AND age_band = '{ALL_AGES}' ORDER BY center, organization_name"""
    ).df()
    organizations = [{k: _clean(v) for k, v in r.items()} for r in orgs.to_dict("records")]
    if suppressed:
        _suppress_referrals(loops, organizations)
    view.referrals = [r for r in loops if mine(r)]
    view.organizations = [r for r in organizations if mine(r)]
    if _has(con, bh.FOLLOWUP):
        fu = con.execute(
            f"""SELECT center, count(*) AS events, count(*) FILTER (WHERE followup_30d) AS followup_30d,
                       count(*) FILTER (WHERE followup_7d) AS followup_7d
                  FROM {bh.FOLLOWUP} WHERE NOT excluded GROUP BY center ORDER BY center"""
        ).fetchall()
        # events >= followed up in 30 days >= in 7 days: nested counts, planned as the open referrals
        hidden = plan_nested({(c, None, None): (n, d30, d7) for c, n, d30, d7 in fu}, referrals.NETWORK)
        for c, n, d30, d7 in fu:
            row = {"center": c, "events": n, "followup_7d": d7, "followup_30d": d30,
                   "rate_7d": d7 / n if n else None, "rate_30d": d30 / n if n else None}  # fmt: skip
            if suppressed and (c, None, None) in hidden:
                row.update(events=None, followup_7d=None, followup_30d=None, rate_7d=None, rate_30d=None)
            if mine(row):
                view.followup.append(row)
    if _has(con, bh.DEPRESSION_OPEN):
        for c, n in con.execute(
            f"SELECT center, count(DISTINCT patient_id) FROM {bh.DEPRESSION_OPEN} WHERE {where} "
            "GROUP BY 1 ORDER BY 1",
            params,
        ).fetchall():
            view.depression_open[c] = None if suppressed and 0 < n < DEFAULT_THRESHOLD else n
    return view


def workbook(view: ChildView) -> bytes:
    """The page as an Excel workbook: one sheet per section (cells neutralized, chc_equity.exports)."""
    import io

    from openpyxl import Workbook

    from chc_equity.exports import set_cell

    wb = Workbook()
    sheets = [
        ("Pediatric measures", view.measures + view.strata,
         ("center", "cms_id", "group_id", "title", "inverse", "age_band", "dimension", "stratum", "numerator",
          "denominator", "rate", "ci_low", "ci_high", "q_value", "suppressed")),
        ("Referral loops", view.referrals + view.organizations,
         ("center", "referral_type", "organization_name", "age_band", "referrals", "closed", "closure_rate",
          "days_to_closure_median", "days_to_closure_p90", "open_30", "open_60", "open_90")),
        ("BH follow-up", view.followup,
         ("center", "events", "followup_7d", "rate_7d", "followup_30d", "rate_30d")),
        ("Flagged strata", view.flagged,
         ("center", "metric", "dimension", "stratum", "numerator", "denominator", "rate", "q_value")),
    ]  # fmt: skip
    first = True
    for title, rows, cols in sheets:
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = title
        for j, c in enumerate(cols, start=1):
            set_cell(ws, 1, j, c)
        for i, r in enumerate(rows, start=2):
            for j, c in enumerate(cols, start=1):
                set_cell(ws, i, j, r.get(c))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
