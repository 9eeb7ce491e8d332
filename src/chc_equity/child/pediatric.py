"""Every measure whose population includes children, by center, age band and equity stratum
(``child_measure``; docs/child.md, "Pediatric view").

Which measures: read from each measure module's own age criteria (:func:`age_range`): the ``WHERE`` lines
of its SQL that bound an age (``age_at_start(...) >= 12``, ``{age} BETWEEN 3 AND 17``,
``years_between(...) >= 18``, ``age BETWEEN 20 AND 75`` ...). The widest bounds are the measure's ages; a
measure with none ("regardless of age", CMS314) includes every age. A measure includes children when
its lower bound is under 18. So a measure added later, or an age limit changed in a new version, shows
up here without a list to keep.

Rates: the ``measure_results`` rows of children (under 18 at the period end, :mod:`chc_equity.child.bands`)
in the denominator, not excluded or excepted; the numerator as the measure scores it (an inverse measure
-- CMS75 dental decay -- is flagged, lower is better). Each center x measure group (ages ``0-17``) is
stratified through the equity layer (:func:`chc_equity.outreach.indicators.stratify_counts`:
Wilson intervals, q-values, suppression below 11 with complementary suppression) by race/ethnicity,
language and insurance; the rows per age band are one table over the bands (so complementary suppression
protects them against the ``0-17`` total). Stored suppressed.
"""

from __future__ import annotations

import functools
import inspect
import re
from datetime import date

import duckdb
import pandas as pd

from chc_equity.child.bands import ALL_AGES, children_sql
from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.labels import UNKNOWN
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.outreach.indicators import stratify_counts
from chc_equity.warehouse import FLAT_SCHEMA

TABLE = "child_measure"
DIMENSIONS = ("race_ethnicity", "language", "insurance")
OVERALL = "overall"
ADULT_AGE = 18
_AGE_EXPR = (
    r"(?:\{?age_at_(?:start|end)\([^)]*\)\}?|\{age\}|\bage\b|years_between\([^()]*(?:\([^()]*\)[^()]*)*\))"
)
_BOUND = re.compile(
    rf"WHERE[^\n]*?{_AGE_EXPR}\s*(?P<op>>=|=|BETWEEN)\s*(?P<lo>\d+)(?:\s+AND\s+(?P<hi>\d+))?"
    rf"(?:\s+AND\s+{_AGE_EXPR}\s*<=\s*(?P<hi2>\d+))?"
)


def age_range(source: str) -> tuple[int, int | None]:
    """(lowest, highest or None) age a measure's SQL admits, from its ``WHERE`` age bounds."""
    los, his, unbounded = [], [], False
    for m in _BOUND.finditer(source):
        lo = int(m.group("lo"))
        hi = m.group("hi") or m.group("hi2")
        if m.group("op") == "=":
            hi = lo
        los.append(lo)
        if hi is None:
            unbounded = True
        else:
            his.append(int(hi))
    if not los:
        return 0, None
    return min(los), None if unbounded else max(his)


@functools.cache
def child_measures() -> tuple[tuple[str, str, int, int | None], ...]:
    """(module name, CMS id, lowest age, highest age) of every registered measure that includes children."""
    import importlib

    from chc_equity.measures.registry import MODULES

    out = []
    for name in MODULES:
        module = importlib.import_module(f"chc_equity.measures.ecqm.{name}")
        lo, hi = age_range(inspect.getsource(module))
        if lo < ADULT_AGE:
            out.append((name, module.MEASURE.cms_id, lo, hi))
    return tuple(out)


def units(con: duckdb.DuckDBPyConnection, period_start: date, period_end: date) -> pd.DataFrame:
    """One row per scored unit of a child: center, patient_id, cms_id, group_id, title, inverse,
    age_band, hit (the numerator)."""
    ids = [cms for _, cms, _, _ in child_measures()]
    pe = f"DATE '{period_end.isoformat()}'"
    from chc_equity.measures.registry import find

    meta = pd.DataFrame(
        [(m.measure.name, m.measure.cms_id, m.measure.title, m.measure.inverse) for m in find(ids)],
        columns=["measure", "cms_id", "title", "inverse"],
    )
    con.register("_child_measure_meta", meta)
    try:
        return con.execute(
            f"""WITH kids AS ({children_sql(FLAT_SCHEMA, pe)})
            SELECT r.center, r.patient_id, m.cms_id, r.group_id, m.title, m.inverse, k.age_band,
                   r.numerator AS hit
              FROM {RESULTS_TABLE} r
              JOIN _child_measure_meta m ON m.measure = r.measure
              JOIN kids k ON k.center = r.center AND k.patient_id = r.patient_id
             WHERE r.period_start = ? AND r.period_end = ?
               AND r.denominator AND NOT r.denominator_exclusion AND NOT r.denominator_exception""",
            [period_start, period_end],
        ).df()
    finally:
        con.unregister("_child_measure_meta")


COLUMNS = [
    "center", "cms_id", "group_id", "title", "inverse", "age_band", "dimension", "stratum", "numerator",
    "denominator", "rate", "ci_low", "ci_high", "p_value", "q_value", "is_reference", "worse_than_reference",
    "suppressed",
]  # fmt: skip


def table(
    con: duckdb.DuckDBPyConnection,
    period_start: date,
    period_end: date,
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """The ``child_measure`` rows (see the module docstring). Every table is counted in one GROUP BY and
    stratified by :func:`~chc_equity.outreach.indicators.stratify_counts` (the equity layer's rule)."""
    has = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [RESULTS_TABLE],
    ).fetchall()[0][0]  # fetchall: a pending result would block con.register below
    u = units(con, period_start, period_end) if has else pd.DataFrame()
    if u.empty:
        return pd.DataFrame(columns=COLUMNS)
    attrs = con.execute(f"SELECT center, patient_id, {', '.join(DIMENSIONS)} FROM {ATTRIBUTES}").df()
    u = u.merge(attrs, on=["center", "patient_id"], how="left")
    u[list(DIMENSIONS)] = u[list(DIMENSIONS)].fillna(UNKNOWN)
    u[OVERALL] = "All children"
    keys = ["center", "cms_id", "group_id", "title", "inverse"]
    rows: list[dict] = []
    for dim in (OVERALL, "age_band", *DIMENSIONS):
        counts = u.groupby([*keys, dim], sort=True)["hit"].agg(["sum", "size"]).reset_index()
        for key, g in counts.groupby(keys, sort=True):
            labels = [str(v) for v in g[dim]]
            out = stratify_counts(dim, labels, g["sum"].astype(int).tolist(), g["size"].astype(int).tolist(),
                                  threshold=threshold)  # fmt: skip
            meta = dict(zip(keys, key, strict=True))
            for r in out:
                if dim == "age_band":  # the per-band rows of the page: one table over the bands
                    r = {**r, "dimension": OVERALL, "stratum": "All children", "age_band": r["stratum"]}
                else:
                    r = {**r, "age_band": ALL_AGES}
                rows.append({**meta, **r})
    out = pd.DataFrame(rows)
    out["inverse"] = out["inverse"].astype(bool)
    out = out[COLUMNS]
    return typed(out)


def typed(out: pd.DataFrame) -> pd.DataFrame:
    """The column types of a stored rate table (counts nullable integers, rates floats, flags nullable
    booleans), shared by the pediatric and referral-loop tables so both store and compare alike."""
    for col in ("numerator", "denominator"):
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    for col in ("rate", "ci_low", "ci_high", "p_value", "q_value"):
        out[col] = pd.to_numeric(out[col]).astype("float64")
    out["worse_than_reference"] = out["worse_than_reference"].astype("boolean")
    return out


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    period_start: date,
    period_end: date,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    df = table(con, period_start, period_end, threshold=threshold)
    con.register("_child_measure_df", df)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _child_measure_df")
    finally:
        con.unregister("_child_measure_df")
    return df
