"""``measure_series``: every point of a series equals a single-period ``run_measures`` for that period.

The must-show of issue 15 (build item 1): on a small generated network, points taken from a 24-point
rolling-12-month series (first, middle, last) plus a calendar month and a quarter are computed by
:func:`measure_series` and, independently, by one ``run_measures`` + ``summarize`` per period; every
measure x group x center (and the network) must agree on all six population counts. Strata are
checked against ``measure_results`` joined to ``patient_attributes`` built for that period.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from chc_equity.equity.attributes import build_patient_attributes
from chc_equity.improvement.trend import hidden_points
from chc_equity.ingest import load
from chc_equity.measures.conformance import official_period
from chc_equity.measures.conformance import test_folder as case_folder  # not collected as a test
from chc_equity.measures.engine import RESULTS_TABLE, Context, render, run_measures
from chc_equity.measures.evaluate import evaluate_into
from chc_equity.measures.registry import all_measures
from chc_equity.measures.series import NETWORK, SERIES_TABLE, measure_series, series_periods
from chc_equity.measures.summary import summarize
from chc_equity.measures.vocabulary import Period, PeriodColumns
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from conftest import shared_dir

END = date(2026, 12, 31)
WEIGHT_REDUCTION_ORDER = "2f637c27-5fa1-486c-bddb-169b1d752f64"  # in CMS22's NUMERPass-FirstHTNWeightFU
COUNTS = (
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "denominator_exception",
    "numerator",
    "numerator_exclusion",
)


def test_series_periods_rolling_month_quarter() -> None:
    rolling = series_periods("rolling12", date(2026, 12, 15), 24)
    assert len(rolling) == 24
    assert (rolling[-1].start, rolling[-1].end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert (rolling[0].start, rolling[0].end) == (date(2024, 2, 1), date(2025, 1, 31))
    assert (rolling[12].start, rolling[12].end) == (date(2025, 2, 1), date(2026, 1, 31))
    months = series_periods("month", date(2026, 3, 1), 3)
    assert [(p.start, p.end) for p in months] == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]
    quarters = series_periods("quarter", date(2026, 11, 5), 2)
    assert [(p.start, p.end) for p in quarters] == [
        (date(2026, 7, 1), date(2026, 9, 30)),
        (date(2026, 10, 1), date(2026, 12, 31)),
    ]
    with pytest.raises(ValueError, match="unknown series kind"):
        series_periods("week", END)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def network_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 generated patients in 2 centers (seed 2026), ingested with views; the warehouse file."""
    tmp = tmp_path_factory.mktemp("series")
    summary = generate(
        tmp / "src",
        centers=2,
        patients=300,
        seed=2026,
        period_end=END,
        cfg=load_config(None, disparities=True),
        gz=False,
    )
    con = connect(tmp / "w.duckdb")
    for center in (c["id"] for c in summary["centers"]):
        load(con, [tmp / "src" / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    con.close()
    return tmp / "w.duckdb"


@pytest.fixture
def network(network_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(network_path)
    yield con
    con.close()


def _series(con: duckdb.DuckDBPyConnection, p: Period, dimension: str | None) -> dict[tuple, tuple]:
    rows = con.execute(
        f"SELECT measure, group_id, center, stratum, {', '.join(COUNTS)}, performance_denominator "
        f"FROM {SERIES_TABLE} WHERE period_start = ? AND period_end = ? "
        "AND stratum_dimension IS NOT DISTINCT FROM ?",
        [p.start, p.end, dimension],
    ).fetchall()
    return {r[:4]: r[4:] for r in rows}


def _single_period(con: duckdb.DuckDBPyConnection, names: list[str], p: Period) -> dict[tuple, tuple]:
    """The counts of the last ``run_measures`` for period ``p``, keyed as :func:`_series` (no stratum)."""
    expected: dict[tuple, tuple] = {}
    for by_center in (True, False):
        for s in summarize(con, names, p.start, p.end, by_center=by_center):
            center = s.center if by_center else NETWORK
            counts = tuple(getattr(s, c) for c in COUNTS)
            expected[(s.measure, s.group_id, center, None)] = (*counts, s.performance_denominator)
    return expected


def _strata_from_results(con: duckdb.DuckDBPyConnection, p: Period) -> dict[tuple, tuple]:
    """The same counts by race_ethnicity, the other way: measure_results x patient_attributes."""
    build_patient_attributes(con, period_start=p.start, period_end=p.end)
    counts = ", ".join(f"count(*) FILTER (WHERE r.{c})" for c in COUNTS)
    rows = con.execute(
        f"""
        SELECT r.measure, r.group_id, r.center, a.race_ethnicity, {counts},
               count(*) FILTER (WHERE r.denominator AND NOT r.denominator_exclusion
                                AND NOT r.denominator_exception)
        FROM {RESULTS_TABLE} r JOIN patient_attributes a USING (center, patient_id)
        WHERE r.period_start = ? AND r.period_end = ? GROUP BY ALL
        """,
        [p.start, p.end],
    ).fetchall()
    return {r[:4]: tuple(r[4:]) for r in rows}


@pytest.mark.slow
def test_every_point_equals_a_single_period_run(network: duckdb.DuckDBPyConnection) -> None:
    con = network
    rolling = series_periods("rolling12", END, 24)
    periods = [
        rolling[0],
        rolling[12],
        rolling[23],
        *series_periods("month", date(2026, 6, 1), 1),
        *series_periods("quarter", date(2026, 9, 1), 1),
    ]
    modules = all_measures()
    names = [m.measure.name for m in modules]
    written = measure_series(con, modules, periods, dimensions=["race_ethnicity"])
    assert written > 0
    assert con.execute(f"SELECT count(*) FROM {RESULTS_TABLE}").fetchone()[0] == 0  # untouched
    measures_seen: set[str] = set()
    for p in periods:
        run_measures(con, modules, period_start=p.start, period_end=p.end)
        expected = _single_period(con, names, p)
        got = _series(con, p, None)
        assert got == expected, f"series differs from run_measures for {p.start}..{p.end}"
        measures_seen |= {k[0] for k, v in expected.items() if v[1] > 0}
        strata = _series(con, p, "race_ethnicity")
        assert {k: v for k, v in strata.items() if k[2] != NETWORK} == _strata_from_results(con, p)
        for (measure, group, center, _), total in expected.items():  # strata add up to the total
            if center == NETWORK:
                parts = [v for k, v in strata.items() if k[:3] == (measure, group, NETWORK)]
                assert tuple(map(sum, zip(*parts, strict=True))) == total
    # the comparison is not vacuous: most measures have a denominator in some period
    assert len(measures_seen) >= 15, sorted(set(names) - measures_seen)


@pytest.fixture(scope="module")
def episode_cases(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list, duckdb.DuckDBPyConnection]]:
    """The official test patients of the episode-of-care measures (CMS22, CMS177: one subject per
    encounter), each Bundle its own center, in an in-memory warehouse: ``(modules, connection)``.

    Plus one derived CMS22 patient (center ``bundle:derived/...``): NUMERPass-FirstHTNWeightFU (a
    first hypertensive reading on 2026-01-01, a 4-week follow-up and a weight-reduction order the same
    day) with the weight-reduction order moved to 2025-12-15. The CQL wants both orders "during day of
    Measurement Period", so it passes for Jul 2025..Jun 2026 and fails for 2026: the one branch of
    CMS22 that reads the period beyond the encounter's own day, which no official case separates."""
    ecqm = shared_dir("ecqm")
    modules = [m for m in all_measures() if m.measure.basis == "Encounter"]
    start, end = official_period(ecqm, modules)
    folders = [case_folder(ecqm, m) for m in modules]
    [case] = folders[[m.measure.cms_id for m in modules].index("CMS22")].glob(
        "*/*NUMERPass-FirstHTNWeightFU.json"
    )
    bundle = json.loads(case.read_text())
    [order] = [e["resource"] for e in bundle["entry"] if e["resource"].get("id") == WEIGHT_REDUCTION_ORDER]
    order["authoredOn"] = "2025-12-15T08:29:00.000Z"
    derived = tmp_path_factory.mktemp("series_cases") / "derived"
    derived.mkdir()
    (derived / "FirstHTNWeightBeforeYear.json").write_text(json.dumps(bundle))
    con = evaluate_into([*folders, derived], modules, period_start=start, period_end=end)
    yield modules, con
    con.close()


@pytest.mark.slow
def test_episode_measures_every_point_equals_a_run_per_test_patient(episode_cases) -> None:
    """The official test patients exercise every branch of the episode measures (readings, follow-up
    orders during the period, declined orders, exclusions, encounters a day outside the period), which
    a generated network may not. CMS22 computes what an encounter's result does not take from the
    period once for the series' span (``encounter_facts``): each point, per test patient (a center
    each) and for the network, must still equal a single-period run of that period."""
    modules, con = episode_cases
    names = [m.measure.name for m in modules]
    periods = [  # 2026 (the official period), Feb 2026..Jan 2027, Jul 2025..Jun 2026, Q4 2026
        *series_periods("rolling12", date(2027, 1, 31), 2),
        *series_periods("rolling12", date(2026, 6, 30), 1),
        *series_periods("quarter", date(2026, 12, 31), 1),
    ]
    measure_series(con, modules, periods)
    seen: dict[str, set[str]] = {}
    for p in periods:
        run_measures(con, modules, period_start=p.start, period_end=p.end)
        expected = _single_period(con, names, p)
        assert _series(con, p, None) == expected, f"series differs from run_measures for {p.start}..{p.end}"
        for (measure, _, center, _), counts in expected.items():
            for population, n in zip((*COUNTS, "performance_denominator"), counts, strict=True):
                if n and center != NETWORK:
                    seen.setdefault(measure, set()).add(population)
    # not vacuous: the test patients reach the numerator, and CMS22's exclusions and exceptions
    assert "numerator" in seen["CMS177FHIRChildMDDSuicideAssmt"], seen
    assert {"numerator", "denominator_exclusion", "denominator_exception"} <= seen[
        "CMS22FHIRPCSBPScreeningFollowUp"
    ]
    derived = (
        "CMS22FHIRPCSBPScreeningFollowUp",
        "Group_1",
        "bundle:derived/FirstHTNWeightBeforeYear.json",
        None,
    )
    points = {(p.start, p.end): _series(con, p, None).get(derived, (0,) * 7) for p in periods[:3]}
    counts = {
        k: (v[COUNTS.index("initial_population")], v[COUNTS.index("numerator")]) for k, v in points.items()
    }
    assert counts == {  # (initial population, numerator) of the derived patient's one encounter
        (date(2026, 1, 1), date(2026, 12, 31)): (1, 0),  # the weight-reduction order is before the period
        (date(2026, 2, 1), date(2027, 1, 31)): (0, 0),  # the encounter is before the period
        (date(2025, 7, 1), date(2026, 6, 30)): (1, 1),  # both orders during the period
    }


def test_every_measure_takes_the_period_as_columns() -> None:
    """Rendered with the period as columns, no measure or library define keeps a date of its own: every
    boundary is an expression of the period row (a Python date computed from the period would leave a
    literal here, and a series would use one period's date for all). The only literals allowed are the
    series' spans (``PeriodColumns.span``, ``.ends``), which bound what is computed once for all
    periods."""
    periods = (Period(date(2001, 2, 3), date(2002, 3, 4)), Period(date(2003, 4, 5), date(2004, 5, 6)))
    ctx = Context(PeriodColumns("mp__", periods))
    spans = {d for p in (ctx.period.span, ctx.period.ends) for d in (p.start_date, p.end_date)}
    for module in all_measures():
        rendered = render(module, ctx)
        sql = rendered.select + "".join(d.sql for d in rendered.library)
        assert "mp__.start_date" in sql or "mp__.end_date" in sql, module.measure.cms_id
        for literal in spans:
            sql = sql.replace(literal, "")
        assert "DATE '" not in sql and "TIMESTAMP '" not in sql, module.measure.cms_id
    with pytest.raises(AttributeError):
        PeriodColumns().start  # noqa: B018  -- no Python dates to compute with
    with pytest.raises(AttributeError, match="without its periods"):
        PeriodColumns().span  # noqa: B018  -- a series must say what its periods span


def test_center_scope_has_no_network_row(network: duckdb.DuckDBPyConnection) -> None:
    con = network
    p = series_periods("quarter", END, 1)
    measure_series(con, all_measures()[:3], p, centers=["c01"])
    centers = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT center FROM {SERIES_TABLE} WHERE period_start = ? AND period_end = ?",
            [p[0].start, p[0].end],
        ).fetchall()
    }
    assert centers == {"c01"}
    with pytest.raises(ValueError, match="unknown equity dimension"):
        measure_series(con, all_measures()[:1], p, dimensions=["center"])


def test_hidden_points_rule() -> None:
    num = np.array([0, 5, 15, 20, 11, 30, 9])
    den = np.array([20, 20, 20, 20, 22, 41, 10])
    # 0 of 20: shown (zero is published); 5 met / 5 not met: hidden; 20 of 20: shown;
    # 11 of 22: shown; 30 of 41 (11 not met): shown; a denominator of 10: hidden
    assert hidden_points(num, den).tolist() == [False, True, True, False, False, False, True]


def test_series_cli_writes_suppressed_csv_and_chart(network_path: Path, tmp_path: Path) -> None:
    """The real entry point (only the `series` module registered), on a copy of the warehouse."""
    db = tmp_path / "w.duckdb"
    shutil.copy(network_path, db)
    out = tmp_path / "out"
    argv = [
        "series",
        "--measure",
        "CMS165",
        "--end",
        "2026-12",
        "--months",
        "6",
        "--chart",
        "p",
        "--by",
        "race_ethnicity",
        "--stratum",
        "White non-Hispanic",
        "--format",
        "svg",
        "--out",
        str(out),
        "--warehouse",
        str(db),
    ]
    code = "import sys\nfrom chc_equity.cli import main\nsys.argv = ['chc-equity', *sys.argv[1:]]\nmain()\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "CMS165_series.csv")
    assert len(df) == 6 and list(df["label"])[-1] == "Dec 2026"
    con = duckdb.connect(str(db), read_only=True)
    counts = con.execute(
        f"SELECT period_end, numerator, performance_denominator FROM {SERIES_TABLE} WHERE center = '*' "
        "AND measure = 'CMS165FHIRControllingHighBP' "
        "AND stratum = 'White non-Hispanic' ORDER BY period_end"
    ).fetchall()
    con.close()
    truth = {str(e): (n, d) for e, n, d in counts}
    for _, row in df.iterrows():
        n, d = truth.get(row["period_end"], (0, 0))
        hidden = d < 11 or 0 < n < 11 or 0 < d - n < 11
        assert row["suppressed"] == hidden
        if hidden:
            assert (
                pd.isna(row["numerator"]) and pd.isna(row["performance_denominator"]) and pd.isna(row["rate"])
            )
        else:
            assert (row["numerator"], row["performance_denominator"]) == (n, d)
            assert row["rate"] == pytest.approx(n / d)
    assert 0 < df["suppressed"].sum() < len(df), "want both hidden and published points"
    assert (out / "CMS165_Group_1_p.svg").read_text().lstrip().startswith("<svg")
    assert (out / "CMS165_Group_1_p_signals.txt").read_text().strip()
