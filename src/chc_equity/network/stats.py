"""Pure network analytics: how each center's rate compares with the network's.

Two views of the same question, both closed-form and vectorised over centers:

* **Funnel-plot limits** (Spiegelhalter 2005, "Funnel plots for comparing institutional performance"):
  around the network rate ``p0``, the band a center of size ``n`` would fall in by chance alone,
  ``p0 +/- z * sqrt(p0 (1 - p0) / n)`` at 95 % (z = 1.96) and 99.8 % (z = 3.09). The normal
  approximation is what most published funnel plots use; it is clipped to [0, 1]. Plotting every center
  against its own denominator shows at a glance which differences are larger than chance.
* **Center vs network test**: each center against *the rest of the network* (the network minus that
  center, so a large center is not compared with itself) with the pooled two-proportion z-test of
  :func:`chc_equity.equity.intervals.two_proportion_pvalue`. A center is flagged ``worse`` when the
  test rejects at ``alpha`` and its rate is on the bad side -- lower for ordinary measures, higher for
  inverse ones (CMS122 HbA1c > 9 %, CMS75 dental decay). No multiplicity correction: the flag is a
  screening mark on a heat map, the funnel plot and p-value are shown next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chc_equity.equity.intervals import two_proportion_pvalue, wilson_interval, z_two_sided

FloatArray = NDArray[np.float64]
Signal = Literal["worse", "better", "as expected", "no data"]
Band = Literal["within 95%", "beyond 95%", "beyond 99.8%", "no data"]

FUNNEL_LEVELS: tuple[float, float] = (0.95, 0.998)
DEFAULT_ALPHA = 0.05


def funnel_limits(p0: float, n: ArrayLike, level: float) -> tuple[FloatArray, FloatArray]:
    """Lower and upper funnel limits at ``level`` (e.g. 0.95) for denominators ``n`` around ``p0``.

    NaN where ``n <= 0`` (no denominator, no limit) or ``p0`` is undefined.
    """
    na = np.asarray(n, dtype=np.float64)
    z = z_two_sided(1.0 - level)
    ok = (na > 0) & np.isfinite(p0)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = z * np.sqrt(p0 * (1.0 - p0) / np.where(ok, na, 1.0))
    low = np.clip(p0 - half, 0.0, 1.0)
    high = np.clip(p0 + half, 0.0, 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


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
    """Network rate and each center compared with the rest of the network.

    ``denominators`` are performance denominators (denominator - exclusions - exceptions). A center with
    a zero denominator gets ``no data``; with a single center there is no "rest", so p is None.
    """
    x = np.asarray(numerators, dtype=np.int64)
    n = np.asarray(denominators, dtype=np.int64)
    if x.shape != n.shape or x.shape != (len(centers),):
        raise ValueError("centers, numerators and denominators must have the same length")
    total_x, total_n = int(x.sum()), int(n.sum())
    p0 = total_x / total_n if total_n > 0 else float("nan")
    rates = np.where(n > 0, x / np.where(n > 0, n, 1), np.nan)
    low, high = wilson_interval(x, n)
    rest_x, rest_n = total_x - x, total_n - n
    p = two_proportion_pvalue(x, n, rest_x, rest_n)
    out = []
    for i, center in enumerate(centers):
        rate, pv = rates[i], p[i]
        if n[i] <= 0:
            signal: Signal = "no data"
        elif np.isfinite(pv) and pv < alpha:
            rest_rate = rest_x[i] / rest_n[i]
            bad = rate > rest_rate if inverse else rate < rest_rate
            signal = "worse" if bad else "better"
        else:
            signal = "as expected"
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
