"""Run charts: a series against its median, and the rules that tell a shift from noise.

A run is one or more successive points on the same side of the centre line; points on the line
neither make nor break a run and are not "useful" observations. Two rule sets are implemented:

**Anhøj rules** (default) -- Anhøj J, Olesen AV. "Run charts revisited: a simulation study of run
chart rules for detection of non-random variation in health care processes." PLoS ONE
9(11):e113825, 2014; Anhøj J. "Diagnostic value of run chart analysis." PLoS ONE 10(3):e0121349,
2015; as implemented in qicharts2. With n useful points:

- *unusually long run*: the longest run is longer than ``round(log2(n) + 3)`` (Schilling's
  approximate upper prediction limit for the longest run of coin flips);
- *unusually few crossings*: the line crosses the centre fewer times than the lower 5 % quantile of
  Binomial(n - 1, 0.5) (R's ``qbinom(0.05, n - 1, 0.5)``).

Either one is a signal. With 24 points the limits are 8 and 8; with no change, about 5-10 % of
random series give a (false) signal (Anhøj 2015; ``tests/test_improvement_spc.py`` simulates it).

**IHI rules** -- Perla RJ, Provost LP, Murray SK. "The run chart: a simple analytical tool for
learning from variation in healthcare processes." BMJ Qual Saf 20:46-51, 2011:

- *shift*: six or more successive useful points on one side of the median;
- *trend*: five or more successive points all going up or all going down (a repeated value is
  skipped: it neither adds to nor breaks the trend);
- *too few or too many runs*: outside the 95 % range of the number of runs of a random sequence
  (Swed FS, Eisenhart C. "Tables for testing randomness of grouping in a sequence of alternatives."
  Ann Math Stat 14:66-87, 1943). Perla et al. print a table by number of useful points; we compute
  the exact Swed-Eisenhart distribution for the observed numbers above and below the median,
  2.5 % in each tail, which can differ from that table by one run at some n;
- *astronomical point*: IHI leaves it to judgement ("any observer would agree it is unusual"); we
  flag a point outside the XmR natural process limits of its phase (``x-bar +/- 2.66 mR-bar``).

The IHI rules are more sensitive and less specific than the Anhøj rules (about 3 times the false
signals at 24 points, Anhøj & Olesen 2014); use them where a program asks for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from chc_equity.improvement.signals import Direction, Signal, meaning, point_labels, span
from chc_equity.improvement.spc import natural_limits, phase_bounds

RULE_SETS = ("anhoej", "ihi")


@lru_cache(maxsize=1024)
def longest_run_limit(n_useful: int) -> int:
    """Anhøj & Olesen (2014): a run longer than ``round(log2(n) + 3)`` is unusually long."""
    return round(math.log2(n_useful) + 3) if n_useful > 0 else 0


@lru_cache(maxsize=1024)
def crossings_limit(n_useful: int) -> int:
    """Anhøj & Olesen (2014): fewer crossings than ``qbinom(0.05, n - 1, 0.5)`` is unusually few.

    The smallest c with P(X <= c) >= 0.05 for X ~ Binomial(n - 1, 1/2), computed exactly.
    """
    if n_useful < 2:
        return 0
    trials = n_useful - 1
    total, cum = 2**trials, 0
    for c in range(trials + 1):
        cum += math.comb(trials, c)
        if cum * 20 >= total:  # cum / total >= 0.05 without rounding
            return c
    return trials


@lru_cache(maxsize=4096)
def runs_limits(n_above: int, n_below: int, alpha: float = 0.05) -> tuple[int, int]:
    """Swed & Eisenhart (1943): ``(fewest, most)`` runs not unusual for ``n_above`` + ``n_below`` points.

    Fewer than ``fewest`` or more than ``most`` runs happens with probability at most ``alpha / 2``
    each in a random sequence, from the exact distribution of the number of runs R:
    ``P(R = 2k) = 2 C(a-1, k-1) C(b-1, k-1) / C(a+b, a)`` and
    ``P(R = 2k+1) = [C(a-1, k-1) C(b-1, k) + C(a-1, k) C(b-1, k-1)] / C(a+b, a)``.
    """
    a, b = n_above, n_below
    if a == 0 or b == 0:
        return (1, 1) if a + b else (0, 0)
    total = math.comb(a + b, a)

    def count(r: int) -> int:
        k = r // 2
        if r % 2 == 0:
            return 2 * math.comb(a - 1, k - 1) * math.comb(b - 1, k - 1)
        return math.comb(a - 1, k - 1) * math.comb(b - 1, k) + math.comb(a - 1, k) * math.comb(b - 1, k - 1)

    rs = range(2, a + b + 1)
    counts = {r: count(r) for r in rs}
    tail = alpha / 2 * total
    cum, fewest = 0, 2
    for r in rs:
        cum += counts[r]
        if cum > tail:
            fewest = r
            break
    cum, most = 0, a + b
    for r in reversed(rs):
        cum += counts[r]
        if cum > tail:
            most = r
            break
    return fewest, most


@dataclass(frozen=True)
class AnhoejBatch:
    """The Anhøj analysis of many series at once (one entry per series)."""

    n_useful: np.ndarray
    longest_run: np.ndarray
    longest_run_max: np.ndarray
    crossings: np.ndarray
    crossings_min: np.ndarray

    @property
    def long_run(self) -> np.ndarray:
        return self.longest_run > self.longest_run_max

    @property
    def few_crossings(self) -> np.ndarray:
        return self.crossings < self.crossings_min

    @property
    def signal(self) -> np.ndarray:
        return self.long_run | self.few_crossings


def anhoej(values: np.ndarray, centre: np.ndarray | float | None = None) -> AnhoejBatch:
    """Anhøj rules for each row of ``values`` (series x points), vectorised across rows.

    ``centre`` is one centre line per row (default: each row's median) or per point. NaN points and
    points on the centre line are dropped (they are not useful observations). Used for one series
    (a single row) by ``run_chart`` and for thousands of simulated series by the tests.
    """
    x = np.atleast_2d(np.asarray(values, dtype=float))
    rows, n = x.shape
    if centre is None:
        centre = np.nanmedian(x, axis=1)
    c = np.asarray(centre, dtype=float)
    if c.ndim <= 1:
        c = np.broadcast_to(c.reshape(-1, 1) if c.ndim == 1 else c, (rows, n))
    side = np.sign(x - c)
    side[np.isnan(side)] = 0
    useful = side != 0
    n_useful = useful.sum(axis=1)
    # Move the useful points of each row to its front, in order (a stable sort on "not useful").
    order = np.argsort(~useful, axis=1, kind="stable")
    s = np.take_along_axis(side, order, axis=1)
    longest = np.zeros(rows, dtype=int)
    current = np.zeros(rows, dtype=int)
    crossings = np.zeros(rows, dtype=int)
    for j in range(n):
        valid = j < n_useful
        if j == 0:
            current = np.where(valid, 1, 0)
        else:
            same = s[:, j] == s[:, j - 1]
            current = np.where(valid, np.where(same, current + 1, 1), current)
            crossings += valid & ~same
        longest = np.maximum(longest, current)
    run_max = np.array([longest_run_limit(int(k)) for k in n_useful])
    cross_min = np.array([crossings_limit(int(k)) for k in n_useful])
    return AnhoejBatch(n_useful, longest, run_max, crossings, cross_min)


@dataclass(frozen=True)
class RunPhase:
    """One phase of a run chart and its runs analysis."""

    index: int
    start: int
    stop: int
    median: float
    reference: int
    n_useful: int
    longest_run: int
    longest_run_max: int
    crossings: int
    crossings_min: int
    runs: int
    runs_min: int
    runs_max: int


@dataclass(frozen=True)
class RunChart:
    """A computed run chart: values, the median per point, its phases and every signal, in words."""

    values: np.ndarray
    centre: np.ndarray
    labels: tuple[str, ...]
    phases: tuple[RunPhase, ...]
    signals: tuple[Signal, ...]
    rules: tuple[str, ...]

    @property
    def has_signal(self) -> bool:
        return bool(self.signals)


def run_chart(
    values: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    phase_starts: Sequence[int] = (),
    baseline: int | None = None,
    higher_is_better: bool | None = None,
    rules: Sequence[str] = ("anhoej",),
) -> RunChart:
    """Run chart of ``values`` with the Anhøj rules (default) and/or the IHI rules (``rules``).

    Each phase (``phase_starts``, 0-based first points of declared changes) has its own median;
    ``baseline=k`` freezes phase 0's median at that of its first k points, so later points are
    tested against the baseline (qicharts2's ``freeze``). Missing values (NaN) are skipped.
    """
    unknown = set(rules) - set(RULE_SETS)
    if unknown:
        raise ValueError(f"unknown run-chart rule sets: {sorted(unknown)} (use {RULE_SETS})")
    x = np.asarray(values, dtype=float).reshape(-1)
    names = point_labels(x.size, labels)
    centre = np.full(x.size, np.nan)
    phases: list[RunPhase] = []
    signals: list[Signal] = []
    for k, (a, b) in enumerate(phase_bounds(x.size, phase_starts)):
        ref = x[a : min(b, a + baseline)] if (k == 0 and baseline is not None) else x[a:b]
        med = float(np.nanmedian(ref)) if np.any(~np.isnan(ref)) else float("nan")
        centre[a:b] = med
        idx = np.arange(a, b)
        side = np.sign(x[idx] - med)
        keep = ~np.isnan(side) & (side != 0)
        useful, uside = idx[keep], side[keep].astype(int)
        batch = anhoej(x[useful][None, :], med) if useful.size else None
        runs = _runs(uside)
        n_above, n_below = int((uside > 0).sum()), int((uside < 0).sum())
        rmin, rmax = runs_limits(n_above, n_below)
        phase = RunPhase(
            k,
            a,
            b,
            med,
            len(ref[~np.isnan(ref)]),
            int(useful.size),
            int(batch.longest_run[0]) if batch else 0,
            longest_run_limit(int(useful.size)),
            int(batch.crossings[0]) if batch else 0,
            crossings_limit(int(useful.size)),
            len(runs),
            rmin,
            rmax,
        )
        phases.append(phase)
        if "anhoej" in rules and useful.size:
            signals.extend(_anhoej_signals(phase, useful, uside, runs, names, higher_is_better))
        if "ihi" in rules:
            signals.extend(_ihi_signals(phase, x, idx, useful, uside, runs, names, higher_is_better))
    signals.sort(key=lambda s: (s.points[0], s.rule))
    return RunChart(x, centre, tuple(names), tuple(phases), tuple(signals), tuple(rules))


def _runs(side: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, stop), ...]`` positions (into the useful points) of each run of equal sides."""
    if side.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(side) != 0) + 1
    edges = [0, *cuts.tolist(), side.size]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _direction(s: int) -> Direction:
    return "up" if s > 0 else "down"


def _anhoej_signals(ph, useful, uside, runs, names, hib) -> list[Signal]:
    out = []
    for a, b in runs:
        if b - a > ph.longest_run_max:
            pts = useful[a:b]
            d = _direction(int(uside[a]))
            where = "above" if uside[a] > 0 else "below"
            out.append(
                Signal(
                    "anhoej_long_run",
                    tuple(int(i) for i in pts),
                    d,
                    ph.index,
                    f"Unusually long run: {b - a} points {where} the median {span(names, pts)} "
                    f"(more than {ph.longest_run_max} is unlikely by chance with {ph.n_useful} useful "
                    f"points): the process has shifted{meaning(d, hib)}.",
                )
            )
    if ph.crossings < ph.crossings_min:
        out.append(
            Signal(
                "anhoej_few_crossings",
                tuple(int(i) for i in useful),
                "none",
                ph.index,
                f"Unusually few crossings: the line crosses the median {ph.crossings} times "
                f"{span(names, useful)} (fewer than {ph.crossings_min} is unlikely by chance with "
                f"{ph.n_useful} useful points): the process is shifting or clustering.",
            )
        )
    return out


def _ihi_signals(ph, x, idx, useful, uside, runs, names, hib) -> list[Signal]:
    out = []
    for a, b in runs:  # shift: 6 or more useful points on one side
        if b - a >= 6:
            pts = useful[a:b]
            d = _direction(int(uside[a]))
            where = "above" if uside[a] > 0 else "below"
            out.append(
                Signal(
                    "ihi_shift",
                    tuple(int(i) for i in pts),
                    d,
                    ph.index,
                    f"Shift: {b - a} points in a row {where} the median {span(names, pts)}: "
                    f"a non-random change{meaning(d, hib)}.",
                )
            )
    present = idx[~np.isnan(x[idx])]
    for pts, d, count in _trends(x, present):
        out.append(
            Signal(
                "ihi_trend",
                tuple(int(i) for i in pts),
                d,
                ph.index,
                f"Trend: {count} points all going {d} {span(names, pts)}: "
                f"a non-random change{meaning(d, hib)}.",
            )
        )
    if useful.size:
        if ph.runs < ph.runs_min:
            out.append(
                Signal(
                    "ihi_too_few_runs",
                    tuple(int(i) for i in useful),
                    "none",
                    ph.index,
                    f"Too few runs: {ph.runs} runs about the median {span(names, useful)} (fewer "
                    f"than {ph.runs_min} is unlikely by chance): a non-random pattern.",
                )
            )
        elif ph.runs > ph.runs_max:
            out.append(
                Signal(
                    "ihi_too_many_runs",
                    tuple(int(i) for i in useful),
                    "none",
                    ph.index,
                    f"Too many runs: {ph.runs} runs about the median {span(names, useful)} (more "
                    f"than {ph.runs_max} is unlikely by chance): the data alternate, perhaps two "
                    f"sources mixed or over-adjustment.",
                )
            )
    lo, hi = natural_limits(x[present])
    for i in present:
        if x[i] > hi or x[i] < lo:
            d = _direction(1 if x[i] > hi else -1)
            out.append(
                Signal(
                    "ihi_astronomical",
                    (int(i),),
                    d,
                    ph.index,
                    f"Astronomical point {span(names, [i])}: {x[i]:.4g} is outside the natural "
                    f"process limits {lo:.4g}-{hi:.4g}: find out what happened{meaning(d, hib)}.",
                )
            )
    return out


def _trends(x: np.ndarray, present: np.ndarray) -> list[tuple[np.ndarray, Direction, int]]:
    """IHI trends: 5+ points all going up (or down); a repeated value neither counts nor breaks.

    Returns ``(points, direction, counted points)`` for each maximal trend.
    """
    out: list[tuple[np.ndarray, Direction, int]] = []
    if present.size < 2:
        return out
    start, count, direction = 0, 1, 0  # start: position in present; count: distinct values counted
    last = 0  # position of the last point that changed value
    for j in range(1, present.size):
        step = np.sign(x[present[j]] - x[present[last]])
        if step == 0:
            continue
        if step == direction:
            count += 1
        else:
            if count >= 5:
                out.append((present[start : last + 1], _direction(direction), count))
            start, count, direction = last, 2, int(step)
        last = j
    if count >= 5:
        out.append((present[start : last + 1], _direction(direction), count))
    return out
