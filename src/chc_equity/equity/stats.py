"""Per-stratum disparity statistics for one measure within one stratification dimension.

:func:`compare_strata` is the single entry point the stratification layer calls with plain counts
(one call per measure x dimension). Everything is computed in one vectorised numpy pass over the strata
(see :mod:`chc_equity.equity.intervals`); only the final row objects are built in Python.

Direction: for an *inverse* measure (lower is better, e.g. CMS122 HbA1c poor control) "best", "worse"
and the gap to equity flip; rates, differences and ratios are always reported as group vs. reference on
the measure's own scale.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from chc_equity.equity import disparity, intervals, significance
from chc_equity.equity.labels import UNKNOWN

ReferenceRule = Literal["largest", "best", "named"]

DEFAULT_ALPHA = 0.05
DEFAULT_UNRELIABLE_BELOW = 20


@dataclass(frozen=True, slots=True)
class StratumStats:
    """Statistics of one stratum. ``None`` means "not defined" (e.g. comparisons on the reference row)."""

    label: str
    numerator: int
    denominator: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    unreliable: bool
    is_reference: bool
    rate_difference: float | None
    diff_ci_low: float | None
    diff_ci_high: float | None
    rate_ratio: float | None
    ratio_ci_low: float | None
    ratio_ci_high: float | None
    p_value: float | None
    q_value: float | None
    gap_to_equity: int | None
    worse_than_reference: bool
    better_than_reference: bool


@dataclass(frozen=True, slots=True)
class DisparitySummary:
    """Measure-level summaries over the ``strata_summarised`` strata (see :func:`compare_strata`)."""

    strata_summarised: int
    between_group_variance: float | None
    index_of_disparity: float | None
    index_of_disparity_adverse: float | None
    max_min_ratio: float | None


@dataclass(frozen=True, slots=True)
class EquityComparison:
    """Result of :func:`compare_strata` for one measure x dimension."""

    reference: str | None
    reference_rule: ReferenceRule
    inverse: bool
    alpha: float
    strata: tuple[StratumStats, ...]
    summary: DisparitySummary

    def by_label(self) -> dict[str, StratumStats]:
        """Rows keyed by stratum label (labels are unique by construction)."""
        return {s.label: s for s in self.strata}


def _opt(value: float) -> float | None:
    """NaN -> None so that exported rows say "undefined" explicitly; +/-inf is kept (e.g. ratio vs 0 %)."""
    return None if math.isnan(value) else float(value)


def choose_reference(
    labels: Sequence[str],
    numerators: NDArray[np.int64],
    denominators: NDArray[np.int64],
    *,
    rule: ReferenceRule,
    reference_label: str | None,
    inverse: bool,
    eligible: NDArray[np.bool_],
    unreliable_below: int,
) -> int | None:
    """Index of the reference stratum, or ``None`` when no eligible stratum exists.

    * ``"largest"``: the eligible stratum with the largest denominator (ties: first in input order) -- the
      conventional choice because its rate is the most precise.
    * ``"best"``: the best-performing eligible stratum (highest rate; lowest for an inverse measure).
      Only *reliable* strata (denominator >= ``unreliable_below``) compete when any exist, otherwise a
      3-patient stratum at 100 % would become everyone's benchmark. Ties: larger denominator, then order.
    * ``"named"``: ``reference_label``; ``None`` if that stratum is empty or not eligible (e.g. its counts
      are suppressed -- comparisons against a hidden rate would reveal it).

    ``eligible`` must already exclude empty strata and strata the caller will not publish.
    """
    if rule == "named":
        if reference_label is None:
            raise ValueError('reference="named" needs reference_label')
        if reference_label not in labels:
            raise ValueError(f"reference stratum {reference_label!r} not among strata {list(labels)}")
        idx = list(labels).index(reference_label)
        return idx if eligible[idx] else None
    candidates = np.flatnonzero(eligible)
    if candidates.size == 0:
        return None
    if rule == "largest":
        return int(candidates[np.argmax(denominators[candidates])])
    if rule == "best":
        reliable = candidates[denominators[candidates] >= unreliable_below]
        pool = reliable if reliable.size else candidates
        rates = numerators[pool] / denominators[pool]
        score = -rates if inverse else rates
        # lexsort: last key is primary -> best score, then larger denominator, then input order.
        order = np.lexsort((pool, -denominators[pool], -score))
        return int(pool[order[0]])
    raise ValueError(f"unknown reference rule {rule!r}")


def compare_strata(
    labels: Sequence[str],
    numerators: Sequence[int],
    denominators: Sequence[int],
    *,
    inverse: bool = False,
    reference: ReferenceRule = "largest",
    reference_label: str | None = None,
    alpha: float = DEFAULT_ALPHA,
    unreliable_below: int = DEFAULT_UNRELIABLE_BELOW,
    shown: Sequence[bool] | None = None,
    unranked: Collection[str] = (UNKNOWN,),
    summarise_reliable_only: bool = True,
) -> EquityComparison:
    """Rates, intervals, comparisons with a reference, BH q-values and summaries for one measure.

    Args:
        labels: one unique label per stratum; include the unknown/missing stratum (never drop it).
        numerators, denominators: counts per stratum, ``0 <= numerator <= denominator``.
        inverse: lower rate is better (flips "best", "worse" and the gap direction).
        reference, reference_label: how the reference group is chosen, see :func:`choose_reference`.
        alpha: two-sided level of all intervals and of the q-value threshold for the worse/better flags.
        unreliable_below: rates with a denominator below this are flagged ``unreliable``.
        shown: which strata will be published (e.g. not suppressed). The BH family is "the strata shown"
            (non-reference, shown, testable), and the reference and the summaries use shown strata only, so
            that no published number is a function of a suppressed one. Default: all.
        unranked: labels that are reported but never ranked -- the unknown / missing stratum, whose
            make-up is unknown: they keep their rate and interval, but get no comparison with the
            reference (difference, ratio, test, q-value, gap, worse / better flag), never serve as the
            reference, are outside the BH family and outside the summaries (disparity indices).
            Default: the ``Unknown`` label; crossed tables pass every cell with an Unknown part.
        summarise_reliable_only: summaries use only reliable strata (they are dominated by noise otherwise).

    Per stratum ``j`` against reference ``r``: ``rate_difference = p_j - p_r`` with a Newcombe interval,
    ``rate_ratio = p_j / p_r`` with a Miettinen-Nurminen score interval (undefined when both rates are
    0 %), the p-value of Fisher's exact test (:mod:`chc_equity.equity.significance`), and BH q-value.
    ``worse_than_reference`` = ``q < alpha`` and the difference points in the bad direction
    (below the reference for a normal measure, above it for an inverse one); ``better`` likewise.
    """
    n_strata = len(labels)
    if len(set(labels)) != n_strata:
        raise ValueError("stratum labels must be unique")
    x = np.asarray(numerators, dtype=np.int64).reshape(-1)
    n = np.asarray(denominators, dtype=np.int64).reshape(-1)
    if x.size != n_strata or n.size != n_strata:
        raise ValueError("labels, numerators and denominators must have the same length")
    show = np.ones(n_strata, dtype=bool) if shown is None else np.asarray(shown, dtype=bool).reshape(-1)
    if show.size != n_strata:
        raise ValueError("shown must have one entry per stratum")

    if reference == "named" and reference_label in unranked:
        raise ValueError(
            f"stratum {reference_label!r} is reported but never ranked: it cannot be the reference"
        )
    rate = intervals.proportion(x, n)
    ci_low, ci_high = intervals.wilson_interval(x, n, alpha)
    unreliable = n < unreliable_below
    nonempty = n > 0
    ranked = np.array([lab not in unranked for lab in labels], dtype=bool)
    ref = choose_reference(
        labels,
        x,
        n,
        rule=reference,
        reference_label=reference_label,
        inverse=inverse,
        eligible=nonempty & show & ranked,
        unreliable_below=unreliable_below,
    )

    nan = np.full(n_strata, np.nan)
    diff = d_lo = d_hi = ratio = r_lo = r_hi = pval = qval = nan
    gaps: list[int | None] = [None] * n_strata
    worse = better = np.zeros(n_strata, dtype=bool)
    if ref is not None:
        xr, nr = x[ref], n[ref]
        diff = rate - rate[ref]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = rate / rate[ref]
        d_lo, d_hi = intervals.newcombe_diff_interval(x, n, xr, nr, alpha)
        r_lo, r_hi = intervals.score_ratio_interval(x, n, xr, nr, alpha)
        pval = significance.fisher_exact_pvalue(x, n, xr, nr)
        for arr in (diff, ratio, d_lo, d_hi, r_lo, r_hi, pval):
            arr[~ranked] = np.nan
        not_ref = np.arange(n_strata) != ref
        family = not_ref & show & np.isfinite(pval)
        qval = intervals.bh_qvalues(np.where(family, pval, np.nan))
        for arr in (d_lo, d_hi, r_lo, r_hi, pval):
            arr[ref] = np.nan
        ratio[ref] = 1.0  # the reference against itself, even when its rate is 0 (0/0)
        significant = np.nan_to_num(qval, nan=1.0) < alpha
        bad = diff > 0 if inverse else diff < 0
        good = diff < 0 if inverse else diff > 0
        worse = significant & bad
        better = significant & good
        gaps = disparity.gap_to_equity(x.tolist(), n.tolist(), int(xr), int(nr), inverse=inverse)
        gaps = [g if ranked[i] else None for i, g in enumerate(gaps)]

    summary = _summarise(
        rate, n, ref, show & nonempty & ranked & (~unreliable if summarise_reliable_only else True), inverse
    )
    rows = tuple(
        StratumStats(
            label=labels[i],
            numerator=int(x[i]),
            denominator=int(n[i]),
            rate=_opt(rate[i]),
            ci_low=_opt(ci_low[i]),
            ci_high=_opt(ci_high[i]),
            unreliable=bool(unreliable[i]),
            is_reference=ref == i,
            rate_difference=_opt(diff[i]),
            diff_ci_low=_opt(d_lo[i]),
            diff_ci_high=_opt(d_hi[i]),
            rate_ratio=_opt(ratio[i]),
            ratio_ci_low=_opt(r_lo[i]),
            ratio_ci_high=_opt(r_hi[i]),
            p_value=_opt(pval[i]),
            q_value=_opt(qval[i]),
            gap_to_equity=gaps[i],
            worse_than_reference=bool(worse[i]),
            better_than_reference=bool(better[i]),
        )
        for i in range(n_strata)
    )
    return EquityComparison(
        reference=None if ref is None else labels[ref],
        reference_rule=reference,
        inverse=inverse,
        alpha=alpha,
        strata=rows,
        summary=summary,
    )


def _summarise(
    rate: NDArray[np.float64], n: NDArray[np.int64], ref: int | None, mask: NDArray[np.bool_], inverse: bool
) -> DisparitySummary:
    """Measure-level summaries over ``mask``; the index of disparity also needs the reference."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return DisparitySummary(0, None, None, None, None)
    bgv = disparity.between_group_variance(rate[idx], n[idx])
    mmr = disparity.max_min_ratio(rate[idx])
    idisp = idisp_adv = float("nan")
    if ref is not None:
        others = idx[idx != ref]
        if others.size:
            idisp = disparity.index_of_disparity(rate[others], float(rate[ref]))
            adverse = rate if inverse else 1.0 - rate
            idisp_adv = disparity.index_of_disparity(adverse[others], float(adverse[ref]))
    return DisparitySummary(int(idx.size), _opt(bgv), _opt(idisp), _opt(idisp_adv), _opt(mmr))
