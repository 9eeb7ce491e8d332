"""Equity statistics pinned to statsmodels / scipy references at 1e-9, plus hand-computed summaries."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import binom, chi2_contingency, fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.proportion import test_proportions_2indep as sm_test_2indep

from chc_equity.equity import (
    UNKNOWN,
    between_group_variance,
    compare_strata,
    gap_to_equity,
    index_of_disparity,
    max_min_ratio,
    stratum_label,
)
from chc_equity.equity import intervals as iv
from chc_equity.equity import significance as sig

TOL = 1e-9

# Fixed cases: zero cells, 0 % and 100 %, n = 1, small and larger n.
SINGLE = [(x, n) for n in (1, 2, 7, 19, 20, 150) for x in sorted({0, 1, n // 2, n - 1, n})]
REFS = [(0, 30), (30, 30), (12, 40), (1, 1), (0, 1), (97, 120)]
PAIRS = [(x, n, xr, nr) for (x, n) in SINGLE for (xr, nr) in REFS]


def _cols(rows):
    return [np.array(c) for c in zip(*rows, strict=True)]


@pytest.mark.parametrize("alpha", [0.05, 0.10, 0.01])
def test_wilson_matches_statsmodels(alpha):
    x, n = _cols(SINGLE)
    low, upp = iv.wilson_interval(x, n, alpha)
    ref_low, ref_upp = proportion_confint(x, n, alpha=alpha, method="wilson")
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=TOL)
    np.testing.assert_allclose(upp, ref_upp, rtol=0, atol=TOL)
    assert np.all(upp[x == 0] > 0) and np.all(low[x == n] < 1)  # non-degenerate at 0 % / 100 %


def test_newcombe_difference_matches_statsmodels():
    x, n, xr, nr = _cols(PAIRS)
    low, upp = iv.newcombe_diff_interval(x, n, xr, nr)
    ref_low, ref_upp = confint_proportions_2indep(x, n, xr, nr, method="newcomb", compare="diff")
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=TOL)
    np.testing.assert_allclose(upp, ref_upp, rtol=0, atol=TOL)


# --- rate ratio: score interval, valid at 0 % and 100 % ------------------------------------------------
def _score_stat(x1, n1, x2, n2, ratio, correction):
    return sm_test_2indep(
        x1, n1, x2, n2, value=ratio, method="score", compare="ratio", correction=correction
    ).statistic


def _inverted_score_interval(x1, n1, x2, n2, correction=True, alpha=0.05):
    """Reference: the ratios statsmodels' own score test does not reject, by root finding (brentq)."""
    z = float(-__import__("scipy").special.ndtri(alpha / 2))
    if x1 + x2 == 0:
        return math.nan, math.nan
    est = (x1 / n1) / (x2 / n2) if x2 else math.inf
    # brackets just off the estimate (0/0 exactly at 1 when both rates are 100 %); statsmodels'
    # uncorrected quadratic overflows beyond e^+-15, far outside these limits
    low = 0.0
    if x1:
        hi = math.log(est) - 1e-6 if math.isfinite(est) else 15.0
        low = math.exp(
            brentq(
                lambda u: _score_stat(x1, n1, x2, n2, math.exp(u), correction) - z,
                -15,
                hi,
                xtol=1e-14,
                rtol=1e-15,
            )
        )
    upp = math.inf
    if x2:
        lo = math.log(est) + 1e-6 if est > 0 else -15.0
        upp = math.exp(
            brentq(
                lambda u: _score_stat(x1, n1, x2, n2, math.exp(u), correction) + z,
                lo,
                15,
                xtol=1e-14,
                rtol=1e-15,
            )
        )
    return low, upp


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("correction", [True, False])
def test_score_ratio_matches_statsmodels_away_from_the_edges(correction):
    """Miettinen-Nurminen (correction) and Koopman: statsmodels' closed form where it is valid."""
    interior = [(x, n, xr, nr) for x, n, xr, nr in PAIRS if 0 < x < n and 0 < xr < nr]
    x, n, xr, nr = _cols(interior)
    low, upp = iv.score_ratio_interval(x, n, xr, nr, correction=correction)
    for i, case in enumerate(interior):  # statsmodels' score ratio interval takes scalars only
        ref = confint_proportions_2indep(*case, method="score", compare="ratio", correction=correction)
        assert (low[i], upp[i]) == pytest.approx(ref, abs=TOL), case


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("correction", [True, False])
def test_score_ratio_equals_inverted_score_test_including_0_and_100_percent(correction):
    """Every pair, edges included, equals the inversion of statsmodels' score test at 1e-9.

    statsmodels' own interval is wrong at 100 %: (5/20 vs 30/30) gives [0.70, 0.70] and (20/20 vs
    30/30) a complex lower limit; the inversion of its test is right, so it is the reference there.
    """
    x, n, xr, nr = _cols(PAIRS)
    low, upp = iv.score_ratio_interval(x, n, xr, nr, correction=correction)
    for i, case in enumerate(PAIRS):
        ref_low, ref_upp = _inverted_score_interval(*case, correction=correction)
        if math.isnan(ref_low):
            assert math.isnan(low[i]) and math.isnan(upp[i]), case  # both 0 %: no ratio, no interval
            continue
        assert low[i] == pytest.approx(ref_low, abs=TOL), case
        assert upp[i] == ref_upp or upp[i] == pytest.approx(ref_upp, abs=TOL), case


def test_score_ratio_edges():
    low, upp = iv.score_ratio_interval([0, 5, 20, 0, 20, 5], [20] * 6, [8, 0, 30, 0, 8, 30], [30] * 6)
    assert low[0] == 0.0 and 0 < upp[0] < 1  # 0 % vs 27 %: the ratio is 0, the upper limit finite
    assert low[1] > 1 and upp[1] == math.inf  # vs a 0 % reference: unbounded above
    assert 0.8 < low[2] < 1 < upp[2] < 1.2  # both 100 %: a real interval around 1, not [1, 1]
    assert math.isnan(low[3]) and math.isnan(upp[3])  # both 0 %: 0/0, no interval
    assert low[4] > 1  # 100 % vs 27 %
    assert 0.1 < low[5] < upp[5] < 0.5  # 25 % vs 100 %: not the zero-width [0.7, 0.7] of statsmodels


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_score_ratio_excludes_1_iff_its_test_rejects():
    """The issue's inconsistency (interval excludes 1 while p = 0.06-0.07 at 100 %) cannot happen: the
    interval excludes 1 exactly when the Miettinen-Nurminen score test of ratio 1 rejects."""
    edges = [(x, n, xr, nr) for n in (11, 15, 19, 40) for x in (0, 1, n - 2, n) for xr, nr in REFS]
    x, n, xr, nr = _cols(PAIRS + edges)
    low, upp = iv.score_ratio_interval(x, n, xr, nr)
    checked = 0
    for i in range(x.size):
        if x[i] + xr[i] in (0, n[i] + nr[i]):
            continue  # no variation: nothing to test (ratio undefined or both 100 %, 1 inside)
        p = sm_test_2indep(x[i], n[i], xr[i], nr[i], method="score", compare="ratio").pvalue
        assert (low[i] > 1 or upp[i] < 1) == (p < 0.05), (x[i], n[i], xr[i], nr[i], low[i], upp[i], p)
        checked += 1
    assert checked > 100


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels divides by zero on the 0 % cases
def test_pvalue_matches_statsmodels_and_scipy():
    x, n, xr, nr = _cols(PAIRS)
    p = iv.two_proportion_pvalue(x, n, xr, nr)
    pooled = (x + xr) / (n + nr)
    regular = (pooled > 0) & (pooled < 1)
    for i in np.flatnonzero(regular):
        counts, nobs = [x[i], xr[i]], [n[i], nr[i]]
        ref_z = proportions_ztest(counts, nobs)[1]
        ref_score = sm_test_2indep(x[i], n[i], xr[i], nr[i], method="score", correction=False).pvalue
        table = [[x[i], n[i] - x[i]], [xr[i], nr[i] - xr[i]]]
        ref_chi2 = chi2_contingency(table, correction=False).pvalue
        assert p[i] == pytest.approx(ref_z, abs=TOL)
        assert p[i] == pytest.approx(ref_score, abs=TOL)
        assert p[i] == pytest.approx(ref_chi2, abs=TOL)
    # Degenerate pooled rate <=> both 0 % or both 100 %: equal rates, defined as p = 1.
    assert np.all(p[~regular] == 1.0)
    assert np.all(np.isfinite(p))


def test_fisher_matches_scipy_including_0_and_100_percent():
    x, n, xr, nr = _cols(PAIRS)
    p = sig.fisher_exact_pvalue(x, n, xr, nr)
    ref = [fisher_exact([[a, b - a], [c, d - c]]).pvalue for a, b, c, d in PAIRS]
    np.testing.assert_allclose(p, ref, rtol=0, atol=TOL)
    assert np.isnan(sig.fisher_exact_pvalue(0, 0, 3, 10))
    with pytest.raises(ValueError):
        sig.fisher_exact_pvalue(5, 3, 1, 2)


def _exact_level(pvalue, n1, n2, rates, alpha=0.05):
    """Type-I error of ``pvalue < alpha`` at each common rate, exactly: the probability of every
    outcome (x1, x2) of two independent binomials times whether it is rejected (no Monte Carlo)."""
    x1, x2 = np.arange(n1 + 1)[:, None], np.arange(n2 + 1)[None, :]
    reject = (pvalue(x1, n1, x2, n2) < alpha).astype(float)
    b1 = binom.pmf(np.arange(n1 + 1)[:, None], n1, rates)
    b2 = binom.pmf(np.arange(n2 + 1)[:, None], n2, rates)
    return np.einsum("ip,ij,jp->p", b1, reject, b2)


def test_small_strata_level_exact_test_holds_z_test_does_not():
    """Strata of 11-19 against references of 19, 100 and 1,000: Fisher's exact test (the rule of
    compare_strata) keeps its level at 0.05 for every true rate; the pooled z-test it replaces does not
    (0.07 for 19 vs 100; 0.10 for 11-15 vs 1,000 at extreme rates)."""
    rates = np.linspace(0.005, 0.995, 199)
    worst_z = worst_exact = 0.0
    for n1 in range(11, 20):
        for n2 in (19, 100, 1000):
            worst_exact = max(worst_exact, _exact_level(sig.fisher_exact_pvalue, n1, n2, rates).max())
            worst_z = max(worst_z, _exact_level(iv.two_proportion_pvalue, n1, n2, rates).max())
    print(f"\nexact level at 0.05, strata 11-19: z-test {worst_z:.4f}, Fisher {worst_exact:.4f}")
    assert worst_exact <= 0.05
    assert worst_z > 0.065  # the defect of issue 11, item 7, is real and measured


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(0, 10, 0, 5), (7, 7, 30, 30), (0, 1, 0, 1), (1, 1, 1, 1)]
)
def test_pvalue_equal_extreme_rates_is_one(x1, n1, x2, n2):
    assert iv.two_proportion_pvalue(x1, n1, x2, n2) == 1.0


def test_empty_stratum_yields_nan():
    assert np.isnan(iv.wilson_interval(0, 0)[0])
    assert np.isnan(iv.two_proportion_pvalue(0, 0, 3, 10))
    assert np.isnan(iv.newcombe_diff_interval(0, 0, 3, 10)[0])
    assert np.isnan(iv.score_ratio_interval(0, 0, 3, 10)[1])
    with pytest.raises(ValueError):
        iv.wilson_interval(5, 3)


@pytest.mark.parametrize(
    "pvals",
    [
        [0.01, 0.04, 0.03, 0.5, 0.2],
        [0.0, 1.0, 0.05, 0.05, 0.05, 1e-12],
        list(np.random.default_rng(7).uniform(size=37)),
        [0.3],
    ],
)
def test_bh_matches_multipletests(pvals):
    q = iv.bh_qvalues(pvals)
    ref = multipletests(pvals, method="fdr_bh")[1]
    np.testing.assert_allclose(q, ref, rtol=0, atol=TOL)


def test_bh_excludes_nan_from_family():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    q = iv.bh_qvalues(p)
    assert np.isnan(q[[1, 4]]).all()
    np.testing.assert_allclose(q[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="fdr_bh")[1], atol=TOL)
    assert np.isnan(iv.bh_qvalues([np.nan])).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels' score test at 0 % / 100 %
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.floats(0, 1), st.floats(0, 1))
def test_random_counts_match_statsmodels(n1, n2, f1, f2):
    x1, x2 = round(n1 * f1), round(n2 * f2)
    ref = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    np.testing.assert_allclose(iv.newcombe_diff_interval(x1, n1, x2, n2), ref, rtol=0, atol=TOL)
    low, upp = iv.score_ratio_interval(x1, n1, x2, n2)
    ref_low, ref_upp = _inverted_score_interval(x1, n1, x2, n2)
    if math.isnan(ref_low):
        assert math.isnan(low) and math.isnan(upp)
    else:
        assert low == pytest.approx(ref_low, abs=TOL)
        assert upp == ref_upp or upp == pytest.approx(ref_upp, abs=TOL)
    if 0 < x1 < n1 and 0 < x2 < n2:
        # statsmodels' closed form (roots of a cubic by np.roots) loses digits near 100 %: 1e-8 at
        # 11/13 vs 385/386, where the inversion above agrees with ours to 1e-16
        ref = confint_proportions_2indep(x1, n1, x2, n2, method="score", compare="ratio")
        np.testing.assert_allclose((low, upp), ref, rtol=0, atol=1e-7)
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    assert sig.fisher_exact_pvalue(x1, n1, x2, n2) == pytest.approx(fisher_exact(table).pvalue, abs=TOL)
    if 0 < x1 + x2 < n1 + n2:
        p = iv.two_proportion_pvalue(x1, n1, x2, n2)
        assert p == pytest.approx(proportions_ztest([x1, x2], [n1, n2])[1], abs=TOL)


# --- summaries, hand-computed -------------------------------------------------------------------------


def test_between_group_variance_hand_computed():
    # shares 0.25/0.75, mean 0.25*0.2 + 0.75*0.6 = 0.5; BGV = 0.25*0.09 + 0.75*0.01 = 0.03
    assert between_group_variance([0.2, 0.6], [100, 300]) == pytest.approx(0.03, abs=1e-15)
    assert between_group_variance([0.4, 0.4, 0.4], [1, 5, 9]) == 0.0
    assert math.isnan(between_group_variance([], []))


def test_index_of_disparity_hand_computed():
    # reference 0.5; others 0.4 and 0.8: mean |dev| = (0.1 + 0.3) / 2 = 0.2 -> 0.2 / 0.5 * 100 = 40
    assert index_of_disparity([0.4, 0.8], 0.5) == pytest.approx(40.0, abs=1e-12)
    assert math.isnan(index_of_disparity([0.4], 0.0))
    assert math.isnan(index_of_disparity([], 0.5))


def test_max_min_ratio_hand_computed():
    assert max_min_ratio([0.2, 0.5, 0.4]) == pytest.approx(2.5)
    assert max_min_ratio([0.0, 0.3]) == math.inf
    assert max_min_ratio([0.0, 0.0]) == 1.0
    assert math.isnan(max_min_ratio([]))


def _gap_reference(x, n, xr, nr, inverse):
    r = Fraction(xr, nr)
    raw = (x - r * n) if inverse else (r * n - x)
    return max(0, math.ceil(raw))


@pytest.mark.parametrize("inverse", [False, True])
def test_gap_to_equity_matches_exact_fractions(inverse):
    cases = [(x, n) for n in (1, 3, 7, 10, 20, 151) for x in range(0, n + 1, max(1, n // 6))]
    for xr, nr in [(3, 10), (1, 3), (2, 3), (0, 5), (5, 5), (97, 113)]:
        got = gap_to_equity([c[0] for c in cases], [c[1] for c in cases], xr, nr, inverse=inverse)
        assert got == [_gap_reference(x, n, xr, nr, inverse) for x, n in cases]


def test_gap_avoids_floating_point_artefacts():
    # (7 / 25) * 25 - 7 == 8.9e-16 in floats; the exact gap is 0, not 1.
    assert math.ceil(7 / 25 * 25 - 7) == 1
    assert gap_to_equity([7], [25], 7, 25) == [0]
    assert gap_to_equity([0], [3], 1, 3) == [1]
    assert gap_to_equity([5], [0], 1, 3) == [None]
    assert gap_to_equity([5], [9], 0, 0) == [None]


# --- compare_strata -----------------------------------------------------------------------------------

LABELS = ["White", "Black", "Hispanic", "Asian", UNKNOWN, "Empty"]
NUM = [600, 150, 180, 9, 4, 0]
DEN = [1000, 400, 300, 12, 25, 0]


def test_compare_strata_reference_largest_and_values():
    res = compare_strata(LABELS, NUM, DEN)
    assert res.reference == "White"
    rows = res.by_label()
    assert len(rows) == len(LABELS)  # unknown and empty strata kept
    b = rows["Black"]
    assert b.rate == pytest.approx(0.375)
    assert b.rate_difference == pytest.approx(0.375 - 0.6)
    assert b.rate_ratio == pytest.approx(0.375 / 0.6)
    lo, hi = confint_proportions_2indep(150, 400, 600, 1000, method="newcomb", compare="diff")
    assert (b.diff_ci_low, b.diff_ci_high) == pytest.approx((lo, hi), abs=TOL)
    assert b.gap_to_equity == 90  # 0.6 * 400 - 150
    assert b.worse_than_reference and not b.better_than_reference
    assert rows["Asian"].unreliable and not rows["Hispanic"].unreliable
    white = rows["White"]
    assert white.is_reference and white.p_value is None and white.q_value is None
    assert white.rate_difference == 0.0 and white.gap_to_equity == 0
    empty = rows["Empty"]
    assert empty.rate is None and empty.p_value is None and empty.gap_to_equity is None
    # q-values: BH over the testable non-reference strata, equal to statsmodels.
    tested = [r for r in res.strata if r.p_value is not None]
    ref_q = multipletests([r.p_value for r in tested], method="fdr_bh")[1]
    np.testing.assert_allclose([r.q_value for r in tested], ref_q, atol=TOL)


def test_compare_strata_inverse_flips_direction():
    # Inverse measure (e.g. CMS122 poor control): Black 0.375 is *better* than White 0.6.
    res = compare_strata(LABELS, NUM, DEN, inverse=True).by_label()
    assert res["Black"].better_than_reference and not res["Black"].worse_than_reference
    assert res["Black"].gap_to_equity == 0
    assert res["Asian"].gap_to_equity == 2  # ceil(9 - 0.6 * 12) = ceil(1.8)


def test_compare_strata_best_and_named_reference():
    best = compare_strata(LABELS, NUM, DEN, reference="best")
    # Asian 0.75 is best but unreliable (n=12 < 20): the best *reliable* stratum wins.
    assert best.reference == "White"
    best_inv = compare_strata(LABELS, NUM, DEN, reference="best", inverse=True, unranked=())
    assert best_inv.reference == UNKNOWN  # 0.16 with n=25 is the lowest reliable rate ...
    best_inv = compare_strata(LABELS, NUM, DEN, reference="best", inverse=True)
    assert best_inv.reference == "Black"  # ... but Unknown is never the reference by default
    with pytest.raises(ValueError, match="never ranked"):
        compare_strata(LABELS, NUM, DEN, reference="named", reference_label=UNKNOWN)
    named = compare_strata(LABELS, NUM, DEN, reference="named", reference_label="Hispanic")
    assert named.reference == "Hispanic" and named.by_label()["Hispanic"].is_reference
    assert compare_strata(LABELS, NUM, DEN, reference="named", reference_label="Empty").reference is None
    with pytest.raises(ValueError):
        compare_strata(LABELS, NUM, DEN, reference="named", reference_label="Martian")


def test_compare_strata_shown_restricts_family_reference_and_summary():
    shown = [True, True, True, False, True, True]
    res = compare_strata(LABELS, NUM, DEN, shown=shown)
    rows = res.by_label()
    assert rows["Asian"].q_value is None and not rows["Asian"].worse_than_reference
    family = [rows[k].p_value for k in ("Black", "Hispanic")]
    ref_q = multipletests(family, method="fdr_bh")[1]
    np.testing.assert_allclose([rows[k].q_value for k in ("Black", "Hispanic")], ref_q, atol=TOL)
    hidden_ref = compare_strata(LABELS, NUM, DEN, shown=[False, True, True, True, True, True])
    assert hidden_ref.reference == "Black"  # the largest *published* stratum


def test_compare_strata_summary_hand_computed():
    labels, num, den = ["a", "b", "c"], [20, 30, 5], [100, 50, 10]
    s = compare_strata(labels, num, den, summarise_reliable_only=True).summary
    # reliable: a (0.2, n=100) and b (0.6, n=50); reference a (largest).
    assert s.strata_summarised == 2
    mean = (100 * 0.2 + 50 * 0.6) / 150
    assert s.between_group_variance == pytest.approx((100 * (0.2 - mean) ** 2 + 50 * (0.6 - mean) ** 2) / 150)
    assert s.index_of_disparity == pytest.approx(abs(0.6 - 0.2) / 0.2 * 100)
    assert s.index_of_disparity_adverse == pytest.approx(abs(0.4 - 0.8) / 0.8 * 100)
    assert s.max_min_ratio == pytest.approx(3.0)
    s_all = compare_strata(labels, num, den, summarise_reliable_only=False).summary
    assert s_all.strata_summarised == 3
    assert s_all.index_of_disparity == pytest.approx((0.4 + 0.3) / 2 / 0.2 * 100)


def test_compare_strata_zero_and_full_rates():
    res = compare_strata(["a", "b", "c"], [0, 40, 25], [30, 40, 25]).by_label()
    assert res["a"].rate == 0.0 and res["a"].rate_ratio == 0.0
    assert res["a"].ratio_ci_low == 0.0 and 0 < res["a"].ratio_ci_high < 0.2  # 0 % vs 100 %
    assert res["a"].worse_than_reference and res["a"].p_value < 1e-15
    c = res["c"]  # both 100 %: equal rates, p = 1, and a real interval around the ratio 1
    assert c.p_value == 1.0 and c.rate_difference == 0.0 and c.rate_ratio == 1.0
    assert c.ratio_ci_low < 1 < c.ratio_ci_high and not c.worse_than_reference
    # both 0 %: no ratio and no interval (0/0), published as undefined; the test finds no difference
    zero = compare_strata(["ref", "z"], [0, 0], [50, 12]).by_label()["z"]
    assert zero.rate_ratio is None and zero.ratio_ci_low is None and zero.ratio_ci_high is None
    assert zero.rate_difference == 0.0 and zero.p_value == 1.0 and not zero.worse_than_reference


def test_compare_strata_uses_fisher_exact_test():
    res = compare_strata(LABELS, NUM, DEN).by_label()
    for label in ("Black", "Hispanic", "Asian"):
        table = [[NUM[LABELS.index(label)], DEN[LABELS.index(label)] - NUM[LABELS.index(label)]], [600, 400]]
        assert res[label].p_value == pytest.approx(fisher_exact(table).pvalue, abs=TOL)
        lo, hi = iv.score_ratio_interval(table[0][0], sum(table[0]), 600, 1000)
        got = (res[label].ratio_ci_low, res[label].ratio_ci_high)
        assert got == pytest.approx((float(lo), float(hi)), abs=TOL)


def test_unknown_is_reported_never_ranked():
    """Unknown keeps its rate and interval but gets no comparison, flag, q-value or reference role, and
    stays out of the disparity summaries -- even when it is the largest or most extreme stratum."""
    labels, num, den = ["A", "B", UNKNOWN], [300, 200, 10], [600, 400, 900]
    res = compare_strata(labels, num, den)
    u = res.by_label()[UNKNOWN]
    assert res.reference == "A"  # Unknown is the largest stratum, yet not the reference
    assert u.rate == pytest.approx(10 / 900) and u.ci_low is not None and not u.is_reference
    assert (u.p_value, u.q_value, u.rate_difference, u.rate_ratio, u.gap_to_equity) == (None,) * 5
    assert not u.worse_than_reference and not u.better_than_reference
    assert res.summary.strata_summarised == 2 and res.summary.max_min_ratio == pytest.approx(1.0)
    assert res.by_label()["B"].q_value == pytest.approx(res.by_label()["B"].p_value)  # family of one
    with_unknown = compare_strata(labels, num, den, unranked=())
    assert with_unknown.reference == UNKNOWN and with_unknown.summary.strata_summarised == 3


def test_compare_strata_validates():
    with pytest.raises(ValueError):
        compare_strata(["a", "a"], [1, 2], [3, 4])
    with pytest.raises(ValueError):
        compare_strata(["a", "b"], [1, 2], [3])


def test_stratum_label_keeps_unknown_as_its_own_stratum():
    assert [stratum_label(v) for v in (None, float("nan"), "", "  UNKNOWN ", "Declined", " Asian")] == [
        UNKNOWN,
        UNKNOWN,
        UNKNOWN,
        UNKNOWN,
        "Declined",
        "Asian",
    ]


def test_vectorised_speed_budget():
    """21 measures x 6 dimensions x 40 strata must be a small fraction of the 10 s report budget."""
    rng = np.random.default_rng(1)
    labels = [f"s{i}" for i in range(40)]
    den = rng.integers(0, 3000, size=40)
    num = (den * rng.uniform(size=40)).astype(int)
    start = time.perf_counter()
    for _ in range(21 * 6):
        compare_strata(labels, num, den, inverse=False)
    assert time.perf_counter() - start < 2.0
