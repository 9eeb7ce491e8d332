"""Pure network analytics: how each center's rate compares with the network's.

One question, one answer: whether a center is worse or better than the rest of the network is decided
by :func:`chc_equity.equity.significance.network_comparison` -- the exact binomial test of the center's
count against the network rate -- and the funnel plot draws that test's acceptance region
(:func:`funnel_limits`, 95 % and 99.8 %). So the heat-map mark, the funnel plot and ``equity --by
center`` agree by construction: a center is ``worse`` exactly when it lies outside the 95 % funnel on
the bad side (below it; above it for inverse measures such as CMS122 HbA1c > 9 %), and its p-value is
then below 0.05. Exact limits rather than the normal approximation of Spiegelhalter (2005) keep the
level for small centers; see docs/equity.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from chc_equity.equity.intervals import wilson_interval
from chc_equity.equity.significance import DEFAULT_ALPHA, Signal, funnel_limits, network_comparison

FloatArray = NDArray[np.float64]
Band = Literal["within 95%", "beyond 95%", "beyond 99.8%", "no data"]

FUNNEL_LEVELS: tuple[float, float] = (0.95, 0.998)  # the 95 % limits are the flag at DEFAULT_ALPHA
__all__ = [
    "FUNNEL_LEVELS",
    "Band",
    "CenterComparison",
    "Signal",
    "band_of",
    "compare_centers",
    "funnel_grid",
    "funnel_limits",
]


def funnel_grid(max_n: int, points: int = 80) -> NDArray[np.int64]:
    """Denominators at which to draw the funnel lines: log-spaced from 1 to ``max_n``, unique integers.

    Log spacing because the funnel changes fastest at small ``n``; 80 points draw a smooth curve.
    """
    if max_n < 1:
        return np.zeros(0, dtype=np.int64)
    grid = np.unique(np.round(np.geomspace(1, max_n, num=min(points, max_n))).astype(np.int64))
    return grid


@dataclass(frozen=True, slots=True)
class CenterComparison:
    """One center's rate against the network: Wilson CI, test vs the rest, funnel position."""

    center: str
    numerator: int
    denominator: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    network_rate: float | None
    p_value: float | None
    signal: Signal
    band: Band


def _opt(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def band_of(rate: float, n: int, p0: float) -> Band:
    """Where a center lies on the funnel plot (inside 95 %, between 95 % and 99.8 %, beyond 99.8 %)."""
    if n <= 0 or not np.isfinite(p0) or not np.isfinite(rate):
        return "no data"
    lo998, hi998 = funnel_limits(p0, n, FUNNEL_LEVELS[1])
    if rate < lo998 or rate > hi998:
        return "beyond 99.8%"
    lo95, hi95 = funnel_limits(p0, n, FUNNEL_LEVELS[0])
    if rate < lo95 or rate > hi95:
        return "beyond 95%"
    return "within 95%"


def compare_centers(
    centers: Sequence[str],
    numerators: Sequence[int],
    denominators: Sequence[int],
    *,
    inverse: bool = False,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[float | None, list[CenterComparison]]:
    """Network rate and each center compared with it (:func:`network_comparison`), with its funnel band.

    ``denominators`` are performance denominators (denominator - exclusions - exceptions). A center with
    a zero denominator gets ``no data``; with a single center there is no "rest", so p is None.
    """
    x = np.asarray(numerators, dtype=np.int64)
    n = np.asarray(denominators, dtype=np.int64)
    if x.shape != n.shape or x.shape != (len(centers),):
        raise ValueError("centers, numerators and denominators must have the same length")
    net = network_comparison(x, n, inverse=inverse, alpha=alpha)
    p0 = float("nan") if net.network_rate is None else net.network_rate
    rates = np.where(n > 0, x / np.where(n > 0, n, 1), np.nan)
    low, high = wilson_interval(x, n)
    out = []
    for i, center in enumerate(centers):
        rate, pv, signal = rates[i], net.p_values[i], net.signals[i]
        out.append(
            CenterComparison(
                center=center,
                numerator=int(x[i]),
                denominator=int(n[i]),
                rate=_opt(rate),
                ci_low=_opt(low[i]),
                ci_high=_opt(high[i]),
                network_rate=_opt(p0),
                p_value=_opt(pv),
                signal=signal,
                band=band_of(float(rate), int(n[i]), p0),
            )
        )
    return _opt(p0), out
