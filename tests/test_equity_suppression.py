"""Small-cell suppression: primary rule, complementary suppression and an independent recovery attack.

The attack (:func:`_feasible_range`) is written here from scratch, independent of the package's audit:
an attacker knows every exported value, the table's linear relations and that counts are >= 0, and
uses linear programming to find the least and greatest value each hidden count can take. A count is
protected iff those differ. Margin equations are totally unimodular, so LP bounds are integral.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from chc_equity.equity import (
    UNKNOWN,
    compare_strata,
    one_way_table,
    publishable_rows,
    suppress,
    suppress_measure,
    two_way_table,
)
from chc_equity.equity.audit import determined_quantities

THRESHOLD = 11

# An equation is a list of (coefficient, variable name) whose weighted sum is 0.
Equation = list[tuple[float, str]]


def _feasible_range(known: dict[str, int], unknown: list[str], equations: list[Equation], target: str):
    """Attacker's LP: min and max of ``target`` over non-negative unknowns satisfying all equations."""
    col = {name: i for i, name in enumerate(unknown)}
    a = np.zeros((len(equations), len(unknown)))
    b = np.zeros(len(equations))
    for r, eq in enumerate(equations):
        for coef, name in eq:
            if name in col:
                a[r, col[name]] += coef
            else:
                b[r] -= coef * known[name]
    c = np.zeros(len(unknown))
    c[col[target]] = 1.0
    bounds = []
    for sign in (1.0, -1.0):
        res = linprog(sign * c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
        assert res.status in (0, 3), res.message  # feasible (the true table is a solution)
        bounds.append(np.inf if res.status == 3 else sign * res.fun)
    return bounds[0], bounds[1]


def _assert_unrecoverable(known, unknown, equations, targets):
    for name in targets:
        lo, hi = _feasible_range(known, unknown, equations, name)
        assert hi - lo >= 1, f"{name} recoverable: feasible range [{lo}, {hi}]"


# --- exported views and the equations an attacker would write -------------------------------------------


def _attack_one_way(counts, published):
    names = [f"c{i}" for i in range(len(counts))] + ["total"]
    known = {n: v for n, v in zip(names, published, strict=True) if v is not None}
    unknown = [n for n, v in zip(names, published, strict=True) if v is None]
    eq = [(1.0, "total")] + [(-1.0, n) for n in names[:-1]]
    return known, unknown, [eq]


def _attack_two_way(shape, published):
    r, c = shape
    cell = [[f"x{i}_{j}" for j in range(c)] for i in range(r)]
    rows, cols = [f"R{i}" for i in range(r)], [f"C{j}" for j in range(c)]
    names = [n for row in cell for n in row] + rows + cols + ["G"]
    known = {n: v for n, v in zip(names, published, strict=True) if v is not None}
    unknown = [n for n, v in zip(names, published, strict=True) if v is None]
    eqs = [[(1.0, rows[i])] + [(-1.0, n) for n in cell[i]] for i in range(r)]
    eqs += [[(1.0, cols[j])] + [(-1.0, cell[i][j]) for i in range(r)] for j in range(c)]
    eqs += [[(1.0, "G")] + [(-1.0, n) for n in rows], [(1.0, "G")] + [(-1.0, n) for n in cols]]
    return known, unknown, eqs


def _attack_measure(rows, total_num, total_den):
    """Equations behind an exported measure table: numerator, denominator per stratum and the totals.

    The 'not met' counts y_j = d_j - x_j are never exported but are implied, so they are unknowns too.
    """
    known: dict[str, int] = {}
    unknown: list[str] = []
    eqs: list[Equation] = []
    for j, row in enumerate(rows):
        for key, name in (("numerator", f"x{j}"), ("denominator", f"d{j}")):
            if row[key] is None:
                unknown.append(name)
            else:
                known[name] = row[key]
        unknown.append(f"y{j}")
        eqs.append([(1.0, f"d{j}"), (-1.0, f"x{j}"), (-1.0, f"y{j}")])
    for name, value in (("X", total_num), ("D", total_den)):
        if value is None:
            unknown.append(name)
        else:
            known[name] = value
    unknown.append("Y")
    k = len(rows)
    eqs.append([(1.0, "X")] + [(-1.0, f"x{j}") for j in range(k)])
    eqs.append([(1.0, "Y")] + [(-1.0, f"y{j}") for j in range(k)])
    eqs.append([(1.0, "D")] + [(-1.0, f"d{j}") for j in range(k)])
    eqs.append([(1.0, "D"), (-1.0, "X"), (-1.0, "Y")])
    return known, unknown, eqs


def _export_measure(labels, num, den, **kw):
    sup = suppress_measure(labels, num, den, THRESHOLD, **kw)
    cmp = compare_strata(labels, num, den, shown=sup.shown)
    rows = publishable_rows(cmp, sup)
    total_num = None if sup.total_numerator_suppressed else int(sum(num))
    total_den = None if sup.total_denominator_suppressed else int(sum(den))
    return sup, rows, total_num, total_den


def _check_measure_export(labels, num, den, **kw):
    sup, rows, total_num, total_den = _export_measure(labels, num, den, **kw)
    low = 0 if kw.get("suppress_zero") else 1
    # Nothing in 1..10 is exported, directly or as a rate, and every derived statistic goes with it.
    for row, x, d in zip(rows, num, den, strict=True):
        for v in (row["numerator"], row["denominator"]):
            assert v is None or not (low <= v < THRESHOLD)
        if row["rate"] is not None:
            assert not (low <= d - x < THRESHOLD)
        if row["suppressed"]:
            assert all(row[k] is None for k in ("rate", "ci_low", "p_value", "q_value", "gap_to_equity"))
    for v in (total_num, total_den):
        assert v is None or not (low <= v < THRESHOLD)
    known, unknown, eqs = _attack_measure(rows, total_num, total_den)
    truth = {f"x{j}": x for j, x in enumerate(num)} | {f"d{j}": d for j, d in enumerate(den)}
    truth |= {f"y{j}": d - x for j, (x, d) in enumerate(zip(num, den, strict=True))}
    truth |= {"X": sum(num), "D": sum(den), "Y": sum(den) - sum(num)}
    # Every hidden exported count, and every small implied count, must not be pinned down.
    small_implied = [n for n in unknown if n[0] in "yY" and low <= truth[n] < THRESHOLD]
    hidden_exported = [n for n in unknown if n[0] not in "yY"]
    _assert_unrecoverable(known, unknown, eqs, hidden_exported + small_implied)
    return sup, rows


# --- tests ----------------------------------------------------------------------------------------------


def test_primary_and_complementary_one_way():
    s = suppress(one_way_table([3, 40, 500, 0, 12]))
    assert s.published() == [None, 40, 500, 0, None, 555]
    assert s.primary.tolist() == [True, False, False, False, False, False]
    _assert_unrecoverable(*_attack_one_way([3, 40, 500, 0, 12], s.published()), targets=["c0", "c4"])


def test_hidden_sum_rule_and_bare_rule():
    # Bare rule: two hidden cells suffice, but they add up to 5 -> each is known to be in [0, 5].
    bare = suppress(one_way_table([3, 2, 500, 0, 12]), min_hidden_sum=1)
    assert bare.published() == [None, None, 500, 0, 12, 517]
    # Default: hidden members of a published total must add up to >= threshold.
    strict = suppress(one_way_table([3, 2, 500, 0, 12]))
    assert strict.published() == [None, None, 500, 0, None, 517]


def test_zero_policy_is_configurable():
    assert suppress(one_way_table([0, 50, 60])).published() == [0, 50, 60, 110]
    s = suppress(one_way_table([0, 50, 60]), suppress_zero=True)
    assert s.published()[0] is None and sum(v is None for v in s.published()) >= 2
    _assert_unrecoverable(*_attack_one_way([0, 50, 60], s.published()), targets=["c0"])


def test_threshold_is_configurable():
    assert suppress(one_way_table([3, 40, 50]), threshold=3).published() == [3, 40, 50, 93]
    assert suppress(one_way_table([3, 40, 50]), threshold=5).published()[0] is None


def test_all_small_hides_total_too():
    s = suppress(one_way_table([2, 3]))
    assert s.published() == [None, None, None]


def test_audit_flags_bridge_between_two_suppression_cycles():
    """Every line has >= 2 hidden cells, yet the bridge cell is recoverable: the audit must catch it."""
    cells = np.full((4, 4), 50)
    pattern = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]
    table = two_way_table(cells)
    hidden = np.zeros(table.values.size, dtype=bool)
    for i, j in pattern:
        hidden[i * 4 + j] = True
    det = determined_quantities(table.matrix(), table.values, hidden)
    assert det[1 * 4 + 2] and det.sum() == 1
    # The attacker confirms it.
    known, unknown, eqs = _attack_two_way(
        (4, 4), [None if h else int(v) for v, h in zip(table.values, hidden, strict=True)]
    )
    assert _feasible_range(known, unknown, eqs, "x1_2") == pytest.approx((50, 50))


def test_two_way_suppression_survives_attack():
    cells = np.array([[5, 40, 30, 0], [50, 3, 60, 70], [25, 35, 45, 8], [100, 2, 90, 15]])
    s = suppress(two_way_table(cells))
    pub = s.published()
    assert all(v is None or not (1 <= v < THRESHOLD) for v in pub)
    known, unknown, eqs = _attack_two_way(cells.shape, pub)
    _assert_unrecoverable(known, unknown, eqs, unknown)


def test_measure_suppression_rules():
    labels = ["White", "Black", "Asian", UNKNOWN, "Other"]
    num = [200, 30, 5, 0, 18]
    den = [400, 35, 40, 3, 60]
    sup, rows = _check_measure_export(labels, num, den)
    by = {r["label"]: r for r in rows}
    assert by["Asian"]["numerator"] is None and by["Asian"]["rate"] is None  # numerator 5 < 11
    assert by["Asian"]["denominator"] == 40  # the denominator itself is safe
    assert by["Black"]["numerator"] is None and by["Black"]["rate"] is None  # 35 - 30 = 5 < 11
    assert by[UNKNOWN]["denominator"] is None  # denominator 3; the unknown stratum is kept, not dropped
    assert by["White"]["rate"] == 0.5 and not by["White"]["suppressed"]
    assert sup.shown.tolist() == [not r["suppressed"] for r in rows]


def test_measure_suppression_refuses_unsafe_comparison():
    labels, num, den = ["a", "b", "c"], [5, 100, 80], [30, 200, 150]
    sup = suppress_measure(labels, num, den)
    with pytest.raises(ValueError):
        publishable_rows(compare_strata(labels, num, den), sup)  # BH family includes the hidden stratum


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 80), st.floats(0, 1)), min_size=2, max_size=6),
    st.booleans(),
    st.sampled_from([None, 1]),
)
def test_measure_exports_never_reveal_a_suppressed_or_small_count(strata, suppress_zero, min_sum):
    den = [d for d, _ in strata]
    num = [int(round(d * f)) for d, f in strata]
    labels = [f"s{i}" for i in range(len(den))]
    _check_measure_export(labels, num, den, suppress_zero=suppress_zero, min_hidden_sum=min_sum)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 4), st.integers(2, 4), st.data())
def test_two_way_exports_never_reveal_a_suppressed_cell(r, c, data):
    cells = np.array(data.draw(st.lists(st.integers(0, 40), min_size=r * c, max_size=r * c))).reshape(r, c)
    s = suppress(two_way_table(cells), suppress_zero=data.draw(st.booleans()))
    pub = s.published()
    assert all(v is None or not (1 <= v < THRESHOLD) for v in pub)
    known, unknown, eqs = _attack_two_way(cells.shape, pub)
    _assert_unrecoverable(known, unknown, eqs, unknown)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(2, 4), st.integers(2, 4)),
    seed=st.integers(0, 10_000),
)
def test_witness_audit_equals_two_lps_per_quantity(shape, seed):
    """The witness shortcut in determined_quantities decides exactly as min/max per hidden quantity."""
    from chc_equity.equity.audit import feasible_range

    rng = np.random.default_rng(seed)
    cells = rng.choice([0, 0, 1, 3, 12, 40], size=shape)
    table = two_way_table(cells)
    hidden = rng.random(table.values.size) < 0.5
    hidden[int(rng.integers(table.values.size))] = True
    if np.all(table.values[hidden] > 0):
        hidden[int(np.argmin(table.values))] = True  # the LP path needs a hidden zero (or smallest)
    got = determined_quantities(table.matrix(), table.values, hidden)
    want = np.zeros_like(got)
    for i in np.flatnonzero(hidden):
        lo, hi = feasible_range(table.matrix(), table.values, hidden, int(i))
        want[i] = hi - lo < 0.5
    assert got.tolist() == want.tolist()
