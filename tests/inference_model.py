"""The exact inference attack shared by the suppression tests (scipy ``milp`` / HiGHS, presolve off).

An attacker's knowledge is a set of integer unknowns (counts, >= 0) with linear equalities: the
relations that hold by construction (parts add up to their total) and every published number (a count,
or a rate as an exact fraction of two counts). :class:`Model` holds them; :func:`attack` asks for the
minimum, then the maximum, of every hidden count from 1 to 10: pinned down (min == max) is recovered.
Used by tests/test_sdoh_suppression_inference.py and tests/test_child_vbp_inference.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

Var = tuple[str, ...]  # (*cell, part): the parts "x" and "d" of one cell are numerator <= denominator


class Model:
    """Integer unknowns with linear equalities (and numerator <= denominator for every x / d pair)."""

    def __init__(self) -> None:
        self._cons: list[LinearConstraint] | None = None
        self._n = 0
        self.index: dict[Var, int] = {}
        self.rows: list[dict[Var, float]] = []
        self.rhs: list[float] = []

    def var(self, v: Var) -> Var:
        self.index.setdefault(v, len(self.index))
        return v

    def eq(self, form: Mapping[Var, float], value: float = 0.0) -> None:
        for v in form:
            self.var(v)
        self.rows.append(dict(form))
        self.rhs.append(value)

    def total(self, total: Var, parts: list[Var]) -> None:
        """``total`` = the sum of ``parts`` (a relation that holds by construction)."""
        self.eq({total: -1, **{p: 1 for p in parts}})

    def observe(self, metric: str, cell: tuple[str, ...], num, den, rate) -> None:
        """A published numerator / denominator / rate of one cell (None or NaN: not published)."""
        x, d = self.var((metric, *cell, "x")), self.var((metric, *cell, "d"))
        if num is not None and not pd.isna(num):
            self.eq({x: 1}, float(num))
        if den is not None and not pd.isna(den):
            self.eq({d: 1}, float(den))
        if rate is not None and not pd.isna(rate):
            f = Fraction(float(rate)).limit_denominator(100_000)
            self.eq({x: f.denominator, d: -f.numerator})

    def observed(self) -> set[Var]:
        """Unknowns published as such (an equation of one unknown)."""
        return {next(iter(f)) for f in self.rows if len(f) == 1}

    def bound(self, v: Var, big: float, sign: int) -> float:
        """The min (``sign`` 1) or max (-1) of ``v`` over the integer points that satisfy everything
        known. HiGHS's presolve is off: on these models it returned a maximum below the value of a
        feasible point (the true counts)."""
        n = len(self.index)
        if getattr(self, "_cons", None) is None or self._n != n:
            a = np.zeros((len(self.rows), n))
            for i, form in enumerate(self.rows):
                for var, coef in form.items():
                    a[i, self.index[var]] += coef
            cons = [LinearConstraint(a, self.rhs, self.rhs)]
            order = defaultdict(list)  # numerator <= denominator
            for var, i in self.index.items():
                order[var[:-1]].append((var[-1], i))
            pairs = [dict(p) for p in order.values()]
            pairs = [p for p in pairs if "x" in p and "d" in p]
            if pairs:
                b = np.zeros((len(pairs), n))
                for k, p in enumerate(pairs):
                    b[k, p["x"]], b[k, p["d"]] = 1, -1
                cons.append(LinearConstraint(b, -np.inf, 0))
            self._cons, self._n = cons, n
        c = np.zeros(n)
        c[self.index[v]] = sign
        res = milp(
            c,
            constraints=self._cons,
            integrality=np.ones(n),
            bounds=Bounds(0, big),
            options={"presolve": False},
        )
        assert res.status == 0, res.message
        return sign * res.fun


def attack(model: Model, truth: Mapping[Var, int]) -> tuple[list[tuple[Var, int]], int]:
    """(hidden counts 1-10 pinned down with their value, how many were attacked). Every ``truth``
    unknown the model has and was not published as such is attacked: its minimum, and where that is the
    true value its maximum. A range that misses the truth fails (the relations are false)."""
    big = float(max(truth.values(), default=0) * 4 + 10)
    observed = model.observed()
    checked, recovered = 0, []
    for var, value in truth.items():
        if var not in model.index or var in observed or not 1 <= value <= 10:
            continue
        checked += 1
        lo = model.bound(var, big, 1)
        assert lo <= value, (var, value, lo)
        if lo < value:
            continue  # not pinned: the attacker cannot tell value from lo
        hi = model.bound(var, big, -1)
        assert value <= hi, (var, value, hi)
        if lo == hi:
            recovered.append((var, value))
    return recovered, checked
