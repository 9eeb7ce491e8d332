"""Small-cell suppression with complementary suppression for tables with published margins.

Policy (CMS cell-size suppression policy): no count from 1 to ``threshold - 1`` (default 1-10) leaves the
system. Zero is *not* primary-suppressed by default -- CMS publishes zeros -- because a zero does not
identify a person by count; ``suppress_zero=True`` hides zeros too for stricter (attribute-disclosure)
policies. Hiding a cell is useless if it can be rebuilt by subtraction from a published total, so
complementary suppression follows, and an exact audit proves the result.

Model: a table is a vector of non-negative integer quantities (cells *and* totals) plus linear
equations ``total = sum(members)``. An attacker knows every published quantity, every equation, and that
all quantities are >= 0. A suppressed quantity is *protected* iff it is not uniquely determined by that
system, i.e. its minimum and maximum over the feasible set differ (see :mod:`chc_equity.equity.audit`).

Algorithm (iterated to a fixed point):

1. Primary: suppress ``0 < v < threshold`` (and ``v == 0`` if ``suppress_zero``) -- totals included.
2. Complementary, per equation: a suppressed quantity must never be alone in its equation (it would be
   the published total minus the published rest), and when the total is published the suppressed
   members must sum to at least ``min_hidden_sum`` (default: ``threshold``) -- otherwise the attacker
   learns that every hidden member lies in ``[0, S]`` with ``S`` small, which discloses a small count
   almost as well, and ``S == 0`` would determine them outright. The extra quantity is the smallest
   positive unsuppressed member (least information lost, and a positive value gives real slack),
   then a zero member, then the equation's total (totals such as denominators are worth more).
3. Audit: any suppressed quantity still determined (possible in 2-D tables, e.g. through a "bridge"
   between two suppression cycles) gets a further complement in one of its equations -- or, when those
   are all hidden or locked, in any equation that has a hidden quantity; repeat from 2. A hidden zero
   that the equations force (e.g. every "not met" of a measure at 100 %) counts only with
   ``suppress_zero``: otherwise zeros are published anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chc_equity.equity.audit import determined_quantities

DEFAULT_THRESHOLD = 11

Equation = tuple[int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class LinearTable:
    """Quantities (cells and totals) and the equations ``values[total] == sum(values[members])``."""

    values: NDArray[np.int64]
    equations: tuple[Equation, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if np.any(self.values < 0):
            raise ValueError("counts must be non-negative")
        for total, members in self.equations:
            if int(self.values[total]) != int(self.values[list(members)].sum()):
                raise ValueError(f"margin {self.names[total]!r} is not the sum of its members")

    def matrix(self) -> NDArray[np.float64]:
        """Equation matrix ``A`` with ``A @ values == 0`` (+1 for the total, -1 for each member)."""
        a = np.zeros((len(self.equations), self.values.size))
        for row, (total, members) in enumerate(self.equations):
            a[row, total] = 1.0
            a[row, list(members)] = -1.0
        return a


def one_way_table(counts: ArrayLike, labels: Sequence[str] | None = None) -> LinearTable:
    """Strata counts plus their published total (the last quantity)."""
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    k = c.size
    names = tuple(labels) if labels is not None else tuple(f"cell[{i}]" for i in range(k))
    return LinearTable(np.append(c, c.sum()), ((k, tuple(range(k))),), (*names, "total"))


def two_way_table(cells: ArrayLike) -> LinearTable:
    """Crossed strata ``cells[r, c]`` plus row totals, column totals and grand total.

    Layout of ``values``: the ``R*C`` cells row-major, then ``R`` row totals, ``C`` column totals, grand.
    """
    m = np.asarray(cells, dtype=np.int64)
    if m.ndim != 2:
        raise ValueError("cells must be 2-D")
    r, c = m.shape
    cell = np.arange(r * c).reshape(r, c)
    row_t = r * c + np.arange(r)
    col_t = r * c + r + np.arange(c)
    grand = r * c + r + c
    values = np.concatenate([m.reshape(-1), m.sum(axis=1), m.sum(axis=0), [m.sum()]])
    eqs: list[Equation] = [(int(row_t[i]), tuple(int(v) for v in cell[i])) for i in range(r)]
    eqs += [(int(col_t[j]), tuple(int(v) for v in cell[:, j])) for j in range(c)]
    eqs += [(grand, tuple(int(v) for v in row_t)), (grand, tuple(int(v) for v in col_t))]
    names = [f"cell[{i},{j}]" for i in range(r) for j in range(c)]
    names += [f"row_total[{i}]" for i in range(r)] + [f"col_total[{j}]" for j in range(c)] + ["grand_total"]
    return LinearTable(values.astype(np.int64), tuple(eqs), tuple(names))


@dataclass(frozen=True, slots=True)
class Suppression:
    """Outcome of :func:`suppress`: which quantities are hidden and why."""

    table: LinearTable
    suppressed: NDArray[np.bool_]
    primary: NDArray[np.bool_]
    threshold: int

    def published(self) -> list[int | None]:
        """The exportable quantities: the count, or ``None`` where suppressed."""
        return [None if s else int(v) for v, s in zip(self.table.values, self.suppressed, strict=True)]


def primary_mask(
    values: ArrayLike, threshold: int = DEFAULT_THRESHOLD, suppress_zero: bool = False
) -> NDArray:
    """Counts that must be hidden on their own: ``1 <= v < threshold`` (and ``0`` if ``suppress_zero``)."""
    v = np.asarray(values)
    low = 0 if suppress_zero else 1
    return (v >= low) & (v < threshold)


def suppress(
    table: LinearTable,
    threshold: int = DEFAULT_THRESHOLD,
    *,
    suppress_zero: bool = False,
    min_hidden_sum: int | None = None,
    locked: ArrayLike | None = None,
    hidden_before: ArrayLike | None = None,
) -> Suppression:
    """Primary + complementary suppression of ``table`` until every hidden quantity is protected.

    ``min_hidden_sum`` (default ``threshold``; ``1`` gives the bare "not exactly recoverable" rule) is
    the least total the hidden members of an equation with a published total may add up to.

    ``locked`` marks quantities that are published elsewhere no matter what (e.g. a measure's overall
    counts in the measures report, or the margins of a crossed table that the one-way tables already
    published): they are never hidden, so complements are found among the other quantities, and the
    protection holds even for an attacker who combines this table with those publications.
    ``hidden_before`` marks quantities already hidden by such another publication (kept hidden).
    """
    if threshold < 1:
        raise ValueError("threshold must be >= 1")
    need_sum = threshold if min_hidden_sum is None else max(1, min_hidden_sum)
    size = table.values.size
    lock = np.zeros(size, dtype=bool) if locked is None else np.asarray(locked, dtype=bool).reshape(-1)
    before = (
        np.zeros(size, dtype=bool) if hidden_before is None else np.asarray(hidden_before, bool).reshape(-1)
    )
    primary = primary_mask(table.values, threshold, suppress_zero) & ~lock
    hidden = primary | before
    while True:
        _complete_equations(table, hidden, need_sum, lock)
        determined = determined_quantities(table.matrix(), table.values, hidden)
        if not suppress_zero:  # a zero is published anyway under this policy: pinning one down is no leak
            determined &= table.values > 0
        if not determined.any():
            break
        if not any(_add_complement_for(table, hidden, int(i), lock) for i in np.flatnonzero(determined)):
            _add_any_complement(table, hidden, lock)
    return Suppression(table, hidden, primary, threshold)


def _pick_complement(
    table: LinearTable, hidden: NDArray[np.bool_], eq: Equation, locked: NDArray[np.bool_] | None = None
) -> int | None:
    """Best extra quantity to hide in ``eq``: smallest positive member, then a zero member, then total.

    Locked quantities are never picked.
    """
    total, members = eq
    lock = np.zeros(hidden.shape, dtype=bool) if locked is None else locked
    open_members = [m for m in members if not hidden[m] and not lock[m]]
    positive = [m for m in open_members if table.values[m] > 0]
    if positive:
        return min(positive, key=lambda m: (int(table.values[m]), m))
    if open_members:
        return open_members[0]
    return None if hidden[total] or lock[total] else total


def _complete_equations(
    table: LinearTable, hidden: NDArray[np.bool_], need_sum: int, locked: NDArray[np.bool_] | None = None
) -> None:
    """Step 2 of the algorithm, in place, until no equation changes."""
    changed = True
    while changed:
        changed = False
        for eq in table.equations:
            total, members = eq
            hidden_members = [m for m in members if hidden[m]]
            n_hidden = len(hidden_members) + int(hidden[total])
            if n_hidden == 0:
                continue
            short = not hidden[total] and int(table.values[hidden_members].sum()) < need_sum
            if n_hidden == 1 or short:
                pick = _pick_complement(table, hidden, eq, locked)
                if pick is not None:
                    hidden[pick] = True
                    changed = True


def _add_complement_for(
    table: LinearTable, hidden: NDArray[np.bool_], index: int, locked: NDArray[np.bool_] | None = None
) -> bool:
    """Hide one more quantity in an equation that contains the determined quantity ``index``.

    False when every quantity of those equations is hidden or locked (the quantity is then pinned down
    through other equations: see :func:`_add_any_complement`).
    """
    for eq in table.equations:
        total, members = eq
        if index == total or index in members:
            pick = _pick_complement(table, hidden, eq, locked)
            if pick is not None:
                hidden[pick] = True
                return True
    return False


def _add_any_complement(
    table: LinearTable, hidden: NDArray[np.bool_], locked: NDArray[np.bool_] | None = None
) -> None:
    """Hide the smallest open quantity of any equation that already has a hidden one.

    Hiding more never makes a hidden quantity easier to pin down (the feasible set only grows), so
    repeating this ends with every hidden quantity protected, or with nothing left to hide.
    """
    lock = np.zeros(hidden.shape, dtype=bool) if locked is None else locked
    candidates = {
        q
        for total, members in table.equations
        if hidden[total] or hidden[list(members)].any()
        for q in (total, *members)
        if not hidden[q] and not lock[q]
    }
    if not candidates:
        raise RuntimeError("cannot protect the hidden quantities: every related quantity is hidden or locked")
    positive = [q for q in candidates if table.values[q] > 0]
    hidden[min(positive or candidates, key=lambda q: (int(table.values[q]), q))] = True


def published_totals(met_unmet_all: ArrayLike, threshold: int, suppress_zero: bool = False) -> NDArray:
    """Which of a measure's totals (met, not met, all) a report can publish as-is.

    All three when neither met nor not-met is small; otherwise only the denominator (if not small), since
    with the denominator public, publishing either part would give the small one away.
    """
    v = np.asarray(met_unmet_all).reshape(-1)
    small = primary_mask(v, threshold, suppress_zero)
    if small[0] or small[1]:
        return np.array([False, False, not small[2]])
    return ~small


@dataclass(frozen=True, slots=True)
class MeasureSuppression:
    """Suppression of one measure's stratified table (numerator / denominator / rate per stratum).

    The table is modelled as strata x {met, not met} with row totals = denominators, so a small numerator
    *or* a small ``denominator - numerator`` hides the numerator and the rate (publishing the rate with
    the denominator would give the small count back as ``rate x denominator``), and a small denominator
    hides the denominator. ``rate_suppressed`` -- and with it every per-stratum statistic derived from
    the counts (CI, difference, ratio, p, q, gap) -- is set whenever the numerator or denominator is.
    """

    labels: tuple[str, ...]
    numerator_suppressed: NDArray[np.bool_]
    denominator_suppressed: NDArray[np.bool_]
    rate_suppressed: NDArray[np.bool_]
    total_numerator_suppressed: bool
    total_denominator_suppressed: bool
    detail: Suppression

    @property
    def shown(self) -> NDArray[np.bool_]:
        """Strata whose rate is published: pass as ``shown`` to ``compare_strata``."""
        return ~self.rate_suppressed


def suppress_measure(
    labels: Sequence[str],
    numerators: Sequence[int],
    denominators: Sequence[int],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    suppress_zero: bool = False,
    min_hidden_sum: int | None = None,
    totals_published: bool = False,
) -> MeasureSuppression:
    """Suppress a measure's per-stratum numerators/denominators and the measure totals.

    ``totals_published``: the measure's overall numerator/denominator are published elsewhere (e.g. the
    measures report), so they are locked -- never used as complements -- unless themselves small.
    """
    x = np.asarray(numerators, dtype=np.int64).reshape(-1)
    d = np.asarray(denominators, dtype=np.int64).reshape(-1)
    if x.size != len(labels) or d.size != len(labels) or np.any(x > d):
        raise ValueError("need one numerator <= denominator per label")
    k = x.size
    table = two_way_table(np.column_stack([x, d - x]))
    locked = None
    if totals_published:
        locked = np.zeros(table.values.size, dtype=bool)
        locked[3 * k :] = published_totals(table.values[3 * k :], threshold, suppress_zero)
    result = suppress(
        table, threshold, suppress_zero=suppress_zero, min_hidden_sum=min_hidden_sum, locked=locked
    )
    h = result.suppressed
    num_hidden = h[0 : 2 * k : 2].copy()
    den_hidden = h[2 * k : 3 * k].copy()
    total_num = 3 * k  # first column total (met)
    grand = 3 * k + 2
    return MeasureSuppression(
        labels=tuple(labels),
        numerator_suppressed=num_hidden,
        denominator_suppressed=den_hidden,
        rate_suppressed=num_hidden | den_hidden,
        total_numerator_suppressed=bool(h[total_num]),
        total_denominator_suppressed=bool(h[grand]),
        detail=result,
    )
