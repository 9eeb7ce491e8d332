"""Network analytics: funnel limits and center-vs-network tests against statsmodels and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chc_equity.network.stats import band_of, compare_centers, funnel_grid, funnel_limits

statsmodels = pytest.importorskip("statsmodels.stats.proportion", reason="statsmodels not installed")


def test_funnel_limits_by_hand() -> None:
    lo, hi = funnel_limits(0.5, [100, 400], 0.95)
    half = 1.959963984540054 * np.sqrt(0.25 / np.array([100, 400]))
    np.testing.assert_allclose(lo, 0.5 - half)
    np.testing.assert_allclose(hi, 0.5 + half)
    lo998, hi998 = funnel_limits(0.5, [100], 0.998)
    assert lo998[0] == pytest.approx(0.5 - 3.090232306167813 * 0.05)
    assert hi998[0] > hi[0]  # 99.8 % is wider than 95 %


def test_funnel_limits_clip_and_empty() -> None:
    lo, hi = funnel_limits(0.98, [1, 0], 0.998)
    assert lo[0] == pytest.approx(max(0.0, 0.98 - 3.090232306167813 * math.sqrt(0.98 * 0.02)))
    assert hi[0] == 1.0 and math.isnan(lo[1]) and math.isnan(hi[1])


def test_funnel_grid_is_increasing_and_ends_at_max() -> None:
    grid = funnel_grid(5000)
    assert grid[0] == 1 and grid[-1] == 5000 and np.all(np.diff(grid) > 0)
    assert len(funnel_grid(3)) == 3 and len(funnel_grid(0)) == 0


def test_compare_centers_matches_statsmodels_against_rest_of_network() -> None:
    centers, x, n = ["a", "b", "c"], [30, 5, 40], [40, 30, 80]
    p0, rows = compare_centers(centers, x, n)
    assert p0 == pytest.approx(75 / 150)
    for i, row in enumerate(rows):
        rest_x, rest_n = sum(x) - x[i], sum(n) - n[i]
        _, p = statsmodels.proportions_ztest([x[i], rest_x], [n[i], rest_n])
        low, high = statsmodels.proportion_confint(x[i], n[i], method="wilson")
        assert row.p_value == pytest.approx(p)
        assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert [r.signal for r in rows] == ["better", "worse", "as expected"]


def test_inverse_measures_flip_the_signal() -> None:
    _, rows = compare_centers(["a", "b"], [30, 5], [40, 40], inverse=True)
    assert [r.signal for r in rows] == ["worse", "better"]


def test_no_data_and_single_center() -> None:
    _, rows = compare_centers(["a", "b"], [0, 5], [0, 10])
    assert rows[0].signal == "no data" and rows[0].rate is None and rows[0].band == "no data"
    _, (only,) = compare_centers(["a"], [5], [10])
    assert only.p_value is None and only.signal == "as expected"


def test_band_of() -> None:
    assert band_of(0.5, 100, 0.5) == "within 95%"
    assert band_of(0.5 + 2.5 * 0.05, 100, 0.5) == "beyond 95%"
    assert band_of(0.5 - 3.5 * 0.05, 100, 0.5) == "beyond 99.8%"
