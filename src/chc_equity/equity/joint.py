"""One suppression plan for everything published about one measure group: centers, network and strata.

A measure group's population is split several ways at once: by center (the heat map), and by the
strata of every equity dimension (the measure page). Every split adds up to the same network totals, so
hiding cells split by split is not enough: a center cell hidden on the heat map is the network total
minus the other centers, and a network total hidden on one table can be pinned down by intersecting
what two other tables allow. :func:`plan_group` therefore builds *one* linear system over the union and
lets :func:`chc_equity.equity.suppression.suppress` complete and audit it exactly:

* quantities: network met ``X``, not met ``Y``, denominator ``D``; per cell of every partition its
  met ``x``, not met ``y``, denominator ``d``;
* equations: ``D = X + Y``; ``d = x + y`` per cell; ``X = sum x``, ``Y = sum y``, ``D = sum d`` per
  partition;
* the network totals are locked (published) unless small, as the measures report publishes them;
* ``hidden_before``: cells an earlier publication already hid (the equity package's own suppression
  of the strata) stay hidden, so the plan only ever hides more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chc_equity.equity.suppression import (
    DEFAULT_THRESHOLD,
    LinearTable,
    Suppression,
    primary_mask,
    published_totals,
    suppress,
)


@dataclass(frozen=True, slots=True)
class Partition:
    """One way of splitting the group's population: labels with their met and denominator counts."""

    labels: tuple[str, ...]
    numerators: NDArray[np.int64]
    denominators: NDArray[np.int64]
    # Quantities hidden by an earlier publication: (met, not met, denominator) masks, or None.
    hidden_before: tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]] | None = None
    # Cells published elsewhere no matter what (e.g. the reference stratum the others are compared with).
    locked: NDArray[np.bool_] | None = None

    @classmethod
    def of(
        cls,
        labels: Sequence[str],
        numerators: ArrayLike,
        denominators: ArrayLike,
        hidden_before: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
        locked: ArrayLike | None = None,
    ) -> Partition:
        x = np.asarray(numerators, dtype=np.int64).reshape(-1)
        d = np.asarray(denominators, dtype=np.int64).reshape(-1)
        if x.size != len(labels) or d.size != len(labels) or np.any(x > d):
            raise ValueError("need one numerator <= denominator per label")
        before = None
        if hidden_before is not None:
            before = tuple(np.asarray(m, dtype=bool).reshape(-1) for m in hidden_before)
        lock = None if locked is None else np.asarray(locked, dtype=bool).reshape(-1)
        return cls(tuple(labels), x, d, before, lock)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Hidden:
    """Which of (met, not met, denominator) are hidden, per cell; ``rate`` = met or not met hidden."""

    met: NDArray[np.bool_]
    not_met: NDArray[np.bool_]
    denominator: NDArray[np.bool_]

    @property
    def rate(self) -> NDArray[np.bool_]:
        """A rate (and every statistic of the cell) is published only with both of its counts."""
        return self.met | self.not_met | self.denominator


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """The plan: hidden quantities of the network totals and of every partition."""

    network: Hidden  # arrays of length 1
    partitions: dict[str, Hidden]
    detail: Suppression


def plan_group(
    partitions: Mapping[str, Partition],
    threshold: int = DEFAULT_THRESHOLD,
) -> GroupPlan:
    """Suppress every partition of one measure group together (see the module docstring).

    Every partition must add up to the same totals (they are splits of one population).
    """
    if not partitions:
        raise ValueError("need at least one partition")
    first = next(iter(partitions.values()))
    tx, td = int(first.numerators.sum()), int(first.denominators.sum())
    for name, p in partitions.items():
        if int(p.numerators.sum()) != tx or int(p.denominators.sum()) != td:
            raise ValueError(f"partition {name!r} does not add up to the network totals")
    values: list[int] = [tx, td - tx, td]
    names: list[str] = ["network:met", "network:not met", "network:denominator"]
    eqs: list[tuple[int, tuple[int, ...]]] = [(2, (0, 1))]
    before: list[bool] = list(primary_mask(values, threshold))
    locked_cells: list[int] = []
    where: dict[str, tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = {}
    for name, p in partitions.items():
        k = len(p.labels)
        base = len(values)
        xs, ys, ds = base + np.arange(k), base + k + np.arange(k), base + 2 * k + np.arange(k)
        values += [
            *p.numerators.tolist(),
            *(p.denominators - p.numerators).tolist(),
            *p.denominators.tolist(),
        ]
        names += [f"{name}:{lab}:{q}" for q in ("met", "not met", "denominator") for lab in p.labels]
        mask = p.hidden_before or (np.zeros(k, bool), np.zeros(k, bool), np.zeros(k, bool))
        before += [*mask[0].tolist(), *mask[1].tolist(), *mask[2].tolist()]
        eqs += [(int(ds[i]), (int(xs[i]), int(ys[i]))) for i in range(k)]
        eqs += [
            (0, tuple(int(i) for i in xs)),
            (1, tuple(int(i) for i in ys)),
            (2, tuple(int(i) for i in ds)),
        ]
        where[name] = (xs, ys, ds)
        if p.locked is not None:
            for i in np.flatnonzero(p.locked & ~mask[0] & ~mask[1] & ~mask[2]):
                locked_cells += [int(xs[i]), int(ys[i]), int(ds[i])]
    table = LinearTable(np.asarray(values, dtype=np.int64), tuple(eqs), tuple(names))
    locked = np.zeros(len(values), dtype=bool)
    locked[:3] = published_totals(values[:3], threshold)
    locked[locked_cells] = True
    result = suppress(table, threshold, locked=locked, hidden_before=np.asarray(before, dtype=bool))
    h = result.suppressed
    network = Hidden(h[0:1].copy(), h[1:2].copy(), h[2:3].copy())
    out = {name: Hidden(h[xs].copy(), h[ys].copy(), h[ds].copy()) for name, (xs, ys, ds) in where.items()}
    return GroupPlan(network, out, result)


def rest_is_small(
    center_met: int, center_denominator: int, network_met: int, network_denominator: int, threshold: int
) -> bool:
    """Whether "the network minus this center" has a small met, not-met or denominator count.

    A user bound to a center knows their own counts, so any published network total minus their own
    gives the rest of the network together; when that is a small cell the network numbers are withheld
    from them.
    """
    rest = np.array(
        [
            network_met - center_met,
            (network_denominator - network_met) - (center_denominator - center_met),
            network_denominator - center_denominator,
        ]
    )
    return bool(primary_mask(rest, threshold).any())


# A point of a crossed publication: (center, dimension, stratum); dimension and stratum None = the
# center's own total; the network is the center named by the caller (``'*'``).
Point = tuple[str, str | None, str | None]


def plan_crossed(
    points: Mapping[Point, tuple[int, int]],
    network: str,
    threshold: int = DEFAULT_THRESHOLD,
    hidden_before: set[Point] | frozenset[Point] = frozenset(),
    locked: set[Point] | frozenset[Point] = frozenset(),
    network_published: bool = True,
) -> set[Point]:
    """Points to hide among everything published about one group and period when centers and strata
    are *crossed*: the network, each center, the network's strata and each center's strata.

    ``points`` maps each point to its (met, denominator). One :class:`LinearTable` holds met, not met
    and denominator of every point with every relation an attacker can use: a point's ``d = x + y``;
    the network = the sum of the centers; per dimension, a center (or the network) = the sum of its
    strata; and the network's stratum = the sum of the centers' same stratum. A relation is included
    only when the stored counts satisfy it (e.g. not when only some centers are stored). Then
    :func:`chc_equity.equity.suppression.suppress` hides the small cells and complements them until no
    hidden quantity is pinned down (exact audit). The network totals are locked as in
    :func:`plan_group` (the measures report publishes them unless small); points in ``hidden_before``
    (hidden by another publication of the same period) stay hidden; points in ``locked`` are published
    elsewhere whatever this plan says (e.g. the centers' totals on a page): never hidden here, and
    treated as known. A point is hidden when any of its three quantities is
    (:func:`plan_crossed_quantities` tells which).
    """
    hidden = plan_crossed_quantities(points, network, threshold, hidden_before, locked, network_published)
    return {k for k, h in hidden.items() if any(h)}


def plan_crossed_quantities(
    points: Mapping[Point, tuple[int, int]],
    network: str,
    threshold: int = DEFAULT_THRESHOLD,
    hidden_before: set[Point] | frozenset[Point] = frozenset(),
    locked: set[Point] | frozenset[Point] = frozenset(),
    network_published: bool = True,
) -> dict[Point, tuple[bool, bool, bool]]:
    """:func:`plan_crossed`, per quantity: for every point, whether its met, not met and denominator
    are hidden. A publication may show a point's denominator while its met count is hidden; never one
    quantity of the three alone (the plan complements ``d = x + y``). ``network_published=False``: the
    network's totals are not published elsewhere, so they are not locked (and may be complements)."""
    keys = sorted(points, key=lambda k: (k[0] != network, k[0], k[1] or "", k[2] or ""))
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys)
    met = np.array([points[k][0] for k in keys], dtype=np.int64)
    den = np.array([points[k][1] for k in keys], dtype=np.int64)
    values = np.concatenate([met, den - met, den])
    names = tuple(f"{k}:{q}" for q in ("met", "not met", "denominator") for k in keys)
    eqs: list[tuple[int, tuple[int, ...]]] = [(2 * n + i, (i, n + i)) for i in range(n)]

    def add(total: Point, members: list[Point]) -> None:
        if total not in index or not members:
            return
        t, ms = index[total], [index[m] for m in members]
        for q in range(3):
            if int(values[q * n + t]) != int(values[[q * n + m for m in ms]].sum()):
                return
        eqs.extend((q * n + t, tuple(q * n + m for m in ms)) for q in range(3))

    centers = sorted({k[0] for k in keys if k[0] != network and k[1] is None})
    add((network, None, None), [(c, None, None) for c in centers])
    dims = sorted({k[1] for k in keys if k[1] is not None})
    for dim in dims:
        strata = sorted({k[2] for k in keys if k[1] == dim and k[2] is not None})
        for c in (network, *centers):
            add((c, None, None), [k for k in keys if k[0] == c and k[1] == dim])
        for s in strata:
            add((network, dim, s), [(c, dim, s) for c in centers if (c, dim, s) in index])
    table = LinearTable(values, tuple(eqs), names)
    lock = np.zeros(values.size, dtype=bool)
    if network_published and (network, None, None) in index:
        t = index[(network, None, None)]
        shown = published_totals([values[t], values[n + t], values[2 * n + t]], threshold)
        for q in range(3):
            lock[q * n + t] = bool(shown[q])
    for k in locked:
        if k in index:
            lock[[q * n + index[k] for q in range(3)]] = True
    before = np.zeros(values.size, dtype=bool)
    for k in hidden_before:
        if k in index:
            before[[q * n + index[k] for q in range(3)]] = True
            lock[[q * n + index[k] for q in range(3)]] = False
    h = suppress(table, threshold, locked=lock, hidden_before=before).suppressed
    return {k: (bool(h[i]), bool(h[n + i]), bool(h[2 * n + i])) for i, k in enumerate(keys)}


def plan_nested(
    points: Mapping[Point, Sequence[int]],
    network: str,
    threshold: int = DEFAULT_THRESHOLD,
) -> set[Point]:
    """Points to hide when each point publishes nested counts ``c0 >= c1 >= ...`` of the same units (open
    30+ / 60+ / 90+ days; events, followed up in 30 days, in 7 days), crossed as in :func:`plan_crossed`.

    The differences ``c[i] - c[i+1]`` are counts too (open 30-59 days), so every consecutive pair is
    planned as (met ``c[i+1]``, denominator ``c[i]``) by :func:`plan_crossed`, each pair's plan starting
    from what the others hid, until no pair hides more; a hidden point hides all its counts.
    """
    depth = {len(v) for v in points.values()}
    if len(depth) > 1:
        raise ValueError("every point needs the same number of nested counts")
    levels = depth.pop() if depth else 0
    if any(int(a) < int(b) for v in points.values() for a, b in zip(v, v[1:], strict=False)):
        raise ValueError("nested counts must not increase (c0 >= c1 >= ...)")
    hidden: set[Point] = set()
    while True:
        before = set(hidden)
        for i in range(levels - 1):
            pairs = {k: (int(v[i + 1]), int(v[i])) for k, v in points.items()}
            hidden |= plan_crossed(pairs, network, threshold, hidden_before=frozenset(hidden))
        if hidden == before:
            return hidden
