"""The two significance rules of the project, each in one place.

1. **A stratum against the reference stratum** (equity tables, every dimension except ``center``):
   :func:`fisher_exact_pvalue`, Fisher's exact test of the 2x2 table, at every stratum size. The pooled
   two-proportion z-test it replaces runs above its level in exactly the small strata an equity report is
   full of: its exact type-I error at a nominal 0.05 reaches 0.07 for strata of 19 against a reference of
   100 and 0.10 for strata of 11-15 against 1,000 (at rates near 0 % or 100 %), and still 0.056 for 50
   against 100 -- there is no stratum size above which it is safe, so there is no cut-off either. Fisher's
   test conditions on both margins, so its level is at most ``alpha`` for every size and every true rate
   (``tests/test_equity_stats.py`` computes the level exactly by enumerating all binomial outcomes), and
   in large strata its p-value converges to the z-test's.
2. **A center against the network** ("worse / better than the rest": heat map, funnel plot, and
   ``equity --by center``): :func:`network_comparison`, the exact equal-tailed binomial test of the
   center's count against the network rate ``p0``. Its acceptance region *is* the funnel plot: the limits
   drawn by :func:`funnel_limits` are the smallest and largest rates the test accepts at that denominator,
   so a center is flagged at level ``alpha`` if and only if it lies outside the ``1 - alpha`` funnel, and
   its p-value is below ``alpha`` in exactly the same cases. Exact rather than the normal-approximation
   funnel of Spiegelhalter (2005) for the same reason as in 1.: small centers. Compared with the network
   rate (the funnel's target), not with "the network minus the center": only then is there one funnel
   for all centers to be read against. No multiplicity correction: it is a screening mark, shown with
   its p-value and the funnel plot.

All functions take numpy-broadcastable counts and are vectorised (no Python loop over strata or centers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Signal = Literal["worse", "better", "as expected", "no data"]

DEFAULT_ALPHA = 0.05
_FISHER_LOG_TIE = float(np.log1p(1e-7))  # "as likely as observed" up to 1e-7 relative (R's fisher.test)


def _int_counts(*arrays: ArrayLike) -> list[IntArray]:
    out = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in arrays))
    return [np.array(a, dtype=np.int64) for a in out]


def _search(pred: Callable[[IntArray], NDArray[np.bool_]], lo: IntArray, hi: IntArray) -> IntArray:
    """Smallest ``k`` in ``[lo, hi]`` with ``pred(k)`` true (``hi`` if none), for ``pred`` monotone
    (false ... false true ... true) on that range; all elements at once."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(int(np.max(hi - lo, initial=0)).bit_length() + 1):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        ok = pred(mid)
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)
    return lo


# --- 1. stratum vs reference -----------------------------------------------------------------------
def fisher_exact_pvalue(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike) -> FloatArray:
    """Two-sided p-value of Fisher's exact test for ``x1/n1`` vs ``x2/n2``, vectorised.

    With both margins fixed, the count ``k`` of events in group 1 is hypergeometric; the p-value sums the
    probabilities of every ``k`` at most as likely as the observed one -- the definition of
    ``scipy.stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]])`` (and of R's ``fisher.test``, whose
    relative tolerance of 1e-7 for "as likely" is used here: the log-probabilities come from ``gammaln``,
    whose rounding at large counts exceeds scipy's 1e-14). All tables are summed at once, each over the
    part of its support that holds its probability mass (see below). An empty group (``n == 0``) has no
    rate to compare: NaN. Both groups at 0 % or both at 100 %: ``p = 1`` (a single table has those
    margins).
    """
    a, n1a, c, n2a = _int_counts(x1, n1, x2, n2)
    if np.any((n1a < 0) | (n2a < 0) | (a < 0) | (c < 0) | (a > n1a) | (c > n2a)):
        raise ValueError("counts must satisfy 0 <= numerator <= denominator")
    big_n, t = n1a + n2a, a + c
    lo, hi = np.maximum(0, t - n2a), np.minimum(t, n1a)
    # Sum only where the mass is: by Hoeffding's bound for sampling without replacement, the support
    # farther than 6 * sqrt(m) from the mean (m the smallest margin) holds < 1e-31 in all, so summing the
    # window below is exact far beyond 1e-9 while a large stratum costs hundreds of terms, not thousands.
    # The observed table always counts, also when it lies outside the window (p-values below 1e-30 are
    # then approximate, to < 1e-31 absolute).
    mean = t * n1a / np.maximum(big_n, 1)
    smallest = np.minimum(np.minimum(t, big_n - t), np.minimum(n1a, n2a))
    half = np.ceil(6.0 * np.sqrt(smallest) + 2.0).astype(np.int64)
    lo = np.maximum(lo, np.floor(mean).astype(np.int64) - half)
    hi = np.minimum(hi, np.ceil(mean).astype(np.int64) + half)
    width = int(np.max(hi - lo, initial=0)) + 1
    k = lo[..., None] + np.arange(width)
    valid = k <= hi[..., None]
    k = np.where(valid, k, lo[..., None])
    lf = special.gammaln(np.arange(int(np.max(big_n, initial=0)) + 2, dtype=np.float64) + 1.0)  # log(i!)
    # log P(k) = log C(n1, k) + log C(n2, t - k) - log C(N, t); the terms without k are shared
    shared = lf[n1a] + lf[n2a] - lf[big_n] + lf[t] + lf[big_n - t]
    m1, m2, tk = n1a[..., None], n2a[..., None], t[..., None]
    log_pmf = shared[..., None] - lf[k] - lf[m1 - k] - lf[tk - k] - lf[m2 - tk + k]
    log_obs = shared - lf[a] - lf[n1a - a] - lf[c] - lf[n2a - c]
    as_extreme = valid & (log_pmf <= log_obs[..., None] + _FISHER_LOG_TIE)
    outside = (a < lo) | (a > hi)
    p = np.where(as_extreme, np.exp(log_pmf), 0.0).sum(axis=-1) + np.where(outside, np.exp(log_obs), 0.0)
    p = np.minimum(p, 1.0)
    return np.where((n1a > 0) & (n2a > 0), p, np.nan)


# --- 2. center vs network --------------------------------------------------------------------------
def _quantile(n: IntArray, p: FloatArray, q: float) -> IntArray:
    """Smallest ``r`` in ``[0, n]`` with ``P(Bin(n, p) <= r) >= q``."""
    return _search(lambda r: special.bdtr(r, n, p) >= q, np.zeros_like(n), n)


def binomial_count_limits(p0: ArrayLike, n: ArrayLike, alpha: float) -> tuple[IntArray, IntArray]:
    """Acceptance region ``[a, b]`` (counts) of the exact equal-tailed binomial test at ``alpha``.

    ``a`` is the smallest count with ``P(X <= a) >= alpha / 2`` and ``b`` the largest with
    ``P(X >= b) >= alpha / 2`` for ``X ~ Bin(n, p0)``; so ``x < a`` iff the lower tail ``P(X <= x)`` is
    below ``alpha / 2``, and ``x > b`` iff the upper tail is -- iff :func:`binomial_pvalue` is below
    ``alpha`` on that side. The upper tail is computed as the lower tail of ``n - X ~ Bin(n, 1 - p0)``,
    exactly as :func:`binomial_pvalue` does, so the two cannot disagree by rounding.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    na = np.asarray(n, dtype=np.int64)
    pa = np.broadcast_to(np.asarray(p0, dtype=np.float64), na.shape)
    q = alpha / 2.0
    a = _quantile(na, pa, q)
    b = na - _quantile(na, 1.0 - pa, q)
    return a, b


def funnel_limits(p0: float, n: ArrayLike, level: float) -> tuple[FloatArray, FloatArray]:
    """Funnel-plot limits (rates) at ``level`` around the network rate ``p0``: ``a / n`` and ``b / n`` of
    :func:`binomial_count_limits`. A rate strictly below the lower or above the upper limit is exactly
    a rejection by :func:`binomial_pvalue` at ``alpha = 1 - level``. NaN where ``n <= 0`` or ``p0`` is
    undefined. (Jagged in ``n``: the limits are counts over ``n``.) ``level`` is read to 12 decimals, so
    that 0.95 means exactly ``alpha = 0.05`` (``1 - 0.95`` is 0.05000000000000004 in floating point).
    """
    alpha = round(1.0 - level, 12)
    na = np.asarray(n, dtype=np.int64)
    ok = (na > 0) & bool(np.isfinite(p0))
    safe_n = np.where(ok, na, 1)
    a, b = binomial_count_limits(p0 if np.isfinite(p0) else 0.5, safe_n, alpha)
    return np.where(ok, a / safe_n, np.nan), np.where(ok, b / safe_n, np.nan)


def binomial_pvalue(x: ArrayLike, n: ArrayLike, p0: ArrayLike) -> FloatArray:
    """Two-sided exact binomial p-value of ``x ~ Bin(n, p0)``: twice the smaller tail, at most 1.

    Equals ``min(1, 2 * min(binomtest(x, n, p0, "less"), binomtest(x, n, p0, "greater")))`` of
    ``scipy.stats``. NaN where ``n <= 0`` or ``p0`` is NaN.
    """
    xa, na = _int_counts(x, n)
    pa = np.broadcast_to(np.asarray(p0, dtype=np.float64), na.shape)
    if np.any((na < 0) | (xa < 0) | (xa > na)):
        raise ValueError("counts must satisfy 0 <= numerator <= denominator")
    ok = (na > 0) & np.isfinite(pa)
    lower = special.bdtr(xa, na, pa)
    upper = special.bdtr(na - xa, na, 1.0 - pa)
    p = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return np.where(ok, p, np.nan)


@dataclass(frozen=True, slots=True)
class NetworkComparison:
    """Each center against the network rate: p-value and signal, aligned with the input order."""

    network_rate: float | None
    p_values: FloatArray
    signals: tuple[Signal, ...]


def network_comparison(
    numerators: Sequence[int] | ArrayLike,
    denominators: Sequence[int] | ArrayLike,
    *,
    inverse: bool = False,
    alpha: float = DEFAULT_ALPHA,
) -> NetworkComparison:
    """The one "worse / better than the rest" rule: each center's count against the network rate.

    ``worse`` when the center lies outside the ``1 - alpha`` funnel (:func:`funnel_limits`) on the bad
    side -- below it for an ordinary measure, above it for an inverse one (lower is better) --,
    ``better`` on the other side, ``as expected`` inside, ``no data`` without a denominator. With a
    single center with data there is no rest to compare with: no p-value, ``as expected``.
    """
    x, n = _int_counts(numerators, denominators)
    x, n = x.reshape(-1), n.reshape(-1)
    total_x, total_n = int(x.sum()), int(n.sum())
    if total_n <= 0:
        return NetworkComparison(None, np.full(x.size, np.nan), ("no data",) * x.size)
    p0 = total_x / total_n
    has = n > 0
    safe_n = np.where(has, n, 1)
    a, b = binomial_count_limits(p0, safe_n, alpha)
    pv = binomial_pvalue(np.where(has, x, 0), safe_n, p0)
    comparable = has & (int(has.sum()) > 1)
    pv = np.where(comparable, pv, np.nan)
    low, high = comparable & (x < a), comparable & (x > b)
    worse, better = (high, low) if inverse else (low, high)
    signals: list[Signal] = []
    for i in range(x.size):
        if not has[i]:
            signals.append("no data")
        elif worse[i]:
            signals.append("worse")
        elif better[i]:
            signals.append("better")
        else:
            signals.append("as expected")
    return NetworkComparison(p0, pv, tuple(signals))
