"""Vectorised interval estimates and tests for binomial proportions.

Every function here takes numpy-broadcastable count arrays and returns float arrays, so a whole
stratification (dozens of strata) is one numpy pass rather than a Python loop: the equity report computes
these for 21 measures x 6 dimensions and must stay well under a second of arithmetic.

The formulas are written out (not delegated to statsmodels) for speed and for explicit, documented
behaviour at the edges (empty strata, 0 % and 100 % rates); the test-suite pins each one to the named
statsmodels reference at 1e-9. Conventions shared by all functions:

* ``x`` counts events (numerator), ``n`` trials (denominator), ``0 <= x <= n``.
* ``n == 0`` (an empty stratum) yields NaN: there is no rate to estimate, and NaN propagates honestly
  into anything derived from it rather than silently becoming 0.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]


@lru_cache(maxsize=32)
def z_two_sided(alpha: float) -> float:
    """Standard-normal critical value for a two-sided ``1 - alpha`` interval (1.959963984540054 at 0.05).

    Cached because ``scipy.stats.norm.isf`` costs ~50 us per call, which would dominate the per-measure
    budget; ``ndtri`` is the same quantile function statsmodels reaches through ``norm.isf``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(-special.ndtri(alpha / 2.0))


def _as_counts(x: ArrayLike, n: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate and broadcast counts; floats so that divisions follow IEEE rules for the n == 0 case."""
    xa = np.asarray(x, dtype=np.float64)
    na = np.asarray(n, dtype=np.float64)
    xa, na = np.broadcast_arrays(xa, na)
    if np.any(na < 0) or np.any(xa < 0) or np.any(xa > na):
        raise ValueError("counts must satisfy 0 <= numerator <= denominator")
    return xa, na


def proportion(x: ArrayLike, n: ArrayLike) -> FloatArray:
    """Observed rate ``x / n``; NaN for an empty stratum (``n == 0``)."""
    xa, na = _as_counts(x, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(na > 0, xa / np.where(na > 0, na, 1.0), np.nan)


def wilson_interval(x: ArrayLike, n: ArrayLike, alpha: float = 0.05) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval (Wilson 1927) for a single proportion.

    Chosen over the Wald interval because it keeps nominal coverage for small ``n`` and stays inside
    [0, 1] with non-zero width at 0 % and 100 % -- exactly the small strata an equity report is full of.
    Matches ``statsmodels.stats.proportion.proportion_confint(method="wilson")`` including its final clip
    to [0, 1] (which only removes rounding noise at the edges).
    """
    xa, na = _as_counts(x, n)
    z = z_two_sided(alpha)
    z2 = z * z
    ok = na > 0
    ns = np.where(ok, na, 1.0)
    p = xa / ns
    denom = 1.0 + z2 / ns
    center = (p + z2 / (2.0 * ns)) / denom
    half = z * np.sqrt(p * (1.0 - p) / ns + z2 / (4.0 * ns * ns)) / denom
    low = np.clip(center - half, 0.0, 1.0)
    upp = np.clip(center + half, 0.0, 1.0)
    return np.where(ok, low, np.nan), np.where(ok, upp, np.nan)


def newcombe_diff_interval(
    x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Newcombe hybrid score interval for ``p1 - p2`` of independent proportions (Newcombe 1998, method 10).

    It combines the two Wilson intervals, so it inherits their good small-sample behaviour and, unlike the
    Wald difference interval, never collapses to zero width when one or both rates are 0 % or 100 %.
    Matches ``statsmodels ... confint_proportions_2indep(method="newcomb", compare="diff")``.
    """
    p1, p2 = proportion(x1, n1), proportion(x2, n2)
    l1, u1 = wilson_interval(x1, n1, alpha)
    l2, u2 = wilson_interval(x2, n2, alpha)
    diff = p1 - p2
    low = diff - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upp = diff + np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    return low, upp


def _ratio_score_statistic(
    x1: FloatArray, n1: FloatArray, x2: FloatArray, n2: FloatArray, ratio: FloatArray, correction: bool
) -> FloatArray:
    """Signed score statistic of ``H0: p1 / p2 = ratio`` (Miettinen & Nurminen 1985; Koopman 1984).

    ``(p1 - ratio * p2) / sqrt(v)`` with ``v`` evaluated at the maximum-likelihood proportions under
    the null (a quadratic, solved here in its cancellation-free form), times ``N / (N - 1)`` with the
    Miettinen-Nurminen ``correction``. Decreasing in ``ratio``; the same statistic as
    ``statsmodels ... score_test_proportions_2indep(compare="ratio")``.
    """
    big_n = n1 + n2
    a = big_n * ratio
    b = -(n1 * ratio + x1 + n2 + x2 * ratio)
    c = x1 + x2
    p2_null = 2.0 * c / (-b + np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0)))
    p1_null = p2_null * ratio
    var = p1_null * (1.0 - p1_null) / n1 + ratio * ratio * p2_null * (1.0 - p2_null) / n2
    if correction:
        var = var * big_n / (big_n - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x1 / n1 - ratio * x2 / n2) / np.sqrt(var)


_LOG_RATIO_BOUND = 40.0  # search ratios in [e^-40, e^40]
_BISECTIONS = 34  # leaves a bracket of 80 / 2^34 = 5e-9 in log(ratio); one secant step then reaches ~1e-16


def score_ratio_interval(
    x1: ArrayLike,
    n1: ArrayLike,
    x2: ArrayLike,
    n2: ArrayLike,
    alpha: float = 0.05,
    *,
    correction: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Score interval for the rate ratio ``p1 / p2`` (Miettinen-Nurminen; Koopman without ``correction``).

    The set of ratios ``R`` the score test of ``p1 / p2 = R`` does not reject at ``alpha``. Why this
    method: it is valid at the edges, where the log interval is not -- with one group at 100 % the
    log-adjusted interval excluded 1 while the test gave p = 0.06-0.07, and with both at 100 % it
    collapsed to [1, 1]. Here a 0 % numerator gives a lower limit of exactly 0, a 0 % reference an upper
    limit of +inf, both groups at 100 % a proper interval around 1, and both at 0 % (ratio 0/0, no
    information about it) no interval: NaN, published as "undefined". Coverage is close to nominal in
    small samples (Fagerland, Lydersen & Laake 2015 recommend it for the ratio).

    Both limits are found together by bisection on ``log R`` (the statistic is monotone in ``R``),
    finished by one secant step inside the final bracket, so a whole stratification is one vectorised
    pass. Pinned at 1e-9 to statsmodels
    ``confint_proportions_2indep(method="score", compare="ratio", correction=...)`` for rates strictly
    between 0 % and 100 % (at 100 % its closed-form cubic solution breaks down: a complex or zero-width
    interval), and for every case, edges included, to the inversion of statsmodels' score test.

    The interval is dual to its own score test, not to the Fisher test that sets the flags
    (:mod:`chc_equity.equity.significance`): being exact, Fisher is the more conservative, so in small
    strata the interval can exclude 1 while Fisher's p is >= 0.05 (2-4 % of the possible tables for
    strata of 11-30); never the other way round.
    """
    a1, b1 = _as_counts(x1, n1)
    a2, b2 = _as_counts(x2, n2)
    ok = (b1 > 0) & (b2 > 0) & (a1 + a2 > 0)
    s1, s2 = np.where(ok, b1, 1.0), np.where(ok, b2, 1.0)
    c1, c2 = np.where(ok, a1, 0.5), np.where(ok, a2, 0.5)
    z = z_two_sided(alpha)
    # lower limit: largest R with statistic > z; upper: smallest R with statistic < -z (stacked)
    xs1, ns1, xs2, ns2 = (np.concatenate([v.ravel(), v.ravel()]) for v in (c1, s1, c2, s2))
    target = np.concatenate([np.full(c1.size, z), np.full(c1.size, -z)])
    is_lower = target > 0
    lo = np.full(xs1.size, -_LOG_RATIO_BOUND)
    hi = np.full(xs1.size, _LOG_RATIO_BOUND)

    def excess(u: FloatArray) -> FloatArray:
        return _ratio_score_statistic(xs1, ns1, xs2, ns2, np.exp(u), correction) - target

    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        f = excess(mid)
        # below the lower limit (statistic > z) or not yet above the upper one (not statistic < -z);
        # NaN (0/0 exactly at R = 1 when both rates are 100 %) counts as inside the interval
        move_lo = np.where(is_lower, f > 0, ~(f < 0))
        lo = np.where(move_lo, mid, lo)
        hi = np.where(move_lo, hi, mid)
    f_lo, f_hi = excess(lo), excess(hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        secant = lo + (hi - lo) * f_lo / (f_lo - f_hi)
    inside = np.isfinite(secant) & (secant >= lo) & (secant <= hi)
    limits = np.exp(np.where(inside, secant, 0.5 * (lo + hi)))
    low, upp = limits[: c1.size].reshape(c1.shape), limits[c1.size :].reshape(c1.shape)
    low = np.where(c1 == 0, 0.0, low)
    upp = np.where(c2 == 0, np.inf, upp)
    return np.where(ok, low, np.nan), np.where(ok, upp, np.nan)


def two_proportion_pvalue(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike) -> FloatArray:
    """Two-sided p-value of the pooled two-proportion z-test of ``p1 == p2``.

    This is the classical score test under the null of equal proportions; its square is Pearson's
    chi-square on the 2x2 table without continuity correction. It equals
    ``statsmodels.stats.proportion.proportions_ztest`` and
    ``test_proportions_2indep(method="score", correction=False)`` at ``value=0``, and
    ``scipy.stats.chi2_contingency(correction=False)``. It no longer decides any flag: its level exceeds
    the nominal one in small strata (0.07 at 0.05 for 19 vs 100), so comparisons use Fisher's exact test
    (:mod:`chc_equity.equity.significance`); kept as the classical statistic the tests measure against.

    Edge cases, defined rather than left as 0/0: the pooled variance is zero only when both groups are at
    0 % or both at 100 %, i.e. the rates are identical, so ``p = 1`` there (statsmodels returns NaN).
    An empty group (``n == 0``) has no rate to compare: NaN.
    """
    a1, b1 = _as_counts(x1, n1)
    a2, b2 = _as_counts(x2, n2)
    ok = (b1 > 0) & (b2 > 0)
    s1, s2 = np.where(ok, b1, 1.0), np.where(ok, b2, 1.0)
    pooled = (a1 + a2) / (s1 + s2)
    var = pooled * (1.0 - pooled) * (1.0 / s1 + 1.0 / s2)
    degenerate = var <= 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (a1 / s1 - a2 / s2) / np.sqrt(np.where(degenerate, 1.0, var))
    p = 2.0 * special.ndtr(-np.abs(z))
    p = np.where(degenerate, 1.0, p)
    return np.where(ok, p, np.nan)


def bh_qvalues(pvalues: ArrayLike) -> FloatArray:
    """Benjamini-Hochberg (1995) step-up adjusted p-values ("q-values") controlling the FDR.

    ``q_(i) = min_{k >= i} min(1, m * p_(k) / k)`` over the ``m`` finite p-values; NaN entries (no test,
    e.g. the reference row or an empty stratum) are outside the family and stay NaN. Matches
    ``statsmodels.stats.multitest.multipletests(method="fdr_bh")`` applied to the finite entries.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    m = int(finite.sum())
    if m == 0:
        return out
    vals = p[finite]
    order = np.argsort(vals, kind="mergesort")
    ranked = vals[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    out[finite] = q
    return out
