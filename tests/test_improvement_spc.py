"""Chart rules (chc_equity.improvement) on published worked examples and on simulated series.

Sources of the worked examples (each test names its own):

- qicharts2 vignette "Quality Improvement Charts" (Anhøj, CRAN qicharts2 0.8.1), datasets ``cdi``
  (Clostridium difficile infections, Amager Hvidovre Hospital), ``nhs_accidents`` (Mohammed MA et al.,
  BMJ Qual Saf 2013;22:362-368) and ``cabg`` (ages of the last 100 patients); expected limits as
  computed by qicharts2 and checked into the PowerBI-SPC visual's tests
  (github.com/AUS-DOH-Safety-and-Quality/PowerBI-SPC, test/Chart Types/pprime.test.ts and
  test/fixtures/qicharts2.ts).
- Montgomery DC, Introduction to Statistical Quality Control, 6th ed. (2009): Example 7.1 / Table 7.1
  (orange-juice cans, p-chart trial limits) and Example 7.3 (c-chart of nonconformities per 100
  printed circuit boards).
"""

from __future__ import annotations

import numpy as np
import pytest

from chc_equity.improvement.runs import anhoej, crossings_limit, longest_run_limit, run_chart, runs_limits
from chc_equity.improvement.spc import laney_p_chart, p_chart, u_chart, xmr_chart


def _nums(text: str) -> list[float]:
    """A data set written as whitespace-separated numbers."""
    return [float(x) for x in text.split()]


# qicharts2 ``cdi``: hospital-acquired CDI per month, Nov 2012 - Oct 2015; intervention after month 24.
CDI = _nums(
    "17 12 27 20 20 18 22 19 19 24 17 16 24 19 19 22 25 19 17 6 25 17 11 14 9 11 7 13 5 5 3 5 9 4 5 9"
)

# qicharts2 ``nhs_accidents``: A&E attendances seen within 4 hours (r) of all attendances (n), 20 weeks.
NHS_R = _nums(
    "266501 264225 276532 281461 269071 261215 270409 279778 270483 270320 267923 271478 255353 "
    "256820 261835 259144 255910 260863 264465 260989"
)
NHS_N = _nums(
    "280443 276823 291681 296155 282343 275888 283867 295251 284468 282529 279618 283932 266629 "
    "268091 276803 271578 266005 273520 278574 273772"
)

# Montgomery (2009) Table 7.1: nonconforming cans in 30 samples of 50.
ORANGE_JUICE = _nums("12 15 8 10 4 7 16 9 14 10 5 6 17 12 22 8 10 5 13 11 20 18 24 15 9 12 7 13 9 6")

# qicharts2 ``cabg``: ages of the last 100 patients (I chart example).
CABG_AGES = _nums(
    "70.685 77.896 69.715 66.211 69.586 77.074 67.063 62.055 72.49 61.381 75.137 57.888 48.953 "
    "65.285 67.518 78.099 67.066 57.795 68.921 69.797 65.041 66.326 69.614 74.397 66.208 73.458 "
    "79.964 61.433 58.847 70.337 71.942 57.751 67.321 73.405 76.214 77.701 48.896 62.893 54.704 "
    "65.452 64.427 67.984 79.91 66.132 36.679 82.956 67.526 60.074 69.953 65.668 72.666 76.145 "
    "74.466 85.786 69.6 64.592 75.811 57.37 61.2 72.266 64.896 69.23 50.8 71.726 80.688 63.827 "
    "72.742 77.962 67.449 7.871 73.37 74.877 77.54 61.411 63.74 47.31 71.956 67.351 49.301 "
    "53.841 68.515 71.838 59.153 64.288 56.277 70.101 73.493 66.729 72.556 58.775 61.507 67.795 "
    "59.515 66.074 70.745 61.277 46.397 64.323 66.649 75.83"
)


# --- run charts ----------------------------------------------------------------------------------


def test_anhoej_limits_match_the_published_table() -> None:
    """qicharts2 vignette: 24 useful points -> longest run > 8, fewer than 8 crossings; Appendix 2."""
    assert (longest_run_limit(24), crossings_limit(24)) == (8, 8)
    assert [longest_run_limit(n) for n in (10, 20, 30, 100)] == [6, 7, 8, 10]
    assert [crossings_limit(n) for n in (10, 20, 30, 100)] == [2, 6, 10, 41]


def test_cdi_baseline_median_finds_the_long_run() -> None:
    """qicharts2 vignette, Case 2: with the median frozen on the 24 pre-intervention months it is 19,
    and "an unusually long run of 15 data points below the median proves that the CDI rate is
    reduced"."""
    months = [f"{2012 + (10 + i) // 12}-{(10 + i) % 12 + 1:02d}" for i in range(36)]
    chart = run_chart(CDI, labels=months, baseline=24, higher_is_better=False)
    assert chart.phases[0].median == 19
    long = [s for s in chart.signals if s.rule == "anhoej_long_run"]
    assert len(long) == 1 and len(long[0].points) == 15
    assert long[0].points == tuple(range(21, 36)) and long[0].direction == "down"
    assert "15 points below the median from 2014-08 to 2015-10" in long[0].description
    assert "(an improvement)" in long[0].description


def test_cdi_split_at_the_intervention_shows_random_variation_in_each_part() -> None:
    """qicharts2 vignette, Case 2: split after month 24, "both periods show only random variation"."""
    chart = run_chart(CDI, phase_starts=[24])
    assert [p.median for p in chart.phases] == [19, 6]
    assert chart.signals == ()


def test_cdi_whole_series_signals_a_shift() -> None:
    """qicharts2 vignette, Case 2: on the whole series "a downward shift ... is supported by the runs
    analysis"; the IHI shift rule also fires for the 14 last points."""
    chart = run_chart(CDI, rules=("anhoej", "ihi"))
    rules = {s.rule for s in chart.signals}
    assert {"anhoej_long_run", "anhoej_few_crossings", "ihi_shift", "ihi_too_few_runs"} <= rules
    shift = [s for s in chart.signals if s.rule == "ihi_shift" and s.direction == "down"]
    assert [len(s.points) for s in shift] == [14]


def test_ihi_trend_skips_repeated_values_and_points_on_the_median_do_not_count() -> None:
    """Perla, Provost & Murray (2011): a repeated value neither adds to nor breaks a trend; points on
    the median neither make nor break a shift."""
    trend = run_chart([5, 1, 2, 2, 3, 4, 9, 0, 8, 7], rules=("ihi",))
    t = [s for s in trend.signals if s.rule == "ihi_trend"]
    assert len(t) == 1 and t[0].points == (1, 2, 3, 4, 5, 6) and t[0].direction == "up"
    assert "5 points all going up" in t[0].description
    four = run_chart([5, 1, 2, 3, 4, 0, 9, 0, 8, 7], rules=("ihi",))
    assert not [s for s in four.signals if s.rule == "ihi_trend"]
    # median 10: six useful points above with two on the median between them is a shift of 6
    shift = run_chart([11, 12, 10, 13, 10, 14, 15, 16, 1, 2, 3, 4, 5, 6, 10], rules=("ihi",))
    s = [x for x in shift.signals if x.rule == "ihi_shift" and x.direction == "up"]
    assert len(s) == 1 and s[0].points == (0, 1, 3, 5, 6, 7)


def test_runs_limits_are_the_swed_eisenhart_two_sided_5_percent_values() -> None:
    """Swed & Eisenhart (1943), n1 = n2 = 12: R <= 7 has P = 0.0223 (< 0.025), R <= 8 has 0.0567;
    symmetric upper tail; and a worked check against brute-force enumeration for 6 + 6 points."""
    assert runs_limits(12, 12) == (8, 18)
    from itertools import combinations

    counts: dict[int, int] = {}
    for above in combinations(range(12), 6):
        seq = [1 if i in above else -1 for i in range(12)]
        r = 1 + sum(seq[i] != seq[i - 1] for i in range(1, 12))
        counts[r] = counts.get(r, 0) + 1
    total = sum(counts.values())
    lo, hi = runs_limits(6, 6)
    assert sum(c for r, c in counts.items() if r < lo) / total <= 0.025
    assert sum(c for r, c in counts.items() if r <= lo) / total > 0.025
    assert sum(c for r, c in counts.items() if r > hi) / total <= 0.025
    assert sum(c for r, c in counts.items() if r >= hi) / total > 0.025


# --- control charts -------------------------------------------------------------------------------


def test_p_chart_limits_equal_the_formula_point_by_point() -> None:
    """p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i) to 1e-12, with denominators that vary."""
    rng = np.random.default_rng(7)
    den = rng.integers(60, 400, size=30)
    num = rng.binomial(den, 0.3)
    chart = p_chart(num, den)
    pbar = num.sum() / den.sum()
    half = 3 * np.sqrt(pbar * (1 - pbar) / den)
    assert np.all(pbar - half > 0) and np.all(pbar + half < 1)  # no clipping in this example
    np.testing.assert_allclose(chart.centre, pbar, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chart.lcl, pbar - half, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chart.ucl, pbar + half, rtol=0, atol=1e-12)
    assert len(set(np.round(chart.ucl, 12))) > 1  # the limits vary with each denominator


def test_p_chart_montgomery_orange_juice_trial_limits() -> None:
    """Montgomery (2009) Example 7.1: p-bar = 0.2313, UCL = 0.4102, LCL = 0.0524; samples 15 and 23
    plot above the upper limit."""
    chart = p_chart(ORANGE_JUICE, [50] * 30)
    assert chart.centre[0] == pytest.approx(0.2313, abs=5e-5)
    assert chart.ucl[0] == pytest.approx(0.4102, abs=5e-5)
    assert chart.lcl[0] == pytest.approx(0.0524, abs=5e-5)
    beyond = [s.points[0] + 1 for s in chart.signals if s.rule == "beyond_limits"]
    assert beyond == [15, 23]
    assert [s.direction for s in chart.signals] == ["up", "up"]


def test_laney_sigma_z_on_the_nhs_accidents_example() -> None:
    """Laney (2002) p' chart on qicharts2's nhs_accidents (Mohammed et al. 2013): the p-chart flags most
    weeks, the p' chart none; limits equal qicharts2's to 4 decimals (percent)."""
    p = p_chart(NHS_R, NHS_N, multiply=100)
    assert sum(s.rule == "beyond_limits" for s in p.signals) >= 10
    pp = laney_p_chart(NHS_R, NHS_N, multiply=100)
    # sigma_z by hand: z-scores, mean moving range / 1.128
    r, n = np.array(NHS_R, float), np.array(NHS_N, float)
    pbar = r.sum() / n.sum()
    z = (r / n - pbar) / np.sqrt(pbar * (1 - pbar) / n)
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
    assert pp.phases[0].sigma_z == pytest.approx(sigma_z, rel=1e-12)
    assert 10 < sigma_z < 11  # the binomial sigma is ~10x too small for these denominators
    ucl = _nums(
        "96.567 96.5753 96.5421 96.5326 96.5627 96.5775 96.5593 96.5345 96.5579 96.5623 96.5689 "
        "96.5591 96.5996 96.5961 96.5753 96.5877 96.6012 96.583 96.5713 96.5824"
    )
    lcl = _nums(
        "94.013 94.0046 94.0378 94.0473 94.0173 94.0025 94.0207 94.0454 94.022 94.0177 94.0111 "
        "94.0208 93.9803 93.9839 94.0046 93.9923 93.9788 93.9969 94.0087 93.9975"
    )
    np.testing.assert_allclose(pp.ucl, ucl, atol=1e-4)
    np.testing.assert_allclose(pp.lcl, lcl, atol=1e-4)
    assert not [s for s in pp.signals if s.rule == "beyond_limits"]


def test_u_chart_montgomery_c_chart_example() -> None:
    """Montgomery (2009) Example 7.3: nonconformities in 26 samples of 100 boards, c-bar = 19.85,
    UCL = 33.22, LCL = 6.48 (from c-bar rounded to 19.85, hence 0.01); samples 6 and 20 are outside
    (a u-chart with unit denominators is the c-chart)."""
    c = _nums("21 24 16 12 15 5 28 20 31 25 20 24 16 19 10 17 13 22 18 39 30 24 16 19 17 15")
    chart = u_chart(c, [1] * 26)
    assert chart.centre[0] == pytest.approx(19.85, abs=5e-3)
    assert chart.ucl[0] == pytest.approx(33.22, abs=0.01)
    assert chart.lcl[0] == pytest.approx(6.48, abs=0.01)
    assert [(s.points[0] + 1, s.direction) for s in chart.signals] == [(6, "down"), (20, "up")]


def test_u_chart_limits_vary_with_exposure() -> None:
    """u-bar +/- 3 sqrt(u-bar / n_i), floored at 0, per point."""
    num, den = np.array([3, 10, 0, 7]), np.array([10.0, 40.0, 5.0, 20.0])
    chart = u_chart(num, den, multiply=1000)
    ubar = num.sum() / den.sum()
    np.testing.assert_allclose(chart.ucl, 1000 * (ubar + 3 * np.sqrt(ubar / den)), rtol=1e-12)
    np.testing.assert_allclose(chart.lcl, 1000 * np.maximum(0, ubar - 3 * np.sqrt(ubar / den)), rtol=1e-12)


def test_xmr_cabg_ages_finds_the_two_young_patients() -> None:
    """qicharts2 vignette, Case 3: I chart of the last 100 CABG patients' ages: "two data points
    (patients number 45 and 70) are below the lower 3-sigma limit"; the MR chart "identifies three
    unusually large ranges". qicharts2's limits are 38.04 and 94.63 (it scales mR-bar by 3 / 1.128 =
    2.6596; Wheeler's published 2.66 moves them by < 0.01)."""
    i, mr = xmr_chart(CABG_AGES)
    assert i.centre[0] == pytest.approx(66.33455, abs=1e-9)
    assert mr.centre[1] == pytest.approx(10.640252525, abs=1e-6)
    assert i.lcl[0] == pytest.approx(38.036, abs=0.01) and i.ucl[0] == pytest.approx(94.633, abs=0.01)
    assert i.lcl[0] == pytest.approx(i.centre[0] - 2.66 * mr.centre[1], abs=1e-12)
    assert mr.ucl[1] == pytest.approx(3.267 * mr.centre[1], abs=1e-12)
    assert [s.points[0] + 1 for s in i.signals if s.rule == "beyond_limits"] == [45, 70]
    assert len([s for s in mr.signals if s.rule == "beyond_limits"]) == 3
    assert np.isnan(mr.values[0])


def test_run_of_8_and_phases_recomputed_after_a_declared_change() -> None:
    """WE rule 4 on one phase; after a declared change the second phase has its own centre and limits
    and the run no longer signals."""
    rng = np.random.default_rng(3)
    den = np.full(24, 200)
    num = np.concatenate(
        [rng.binomial(200, 0.30, 12), np.array([44, 42, 46, 40, 45, 43, 41, 44, 42, 46, 43, 45])]
    )
    labels = [f"2026-{m:02d}" for m in range(1, 13)] + [f"2027-{m:02d}" for m in range(1, 13)]
    one = p_chart(num, den, labels=labels, baseline=12, higher_is_better=False)
    runs = [s for s in one.signals if s.rule == "run_of_8"]
    assert runs and runs[-1].direction == "down" and runs[-1].points[-1] == 23
    assert "points in a row below the centre line" in runs[-1].description
    assert "(an improvement)" in runs[-1].description
    two = p_chart(num, den, labels=labels, phase_starts=[12], higher_is_better=False)
    assert two.centre[0] == pytest.approx(num[:12].sum() / 2400)
    assert two.centre[12] == pytest.approx(num[12:].sum() / 2400)
    assert not [s for s in two.signals if s.phase == 1]


def test_western_electric_zone_rules() -> None:
    """WE rules 2 and 3 (Statistical Quality Control Handbook, 1956) on an XmR chart with a planted
    pattern: two of three beyond 2 sigma above; four of five beyond 1 sigma below."""
    base = [10.0, 10.4, 9.6, 10.2, 9.8, 10.1, 9.9, 10.3, 9.7, 10.0, 10.2, 9.8]
    x = base + [10.9, 10.0, 10.95] + base + [9.5, 9.45, 10.0, 9.5, 9.55] + base
    i, _ = xmr_chart(x, rules=("two_of_three_beyond_2sigma", "four_of_five_beyond_1sigma"))
    sigma = i.sigma[0]
    two = [s for s in i.signals if s.rule == "two_of_three_beyond_2sigma"]
    assert x[12] - i.centre[0] > 2 * sigma and x[14] - i.centre[0] > 2 * sigma
    assert [(s.points, s.direction) for s in two] == [((12, 14), "up")]
    four = [s for s in i.signals if s.rule == "four_of_five_beyond_1sigma"]
    assert [(s.points, s.direction) for s in four] == [((27, 28, 30, 31), "down")]


# --- simulation -------------------------------------------------------------------------------------


def test_anhoej_false_signal_rate_over_10000_random_series() -> None:
    """With no change, 5-10 % of 24-point series signal by the Anhøj rules against a centre line fixed
    in advance (Anhøj & Olesen 2014; Anhøj 2015: each rule has ~5 % false positives, the pair a little
    more). A median frozen on a 12-point baseline stays in that range. The median of the same 24
    points is conservative (exactly 12 above, 12 below: about 3 %)."""
    rng = np.random.default_rng(20140101)
    x = rng.standard_normal((10_000, 24))
    fixed = anhoej(x, 0.0).signal.mean()
    frozen = anhoej(x, np.median(x[:, :12], axis=1)).signal.mean()
    own = anhoej(x).signal.mean()
    assert 0.05 <= fixed <= 0.10, fixed
    assert 0.05 <= frozen <= 0.10, frozen
    assert 0.01 <= own < fixed, own


def test_planted_shift_is_detected_in_at_least_90_percent_of_seeds() -> None:
    """The change the synthetic generator plants: a center's rate for a stratum falls from 30 % to 20 %
    from month 13 of 24, on ~100 patients a month (Poisson). A run chart with the median frozen on
    the 12 baseline months finds it in >= 90 % of 10,000 simulated centers; the p-chart with the same
    baseline too (500 of them, through the public function)."""
    rng = np.random.default_rng(15)
    den = rng.poisson(100, (10_000, 24))
    num = rng.binomial(den, np.where(np.arange(24) < 12, 0.30, 0.20))
    rate = num / den
    detected = anhoej(rate, np.median(rate[:, :12], axis=1)).signal.mean()
    assert detected >= 0.90, detected
    p_detected = np.mean([p_chart(num[i], den[i], baseline=12).has_signal for i in range(500)])
    assert p_detected >= 0.90, p_detected
    # the same path one series at a time agrees with the vectorised one
    for i in range(20):
        one = run_chart(rate[i], baseline=12)
        assert one.has_signal == bool(anhoej(rate[i : i + 1], np.median(rate[i, :12])).signal[0])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="phase starts"):
        run_chart([1, 2, 3], phase_starts=[3])
    with pytest.raises(ValueError, match="unknown"):
        run_chart([1, 2, 3], rules=("nelson",))
    with pytest.raises(ValueError, match="numerators"):
        p_chart([1, 2], [3])
    with pytest.raises(ValueError, match="labels"):
        run_chart([1, 2, 3], labels=["a"])
