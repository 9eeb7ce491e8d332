"""Runs measures over the flat tables and writes the patient-level results table.

A measure module returns its *raw criteria* per subject (one boolean per CQL population definition);
this engine applies the eCQM proportion-scoring rules once, for every measure, exactly as the FHIR
Quality Measure IG / CQF evaluators do:

- denominator           = initial population AND denominator criteria
- denominator-exclusion = denominator AND exclusion criteria
- numerator             = denominator AND NOT excluded AND numerator criteria
- numerator-exclusion   = numerator AND numerator-exclusion criteria
- denominator-exception = denominator AND NOT excluded AND NOT numerator AND exception criteria

An excluded subject therefore still counts in the denominator (the counting convention of the
official test cases); the performance rate is numerator / (denominator - exclusions - exceptions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb

from chc_equity.crashpoints import crash_point
from chc_equity.measures.cql import MACROS, Period, sql_str
from chc_equity.measures.model import POPULATIONS, Measure
from chc_equity.terminology import load_terminology

RESULTS_TABLE = "measure_results"

RESULTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (
    center                 VARCHAR NOT NULL,
    measure                VARCHAR NOT NULL,
    group_id               VARCHAR NOT NULL,
    period_start           DATE NOT NULL,
    period_end             DATE NOT NULL,
    subject_type           VARCHAR NOT NULL,   -- 'Patient' or 'Encounter' (episode measures)
    subject_id             VARCHAR NOT NULL,
    patient_id             VARCHAR NOT NULL,
    initial_population     BOOLEAN NOT NULL,
    denominator            BOOLEAN NOT NULL,
    denominator_exclusion  BOOLEAN NOT NULL,
    denominator_exception  BOOLEAN NOT NULL,
    numerator              BOOLEAN NOT NULL,
    numerator_exclusion    BOOLEAN NOT NULL,
    strata                 VARCHAR[]           -- stratifier criteria the subject meets
)
"""

# Columns every measure's criteria query must return, in this order.
CRITERIA_COLUMNS = (
    "center",
    "patient_id",
    "subject_id",
    "group_id",
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "denominator_exception",
    "numerator",
    "numerator_exclusion",
    "strata",
)


@dataclass
class Context:
    """What a measure's SQL may depend on: the period, and shared library results computed once."""

    con: duckdb.DuckDBPyConnection
    period: Period
    centers: tuple[str, ...] | None = None
    _shared: dict[Callable[[Context], str], str] = field(default_factory=dict)

    def shared(self, name: str, build: Callable[[Context], str]) -> str:
        """Materialize a shared CQL library definition once per run as a TEMP table; return its name.

        Library definitions such as Hospice."Has Hospice Services" are used by many measures; computing
        them once keeps a 21-measure run fast. The cache is keyed by the defining function, so two
        measures that name the same definition differently still share one table.
        """
        if build not in self._shared:
            table = f"lib_{name}"
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {build(self)}")
            self._shared[build] = table
        return self._shared[build]

    def patients(self) -> str:
        """The patients in scope: ``flat.patient`` restricted to the run's centers."""
        if not self.centers:
            return "flat.patient"
        listed = ", ".join(sql_str(c) for c in self.centers)
        return f"(SELECT * FROM flat.patient WHERE center IN ({listed}))"


@dataclass(frozen=True)
class MeasureModule:
    """A registered measure: its metadata and the function that writes its criteria SQL."""

    measure: Measure
    criteria: Callable[[Context], str]


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Per-connection setup: macros, terminology tables, results table."""
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
    load_terminology(con, warn=False)
    con.execute(RESULTS_DDL)


def scored_sql(module: MeasureModule, ctx: Context) -> str:
    """The measure's criteria wrapped in the proportion-scoring rules (see module docstring)."""
    m = module.measure
    subject_type = "Encounter" if m.basis == "Encounter" else "Patient"
    return f"""
WITH criteria AS (
{module.criteria(ctx)}
),
scored AS (
  SELECT center, patient_id, subject_id, group_id, strata,
         coalesce(initial_population, FALSE) AS ip,
         coalesce(initial_population, FALSE) AND coalesce(denominator, FALSE) AS den,
         coalesce(denominator_exclusion, FALSE) AS denex_c,
         coalesce(denominator_exception, FALSE) AS denexcep_c,
         coalesce(numerator, FALSE) AS num_c,
         coalesce(numerator_exclusion, FALSE) AS numex_c
  FROM criteria
)
SELECT center, {sql_str(m.name)} AS measure, group_id,
       {ctx.period.start_date} AS period_start, {ctx.period.end_date} AS period_end,
       {sql_str(subject_type)} AS subject_type, subject_id, patient_id,
       ip AS initial_population,
       den AS denominator,
       den AND denex_c AS denominator_exclusion,
       den AND NOT denex_c AND NOT num_c AND denexcep_c AS denominator_exception,
       den AND NOT denex_c AND num_c AS numerator,
       den AND NOT denex_c AND num_c AND numex_c AS numerator_exclusion,
       strata
FROM scored
"""


def run_measures(
    con: duckdb.DuckDBPyConnection,
    modules: Iterable[MeasureModule],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    on_measure: Callable[[Measure, float], None] | None = None,
) -> dict[str, int]:
    """Evaluate measures for one period and (re)write their rows in ``measure_results``.

    Runs in one transaction: the results of a period are replaced as a whole or not at all.
    Returns the number of subject rows written per measure.
    """
    prepare(con)
    ctx = Context(con, Period(period_start, period_end), tuple(centers) if centers else None)
    written: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for module in modules:
            started = time.perf_counter()
            m = module.measure
            where = (
                f"measure = {sql_str(m.name)} AND period_start = {ctx.period.start_date} "
                f"AND period_end = {ctx.period.end_date}"
            )
            if ctx.centers:
                where += " AND center IN (" + ", ".join(sql_str(c) for c in ctx.centers) + ")"
            con.execute(f"DELETE FROM {RESULTS_TABLE} WHERE {where}")
            con.execute(f"INSERT INTO {RESULTS_TABLE} {scored_sql(module, ctx)}")
            written[m.name] = con.execute(f"SELECT count(*) FROM {RESULTS_TABLE} WHERE {where}").fetchone()[0]
            if on_measure:
                on_measure(m, time.perf_counter() - started)
        crash_point("measures:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written


def population_columns() -> tuple[str, ...]:
    """Results-table column of each population code, in MeasureReport order."""
    return tuple(code.replace("-", "_") for code in POPULATIONS)
