"""Inference attack on the social-needs files: no hidden small count is recovered (exact MILP).

What leaves the system from `chc-equity sdoh` (and what the Social needs page shows viewers, a subset of
it: the center and network rows, the flagged strata) is ``sdoh_metrics`` through
:func:`chc_equity.sdoh.export.suppress_metrics` (site, center and network rows) and ``sdoh_equity``
(every rate by stratum, suppressed per stratum). A small generated network (two centers) is built the
real way; then, per domain (``any`` and the HRSNs), an attacker who has every published number of every
metric of that domain sets up:

* unknowns: numerator and denominator of every cell (each site of each center, each center, the
  network, each equity stratum), integers >= 0, numerator <= denominator;
* relations that hold by construction: sites add up to their center, centers to the network, the strata
  of each dimension to their center (and a site stratum is the site's cell); across metrics, the
  ``documented`` denominator is the ``positive`` numerator (patients screen-positive), ``closure`` and
  ``rejected_at_capacity`` share their denominator (referrals), and for ``any``: the ``declined``
  denominator is the ``eligible`` count and the ``screened`` denominator is eligible minus declined;
* observations: every published count, and every published rate as an exact fraction of its cell;

and asks HiGHS (scipy ``milp``) for the minimum of every hidden count from 1 to 10 and, where that is
the true value, the maximum. It is recovered when both equal the true value. Zeros are published under
the policy and not checked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from chc_equity.ingest import load
from chc_equity.sdoh import export, mapping, metrics, strata
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

START, END = date(2026, 1, 1), date(2026, 12, 31)
UNKNOWN = "Unknown"
Var = tuple[str, ...]  # (metric, cell kind, *labels, "x" | "d")
# "any" and the five HRSNs' domains (about 1,800 small MILPs): the PRAPARE-only domains go through the
# same code and relations, and checking them too would double the test's time.
DOMAINS = (metrics.ANY, *mapping.HRSN)

pytestmark = pytest.mark.slow  # about 60 s CPU: a generated network, the stage, 1,800 small MILPs


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Raw and published ``sdoh_metrics`` and ``sdoh_equity`` of a two-center generated network."""
    folder: Path = tmp_path_factory.mktemp("sdoh-inference")
    summary = generate(folder / "net", centers=2, patients=350, seed=7, period_end=END, cfg=load_config())
    con = connect(folder / "w.duckdb")
    try:
        for center in (c["id"] for c in summary["centers"]):
            load(
                con,
                [folder / "net" / center],
                center,
                after_load=lambda c, ctr: build_views(c, centers=[ctr]),
            )
        metrics.build(con, period_start=START, period_end=END)
        raw = con.execute(f"SELECT * FROM {metrics.METRICS} WHERE metric NOT LIKE 'days%'").df()
        shown_equity = strata.equity_table(con)
        true_equity = strata.equity_table(con, threshold=1)  # nothing below 1: the true counts
    finally:
        con.close()
    assert json.loads((folder / "net" / "truth.json").read_text())["sdoh"]  # the generator planted sdoh data
    return {
        "raw": raw,
        "shown": export.suppress_metrics(raw),
        "equity": shown_equity,
        "true_equity": true_equity,
    }


def _cell(row) -> tuple[str, ...]:
    if row.center == metrics.NETWORK:
        return ("network",)
    if row.site == metrics.ALL_SITES:
        return ("center", str(row.center))
    return ("site", str(row.center), UNKNOWN if pd.isna(row.site) else str(row.site))


class Model:
    """Integer unknowns with linear equalities, for one domain."""

    def __init__(self) -> None:
        self._cons: list[LinearConstraint] | None = None
        self._n = 0
        self.index: dict[Var, int] = {}
        self.rows: list[dict[Var, float]] = []
        self.rhs: list[float] = []

    def var(self, v: Var) -> Var:
        self.index.setdefault(v, len(self.index))
        return v

    def eq(self, form: dict[Var, float], value: float = 0.0) -> None:
        for v in form:
            self.var(v)
        self.rows.append(form)
        self.rhs.append(value)

    def observe(self, metric: str, cell: tuple[str, ...], num, den, rate) -> None:
        x, d = self.var((metric, *cell, "x")), self.var((metric, *cell, "d"))
        if not pd.isna(num):
            self.eq({x: 1}, float(num))
        if not pd.isna(den):
            self.eq({d: 1}, float(den))
        if rate is not None and not pd.isna(rate):
            f = Fraction(float(rate)).limit_denominator(100_000)
            self.eq({x: f.denominator, d: -f.numerator})

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
            pairs = [dict(p) for p in order.values() if len(p) == 2]
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


def _model(domain: str, shown: pd.DataFrame, equity: pd.DataFrame) -> Model:
    m = Model()
    rows = shown[shown["domain"] == domain]
    by_metric = {k: g for k, g in rows.groupby("metric")}
    for metric, g in by_metric.items():
        centers = sorted(c for c in g["center"].unique() if c != metrics.NETWORK)
        for r in g.itertuples():
            if metric == "eligible":
                m.observe(metric, _cell(r), r.numerator, r.numerator, None)
            else:
                m.observe(metric, _cell(r), r.numerator, r.denominator, r.value)
        for part in ("x", "d"):
            if (g["center"] == metrics.NETWORK).any():
                m.eq({(metric, "network", part): -1, **{(metric, "center", c, part): 1 for c in centers}})
            for c in centers:
                sites = g[(g["center"] == c) & (g["site"] != metrics.ALL_SITES)]
                cells = {(metric, *_cell(s), part): 1 for s in sites.itertuples()}
                m.eq({(metric, "center", c, part): -1, **cells})
        eq = equity[(equity["metric"] == metric) & (equity["domain"] == domain)]
        for (c, dim), s in eq.groupby(["center", "dimension"]):
            for r in s.itertuples():
                rate = None if r.suppressed else r.rate
                m.observe(metric, ("stratum", c, dim, str(r.stratum)), r.numerator, r.denominator, rate)
                if dim == "site" and (metric, "site", c, str(r.stratum), "x") in m.index:
                    for part in ("x", "d"):
                        m.eq({(metric, "stratum", c, dim, str(r.stratum), part): 1,
                              (metric, "site", c, str(r.stratum), part): -1})  # fmt: skip
            for part in ("x", "d"):
                cells = {(metric, "stratum", c, dim, str(r.stratum), part): 1 for r in s.itertuples()}
                m.eq({(metric, "center", c, part): -1, **cells})
    cells = {v[1:-1] for v in m.index}
    for cell in cells:  # relations across metrics, cell by cell
        links = [(("documented", "d"), ("positive", "x")), (("closure", "d"), ("rejected_at_capacity", "d"))]
        if domain == metrics.ANY:
            links += [(("declined", "d"), ("eligible", "x"))]
            if ("screened", *cell, "d") in m.index:
                m.eq({("screened", *cell, "d"): 1, ("eligible", *cell, "x"): -1, ("declined", *cell, "x"): 1})
        for (ma, pa), (mb, pb) in links:
            if (ma, *cell, pa) in m.index and (mb, *cell, pb) in m.index:
                m.eq({(ma, *cell, pa): 1, (mb, *cell, pb): -1})
    return m


def _truth(raw: pd.DataFrame, true_equity: pd.DataFrame, domain: str) -> dict[Var, int]:
    out: dict[Var, int] = {}
    for r in raw[raw["domain"] == domain].itertuples():
        out[(r.metric, *_cell(r), "x")] = int(r.numerator)
        if r.metric != "eligible":
            out[(r.metric, *_cell(r), "d")] = int(r.denominator)
    for r in true_equity[true_equity["domain"] == domain].itertuples():
        key = (r.metric, "stratum", r.center, r.dimension, str(r.stratum))
        out[(*key, "x")], out[(*key, "d")] = int(r.numerator), int(r.denominator)
    return out


def test_no_hidden_small_count_is_recovered(published: dict[str, pd.DataFrame]) -> None:
    shown, equity = published["shown"], published["equity"]
    checked, recovered = 0, []
    for domain in DOMAINS:
        model = _model(domain, shown, equity)
        truth = _truth(published["raw"], published["true_equity"], domain)
        big = float(max(truth.values()) * 4 + 10)
        observed = {next(iter(f)) for f in model.rows if len(f) == 1}
        for var, value in truth.items():
            if var not in model.index or var in observed or not 1 <= value <= 10:
                continue  # published, or not a small count
            checked += 1
            lo = model.bound(var, big, 1)
            assert lo <= value, (var, value, lo)  # the relations are true of the data
            if lo < value:
                continue  # not pinned: the attacker cannot tell value from lo
            hi = model.bound(var, big, -1)
            assert value <= hi, (var, value, hi)
            if lo == hi:
                recovered.append((var, value))
    assert checked > 50, checked  # the network has plenty of hidden small cells to attack
    assert recovered == [], recovered[:10]
