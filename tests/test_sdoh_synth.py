"""Social-needs metrics on a generated network agree with truth.json, and every planted gap is found.

One center of 1,500 synthetic patients (seed 5) through the real ingest: counts the generator fixes
exactly (eligible, screened, positive and referrals per domain) must be equal; closures, which are
random, must fall within the 99 % interval of their expected count per language; the planted gaps must
be flagged: lower closure for the planted language at q < 0.05 (equity layer), the slow organization
(Mann-Whitney U, p < 0.05) and the organizations at capacity.
"""

from __future__ import annotations

import json
import math
from datetime import date

import duckdb
import pytest

from chc_equity.ingest import load
from chc_equity.sdoh import metrics, strata
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

START, END = date(2026, 1, 1), date(2026, 12, 31)
Z99 = 2.576

pytestmark = pytest.mark.slow  # about 10 s: a generated network, ingest and the equity strata


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, dict]:
    folder = tmp_path_factory.mktemp("sdoh-net")
    generate(folder / "net", centers=1, patients=1500, seed=5, period_end=END, cfg=load_config())
    truth = json.loads((folder / "net" / "truth.json").read_text())["sdoh"]
    con = connect(folder / "w.duckdb")
    load(con, [folder / "net" / "c01"], "c01", after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    metrics.build(con, period_start=START, period_end=END)
    return con, truth


def test_exact_counts_equal_truth(network: tuple[duckdb.DuckDBPyConnection, dict]) -> None:
    con, truth = network
    t = truth["centers"]["c01"]
    rows = con.execute(
        f"SELECT domain, metric, numerator, denominator FROM {metrics.METRICS} WHERE site = 'All'"
    ).fetchall()
    m = {(d, k): (n, den) for d, k, n, den in rows}
    assert m[("any", "eligible")][0] == t["eligible"]
    assert m[("any", "screened")] == (t["screened"], t["eligible"])  # nobody declines in the generator
    assert {d: m[(d, "positive")][0] for d in t["positive"]} == t["positive"]
    referrals = dict(con.execute(f"SELECT domain, count(*) FROM {metrics.REFERRAL} GROUP BY 1").fetchall())
    assert referrals == t["referrals"]


def test_closure_per_language_within_99_percent(network: tuple[duckdb.DuckDBPyConnection, dict]) -> None:
    con, truth = network
    closed = dict(
        con.execute(
            f"""SELECT a.language, count(*) FILTER (WHERE r.closed) FROM {metrics.REFERRAL} r
                  JOIN patient_attributes a USING (center, patient_id) GROUP BY 1"""
        ).fetchall()
    )
    checked = 0
    for language, v in truth["centers"]["c01"]["closure_by_language"].items():
        sd = math.sqrt(v["variance_closed"])
        assert abs(closed.get(language, 0) - v["expected_closed"]) <= Z99 * sd + 1, language
        checked += v["referrals"] >= 30
    assert checked >= 2


def test_planted_gaps_are_flagged(network: tuple[duckdb.DuckDBPyConnection, dict]) -> None:
    from scipy.stats import mannwhitneyu

    con, truth = network
    planted = truth["planted"]
    df = strata.equity_table(con)
    lang = df[(df["metric"] == "closure") & (df["domain"] == "any") & (df["dimension"] == "language")]
    flagged = lang[lang["worse_than_reference"].fillna(False).astype(bool)]
    assert list(flagged["stratum"]) == [planted["closure"]["language"]]
    assert float(flagged["q_value"].iloc[0]) < 0.05
    days = con.execute(
        f"SELECT organization_id, days_to_closure FROM {metrics.REFERRAL} WHERE closed"
    ).fetchall()
    slow = [d for o, d in days if o == planted["slow_org"]]
    rest = [d for o, d in days if o != planted["slow_org"]]
    assert len(slow) >= 10 and mannwhitneyu(slow, rest, alternative="greater").pvalue < 0.05
    cap = dict(
        con.execute(
            f"""SELECT organization_id, avg(rejected_at_capacity::INT) FROM {metrics.REFERRAL}
                 GROUP BY 1"""
        ).fetchall()
    )
    assert {o for o, rate in cap.items() if rate > 0} == set(planted["at_capacity_orgs"])
    assert all(cap[o] > 0.4 for o in planted["at_capacity_orgs"])
