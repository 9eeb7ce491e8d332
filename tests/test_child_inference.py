"""Inference attack on the child-health aggregates a viewer sees: no hidden small count is recovered.

What leaves the system (docs/child.md): :func:`chc_equity.child.view.load` with ``suppressed=True`` is
the viewer's ``/children`` page, its ``pediatric.xlsx`` and the workbook ``chc-equity child --out``
writes -- for the network (every center and the network rows) and for each center (a center-bound
viewer). A small generated network (two centers, one of them small) goes through the real ingest, views,
the child measures and ``chc_equity.child.build``; the attacker has every one of those views and sets up:

* referral loops: per center, the network, referral type (``any`` = behavioral health + specialist) and
  receiving organization, the referrals in the CMS50 window ``d``, the closed ``x`` and the not closed
  ``y = d - x``; the network row = the centers' rows, ``any`` = the two types, a center's ``All`` row =
  its organizations (where the stored counts add up); the open referrals by age at the period end as
  three disjoint counts (30-59, 60-89, 90+ days) whose sums are the published 30+ / 60+ / 90+;
* the flagged closure strata (``child_referral_equity``) as strata of their center and type;
* the pediatric measures: per center and measure group, the 0-17 row = its age bands = the strata of
  each dimension (race/ethnicity, language, insurance), met / not met / denominator;
* ED follow-up for mental illness: per center, followed up within 7 days, within 8-30 days, not within
  30 days, whose sums are the published counts;
* every published count and every published rate as an exact fraction of its cell;

and asks HiGHS for the minimum, then the maximum, of every count from 1 to 10 that is not published as
such (:func:`inference_model.attack`). Recovered when both are the true value.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from chc_equity.child import bh, pediatric, referrals, view
from chc_equity.child.bands import ALL_AGES
from chc_equity.child.build import build
from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import find
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from inference_model import Model, Var, attack

START, END = date(2026, 1, 1), date(2026, 12, 31)

pytestmark = pytest.mark.slow  # ~15 CPU-s: a generated network, two measures, the child stage, ~330 MILPs
NETWORK = referrals.NETWORK
OPEN_BINS = ("30", "60", "90")  # open 30-59, 60-89, 90+ days: open_30 = all three, open_60 = the last two


@pytest.fixture(scope="module")
def child_network(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every viewer view (network and per center) and the true counts of a two-center network."""
    folder: Path = tmp_path_factory.mktemp("child-inference")
    summary = generate(folder / "net", centers=2, patients=400, seed=11, period_end=END, cfg=load_config())
    con = connect(folder / "w.duckdb")
    try:
        centers = [c["id"] for c in summary["centers"]]
        for center in centers:
            load(con, [folder / "net" / center], center,
                 after_load=lambda c, ctr: build_views(c, centers=[ctr]))  # fmt: skip
        run_measures(con, find(["CMS155", "CMS117"]), period_start=START, period_end=END)
        build(con, period_start=START, period_end=END)
        views = [view.load(con, None, suppressed=True)]
        views += [view.load(con, c, suppressed=True) for c in centers]
        out = {
            "views": views,
            "metrics": con.execute(
                f"SELECT * FROM {referrals.METRICS} WHERE age_band = '{ALL_AGES}' "
                f"AND (organization_id = '{referrals.ALL_ORGS}' OR referral_type = '{referrals.ANY}')"
            ).df(),
            "equity": referrals.equity_table(con, threshold=1),
            "measure": pediatric.table(con, START, END, threshold=1),
            "followup": con.execute(
                f"""SELECT center, count(*) AS events, count(*) FILTER (WHERE followup_7d) AS d7,
                           count(*) FILTER (WHERE followup_30d) AS d30
                      FROM {bh.FOLLOWUP} WHERE NOT excluded GROUP BY center"""
            ).df(),
        }
    finally:
        con.close()
    return out


def _cell(r) -> tuple[str, ...]:
    return (str(r["center"]), str(r["referral_type"]), str(r.get("organization_id") or referrals.ALL_ORGS))


def _pair(m: Model, truth: dict, key: tuple[str, ...], x: int, d: int) -> None:
    """The unknowns x (met), y (not met), d of one cell with ``d = x + y``, and their true values."""
    m.eq({(*key, "x"): 1, (*key, "y"): 1, (*key, "d"): -1})
    truth[(*key, "x")], truth[(*key, "y")], truth[(*key, "d")] = x, d - x, d


def _sums(m: Model, truth: dict, total: tuple[str, ...], parts: list[tuple[str, ...]], qs: tuple[str, ...]):
    """``total`` = the sum of ``parts`` for each quantity in ``qs``, where the true counts add up."""
    for q in qs:
        known = parts and (*total, q) in truth and all((*p, q) in truth for p in parts)
        if known and truth[(*total, q)] == sum(truth[(*p, q)] for p in parts):
            m.total((*total, q), [(*p, q) for p in parts])


def _referral_model(data: dict) -> tuple[Model, dict[Var, int]]:
    m, truth = Model(), {}
    rows = data["metrics"]
    cells = {}
    for r in rows.to_dict("records"):
        key = ("ref", *_cell(r))
        cells[key] = r
        _pair(m, truth, key, int(r["closed"]), int(r["referrals"]))
        bins = [
            int(r["open_30"]) - int(r["open_60"]),
            int(r["open_60"]) - int(r["open_90"]),
            int(r["open_90"]),
        ]
        for b, v in zip(OPEN_BINS, bins, strict=True):
            truth[(*key, f"open {b} bin")] = v
        for i, b in enumerate(OPEN_BINS):  # open_30 = the three bins, open_60 the last two, open_90 the last
            total = (*key, f"open {b}+")
            truth[total] = sum(bins[i:])
            m.total(total, [(*key, f"open {c} bin") for c in OPEN_BINS[i:]])
    qs = ("x", "y", "d", *(f"open {b} bin" for b in OPEN_BINS))
    centers = sorted({k[1] for k in cells if k[1] != NETWORK})
    for key in cells:
        if key[1] == NETWORK:  # the network = the centers
            _sums(m, truth, key, [("ref", c, *key[2:]) for c in centers if ("ref", c, *key[2:]) in cells], qs)
        if key[2] == referrals.ANY and key[3] == referrals.ALL_ORGS:
            types = [k for k in cells if k[1] == key[1] and k[2] != referrals.ANY]
            _sums(m, truth, key, types, qs)  # any = the two types
            orgs = [
                k for k in cells if k[1] == key[1] and k[2] == referrals.ANY and k[3] != referrals.ALL_ORGS
            ]
            _sums(m, truth, key, orgs, qs)  # All = the organizations
    # the closure strata of every (type, dimension) with a flagged row shown anywhere
    flagged = {(f["referral_type"], f["dimension"]) for v in data["views"] for f in v.flagged
               if "referral_type" in f}  # fmt: skip
    eq = data["equity"]
    for (rtype, dim), g in eq.groupby(["referral_type", "dimension"]):
        if (rtype, dim) not in flagged:
            continue
        for center, s in g.groupby("center"):
            parts = []
            for r in s.itertuples():
                key = ("req", str(center), rtype, dim, str(r.stratum))
                _pair(m, truth, key, int(r.numerator), int(r.denominator))
                parts.append(key)
            _sums(m, truth, ("ref", str(center), rtype, referrals.ALL_ORGS), parts, ("x", "y", "d"))
        for stratum in g["stratum"].unique():
            same = [("req", c, rtype, dim, str(stratum)) for c in centers]
            _sums(m, truth, ("req", NETWORK, rtype, dim, str(stratum)), same, ("x", "y", "d"))
    for v in data["views"]:
        for r in v.referrals + v.organizations:
            key = ("ref", *_cell(r))
            m.observe(*key[:1], key[1:], r["closed"], r["referrals"], r["closure_rate"])
            for b in OPEN_BINS:
                if r[f"open_{b}"] is not None:
                    m.eq({(*key, f"open {b}+"): 1}, float(r[f"open_{b}"]))
        for f in v.flagged:
            if "referral_type" in f:
                key = ("req", f["center"], f["referral_type"], f["dimension"], str(f["stratum"]))
                m.observe(key[0], key[1:], f["numerator"], f["denominator"], f["rate"])
    return m, truth


def _measure_model(data: dict) -> tuple[Model, dict[Var, int]]:
    m, truth = Model(), {}
    t = data["measure"]
    for (center, cms, group), g in t.groupby(["center", "cms_id", "group_id"]):
        base = ("pm", str(center), str(cms), str(group))
        overall = g[(g["dimension"] == pediatric.OVERALL) & (g["age_band"] == ALL_AGES)].iloc[0]
        _pair(m, truth, (*base, "all"), int(overall["numerator"]), int(overall["denominator"]))
        bands = g[(g["dimension"] == pediatric.OVERALL) & (g["age_band"] != ALL_AGES)]
        splits = [("age_band", bands, "age_band")]
        splits += [(d, g[g["dimension"] == d], "stratum") for d in pediatric.DIMENSIONS]
        for dim, rows, col in splits:
            parts = []
            for r in rows.to_dict("records"):
                key = (*base, dim, str(r[col]))
                _pair(m, truth, key, int(r["numerator"]), int(r["denominator"]))
                parts.append(key)
            _sums(m, truth, (*base, "all"), parts, ("x", "y", "d"))
    for v in data["views"]:
        for r in v.measures + v.strata:
            base = ("pm", r["center"], r["cms_id"], r["group_id"])
            if r["dimension"] == pediatric.OVERALL:
                cell = ("all",) if r["age_band"] == ALL_AGES else ("age_band", r["age_band"])
            else:
                cell = (r["dimension"], str(r["stratum"]))
            m.observe(base[0], (*base[1:], *cell), r["numerator"], r["denominator"], r["rate"])
    return m, truth


def _followup_model(data: dict) -> tuple[Model, dict[Var, int]]:
    """Per center: events = followed up in 7 days + in 8-30 days + not in 30 days."""
    m, truth = Model(), {}
    for r in data["followup"].itertuples():
        key = ("fu", str(r.center))
        bins = {"7": int(r.d7), "8-30": int(r.d30) - int(r.d7), "none": int(r.events) - int(r.d30)}
        for b, value in bins.items():
            truth[(*key, b)] = value
        sums = {"7d": ("7",), "30d": ("7", "8-30"), "events": ("7", "8-30", "none")}
        for name, parts in sums.items():
            truth[(*key, name)] = sum(bins[b] for b in parts)
            m.total((*key, name), [(*key, b) for b in parts])
    for v in data["views"]:
        for f in v.followup:
            key = ("fu", f["center"])
            for name, col in (("7d", "followup_7d"), ("30d", "followup_30d"), ("events", "events")):
                if f[col] is not None:
                    m.eq({(*key, name): 1}, float(f[col]))
            m.observe("fu", (f["center"], "7 rate"), f["followup_7d"], f["events"], f["rate_7d"])
            m.observe("fu", (f["center"], "30 rate"), f["followup_30d"], f["events"], f["rate_30d"])
            for q, name in (("x", "7d"), ("d", "events")):
                m.eq({("fu", f["center"], "7 rate", q): 1, (*key, name): -1})
            for q, name in (("x", "30d"), ("d", "events")):
                m.eq({("fu", f["center"], "30 rate", q): 1, (*key, name): -1})
    return m, truth


@pytest.mark.parametrize("part", ["referrals", "measures", "followup"])
def test_viewer_child_aggregates_recover_no_small_count(child_network: dict, part: str) -> None:
    build_model = {"referrals": _referral_model, "measures": _measure_model, "followup": _followup_model}
    model, truth = build_model[part](child_network)
    recovered, checked = attack(model, truth)
    print(f"child {part}: {checked} hidden small counts attacked, {len(recovered)} recovered")
    assert checked >= {"referrals": 20, "measures": 20, "followup": 1}[part], checked
    assert recovered == [], recovered[:10]


def test_the_network_has_something_to_attack(child_network: dict) -> None:
    """The network view shows the network rows, and hides some small counts: the attack is not vacuous."""
    network_view = child_network["views"][0]
    assert any(r["center"] == NETWORK and r["referrals"] is not None for r in network_view.referrals)
    assert any(r["closed"] is None for r in network_view.referrals)
    assert isinstance(child_network["metrics"], pd.DataFrame) and len(child_network["metrics"]) > 10
