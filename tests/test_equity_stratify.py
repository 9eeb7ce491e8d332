"""Stratified equity tables end to end: CLI files, suppression audit on them, planted-disparity detection.

One small generated network per disparity setting is built once per module (generate -> ingest ->
measures), then every test reads it.
"""

from __future__ import annotations

import json
import math
import os
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from chc_equity.cli import app
from chc_equity.cli import equity as _equity_cli  # noqa: F401  (registers the command)
from chc_equity.cli import synth as _synth_cli  # noqa: F401
from chc_equity.equity.audit import determined_quantities
from chc_equity.equity.stratify import NETWORK_REFERENCE, equity_table, equity_tables
from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.network import precompute
from chc_equity.network.stats import funnel_limits
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

PS, PE = date(2026, 1, 1), date(2026, 12, 31)
PLANTED_DIMS = ("race_ethnicity", "language", "income", "insurance", "sdoh_risk", "center")


def build_network(folder: Path, *, patients: int, seed: int, disparities: bool, centers: int = 3) -> Path:
    """Generate, ingest and run all measures; returns the warehouse path (truth.json in folder/net)."""
    cfg = load_config(None, disparities=disparities)
    summary = generate(folder / "net", centers=centers, patients=patients, seed=seed, period_end=PE, cfg=cfg)
    path = folder / "w.duckdb"
    con = connect(path)
    for c in summary["centers"]:
        load(con, [folder / "net" / c["id"]], c["id"])
    build_views(con)
    run_measures(con, all_measures(), period_start=PS, period_end=PE)
    con.close()
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_network(tmp_path_factory.mktemp("eq"), patients=2500, seed=3, disparities=True)


def _cli(*args: str) -> None:
    result = CliRunner().invoke(app, ["equity", *args])
    assert result.exit_code == 0, result.output


# --- CLI output ------------------------------------------------------------------------------------
REQUIRED = (
    "measure",
    "group_id",
    "dimension",
    "stratum",
    "denominator",
    "numerator",
    "rate",
    "ci_low",
    "ci_high",
    "reference",
    "rate_difference",
    "rd_ci_low",
    "rd_ci_high",
    "rate_ratio",
    "p_value",
    "q_value",
    "gap_to_equity",
    "suppressed",
    "unreliable",
)


def test_cli_writes_tables_and_charts(network: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    _cli(
        "--measure", "CMS122", "--measure", "CMS125", "--by", "insurance", "--warehouse", str(network),
        "--out", str(out), "--format", "csv,parquet,json,duckdb", "--charts", "html,svg",
    )  # fmt: skip
    df = pd.read_csv(out / "equity.csv")
    assert set(REQUIRED) <= set(df.columns)
    assert set(df["measure"]) == {"CMS122", "CMS125"}
    assert len(pd.read_parquet(out / "equity.parquet")) == len(df)
    assert len(json.loads((out / "equity.json").read_text())) == len(df)
    with duckdb.connect(str(out / "equity.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM equity").fetchone()[0] == len(df)
        assert db.execute("SELECT count(*) FROM equity_summary").fetchone()[0] > 0
    for name in ("forest.html", "forest.svg", "gap.html", "gap.svg", "equity_summary.csv"):
        assert (out / name).stat().st_size > 0
    # Unknown is a stratum of its own (no coverage -> Unknown), never dropped; the reference is one row
    for _, g in df.groupby(["measure", "group_id"]):
        assert g["is_reference"].sum() == 1
        assert g["denominator"].fillna(0).le(g["denominator"].fillna(0).sum()).all()
    shown = df[~df["suppressed"]]
    assert (shown["ci_low"] <= shown["rate"]).all() and (shown["rate"] <= shown["ci_high"]).all()
    assert df.loc[df["suppressed"], ["rate", "p_value", "q_value", "gap_to_equity"]].isna().all().all()


def test_no_disparities_cli_is_small_cell_safe_and_unknown_kept(network: Path) -> None:
    con = duckdb.connect(str(network))
    rows = equity_table(con, "CMS125", ["race_ethnicity"], period_start=PS, period_end=PE)
    con.close()
    strata = {r.stratum for r in rows}
    assert "Unknown" in strata
    # Unknown is reported (counts, rate) but never ranked: no reference role, test, q-value or flag
    unknown = [r for r in rows if r.stratum == "Unknown"]
    assert all(not r.is_reference and r.reference != "Unknown" for r in unknown)
    assert all(r.p_value is None and r.q_value is None and r.rate_difference is None for r in unknown)
    assert not any(r.worse_than_reference or r.better_than_reference for r in unknown)
    for r in rows:
        if r.numerator is not None:
            assert r.numerator == 0 or r.numerator >= 11
            assert (
                r.denominator is None or r.denominator - r.numerator == 0 or r.denominator - r.numerator >= 11
            )
        if r.denominator is not None:
            assert r.denominator == 0 or r.denominator >= 11


def _published_system(frames: list[pd.DataFrame], totals: dict[tuple[str, str], tuple[int, int]]):
    """Linear system an attacker can build from the published files for one measure group.

    Unknowns: numerator x and denominator d of every crossed cell (A×B). Published: every non-empty
    count in the crossed file and in both one-way files (as sums over the cells), and the totals.
    """
    crossed = next(f for f in frames if f["dimension2"].notna().all())
    cells = list(zip(crossed["stratum"], crossed["stratum2"], strict=True))
    index = {c: i for i, c in enumerate(cells)}
    n = len(cells)
    rows_a: list[np.ndarray] = []
    rhs: list[float] = []

    def add(members: list[int], offset: int, value: float) -> None:
        row = np.zeros(2 * n)
        row[[m + offset for m in members]] = 1.0
        rows_a.append(row)
        rhs.append(value)

    for f in frames:
        for _, r in f.iterrows():
            if pd.notna(r["dimension2"]):
                members = [index[(r["stratum"], r["stratum2"])]]
            elif r["dimension"] == crossed["dimension"].iloc[0]:
                members = [index[c] for c in cells if c[0] == r["stratum"]]
            else:
                members = [index[c] for c in cells if c[1] == r["stratum"]]
            if pd.notna(r["numerator"]):
                add(members, 0, float(r["numerator"]))
            if pd.notna(r["denominator"]):
                add(members, n, float(r["denominator"]))
    num_total, den_total = totals
    add(list(range(n)), 0, num_total)
    add(list(range(n)), n, den_total)
    return cells, np.array(rows_a), np.array(rhs)


def test_no_suppressed_cell_recoverable_from_cli_files(network: Path, tmp_path: Path) -> None:
    """1-D and crossed files of the CLI, plus the measure totals, never determine a suppressed count.

    The attacker's unknowns are the crossed cells' numerators and denominators (``x <= d``, both >= 0);
    with y = d - x the system is the one the suppression protected, so the exact audit applies.
    """
    a, b = "race_ethnicity", "language"
    for dims, sub in (([a], "a"), ([b], "b"), ([a, b], "ab")):
        args = ["--measure", "CMS125", "--measure", "CMS122", "--measure", "CMS130"]
        _cli(
            *args,
            *sum((["--by", d] for d in dims), []),
            "--warehouse",
            str(network),
            "--out",
            str(tmp_path / sub),
        )
    con = duckdb.connect(str(network))
    totals = dict(
        ((m, g), (int(x), int(d)))
        for m, g, x, d in con.execute(
            "SELECT measure, group_id, count(*) FILTER (WHERE numerator), count(*) FILTER (WHERE denominator "
            "AND NOT denominator_exclusion AND NOT denominator_exception) FROM measure_results GROUP BY ALL"
        ).fetchall()
    )
    con.close()
    frames = {s: pd.read_csv(tmp_path / s / "equity.csv") for s in ("a", "b", "ab")}
    checked = 0
    for (name, group), crossed in frames["ab"].groupby(["measure_name", "group_id"]):
        parts = [f[(f["measure_name"] == name) & (f["group_id"] == group)] for f in frames.values()]
        # one-way files also pass the audit on their own (checked through the combined system)
        cells, a_pub, b_pub = _published_system(parts, totals[(name, group)])
        n = len(cells)
        # Attacker variables v = [x (n), y = d - x (n)] >= 0; rewrite published d-sums as x + y sums.
        to_xy = np.zeros((2 * n, 2 * n))
        to_xy[:n, :n] = np.eye(n)
        to_xy[n:, :n] = np.eye(n)
        to_xy[n:, n:] = np.eye(n)
        m = a_pub @ to_xy
        hidden_cells = crossed["suppressed"].to_numpy(dtype=bool)
        if not hidden_cells.any():
            continue
        # Truth for the audit comes from the warehouse (only the test knows it).
        truth = _true_cells(network, name, group, cells)
        values = np.concatenate([truth[:, 0], truth[:, 1] - truth[:, 0]]).astype(np.int64)
        assert np.allclose(m @ values, b_pub), "published files inconsistent with the warehouse"
        # As a LinearTable-like system: each published row is an equation "constant = sum(members)".
        matrix = np.hstack([m, -b_pub[:, None]])
        ext_values = np.append(values, 1)
        hidden = np.append(np.concatenate([hidden_cells, hidden_cells]), False)
        det = determined_quantities(matrix, ext_values, hidden)
        assert not det[:n][hidden_cells].any(), f"{name} {group}: numerator recoverable"
        # a hidden denominator d = x + y is recoverable only if x and y both are; covered above for x.
        checked += 1
    assert checked > 0


def _true_cells(path: Path, name: str, group: str, cells: list[tuple[str, str]]) -> np.ndarray:
    con = duckdb.connect(str(path), read_only=True)
    got = {
        (s1, s2): (x, d)
        for s1, s2, x, d in con.execute(
            """SELECT a.race_ethnicity, a.language, count(*) FILTER (WHERE r.numerator),
                      count(*) FILTER (WHERE r.denominator AND NOT r.denominator_exclusion
                                       AND NOT r.denominator_exception)
               FROM measure_results r JOIN patient_attributes a USING (center, patient_id)
               WHERE r.measure = ? AND r.group_id = ? GROUP BY ALL""",
            [name, group],
        ).fetchall()
    }
    con.close()
    return np.array([got[c] for c in cells], dtype=np.int64)


# --- planted disparities ---------------------------------------------------------------------------
# Issue 5: >= 95 % of the planted disparities flagged (q < 0.05, planted direction) at the default planted
# size, <= 5 % of strata flagged with --no-disparities, over several seeds. The planted size is the demo
# network (src/chc_equity/demo.py: 8 centers, 20,000 patients); the default config plants only cells
# whose expected power there is >= ~99 % (expected_power below), so the test builds that size.
PLANTED_PATIENTS, PLANTED_CENTERS = 20_000, 8
SEEDS = (1, 2, 3)
# The demo-size planted networks cost ~30 CPU-s each; `make test` replicates one seed, and
# CHC_EQUITY_ALL_SEEDS=1 replicates every seed (each seed is deterministic and must pass on its own).
PLANTED_SEEDS = SEEDS if os.environ.get("CHC_EQUITY_ALL_SEEDS") == "1" else SEEDS[:1]
MIN_CELL_POWER = 0.985  # every planted cell at this size (CMS125 uninsured is the weakest, ~0.987-0.994)
_UNKNOWN = ("Unknown", "unknown")


def _ours(dim: str, stratum: str) -> str:
    if dim == "insurance":
        return stratum.capitalize()
    if dim == "income":
        return {"101-200%": "101-150%", "unknown": "Unknown"}.get(stratum, stratum)
    return stratum


def expected_power(truth: dict, *, inverse: frozenset[str], alpha: float = 0.05) -> dict[tuple, float]:
    """Probability that each planted cell of ``truth.json["measures"]`` is flagged, from the truth alone.

    Mirrors what the equity layer does with the counts: the reference is the largest stratum other than
    Unknown; the stratum's rate is compared with it by a two-sided two-sample test (Fisher's exact test,
    here its normal approximation, the pooled z-test, which it matches closely at these sizes); BH runs
    over the other strata of the dimension (m of them). Rejecting at Bonferroni ``alpha / m`` implies BH
    q < alpha, so this is a lower bound (up to that approximation). Centers are compared with the network
    rate at ``alpha`` (no BH; :func:`center_power`). Under the alternative the counts are Poisson-binomial
    sums: their variance is truth's ``variance_numerator``; the pooled null SE uses the expected pooled
    rate. A cell counts only when it moves in its planted direction (factor < 1: worse, i.e. higher for
    inverse measures). Returns (measure, dimension, generator stratum) -> power; a planted cell that is
    the reference -> 0.
    """
    out: dict[tuple, float] = {}
    for cms, dims in truth.items():
        for dim, strata in dims.items():
            if dim == "overall":
                continue
            cells = {s: c for s, c in strata.items() if c["denominator"] > 0}
            if dim == "center":
                for s, c in cells.items():
                    if c["multiplier"] != 1:
                        out[(cms, dim, s)] = center_power(cells, s, inverse=cms in inverse, alpha=alpha)
                continue
            ref = max((s for s in cells if s not in _UNKNOWN), key=lambda s: cells[s]["denominator"])
            r, m = cells[ref], len(cells) - 1
            z = float(norm.isf(alpha / (2 * m)))
            for s, c in cells.items():
                if c["multiplier"] == 1:
                    continue
                if s == ref:
                    out[(cms, dim, s)] = 0.0
                    continue
                n1, n0 = c["denominator"], r["denominator"]
                pooled = (c["expected_numerator"] + r["expected_numerator"]) / (n1 + n0)
                se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
                se1 = math.sqrt(c["variance_numerator"] / n1**2 + r["variance_numerator"] / n0**2)
                worse_is_higher = cms in inverse
                sign = 1 if (c["multiplier"] < 1) == worse_is_higher else -1
                delta = sign * (c["expected_rate"] - r["expected_rate"])
                out[(cms, dim, s)] = float(norm.cdf((delta - z * se0) / se1)) if se1 > 0 else float(delta > 0)
    return out


def center_power(cells: dict, center: str, *, inverse: bool, alpha: float) -> float:
    """Power of the center-vs-network rule (normal approximation of the exact binomial test) for one
    planted center: its rate against the expected network rate, which includes the center itself, so
    ``p_c - p_0 = (1 - w) (p_c - p_rest)`` with ``w`` the center's share of the denominator."""
    c = cells[center]
    rest = [v for k, v in cells.items() if k != center]
    n_c, n_rest = c["denominator"], sum(v["denominator"] for v in rest)
    x_rest = sum(v["expected_numerator"] for v in rest)
    p0 = (c["expected_numerator"] + x_rest) / (n_c + n_rest)
    w = n_c / (n_c + n_rest)
    se0 = math.sqrt(p0 * (1 - p0) / n_c)
    var_rest = sum(v["variance_numerator"] for v in rest) / n_rest**2
    se1 = (1 - w) * math.sqrt(c["variance_numerator"] / n_c**2 + var_rest)
    sign = 1 if (c["multiplier"] < 1) == inverse else -1
    delta = sign * (c["expected_rate"] - p0)
    z = float(norm.isf(alpha / 2))
    return float(norm.cdf((delta - z * se0) / se1)) if se1 > 0 else float(delta > 0)


def detection(path: Path, truth_path: Path) -> dict:
    """Planted cells (truth multiplier != 1) flagged in the planted direction; flags among the rest.

    Reads each measure's first group (truth key = CMS id, as synth.check does). ``missed`` lists
    planted cells not flagged (measure/dimension/stratum, rate vs reference, q).
    """
    truth = json.loads(truth_path.read_text())["measures"]
    con = duckdb.connect(str(path))
    out: dict = dict(planted=0, detected=0, planted_reference=0, compared=0, flagged=0, missed=[])
    for dim in PLANTED_DIMS:
        rows, _ = equity_tables(con, None, [dim], period_start=PS, period_end=PE)
        by = {(r.measure, r.stratum): r for r in rows if r.group_id == "Group_1"}
        for cms, dims in truth.items():
            for stratum, cell in dims.get(dim, {}).items():
                r = by.get((cms, _ours(dim, stratum)))
                if r is None or r.p_value is None and not r.is_reference:
                    continue  # suppressed or never ranked (Unknown)
                factor = cell["multiplier"]
                if factor != 1 and r.is_reference:
                    out["planted_reference"] += 1
                elif factor != 1:
                    out["planted"] += 1
                    hit = r.worse_than_reference if factor < 1 else r.better_than_reference
                    out["detected"] += int(hit)
                    if not hit:
                        out["missed"].append(f"{cms} {dim}={stratum} x{factor}: p={r.p_value:.3g}")
                elif not r.is_reference:
                    out["compared"] += 1  # flagged: q < 0.05 (p < 0.05 for centers), either direction
                    out["flagged"] += int(r.worse_than_reference or r.better_than_reference)
    con.close()
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_no_disparities_false_alarm_rate(tmp_path: Path, seed: int) -> None:
    path = build_network(tmp_path, patients=2000, seed=seed, disparities=False)
    res = detection(path, tmp_path / "net" / "truth.json")
    print(
        f"\n--no-disparities seed {seed}, 2,000 patients: {res['flagged']}/{res['compared']} strata flagged"
    )
    assert res["planted"] == 0 and res["compared"] > 100
    assert res["flagged"] / res["compared"] <= 0.05, res


@pytest.mark.slow
@pytest.mark.parametrize("seed", PLANTED_SEEDS)
def test_planted_disparities_detected_at_demo_size(tmp_path: Path, seed: int) -> None:
    """Each seed's network is the demo size; every seed must reach 95 % on its own, so the pooled
    figure does too (per-seed tests keep the seeds independent for pytest-xdist)."""
    path = build_network(
        tmp_path, patients=PLANTED_PATIENTS, seed=seed, disparities=True, centers=PLANTED_CENTERS
    )
    truth = json.loads((tmp_path / "net" / "truth.json").read_text())["measures"]
    power = expected_power(
        truth, inverse=frozenset(m.measure.cms_id for m in all_measures() if m.measure.inverse)
    )
    weakest = min(power, key=power.__getitem__)
    res = detection(path, tmp_path / "net" / "truth.json")
    print(
        f"\nplanted seed {seed}, {PLANTED_PATIENTS:,} patients: {res['detected']}/{res['planted']} flagged "
        f"({res['detected'] / res['planted']:.1%}); expected {sum(power.values()):.2f} "
        f"(weakest {weakest}: {power[weakest]:.4f}); missed {res['missed']}; "
        f"non-planted strata flagged {res['flagged']}/{res['compared']}"
    )
    # why detection is expected: every planted cell has >= ~99 % power at this size
    assert power[weakest] >= MIN_CELL_POWER, (weakest, power[weakest])
    assert res["planted"] == len(power) and res["planted_reference"] == 0
    assert res["detected"] >= 0.95 * res["planted"], res


def test_heat_map_funnel_plot_and_equity_by_center_give_one_answer(network: Path) -> None:
    """Issue 11, item 7: "worse than the rest" is one rule. For every center cell: the heat-map signal
    (agg_measure), the position against the 95 % funnel limits at the center's denominator (the function
    that draws agg_funnel's lines, checked against them), the funnel band, the p-value, and
    `equity --by center` (equity_tables) all agree -- flagged iff outside the funnel, on that side."""
    con = duckdb.connect(str(network))
    precompute(con, period_start=PS, period_end=PE, equity=False)
    drawn = con.execute("SELECT network_rate, n, lo95, hi95, lo998, hi998 FROM agg_funnel").fetchall()
    assert drawn
    for p0, n, lo95, hi95, lo998, hi998 in drawn:
        assert (lo95, hi95) == tuple(float(v[0]) for v in funnel_limits(p0, [n], 0.95))
        assert (lo998, hi998) == tuple(float(v[0]) for v in funnel_limits(p0, [n], 0.998))
    cells = con.execute(
        "SELECT measure, group_id, center, numerator, performance_denominator, rate, p_value, signal, band, "
        "inverse, network_rate FROM agg_measure WHERE center <> '*' AND performance_denominator > 0"
    ).fetchall()
    names = sorted({c[0] for c in cells})
    rows, _ = equity_tables(con, names, ["center"], period_start=PS, period_end=PE)
    equity = {(r.measure_name, r.group_id, r.stratum): r for r in rows}
    flagged = published = 0
    for m, g, center, x, n, rate, p, signal, band, inverse, p0 in cells:
        (lo,), (hi,) = funnel_limits(p0, [n], 0.95)
        below, above = rate < lo, rate > hi
        assert (signal == "worse") == (above if inverse else below), (m, g, center)
        assert (signal == "better") == (below if inverse else above), (m, g, center)
        assert (band != "within 95%") == (below or above)
        assert (p is not None and p < 0.05) == (signal in ("worse", "better"))
        flagged += signal in ("worse", "better")
        row = equity[(m, g, center)]
        assert row.reference == NETWORK_REFERENCE and not row.is_reference
        if row.suppressed:
            assert not row.worse_than_reference and not row.better_than_reference
            continue
        published += 1
        assert (row.numerator, row.denominator) == (x, n)
        assert row.worse_than_reference == (signal == "worse")
        assert row.better_than_reference == (signal == "better")
        assert row.p_value == pytest.approx(p, abs=1e-12) and row.q_value is None
    con.close()
    assert flagged >= 1 and published >= flagged  # the agreement is checked on real flags
    print(f"\n{len(cells)} center cells, {flagged} flagged, {published} published by `equity --by center`")


def test_unknown_never_in_disparity_summaries_nor_reference(network: Path) -> None:
    """Issue 11, item 7: "Unknown" entered the disparity indices and could be flagged as a group. Over
    every measure and dimension (one-way and crossed), each summary counts only ranked strata."""
    con = duckdb.connect(str(network))
    checked = 0
    for by in (["race_ethnicity"], ["language"], ["income"], ["race_ethnicity", "sex"]):
        rows, summaries = equity_tables(con, None, by, period_start=PS, period_end=PE)
        for s in summaries:
            group = [r for r in rows if (r.measure, r.group_id) == (s.measure, s.group_id)]
            unknown = [r for r in group if "Unknown" in (r.stratum, r.stratum2)]
            assert s.reference is None or "Unknown" not in s.reference
            ranked_reliable = [r for r in group if r not in unknown and not r.suppressed and not r.unreliable]
            assert s.strata_summarised == len(ranked_reliable)
            for r in unknown:
                assert r.p_value is None and r.q_value is None and not r.is_reference
                assert not r.worse_than_reference and not r.better_than_reference
                checked += 1
    con.close()
    assert checked > 20


def test_cli_by_center_compares_with_the_network(network: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = CliRunner().invoke(
        app,
        ["equity", "--measure", "CMS2", "--measure", "CMS122", "--by", "center", "--warehouse", str(network),
         "--out", str(out), "--charts", "svg"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "worse than the network (outside the 95 % funnel)" in result.output
    df = pd.read_csv(out / "equity.csv")
    assert set(df["reference"]) == {"network"} and not df["is_reference"].any()
    assert df["q_value"].isna().all() and df["rr_ci_low"].isna().all()
    shown = df[~df["suppressed"]]
    assert shown["p_value"].notna().all() and (out / "forest.svg").stat().st_size > 0
    assert (shown["worse_than_reference"] <= (shown["p_value"] < 0.05)).all()
    named = CliRunner().invoke(
        app,
        ["equity", "--measure", "CMS2", "--by", "center", "--reference", "c01", "--warehouse", str(network)],
    )
    assert named.exit_code != 0 and "compares every center with the network" in named.output
