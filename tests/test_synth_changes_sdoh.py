"""A planted change in social-needs screening (synth ``changes:`` with ``measure: sdoh:screened``) is
found by the social-needs series and the run-chart rules (issue 15 build item 6, for the sdoh metrics).

A small network (2 centers, 1,200 patients, seed 2026) without the period's PRAPARE questionnaires
(``prapare_screened: 0``, so every screen is a planted one and the unchanged center is flat): from
2026-01, c01 screens at 1.7 x the base monthly chance (0.3 -> 0.51). Over the 24 calendar months of
:func:`chc_equity.sdoh.series.sdoh_series`: every month's denominator (eligible adults with a visit in
the month) equals truth.json exactly, the pooled numerators before and after the change fall within
99 % of the expected, the Anhøj rules signal the rise at c01 from Jan 2026 (against the median of the
12 months before, as a QI team reads it, and on the project chart of ``sdoh:screened``) and nothing at
c02; the year's screened count is the period's sdoh truth.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pytest

from chc_equity.improvement.project_chart import project_chart
from chc_equity.improvement.runs import run_chart
from chc_equity.ingest import load
from chc_equity.measures.series import series_periods
from chc_equity.measures.vocabulary import Period
from chc_equity.sdoh.series import TABLE, sdoh_series
from chc_equity.synth import generate, load_config
from chc_equity.synth.changes import SCREENING
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

END = date(2026, 12, 31)
YEAR = Period(date(2026, 1, 1), END)
Z99 = 2.576
CHANGED, OTHER = "c01", "c02"

pytestmark = pytest.mark.slow  # a generated network and 25 single-period sdoh runs: about 40 CPU-s


def _within(observed: float, cell: dict[str, Any]) -> bool:
    return abs(observed - cell["expected_numerator"]) <= Z99 * np.sqrt(cell["variance_numerator"]) + 0.5


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("sdoh-changes")
    cfg = load_config(None)
    cfg["prapare_screened"] = 0.0
    cfg["changes"] = [{"center": CHANGED, "measure": SCREENING, "from": "2026-01", "factor": 1.7}]
    summary = generate(tmp / "src", centers=2, patients=1200, seed=2026, period_end=END, cfg=cfg)
    con = connect(tmp / "w.duckdb")
    for c in (c["id"] for c in summary["centers"]):
        load(con, [tmp / "src" / c], c, after_load=lambda x, ctr: build_views(x, centers=[ctr]))
    months = series_periods("month", END, 24)
    sdoh_series(con, [*months, YEAR])
    rows = {
        (c, s, e): (int(n), int(d))
        for c, s, e, n, d in con.execute(
            f"""SELECT center, period_start, period_end, numerator, denominator FROM {TABLE}
                WHERE metric = 'screened' AND domain = 'any' AND stratum_dimension IS NULL"""
        ).fetchall()
    }
    charts = {
        c: project_chart(con, SCREENING, c, kind="month", baseline_end=date(2025, 12, 31))
        for c in (CHANGED, OTHER)
    }
    con.close()
    truth = json.loads((tmp / "src" / "truth.json").read_bytes())
    return {"truth": truth, "rows": rows, "months": months, "charts": charts}


def _series(p: dict[str, Any], center: str) -> tuple[list[int], list[int], list[dict]]:
    cells = p["truth"]["changes"]["series"][SCREENING][center]["all"]
    den, num, tru = [], [], []
    for period in p["months"]:
        n, d = p["rows"].get((center, period.start, period.end), (0, 0))
        num.append(n)
        den.append(d)
        tru.append(cells.get(f"{period.start.year:04d}-{period.start.month:02d}", {"denominator": 0}))
    return den, num, tru


def test_monthly_denominators_and_pooled_numerators_match_truth(planted: dict[str, Any]) -> None:
    for center in (CHANGED, OTHER):
        den, num, tru = _series(planted, center)
        assert den == [t["denominator"] for t in tru], center
        assert min(den) > 15 and sum(den) > 1000, den
    truth = planted["truth"]["changes"]
    (effect,) = truth["effects"]
    den, num, _ = _series(planted, CHANGED)
    cut = truth["months"].index(effect["from"])
    assert (
        sum(den[:cut]) == effect["before"]["denominator"] and sum(den[cut:]) == effect["after"]["denominator"]
    )
    assert _within(sum(num[:cut]), effect["before"]) and _within(sum(num[cut:]), effect["after"])
    assert effect["after"]["expected_rate"] - effect["before"]["expected_rate"] > 0.15
    # the period's sdoh truth counts the adults a planted screen screened in the year
    for center in (CHANGED, OTHER):
        t = planted["truth"]["sdoh"]["centers"][center]
        assert planted["rows"][(center, YEAR.start, YEAR.end)] == (t["screened"], t["eligible"])


def test_run_chart_finds_the_rise_and_only_it(planted: dict[str, Any]) -> None:
    labels = [p.start.strftime("%b %Y") for p in planted["months"]]
    den, num, _ = _series(planted, CHANGED)
    rates = np.array(num) / np.array(den)
    frozen = run_chart(rates, labels=labels, baseline=12, higher_is_better=True)
    up = [s for s in frozen.signals if s.rule == "anhoej_long_run" and s.direction == "up"]
    assert up, [s.description for s in frozen.signals]
    assert min(p for p in up[0].points if p >= 12) == 12 and "improvement" in up[0].description
    den, num, _ = _series(planted, OTHER)
    quiet = run_chart(np.array(num) / np.array(den), labels=labels)
    assert not quiet.has_signal, [s.description for s in quiet.signals]
    # the project chart of sdoh:screened (the published series: a month with a small cell at one of
    # the two centers is hidden at both, as the network point would give it away) says the same in words
    chart, other = planted["charts"][CHANGED], planted["charts"][OTHER]
    assert chart is not None and other is not None
    assert chart.suppressed == other.suppressed < 8
    assert [p["rate"] is None for p in chart.points] == [p["rate"] is None for p in other.points]
    assert any("above the median" in w and "improvement" in w for w in chart.signals), chart.signals
    assert other.signals == [], other.signals
