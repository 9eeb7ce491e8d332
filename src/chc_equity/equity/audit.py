"""Exact disclosure audit: can a hidden quantity be recovered from what is published?

An attacker knows the published quantities, the table's linear equations ``A @ v == 0`` and ``v >= 0``.
A hidden quantity is disclosed iff it takes one value over that feasible set. Two exact checks:

* Linear algebra (fast path): hidden quantity ``i`` is determined by the equations alone iff every
  vector of the null space of ``A`` restricted to the hidden columns has a zero ``i``-component. When all
  hidden values are strictly positive the true table is an interior point of ``v >= 0`` along those
  columns, so non-negativity cannot pin anything down and this test is exact.
* Linear programming (general case, e.g. hidden zeros): minimise and maximise ``v_i``. Margin equations
  of count tables form a network matrix (totally unimodular), so the LP optimum is integral and
  ``min < max`` means at least two integer tables are consistent with the publication. Before the two
  LPs per quantity, a few weighted LPs look for feasible tables that differ from the true one: each
  quantity such a witness moves is free without further work (:func:`_free_by_witness`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog

_TOL = 1e-9


def feasible_range(
    matrix: NDArray[np.float64], values: NDArray[np.int64], hidden: NDArray[np.bool_], index: int
) -> tuple[float, float]:
    """``(min, max)`` of hidden quantity ``index`` over all non-negative tables matching the publication.

    ``max`` is ``inf`` when unbounded (e.g. every total hidden).
    """
    cols = np.flatnonzero(hidden)
    pos = int(np.searchsorted(cols, index))
    if pos >= cols.size or cols[pos] != index:
        raise ValueError("index is not hidden")
    a_h = matrix[:, cols]
    b = -matrix[:, ~hidden] @ values[~hidden].astype(np.float64)
    cost = np.zeros(cols.size)
    cost[pos] = 1.0
    out = []
    for sign in (1.0, -1.0):
        res = linprog(sign * cost, A_eq=a_h, b_eq=b, bounds=(0, None), method="highs")
        if res.status == 3:  # unbounded
            out.append(float("inf"))
        elif res.status != 0:
            raise RuntimeError(f"audit LP failed: {res.message}")
        else:
            out.append(float(sign * res.fun))
    return out[0], out[1]


def determined_quantities(
    matrix: NDArray[np.float64], values: NDArray[np.int64], hidden: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Mask of hidden quantities that are uniquely recoverable (i.e. *not* protected)."""
    out = np.zeros(hidden.shape, dtype=bool)
    cols = np.flatnonzero(hidden)
    if cols.size == 0:
        return out
    if np.all(values[cols] > 0):
        a_h = matrix[:, cols]
        _, s, vt = np.linalg.svd(a_h)
        rank = int(np.sum(s > _TOL * max(1.0, float(s.max(initial=0.0)))))
        null = vt[rank:]
        free = np.any(np.abs(null) > 1e-8, axis=0) if null.size else np.zeros(cols.size, dtype=bool)
        out[cols] = ~free
        return out
    undecided = _free_by_witness(matrix, values, hidden)
    for i in cols[undecided]:
        lo, hi = feasible_range(matrix, values, hidden, int(i))
        out[i] = hi - lo < 0.5
    return out


def _free_by_witness(
    matrix: NDArray[np.float64], values: NDArray[np.int64], hidden: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Which hidden quantities (in ``flatnonzero(hidden)`` order) are still undecided after looking for
    witnesses: a feasible table that differs from the true one in a quantity proves that quantity free.

    Why: the exact check costs two LPs per hidden quantity, thousands per network run. Here one LP
    with random positive weights on all undecided quantities, maximised and minimised, usually moves
    most of them at once. The true table ``v0`` is feasible; capping every quantity at ``U > max(v0)``
    keeps the LP bounded without changing which quantities are free (the segment from ``v0`` towards
    any other feasible table starts inside the box). Only a quantity that no witness moves is decided
    by :func:`feasible_range`, so the result stays exact.
    """
    cols = np.flatnonzero(hidden)
    truth = values[cols].astype(np.float64)
    a_h = matrix[:, cols]
    b = -matrix[:, ~hidden] @ values[~hidden].astype(np.float64)
    cap = float(truth.max(initial=0.0)) * 2.0 + 2.0
    undecided = np.ones(cols.size, dtype=bool)
    rng = np.random.default_rng(0)  # fixed: the same publication always costs the same LPs
    while undecided.any():
        weights = np.where(undecided, rng.uniform(1.0, 2.0, cols.size), 0.0)
        moved = np.zeros(cols.size, dtype=bool)
        for sign in (1.0, -1.0):
            res = linprog(sign * weights, A_eq=a_h, b_eq=b, bounds=(0, cap), method="highs")
            if res.status != 0:
                raise RuntimeError(f"audit LP failed: {res.message}")
            moved |= undecided & (np.abs(res.x - truth) > 0.5)
        if not moved.any():
            break
        undecided &= ~moved
    return undecided
