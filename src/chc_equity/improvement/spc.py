"""Shewhart control charts for measures over time: p, Laney p', u and XmR (I and MR), with phases.

Each chart returns a typed ``ControlChart``: the plotted values, a centre line and 3-sigma limits per
point (they vary with each point's denominator on p, p' and u charts), the phases it was computed in,
and every rule that fired, worded for people (``signals.Signal``).

Sources (docs/improvement.md):

- p and u charts: Montgomery, *Introduction to Statistical Quality Control* (6th ed., 2009), ch. 7:
  limits ``p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i)`` and ``u-bar +/- 3 sqrt(u-bar / n_i)``, where
  p-bar and u-bar are pooled (sum of numerators over sum of denominators).
- Laney p' chart: Laney DB, "Improved control charts for attributes", *Quality Engineering*
  14(4):531-537, 2002. With very large denominators the binomial sigma is too small (overdispersion)
  and most points fall outside p-chart limits; Laney standardises each point,
  ``z_i = (p_i - p-bar) / sigma_p_i``, estimates the between-period variation of z from its moving
  ranges, ``sigma_z = mean |z_i - z_(i-1)| / 1.128``, and uses ``p-bar +/- 3 sigma_p_i sigma_z``.
- XmR: Wheeler, *Understanding Variation* (2nd ed., 2000): natural process limits
  ``x-bar +/- 2.66 mR-bar`` (2.66 = 3 / d2, d2 = 1.128 for ranges of two) and the moving-range
  chart's upper limit ``3.267 mR-bar`` (D4 for n = 2).
- Rules: Western Electric Company, *Statistical Quality Control Handbook* (1956): 1) a point beyond
  the 3-sigma limits; 2) two of three successive points beyond 2 sigma on one side; 3) four of five
  beyond 1 sigma on one side; 4) eight successive points on one side of the centre line. The default
  is rules 1 and 4: every extra rule adds false alarms (Anhøj's qicharts2 vignette).

Phases: a declared change (a PDSA cycle, a new workflow) starts a new phase, and each phase's centre
and limits are computed from its own points only (``phase_starts``). ``baseline=k`` freezes phase 0's
centre and limits at those of its first k points, so later points are judged against the baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chc_equity.improvement.signals import Direction, Signal, meaning, point_labels, span

D2 = 1.128  # E[range] / sigma for subgroups of two (moving ranges)
XMR_LIMIT = 2.66  # Wheeler's scaling of mR-bar to 3 sigma (3 / 1.128, rounded as published)
MR_UCL = 3.267  # D4 for n = 2: upper limit of the moving-range chart, in units of mR-bar

DEFAULT_RULES = ("beyond_limits", "run_of_8")
ALL_RULES = ("beyond_limits", "run_of_8", "two_of_three_beyond_2sigma", "four_of_five_beyond_1sigma")


@dataclass(frozen=True)
class Phase:
    """One phase of a chart: points ``start`` to ``stop - 1`` and what they were computed from.

    ``centre`` is p-bar, u-bar, x-bar or mR-bar; ``sigma_z`` is Laney's between-period factor (p'
    charts only); ``reference`` is how many points the centre and limits were computed from.
    """

    index: int
    start: int
    stop: int
    centre: float
    reference: int
    sigma_z: float | None = None


@dataclass(frozen=True)
class ControlChart:
    """A computed control chart; arrays have one entry per point (NaN where a point has no value).

    ``values``, ``centre``, ``lcl`` and ``ucl`` are already multiplied by ``multiply`` (e.g. 100 for
    percent, 10 000 for rates per 10 000); ``sigma`` is one sigma per point on the same scale.
    """

    kind: str
    values: np.ndarray
    centre: np.ndarray
    lcl: np.ndarray
    ucl: np.ndarray
    sigma: np.ndarray
    labels: tuple[str, ...]
    phases: tuple[Phase, ...]
    signals: tuple[Signal, ...]
    multiply: float = 1.0
    denominators: np.ndarray | None = None

    @property
    def has_signal(self) -> bool:
        return bool(self.signals)


def phase_bounds(n: int, phase_starts: Sequence[int] = ()) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` for the phases that ``phase_starts`` (0-based first points) declare."""
    starts = sorted(set(int(s) for s in phase_starts))
    if any(s <= 0 or s >= n for s in starts):
        raise ValueError(f"phase starts must lie in 1..{n - 1}: {starts}")
    edges = [0, *starts, n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _reference(start: int, stop: int, phase: int, baseline: int | None) -> slice:
    """The points a phase's centre and limits come from: all of it, or phase 0's first ``baseline``."""
    if phase == 0 and baseline is not None:
        if baseline < 2:
            raise ValueError("a baseline needs at least 2 points")
        return slice(start, min(stop, start + baseline))
    return slice(start, stop)


def _as_float(x: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def _ratios(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[np.ndarray, ...]:
    num, den = _as_float(numerators), _as_float(denominators)
    if num.shape != den.shape:
        raise ValueError(f"{num.size} numerators for {den.size} denominators")
    if np.any(den < 0) or np.any(num < 0):
        raise ValueError("numerators and denominators must not be negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return num, den, value


def _mr_bar(x: np.ndarray) -> float:
    """Mean moving range of consecutive non-missing values (NaN if fewer than two)."""
    x = x[~np.isnan(x)]
    return float(np.mean(np.abs(np.diff(x)))) if x.size >= 2 else float("nan")


# --- charts -------------------------------------------------------------------------------------


def p_chart(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    phase_starts: Sequence[int] = (),
    baseline: int | None = None,
    higher_is_better: bool | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    multiply: float = 1.0,
) -> ControlChart:
    """p-chart of proportions ``numerators / denominators``; limits vary with each denominator.

    Montgomery (2009) §7.2.2: ``p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i)``, clipped to [0, 1].
    """
    return _proportion_chart(
        "p",
        numerators,
        denominators,
        labels,
        phase_starts,
        baseline,
        higher_is_better,
        rules,
        multiply,
        laney=False,
    )


def laney_p_chart(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    phase_starts: Sequence[int] = (),
    baseline: int | None = None,
    higher_is_better: bool | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    multiply: float = 1.0,
) -> ControlChart:
    """Laney p'-chart: the p-chart's sigma times sigma-z, the moving-range spread of z-scores.

    Laney (2002): ``z_i = (p_i - p-bar) / sqrt(p-bar (1 - p-bar) / n_i)``,
    ``sigma_z = mean |z_i - z_(i-1)| / 1.128``; limits ``p-bar +/- 3 sigma_z sqrt(p-bar (1 - p-bar) / n_i)``.
    Use it when denominators are large (a network's whole panel per month) and p-chart limits flag
    nearly every point. sigma_z near 1 means the p-chart was right; the phase records it.
    """
    return _proportion_chart(
        "p'",
        numerators,
        denominators,
        labels,
        phase_starts,
        baseline,
        higher_is_better,
        rules,
        multiply,
        laney=True,
    )


def _proportion_chart(
    kind: str,
    numerators: Sequence[float],
    denominators: Sequence[float],
    labels: Sequence[str] | None,
    phase_starts: Sequence[int],
    baseline: int | None,
    higher_is_better: bool | None,
    rules: Sequence[str],
    multiply: float,
    *,
    laney: bool,
) -> ControlChart:
    num, den, p = _ratios(numerators, denominators)
    n = p.size
    centre, sigma = np.full(n, np.nan), np.full(n, np.nan)
    phases: list[Phase] = []
    for k, (a, b) in enumerate(phase_bounds(n, phase_starts)):
        ref = _reference(a, b, k, baseline)
        pbar = float(num[ref].sum() / den[ref].sum()) if den[ref].sum() > 0 else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(den[a:b] > 0, np.sqrt(pbar * (1 - pbar) / den[a:b]), np.nan)
        sigma_z = None
        if laney:
            z = (p[ref] - pbar) / s[: ref.stop - ref.start]
            sigma_z = _mr_bar(z) / D2
            s = s * sigma_z
        centre[a:b], sigma[a:b] = pbar, s
        phases.append(Phase(k, a, b, pbar, ref.stop - ref.start, sigma_z))
    lcl = np.clip(centre - 3 * sigma, 0.0, 1.0)
    ucl = np.clip(centre + 3 * sigma, 0.0, 1.0)
    return _finish(kind, p, centre, lcl, ucl, sigma, labels, phases, higher_is_better, rules, multiply, den)


def u_chart(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    phase_starts: Sequence[int] = (),
    baseline: int | None = None,
    higher_is_better: bool | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    multiply: float = 1.0,
) -> ControlChart:
    """u-chart of rates (events per unit of exposure, e.g. visits per patient-month).

    Montgomery (2009) §7.3.1: ``u-bar +/- 3 sqrt(u-bar / n_i)``, the lower limit floored at 0.
    With all denominators 1 it is the c-chart.
    """
    num, den, u = _ratios(numerators, denominators)
    n = u.size
    centre, sigma = np.full(n, np.nan), np.full(n, np.nan)
    phases: list[Phase] = []
    for k, (a, b) in enumerate(phase_bounds(n, phase_starts)):
        ref = _reference(a, b, k, baseline)
        ubar = float(num[ref].sum() / den[ref].sum()) if den[ref].sum() > 0 else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma[a:b] = np.where(den[a:b] > 0, np.sqrt(ubar / den[a:b]), np.nan)
        centre[a:b] = ubar
        phases.append(Phase(k, a, b, ubar, ref.stop - ref.start))
    lcl = np.maximum(centre - 3 * sigma, 0.0)
    ucl = centre + 3 * sigma
    return _finish("u", u, centre, lcl, ucl, sigma, labels, phases, higher_is_better, rules, multiply, den)


def xmr_chart(
    values: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    phase_starts: Sequence[int] = (),
    baseline: int | None = None,
    higher_is_better: bool | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    multiply: float = 1.0,
) -> tuple[ControlChart, ControlChart]:
    """XmR: the individuals (I) chart and its moving-range (MR) chart, as ``(i_chart, mr_chart)``.

    Wheeler (2000): I limits ``x-bar +/- 2.66 mR-bar``; MR upper limit ``3.267 mR-bar`` (no lower
    limit). Moving ranges never straddle a phase break. The MR chart only checks points above its
    upper limit (a sudden jump between neighbours).
    """
    x = _as_float(values)
    n = x.size
    centre, sigma = np.full(n, np.nan), np.full(n, np.nan)
    mr = np.full(n, np.nan)
    mr_centre, mr_ucl = np.full(n, np.nan), np.full(n, np.nan)
    phases: list[Phase] = []
    mr_phases: list[Phase] = []
    for k, (a, b) in enumerate(phase_bounds(n, phase_starts)):
        ref = _reference(a, b, k, baseline)
        xr = x[ref]
        xbar = float(np.nanmean(xr)) if np.any(~np.isnan(xr)) else float("nan")
        mrbar = _mr_bar(xr)
        centre[a:b] = xbar
        sigma[a:b] = XMR_LIMIT * mrbar / 3  # one "sigma" as the published 2.66 implies
        seg = x[a:b]
        ok = np.flatnonzero(~np.isnan(seg))
        mr[a + ok[1:]] = np.abs(np.diff(seg[ok]))
        mr_centre[a:b], mr_ucl[a:b] = mrbar, MR_UCL * mrbar
        phases.append(Phase(k, a, b, xbar, ref.stop - ref.start))
        mr_phases.append(Phase(k, a, b, mrbar, ref.stop - ref.start))
    i_chart = _finish(
        "i",
        x,
        centre,
        centre - 3 * sigma,
        centre + 3 * sigma,
        sigma,
        labels,
        phases,
        higher_is_better,
        rules,
        multiply,
        None,
    )
    mr_sigma = (mr_ucl - mr_centre) / 3
    mr_chart = _finish(
        "mr",
        mr,
        mr_centre,
        np.zeros(n),
        mr_ucl,
        mr_sigma,
        labels,
        mr_phases,
        None,
        ("beyond_limits",),
        multiply,
        None,
    )
    return i_chart, mr_chart


def natural_limits(values: np.ndarray) -> tuple[float, float]:
    """XmR natural process limits of a series, ``x-bar +/- 2.66 mR-bar`` (used for astronomical points)."""
    x = values[~np.isnan(values)]
    if x.size < 2:
        return float("-inf"), float("inf")
    half = XMR_LIMIT * _mr_bar(x)
    return float(x.mean() - half), float(x.mean() + half)


# --- rules --------------------------------------------------------------------------------------


def _finish(
    kind: str,
    values: np.ndarray,
    centre: np.ndarray,
    lcl: np.ndarray,
    ucl: np.ndarray,
    sigma: np.ndarray,
    labels: Sequence[str] | None,
    phases: list[Phase],
    higher_is_better: bool | None,
    rules: Sequence[str],
    multiply: float,
    denominators: np.ndarray | None,
) -> ControlChart:
    unknown = set(rules) - set(ALL_RULES)
    if unknown:
        raise ValueError(f"unknown control-chart rules: {sorted(unknown)}")
    m = float(multiply)
    values, centre, lcl, ucl, sigma = values * m, centre * m, lcl * m, ucl * m, sigma * m
    names = point_labels(values.size, labels)
    signals: list[Signal] = []
    for ph in phases:
        idx = np.arange(ph.start, ph.stop)
        idx = idx[~np.isnan(values[idx]) & ~np.isnan(centre[idx])]
        for rule in ALL_RULES:  # fixed order, whatever order the caller gave
            if rule in rules:
                signals.extend(
                    _RULES[rule](values, centre, lcl, ucl, sigma, idx, ph.index, names, higher_is_better)
                )
    signals.sort(key=lambda s: (s.points[0], s.rule))
    return ControlChart(
        kind, values, centre, lcl, ucl, sigma, tuple(names), tuple(phases), tuple(signals), m, denominators
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _beyond_limits(values, centre, lcl, ucl, sigma, idx, phase, names, hib) -> list[Signal]:
    """WE rule 1 (Shewhart): a single point outside the 3-sigma limits."""
    out = []
    for i in idx:
        if values[i] > ucl[i] or values[i] < lcl[i]:
            up = bool(values[i] > ucl[i])
            d: Direction = "up" if up else "down"
            where = "above the upper" if up else "below the lower"
            limit = ucl[i] if up else lcl[i]
            out.append(
                Signal(
                    "beyond_limits",
                    (int(i),),
                    d,
                    phase,
                    f"{names[i]}: {_fmt(values[i])} is {where} control limit ({_fmt(limit)}): "
                    f"a special cause, not noise{meaning(d, hib)}.",
                )
            )
    return out


def _side_runs(side: np.ndarray, idx: np.ndarray, length: int) -> list[tuple[np.ndarray, int]]:
    """Maximal runs of at least ``length`` equal non-zero sides among the points ``idx`` (in order)."""
    out: list[tuple[np.ndarray, int]] = []
    start = 0
    for j in range(1, idx.size + 1):
        if j == idx.size or side[idx[j]] != side[idx[start]] or side[idx[j]] == 0:
            if side[idx[start]] != 0 and j - start >= length:
                out.append((idx[start:j], int(side[idx[start]])))
            start = j
    return out


def _run_of_8(values, centre, lcl, ucl, sigma, idx, phase, names, hib) -> list[Signal]:
    """WE rule 4: eight or more successive points on one side of the centre line (a point on the
    line breaks the run)."""
    side = np.sign(values - centre)
    out = []
    for pts, s in _side_runs(side, idx, 8):
        d: Direction = "up" if s > 0 else "down"
        where = "above" if s > 0 else "below"
        out.append(
            Signal(
                "run_of_8",
                tuple(int(i) for i in pts),
                d,
                phase,
                f"{pts.size} points in a row {where} the centre line {span(names, pts)}: "
                f"the process has shifted, the change is real{meaning(d, hib)}.",
            )
        )
    return out


def _k_of_m(rule: str, k: int, m: int, zone: float) -> Callable[..., list[Signal]]:
    """WE rules 2 and 3: ``k`` of ``m`` successive points beyond ``zone`` sigma on the same side."""

    def check(values, centre, lcl, ucl, sigma, idx, phase, names, hib) -> list[Signal]:
        out = []
        z = (values[idx] - centre[idx]) / sigma[idx]
        for s in (1, -1):
            beyond = s * z > zone
            hit = np.zeros(idx.size, dtype=bool)
            for j in range(idx.size - m + 1):
                if beyond[j : j + m].sum() >= k:
                    hit[j : j + m] |= beyond[j : j + m]
            for group in np.split(
                np.flatnonzero(hit), np.flatnonzero(np.diff(np.flatnonzero(hit)) > m - k + 1) + 1
            ):
                if group.size == 0:
                    continue
                pts = idx[group]
                d: Direction = "up" if s > 0 else "down"
                where = "above" if s > 0 else "below"
                out.append(
                    Signal(
                        rule,
                        tuple(int(i) for i in pts),
                        d,
                        phase,
                        f"{k} of {m} successive points more than {zone:g} sigma {where} the centre "
                        f"line {span(names, pts)}: an early sign of a shift{meaning(d, hib)}.",
                    )
                )
        return out

    return check


_RULES: dict[str, Callable[..., list[Signal]]] = {
    "beyond_limits": _beyond_limits,
    "run_of_8": _run_of_8,
    "two_of_three_beyond_2sigma": _k_of_m("two_of_three_beyond_2sigma", 2, 3, 2.0),
    "four_of_five_beyond_1sigma": _k_of_m("four_of_five_beyond_1sigma", 4, 5, 1.0),
}
