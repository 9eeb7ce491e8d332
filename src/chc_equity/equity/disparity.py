"""Measure-level disparity summaries and the per-stratum gap to equity.

All rates are proportions in [0, 1] (not percentages) unless a docstring says otherwise. The summary
functions take the rates and population sizes of the strata to summarise; choosing *which* strata (e.g.
only reliable, published ones) is the caller's job, see :func:`chc_equity.equity.stats.compare_strata`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def between_group_variance(rates: ArrayLike, populations: ArrayLike) -> float:
    """Population-weighted between-group variance (BGV) of the group rates.

    ``BGV = sum_j p_j * (r_j - r_bar)**2`` with ``p_j = n_j / sum(n)`` the population share of group
    ``j`` and ``r_bar = sum_j p_j * r_j`` the population-weighted mean rate (for a proportion measure this
    is the pooled rate of the summarised strata). Definition as in NCI's HD*Calc and Harper & Lynch,
    *Methods for Measuring Cancer Disparities* (NCI, 2005). It is an absolute measure (units: squared
    proportion) that, unlike pairwise ratios, weights each group by its size, so tiny strata cannot
    dominate it. NaN when there is no population.
    """
    r = np.asarray(rates, dtype=np.float64)
    w = np.asarray(populations, dtype=np.float64)
    total = w.sum()
    if r.size == 0 or total <= 0:
        return float("nan")
    share = w / total
    mean = float(np.dot(share, r))
    return float(np.dot(share, (r - mean) ** 2))


def index_of_disparity(rates: ArrayLike, reference_rate: float) -> float:
    """Index of disparity (Pearcy & Keppel, Public Health Rep 2002;117:273-280), in percent.

    ``ID = (sum_j |r_j - r_ref| / J) / r_ref * 100`` where the sum and ``J`` run over the groups compared
    with the reference, *excluding the reference group itself* (pass its rate only as ``reference_rate``).
    It is the mean absolute deviation from the reference relative to the reference, unweighted, so every
    group counts equally regardless of size. NaN when there are no comparison groups or ``r_ref == 0``
    (a relative measure is undefined against a zero rate).

    Note Pearcy & Keppel recommend expressing indicators as *adverse* events so that the index is
    comparable across measures; callers wanting that pass ``1 - rate`` for a higher-is-better measure
    (see ``DisparitySummary.index_of_disparity_adverse``).
    """
    r = np.asarray(rates, dtype=np.float64)
    if r.size == 0 or not np.isfinite(reference_rate) or reference_rate == 0:
        return float("nan")
    return float(np.mean(np.abs(r - reference_rate)) / reference_rate * 100.0)


def max_min_ratio(rates: ArrayLike) -> float:
    """Ratio of the highest to the lowest group rate: the simplest relative range.

    ``max(r) / min(r)``; ``inf`` when the lowest rate is 0 and the highest is not, and ``1.0`` when every
    rate is 0 (all groups equal: no disparity); NaN for no groups. Sensitive to the smallest strata, which
    is why callers summarise reliable strata only.
    """
    r = np.asarray(rates, dtype=np.float64)
    if r.size == 0:
        return float("nan")
    hi, lo = float(r.max()), float(r.min())
    if lo == 0.0:
        return 1.0 if hi == 0.0 else float("inf")
    return hi / lo


def gap_to_equity(
    numerators: Sequence[int],
    denominators: Sequence[int],
    reference_numerator: int,
    reference_denominator: int,
    *,
    inverse: bool = False,
) -> list[int | None]:
    """Patients who must change status for each group's rate to reach the reference rate.

    Normal measure (higher is better): the number the group must *add* to its numerator,
    ``ceil(r_ref * n - x)`` clipped at 0. Inverse measure (e.g. CMS122 poor HbA1c control, lower is
    better): the number that must *leave* the numerator, ``ceil(x - r_ref * n)`` clipped at 0.

    ``r_ref = x_ref / n_ref`` is kept exact: with ``r_ref * n - x = (x_ref * n - x * n_ref) / n_ref`` the
    ceiling is computed by integer floor division (exact rational arithmetic on Python ints, equivalent
    to ``math.ceil(Fraction(...))``). Floating point would turn an exact tie such as ``0.3 * 10 - 3`` into
    ``4.4e-16`` and report a spurious gap of 1 patient. ``None`` when the group or the reference is empty.
    """
    if reference_denominator <= 0:
        return [None] * len(numerators)
    out: list[int | None] = []
    for x, n in zip(numerators, denominators, strict=True):
        x, n = int(x), int(n)
        if n <= 0:
            out.append(None)
            continue
        shortfall = reference_numerator * n - x * reference_denominator  # (r_ref*n - x) * n_ref
        if inverse:
            shortfall = -shortfall
        out.append(max(0, -((-shortfall) // reference_denominator)))
    return out
