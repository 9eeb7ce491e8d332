"""Social-needs metrics over time (issue 15 build item 1): every point of ``sdoh_series`` equals a
single-period run of the sdoh metrics for that period -- all patients (every center, the network) from
``sdoh_metrics`` and every stratum from the equity breakdown (``sdoh.strata.equity_table``, unsuppressed)
-- and the single-period tables a run left are still there, unchanged, after the series.

A small generated network (2 centers, 700 patients, seed 7) through the real ingest; two calendar
quarters, the year and a rolling 12-month period, two dimensions.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from chc_equity.ingest import load
from chc_equity.measures.series import series_periods
from chc_equity.measures.vocabulary import Period
from chc_equity.sdoh import metrics, strata
from chc_equity.sdoh.series import TABLE, sdoh_series
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

END = date(2026, 12, 31)
DIMS = ("race_ethnicity", "language")
PERIODS = [
    *series_periods("quarter", END, 2),
    Period(date(2026, 1, 1), END),
    Period(date(2025, 7, 1), date(2026, 6, 30)),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sdoh-series")
    summary = generate(folder / "net", centers=2, patients=700, seed=7, period_end=END, cfg=load_config())
    con = connect(folder / "w.duckdb")
    for c in (c["id"] for c in summary["centers"]):
        load(con, [folder / "net" / c], c, after_load=lambda x, ctr: build_views(x, centers=[ctr]))
    con.close()
    return folder / "w.duckdb"


@pytest.fixture(scope="module")
def con(warehouse: Path) -> duckdb.DuckDBPyConnection:
    con = connect(warehouse)
    yield con
    con.close()


def _series(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {TABLE}").df()


def test_every_point_equals_a_single_period_run(con: duckdb.DuckDBPyConnection) -> None:
    metrics.build(con, period_start=date(2026, 1, 1), period_end=END)  # what a user's last run left
    before = con.execute(f"SELECT * FROM {metrics.METRICS} ORDER BY ALL").fetchall()
    written = sdoh_series(con, PERIODS, dimensions=DIMS)
    assert con.execute(f"SELECT * FROM {metrics.METRICS} ORDER BY ALL").fetchall() == before
    series = _series(con)
    assert written == len(series)
    checked = strata_checked = 0
    for p in PERIODS:
        metrics.build(con, period_start=p.start, period_end=p.end)
        single = con.execute(f"SELECT * FROM {metrics.METRICS} WHERE site = 'All'").df()
        got = series[(series["period_start"].dt.date == p.start) & (series["period_end"].dt.date == p.end)]
        overall = got[got["stratum_dimension"].isna()]
        assert len(overall) == len(single) > 0, p
        key = ["center", "domain", "metric"]
        both = single.merge(overall, on=key, suffixes=("", "_s"), how="outer", indicator=True)
        assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"][key]
        for col in ("numerator", "denominator", "value"):
            a, b = both[col].astype("Float64"), both[f"{col}_s"].astype("Float64")
            assert ((a == b) | (a.isna() & b.isna())).all(), (p, col)
        checked += len(both)
        # strata: the single period's equity breakdown, unsuppressed (threshold 1): per center and, for
        # the network, the pooled units of every center (a patient of two centers counted in each)
        eq = strata.equity_table(con, threshold=1, dimensions=DIMS)
        assert (eq["center"] == metrics.NETWORK).any()
        st = got[got["stratum_dimension"].notna()].rename(columns={"stratum_dimension": "dimension"})
        key = ["center", "metric", "domain", "dimension", "stratum"]
        m = eq.merge(st, on=key, suffixes=("", "_s"), how="outer", indicator=True)
        assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"][key].head()
        assert (m["numerator"].astype(int) == m["numerator_s"]).all() and (
            m["denominator"].astype(int) == m["denominator_s"]
        ).all(), p
        # a stratum split adds up to the all-patients row of the same metric
        tot = overall[overall["metric"].isin(strata_metrics(eq))].set_index(["center", "metric", "domain"])
        for (c, metric, domain, _dim), g in st.groupby(["center", "metric", "domain", "dimension"]):
            if (c, metric, domain) in tot.index:
                assert g["denominator"].sum() == tot.loc[(c, metric, domain), "denominator"], (c, metric)
        strata_checked += len(m)
    assert checked > 200 and strata_checked > 500


def strata_metrics(eq: pd.DataFrame) -> set[str]:
    return set(eq["metric"])


def test_series_periods_are_replaced_not_duplicated(con: duckdb.DuckDBPyConnection) -> None:
    sdoh_series(con, PERIODS[:1])
    n = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    sdoh_series(con, PERIODS[:1])
    assert con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == n
    with pytest.raises(ValueError, match="unknown equity dimension"):
        sdoh_series(con, PERIODS[:1], dimensions=["shoe_size"])


def test_series_command_writes_a_suppressed_csv(
    warehouse: Path, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """`chc-equity series --measure sdoh:screened` (two quarters): the CSV has one row per period with the
    counts of ``sdoh_series`` or blanks where suppressed; a key that is not a metric is refused."""
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app

    con.close()  # the command opens the warehouse itself
    _register("series")
    args = ["series", "--measure", "sdoh:screened", "--kind", "quarter", "--months", "2", "--end", "2026-12"]
    args += ["--warehouse", str(warehouse), "--out", str(tmp_path), "--format", "svg"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(tmp_path / "sdoh_screened_series.csv")
    assert list(df["label"]) == ["2026 Q3", "2026 Q4"] and set(df["center"]) == {"*"}
    back = connect(warehouse)
    try:
        stored = back.execute(
            f"""SELECT numerator, denominator FROM {TABLE} WHERE metric = 'screened' AND domain = 'any'
                AND center = '*' AND stratum_dimension IS NULL
                AND period_start IN (DATE '2026-07-01', DATE '2026-10-01')
                AND datediff('month', period_start, period_end) = 2 ORDER BY period_start"""
        ).fetchall()
    finally:
        back.close()
    for row, (x, d) in zip(df.itertuples(), stored, strict=True):
        assert row.suppressed or (row.numerator, row.denominator) == (x, d)
    bad = CliRunner().invoke(app, [*args[:2], "sdoh:happiness", *args[3:]])
    assert bad.exit_code != 0 and "the metric is one of" in bad.output
