"""Measures over time: the counts of every eCQM for a series of periods, in table ``measure_series``.

A run chart needs 24+ points: rolling 12-month periods ending each month (the default), or calendar
months or quarters. :func:`measure_series` evaluates each measure *once for all periods*: the measure
is rendered by the engine's own :func:`~chc_equity.measures.engine.render` (same library defines,
same scoring SELECT) with the Measurement Period as columns (:class:`PeriodColumns`) of a row of temp
table ``series_periods``, and its SELECT is joined laterally to that table, so DuckDB runs one plan in
which the period is a column. A lateral subquery is, by definition, the subquery evaluated for each
row with that row's values, and the columns hold the very DATE/TIMESTAMP values a single-period run
has as literals: a point of a series *is* the single-period result for that period --
``tests/test_measures_series.py`` checks it for every measure.

Library defines that read the period are materialized once for all periods, keyed by period
(``mp_id__``); those that do not are materialized once, as in a single-period run. Per-subject rows of
all periods go to a temp table aggregated at once (per center, the network, and each value of the
requested equity dimensions); ``measure_results`` is left untouched. What still grows with the number
of periods is the per-subject work (docs/improvement.md, "Measures over time", gives the cost).

Strata come from :func:`chc_equity.equity.attributes.attributes_sql` evaluated *for each period*
(ages at the period's end, the latest screening on or before it), as the equity report does for one
period, so a stratum's point is the same patients the equity report of that period would count.

Counts follow :mod:`chc_equity.measures.summary`: subjects (patients, or encounters for episode
measures); ``performance_denominator`` = denominator - exclusions - exceptions; ``rate`` =
numerator / performance_denominator, NULL when that is 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Literal

import duckdb

from chc_equity.equity.attributes import DIMENSIONS, attributes_sql
from chc_equity.equity.labels import UNKNOWN
from chc_equity.measures.engine import RESULTS_TABLE, Context, MeasureModule, prepare, render
from chc_equity.measures.model import Measure
from chc_equity.measures.vocabulary import Period, PeriodColumns, sql_str

SERIES_TABLE = "measure_series"
NETWORK = "*"  # the center of network rows, as in the precomputed aggregates
KINDS = ("rolling12", "month", "quarter")
Kind = Literal["rolling12", "month", "quarter"]

SERIES_DDL = f"""
CREATE TABLE IF NOT EXISTS {SERIES_TABLE} (
    measure                 VARCHAR NOT NULL,
    group_id                VARCHAR NOT NULL,
    center                  VARCHAR NOT NULL,   -- '*' = every center of the network
    period_start            DATE NOT NULL,
    period_end              DATE NOT NULL,
    stratum_dimension       VARCHAR,            -- NULL = all patients; else a patient_attributes column
    stratum                 VARCHAR,            -- that column's value (NULL with the dimension)
    initial_population      BIGINT NOT NULL,
    denominator             BIGINT NOT NULL,
    denominator_exclusion   BIGINT NOT NULL,
    denominator_exception   BIGINT NOT NULL,
    numerator               BIGINT NOT NULL,
    numerator_exclusion     BIGINT NOT NULL,
    performance_denominator BIGINT NOT NULL,
    rate                    DOUBLE
)
"""

_SUBJECTS = "series_subjects"  # temp: the per-subject rows of every period and measure (what is counted)
_SUBJECT_COLUMNS = (
    "center",
    "measure",
    "group_id",
    "period_start",
    "period_end",
    "patient_id",
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "denominator_exception",
    "numerator",
    "numerator_exclusion",
)
_ATTRIBUTES = "series_attributes"  # temp: each period's patient attributes (requested dimensions)
_PERIODS = "series_periods"  # temp: the periods, one row each (mp_id, start/end as DATE and TIMESTAMP)
_MP = "mp__"  # alias of the period row the measure SQL reads its Measurement Period from
_MP_ID = "mp_id__"  # the period key of a per-period library define's rows
_ROW = "row__"  # alias of the lateral measure (or define) subquery
_PERFORMANCE = "denominator AND NOT denominator_exclusion AND NOT denominator_exception"


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def series_periods(kind: Kind, end: date, count: int = 24) -> list[Period]:
    """``count`` periods, oldest first, the last one ending with the month (or quarter) of ``end``.

    ``rolling12``: the 12 calendar months ending each month (``2026-12`` -> 2026-01-01..2026-12-31);
    ``month``: calendar months; ``quarter``: calendar quarters (``end`` in Nov 2026 -> Q4 2026 last).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown series kind {kind!r}; use one of {', '.join(KINDS)}")
    if count < 1:
        raise ValueError("a series needs at least one period")
    step, length = {"rolling12": (1, 12), "month": (1, 1), "quarter": (3, 3)}[kind]
    last_month = end.month if kind != "quarter" else ((end.month - 1) // 3 + 1) * 3
    out = []
    for i in range(count - 1, -1, -1):
        y, m = _add_months(end.year, last_month, -i * step)
        sy, sm = _add_months(y, m, -(length - 1))
        out.append(Period(date(sy, sm, 1), _month_end(y, m)))
    return out


def _check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    known = [d for d in DIMENSIONS if d != "center"]  # rows are per center already
    unknown = [d for d in dimensions if d not in known]
    if unknown:
        raise ValueError(f"unknown equity dimension(s) {unknown}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(dimensions))


class _SeriesContext(Context):
    """A :class:`Context` whose Measurement Period is the columns of a row of :data:`_PERIODS`.

    A shared library define that reads the period is materialized once for all periods, keyed by
    ``mp_id__``; a measure (or define) reading it sees only its own period's rows through a subquery
    correlated to that row. A define that does not read the period (``CumulativeMedicationDuration``'s
    ``medicationRequestPeriod()``) is materialized once, as in a single-period run, and shared as is.
    """

    def shared(self, build: Callable[[Context], str]) -> str:
        table = super().shared(build)
        if _per_period(self.library[build].sql):
            return f"(SELECT * EXCLUDE ({_MP_ID}) FROM {table} WHERE {_MP_ID} = {_MP}.mp_id)"
        return table


def _per_period(sql: str) -> bool:
    """Whether SQL rendered with ``PeriodColumns(_MP)`` reads the period (its own columns, or a per-period
    library define's rows: their subquery names the period row too)."""
    return f"{_MP}." in sql


def _lateral(sql: str, columns: str) -> str:
    """``sql`` (rendered with the period as columns of ``_MP``) evaluated for every period at once."""
    return f"SELECT {columns} FROM {_PERIODS} {_MP}, LATERAL (\n{sql}\n) {_ROW}"


def _periods_sql(periods: Sequence[Period]) -> str:
    """The periods as rows: the same DATE and TIMESTAMP values a single-period run uses as literals."""
    rows = ", ".join(
        f"({i}, {p.start_date}, {p.end_date}, {p.start_ts}, {p.end_ts})" for i, p in enumerate(periods)
    )
    return f"SELECT * FROM (VALUES {rows}) t(mp_id, start_date, end_date, start_ts, end_ts)"


def _aggregate_sql(dimensions: tuple[str, ...], network: bool) -> str:
    """The rows of ``measure_series`` from the per-subject temp table, every period at once: per center
    (and the network), for all patients and for each value of each dimension."""
    parts = [
        f"SELECT s.*, CAST(NULL AS VARCHAR) AS stratum_dimension, CAST(NULL AS VARCHAR) AS stratum "
        f"FROM {_SUBJECTS} s"
    ]
    for d in dimensions:
        parts.append(
            f"SELECT s.*, {sql_str(d)}, coalesce(a.{d}, {sql_str(UNKNOWN)}) FROM {_SUBJECTS} s "
            f"LEFT JOIN {_ATTRIBUTES} a ON a.center = s.center AND a.patient_id = s.patient_id "
            "AND a.period_start = s.period_start AND a.period_end = s.period_end"
        )
    keys = "measure, group_id, period_start, period_end, stratum_dimension, stratum"
    sets = f"({keys}, center)" + (f", ({keys})" if network else "")
    return f"""
SELECT measure, group_id, CASE WHEN grouping(center) = 1 THEN '{NETWORK}' ELSE center END AS center,
       period_start, period_end, stratum_dimension, stratum,
       count(*) FILTER (WHERE initial_population) AS initial_population,
       count(*) FILTER (WHERE denominator) AS denominator,
       count(*) FILTER (WHERE denominator_exclusion) AS denominator_exclusion,
       count(*) FILTER (WHERE denominator_exception) AS denominator_exception,
       count(*) FILTER (WHERE numerator) AS numerator,
       count(*) FILTER (WHERE numerator_exclusion) AS numerator_exclusion,
       count(*) FILTER (WHERE {_PERFORMANCE}) AS performance_denominator,
       CASE WHEN count(*) FILTER (WHERE {_PERFORMANCE}) > 0
            THEN count(*) FILTER (WHERE numerator) / count(*) FILTER (WHERE {_PERFORMANCE}) END AS rate
FROM ({" UNION ALL ".join(parts)})
GROUP BY GROUPING SETS ({sets})
"""


def measure_series(
    con: duckdb.DuckDBPyConnection,
    modules: Iterable[MeasureModule],
    periods: Sequence[Period],
    *,
    centers: Sequence[str] | None = None,
    dimensions: Sequence[str] = (),
    on_measure: Callable[[Measure, float], None] | None = None,
) -> int:
    """Evaluate ``modules`` for every period and (re)write their rows of ``measure_series``.

    Rows: per measure x group x center (and the network, ``center = '*'``, when ``centers`` is None),
    for all patients and for every value of each of ``dimensions`` (``patient_attributes`` columns,
    e.g. ``race_ethnicity``). A period's rows of these measures and centers are replaced as a whole;
    the series is written in one transaction. Each measure runs once for all periods (``on_measure``
    gets its seconds). Returns the number of rows written.
    """
    modules = list(modules)
    periods = list(dict.fromkeys(periods))
    dims = _check_dimensions(dimensions)
    scope = tuple(centers) if centers else None
    prepare(con)
    con.execute(SERIES_DDL)
    columns = ", ".join(_SUBJECT_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SUBJECTS} AS SELECT {columns} FROM {RESULTS_TABLE} LIMIT 0")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_PERIODS} AS {_periods_sql(periods)}")
    names = ", ".join(sql_str(m.measure.name) for m in modules)
    aggregate = _aggregate_sql(dims, network=scope is None)
    ctx = _SeriesContext(PeriodColumns(_MP, tuple(periods)), scope)
    done: set[str] = set()
    con.execute("BEGIN TRANSACTION")
    try:
        for module in modules:
            started = time.perf_counter()
            rendered = render(module, ctx)
            for define in rendered.library:
                if define.table in done:
                    continue
                sql = define.sql
                if _per_period(sql):  # one table for all periods, keyed by the period's row
                    sql = _lateral(sql, f"{_MP}.mp_id AS {_MP_ID}, {_ROW}.*")
                con.execute(f"CREATE OR REPLACE TEMP TABLE {define.table} AS {sql}")
                done.add(define.table)
            row_columns = ", ".join(f"{_ROW}.{c}" for c in _SUBJECT_COLUMNS)
            con.execute(f"INSERT INTO {_SUBJECTS} {_lateral(rendered.select, row_columns)}")
            if on_measure:
                on_measure(module.measure, time.perf_counter() - started)
        if dims:  # each period's attributes, the period's ISO dates as text columns of its row
            text = (f"CAST({_MP}.start_date AS VARCHAR)", f"CAST({_MP}.end_date AS VARCHAR)")
            attributes = _lateral(
                attributes_sql(None, None, bounds=text),
                f"{_ROW}.center, {_ROW}.patient_id, {_MP}.start_date AS period_start, "
                f"{_MP}.end_date AS period_end, " + ", ".join(f"{_ROW}.{d}" for d in dims),
            )
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_ATTRIBUTES} AS {attributes}")
        where = (
            f"measure IN ({names}) AND (period_start, period_end) IN "
            f"(SELECT (start_date, end_date) FROM {_PERIODS})"
        )
        if scope:
            where += " AND center IN (" + ", ".join(sql_str(c) for c in scope) + ")"
        con.execute(f"DELETE FROM {SERIES_TABLE} WHERE {where}")
        before = con.execute(f"SELECT count(*) FROM {SERIES_TABLE}").fetchone()[0]
        con.execute(f"INSERT INTO {SERIES_TABLE} BY NAME {aggregate}")
        written = con.execute(f"SELECT count(*) FROM {SERIES_TABLE}").fetchone()[0] - before
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for table in (_SUBJECTS, _ATTRIBUTES, _PERIODS, *done):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return written
