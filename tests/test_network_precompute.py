"""network.precompute on a real (small) generated network: synth -> ingest -> measures -> agg_* tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures, find
from chc_equity.measures.summary import summarize
from chc_equity.network import AGG_TABLES, NETWORK, precompute
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from chc_equity.web import analytics, gaps

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
MEASURES = ("CMS122", "CMS130", "CMS138", "CMS165")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("network")
    summary = generate(
        folder / "net",
        centers=3,
        patients=450,
        seed=5,
        period_end=PERIOD[1],
        cfg=load_config(disparities=True),
    )
    con = connect(folder / "wh.duckdb")
    for center in (c["id"] for c in summary["centers"]):
        load(con, [folder / "net" / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    run_measures(con, find(list(MEASURES)), period_start=PERIOD[0], period_end=PERIOD[1])
    precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    yield con
    con.close()


def _agg(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], tuple]:
    rows = con.execute(
        "SELECT measure, group_id, center, initial_population, denominator, denominator_exclusion, "
        "denominator_exception, numerator, numerator_exclusion FROM agg_measure"
    ).fetchall()
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def test_agg_measure_equals_summarize(con) -> None:
    names = [m.measure.name for m in find(list(MEASURES))]
    agg = _agg(con)
    expected = summarize(con, names, *PERIOD) + summarize(con, names, *PERIOD, by_center=False)
    assert len(agg) == len(expected) > 3 * len(MEASURES)
    for s in expected:
        assert agg[(s.measure, s.group_id, s.center)] == (
            s.initial_population,
            s.denominator,
            s.denominator_exclusion,
            s.denominator_exception,
            s.numerator,
            s.numerator_exclusion,
        )


def test_network_rows_and_rates(con) -> None:
    rows = con.execute(
        "SELECT measure, group_id, center, numerator, performance_denominator, rate, ci_low, ci_high, "
        "network_rate, signal, inverse FROM agg_measure"
    ).fetchall()
    network = {(r[0], r[1]): r for r in rows if r[2] == NETWORK}
    for m, g, center, x, n, rate, low, high, p0, signal, _inverse in rows:
        if n:
            assert rate == pytest.approx(x / n) and low - 1e-12 <= rate <= high + 1e-12
        if center != NETWORK:
            net = network[(m, g)]
            assert p0 == pytest.approx(net[5]) and signal in ("worse", "better", "as expected", "no data")
    cms122 = find(["CMS122"])[0].measure.name
    assert all(r[10] for r in rows if r[0] == cms122)  # inverse flag copied


def test_funnel_limits_bracket_the_network_rate(con) -> None:
    rows = con.execute("SELECT network_rate, lo998, lo95, hi95, hi998 FROM agg_funnel").fetchall()
    assert rows
    for p0, lo998, lo95, hi95, hi998 in rows:
        assert lo998 <= lo95 <= p0 <= hi95 <= hi998


def test_precompute_replaces_only_its_period(con) -> None:
    before = con.execute("SELECT count(*) FROM agg_measure").fetchone()[0]
    precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    assert con.execute("SELECT count(*) FROM agg_measure").fetchone()[0] == before
    other = precompute(con, period_start=date(2025, 1, 1), period_end=date(2025, 12, 31))
    assert other.measure_rows == 0  # no results for 2025: an empty period, recorded as such
    runs = con.execute("SELECT period_end FROM agg_runs ORDER BY 1").fetchall()
    assert [r[0] for r in runs] == [date(2025, 12, 31), PERIOD[1]]
    assert set(AGG_TABLES) == {"agg_runs", "agg_measure", "agg_funnel", "agg_equity", "agg_suppression"}


def test_care_gaps_match_measure_results(con) -> None:
    run = analytics.pick_run(con, PERIOD[1])
    assert run is not None
    for cms in ("CMS130", "CMS122"):
        module = find([cms])[0]
        inverse = module.measure.inverse
        for center in [r[0] for r in con.execute("SELECT DISTINCT center FROM flat.patient").fetchall()]:
            listed = gaps.care_gaps(con, run, center, module.measure.name)
            expected = con.execute(
                "SELECT count(*) FROM measure_results WHERE center = ? AND measure = ? AND period_end = ? "
                "AND denominator AND NOT denominator_exclusion AND NOT denominator_exception "
                f"AND {'numerator' if inverse else 'NOT numerator'}",
                [center, module.measure.name, PERIOD[1]],
            ).fetchone()[0]
            assert len(listed) == expected
            assert all(g.mrn and g.name and g.birth_date for g in listed)
            assert all(g.last_visit is None or g.last_visit <= PERIOD[1] for g in listed)


def test_all_measures_registry_metadata_present(con) -> None:
    titles = dict(con.execute("SELECT DISTINCT cms_id, title FROM agg_measure").fetchall())
    known = {m.measure.cms_id: m.measure.title for m in all_measures()}
    assert titles and all(known[c] == t for c, t in titles.items())


def test_agg_equity_matches_the_equity_package(con) -> None:
    status = con.execute("SELECT equity_status FROM agg_runs WHERE period_end = ?", [PERIOD[1]]).fetchone()[0]
    if not status.startswith("computed"):
        pytest.skip(f"equity strata not computed here: {status}")
    from chc_equity.equity.stratify import equity_table

    name = find(["CMS130"])[0].measure.name
    direct = equity_table(con, name, ["race_ethnicity"], period_start=PERIOD[0], period_end=PERIOD[1])
    stored = con.execute(
        "SELECT stratum, numerator, denominator, rate, gap_to_equity, is_reference FROM agg_equity "
        "WHERE measure = ? AND dimension = 'race_ethnicity' AND period_end = ? AND center = '*'",
        [name, PERIOD[1]],
    ).fetchall()
    want = {(r.stratum, r.numerator, r.denominator, r.rate, r.gap_to_equity, r.is_reference) for r in direct}
    assert set(stored) == want and len(stored) >= 2
