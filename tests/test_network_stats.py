"""Network analytics: the one center-vs-network rule (exact binomial test = funnel plot) against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from statsmodels.stats.proportion import proportion_confint

from chc_equity.equity.significance import binomial_count_limits, binomial_pvalue, network_comparison
from chc_equity.network.stats import band_of, compare_centers, funnel_grid, funnel_limits

TOL = 1e-9


def _scipy_pvalue(x: int, n: int, p0: float) -> float:
    less = binomtest(x, n, p0, alternative="less").pvalue
    greater = binomtest(x, n, p0, alternative="greater").pvalue
    return min(1.0, 2 * min(less, greater))


def test_funnel_limits_are_exact_binomial_quantiles() -> None:
    """Lower limit: the 2.5 % quantile of Bin(n, p0) over n; upper: n minus that of Bin(n, 1 - p0)."""
    for p0 in (0.0, 0.013, 0.3, 0.5, 0.97, 1.0):
        n = np.array([1, 2, 7, 19, 100, 2500])
        lo, hi = funnel_limits(p0, n, 0.95)
        np.testing.assert_array_equal(lo, binom.ppf(0.025, n, p0) / n)
        np.testing.assert_array_equal(hi, (n - binom.ppf(0.025, n, 1 - p0)) / n)
        lo998, hi998 = funnel_limits(p0, n, 0.998)
        assert np.all(lo998 <= lo) and np.all(hi998 >= hi)  # 99.8 % is at least as wide
    lo, hi = funnel_limits(0.5, [0], 0.95)
    assert math.isnan(lo[0]) and math.isnan(hi[0])
    assert math.isnan(funnel_limits(float("nan"), [10], 0.95)[0][0])


@pytest.mark.parametrize("p0", [0.0, 0.004, 0.3, 0.5, 0.77, 0.999, 1.0])
@pytest.mark.parametrize("n", [1, 5, 11, 19, 60, 1500])
def test_outside_the_funnel_iff_the_test_rejects(p0: float, n: int) -> None:
    """Every possible count: outside the 95 % funnel <=> exact p < 0.05 <=> flagged; p equals scipy."""
    x = np.arange(n + 1)
    p = binomial_pvalue(x, n, p0)
    lo, hi = funnel_limits(p0, n, 0.95)
    outside = (x / n < lo) | (x / n > hi)
    np.testing.assert_array_equal(outside, p < 0.05)
    a, b = binomial_count_limits(p0, n, 0.05)
    np.testing.assert_array_equal(outside, (x < a) | (x > b))
    for xi in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        assert p[xi] == pytest.approx(_scipy_pvalue(xi, n, p0), abs=TOL)


def test_funnel_grid_is_increasing_and_ends_at_max() -> None:
    grid = funnel_grid(5000)
    assert grid[0] == 1 and grid[-1] == 5000 and np.all(np.diff(grid) > 0)
    assert len(funnel_grid(3)) == 3 and len(funnel_grid(0)) == 0


def test_compare_centers_is_the_exact_test_against_the_network_rate() -> None:
    centers, x, n = ["a", "b", "c"], [30, 5, 40], [40, 30, 80]
    p0, rows = compare_centers(centers, x, n)
    assert p0 == pytest.approx(75 / 150)
    for i, row in enumerate(rows):
        assert row.p_value == pytest.approx(_scipy_pvalue(x[i], n[i], 75 / 150), abs=TOL)
        low, high = proportion_confint(x[i], n[i], method="wilson")
        assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert [r.signal for r in rows] == ["better", "worse", "as expected"]
    # P(X >= 30 | 40, 0.5) = 0.0011: beyond 95 % only; P(X <= 5 | 30, 0.5) = 0.0002: beyond 99.8 %
    assert [r.band for r in rows] == ["beyond 95%", "beyond 99.8%", "within 95%"]


def test_small_center_at_100_percent_is_not_flagged_by_chance() -> None:
    """10/10 against a 70 % network: P(X >= 10) = 0.028, so p = 0.056, inside the exact funnel -- the
    normal-approximation funnel (upper limit 0.7 + 1.96 * sqrt(0.21 / n) < 1 from n = 9) flagged it."""
    assert 0.7 + 1.959963984540054 * math.sqrt(0.21 / 10) < 1.0
    net = network_comparison([10, 690], [10, 990])
    assert net.network_rate == pytest.approx(0.7)
    assert net.signals[0] == "as expected" and net.p_values[0] == pytest.approx(2 * 0.7**10)
    net = network_comparison([11, 689], [11, 989])  # 11/11: P = 0.0198, p = 0.040 -> flagged
    assert net.signals[0] == "better" and net.p_values[0] == pytest.approx(2 * 0.7**11)


def test_inverse_measures_flip_the_signal() -> None:
    _, rows = compare_centers(["a", "b"], [30, 5], [40, 40], inverse=True)
    assert [r.signal for r in rows] == ["worse", "better"]


def test_no_data_and_single_center() -> None:
    _, rows = compare_centers(["a", "b"], [0, 5], [0, 10])
    assert rows[0].signal == "no data" and rows[0].rate is None and rows[0].band == "no data"
    assert rows[1].p_value is None and rows[1].signal == "as expected"  # the only center with data
    _, (only,) = compare_centers(["a"], [5], [10])
    assert only.p_value is None and only.signal == "as expected"
    p0, (empty,) = compare_centers(["a"], [0], [0])
    assert p0 is None and empty.signal == "no data"


def test_band_of() -> None:
    assert band_of(0.5, 100, 0.5) == "within 95%"
    assert band_of(0.63, 100, 0.5) == "beyond 95%"  # P(X >= 63) = 0.006: beyond 95 %, not 99.8 %
    assert band_of(0.32, 100, 0.5) == "beyond 99.8%"  # P(X <= 32) = 0.0002
    assert band_of(0.5, 0, 0.5) == "no data"


def test_funnel_level_exact_for_small_centers() -> None:
    """Exact level of "outside the 95 % funnel" for centers of 11-19 at every network rate on a grid:
    at most 0.05 with the exact limits; the normal-approximation funnel it replaces exceeds it."""
    rates = np.linspace(0.01, 0.99, 99)
    worst_exact = worst_normal = 0.0
    for n in range(11, 20):
        x = np.arange(n + 1)[:, None]
        pmf = binom.pmf(x, n, rates)  # (n + 1, rates)
        a, b = binomial_count_limits(rates, np.full(rates.shape, n), 0.05)
        exact = ((x < a) | (x > b)) * pmf
        half = 1.959963984540054 * np.sqrt(rates * (1 - rates) / n)
        normal = ((x / n < rates - half) | (x / n > rates + half)) * pmf
        worst_exact = max(worst_exact, exact.sum(0).max())
        worst_normal = max(worst_normal, normal.sum(0).max())
    print(f"\nfunnel level at 0.05, centers of 11-19: normal {worst_normal:.4f}, exact {worst_exact:.4f}")
    assert worst_exact <= 0.05 < worst_normal
