"""Runs measures over the flat tables and writes the patient-level results table.

A measure's *raw criteria* per subject (one boolean per CQL population definition) come from its
declared populations (:mod:`chc_equity.measures.populations`); this engine applies the eCQM
proportion-scoring rules once, for every measure, exactly as the FHIR Quality Measure IG / CQF
evaluators do:

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
from chc_equity.measures.defines import materialize_statements
from chc_equity.measures.model import POPULATIONS, Measure
from chc_equity.measures.profiles import SCRATCH, check_profile_rule, strict_copy
from chc_equity.measures.scoped import SCOPE_DB, scoped_copy
from chc_equity.measures.vocabulary import MACROS, MeasurementPeriod, Period, sql_str
from chc_equity.terminology import load_terminology

RESULTS_TABLE = "measure_results"

RESULTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (
    center                 VARCHAR NOT NULL,
    measure                VARCHAR NOT NULL,
    group_id               VARCHAR NOT NULL,
    period_start           DATE NOT NULL,
    period_end             DATE NOT NULL,
    subject_type           VARCHAR NOT NULL,   -- 'Patient', or the episode's type (Encounter ...)
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

# Measure observations of ratio and continuous-variable measures (only compiled ones have them, and
# elm/run.py creates the table): one row per observed subject (episode) and observation (the Measure's
# population id, e.g. "MeasureObservation_1_1"), replaced with the measure's results rows (the same
# ``results_where``).
OBSERVATIONS_TABLE = "measure_observations"

OBSERVATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {OBSERVATIONS_TABLE} (
    center        VARCHAR NOT NULL,
    measure       VARCHAR NOT NULL,
    group_id      VARCHAR NOT NULL,
    period_start  DATE NOT NULL,
    period_end    DATE NOT NULL,
    subject_type  VARCHAR NOT NULL,
    subject_id    VARCHAR NOT NULL,
    patient_id    VARCHAR NOT NULL,
    observation   VARCHAR NOT NULL,
    value         DOUBLE              -- the CQL function's value; null when it gives null
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


@dataclass(frozen=True)
class LibraryDefine:
    """A shared library define as a named relation: its table name, SQL and the library defines it reads."""

    table: str
    sql: str
    reads: tuple[Callable[[Context], str], ...] = ()


def library_table(build: Callable[..., str]) -> str:
    """Relation name of a library define, derived from its function (one name per define, always):
    ``hospice.has_hospice_services`` -> ``lib_hospice_has_hospice_services``."""
    return f"lib_{build.__module__.rsplit('.', 1)[-1]}_{build.__name__}"


@dataclass
class Context:
    """What a measure's SQL may depend on: the period, the centers, the patients, and the shared library
    defines.

    ``subjects`` names a table of ``(center, patient_id)``: when set, only those patients are in scope
    (the refresh after a load re-runs the patients it touched). Every measure starts from
    :meth:`patients`, so restricting it there restricts every measure and library define at once.

    Rendering is pure: :meth:`shared` only *records* a library define (keyed by its function, so it
    exists once per run whoever uses it) and returns the relation name; the engine materializes the
    recorded defines before running the measure that reads them (:func:`statements`).
    """

    period: MeasurementPeriod
    centers: tuple[str, ...] | None = None
    subjects: str | None = None
    library: dict[Callable[[Context], str], LibraryDefine] = field(default_factory=dict)
    _reads: list[Callable[[Context], str]] = field(default_factory=list)

    def shared(self, build: Callable[[Context], str]) -> str:
        """Use library define ``build`` (e.g. Hospice."Has Hospice Services"); return its relation name.

        Library defines are used by many measures; computing each once per run keeps a 21-measure run
        fast. A define that reads other library defines records them first, so ``library`` is always in
        dependency order.
        """
        if build not in self.library:
            outer, self._reads = self._reads, []
            try:
                sql = build(self)
                reads = tuple(self._reads)
            finally:
                self._reads = outer
            self.library[build] = LibraryDefine(library_table(build), sql, reads)
        self._reads.append(build)
        return self.library[build].table

    def patients(self) -> str:
        """The patients in scope: ``flat.patient`` restricted to the run's centers (and subjects)."""
        where = scope_where(self, "center", "id")
        return f"(SELECT * FROM flat.patient WHERE {where})" if where else "flat.patient"


def scope_where(ctx: Context, center: str = "center", patient: str = "patient_id") -> str:
    """The SQL condition on columns ``center`` and ``patient`` for the run's centers and subjects
    (empty when the run covers everything)."""
    parts = []
    if ctx.centers:
        parts.append(f"{center} IN (" + ", ".join(sql_str(c) for c in ctx.centers) + ")")
    if ctx.subjects:
        parts.append(f"({center}, {patient}) IN (SELECT center, patient_id FROM {ctx.subjects})")
    return " AND ".join(parts)


@dataclass(frozen=True)
class MeasureModule:
    """A registered measure: its metadata and the function that renders its criteria SQL (its defines
    and the population SELECT the engine writes from its declared populations)."""

    measure: Measure
    criteria: Callable[[Context], str]


@dataclass(frozen=True)
class Rendered:
    """One measure rendered for one period: the library defines it reads and its scored SELECT."""

    measure: Measure
    criteria: str
    library: tuple[LibraryDefine, ...]  # in dependency order
    select: str


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Per-connection setup: macros, terminology tables, results table."""
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
    load_terminology(con, warn=False)
    con.execute(RESULTS_DDL)


def render(module: MeasureModule, ctx: Context) -> Rendered:
    """Render a measure's SQL without touching any database (pure but for recording in ``ctx``)."""
    ctx._reads = []
    criteria = module.criteria(ctx)
    used: list[LibraryDefine] = []

    def visit(build: Callable[[Context], str]) -> None:
        define = ctx.library[build]
        if define in used:
            return
        for dep in define.reads:
            visit(dep)
        used.append(define)

    for build in ctx._reads:
        visit(build)
    ctx._reads = []
    return Rendered(module.measure, criteria, tuple(used), scored_sql(module.measure, criteria, ctx.period))


def scored_sql(m: Measure, criteria: str, period: MeasurementPeriod) -> str:
    """The measure's criteria wrapped in the proportion-scoring rules (see module docstring).

    This is the one population SELECT of every measure: a measure module only says, per subject,
    which criteria it meets.
    """
    subject_type = "Patient" if m.basis == "boolean" else m.basis  # an episode: its resource type
    return f"""
WITH criteria AS (
{criteria}
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
       {period.start_date} AS period_start, {period.end_date} AS period_end,
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


def results_where(m: Measure, ctx: Context) -> str:
    """The ``measure_results`` rows a run of measure ``m`` for ``ctx`` replaces."""
    where = (
        f"measure = {sql_str(m.name)} AND period_start = {ctx.period.start_date} "
        f"AND period_end = {ctx.period.end_date}"
    )
    scope = scope_where(ctx)
    return f"{where} AND {scope}" if scope else where


def statements(rendered: Rendered, ctx: Context, done: set[str] | None = None) -> list[str]:
    """Every statement a run executes for one measure, in order: the library defines not yet
    materialized in this run (``done``, updated), then the replacement of its result rows.

    ``chc-equity measures sql`` prints exactly these.
    """
    done = set() if done is None else done
    out = []
    for define in rendered.library:
        if define.table not in done:
            out.append(f"CREATE OR REPLACE TEMP TABLE {define.table} AS {define.sql}")
            done.add(define.table)
    where = results_where(rendered.measure, ctx)
    out.append(f"DELETE FROM {RESULTS_TABLE} WHERE {where}")
    if ctx.subjects:  # only the subjects' rows are replaced, whatever a measure's SQL might return
        out.append(f"INSERT INTO {RESULTS_TABLE} SELECT * FROM ({rendered.select}) WHERE {scope_where(ctx)}")
    else:
        out.append(f"INSERT INTO {RESULTS_TABLE} {rendered.select}")
    return out


def run_measures(
    con: duckdb.DuckDBPyConnection,
    modules: Iterable[MeasureModule],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    on_measure: Callable[[Measure, float], None] | None = None,
    materialize_defines: bool = False,
    profiles: str = "lenient",
    subjects: str | None = None,
) -> dict[str, int]:
    """Evaluate measures for one period and (re)write their rows in ``measure_results``.

    ``subjects`` (a table of ``center, patient_id``) restricts the run to those patients: only their rows
    are replaced, equal to what a run over their whole centers would write for them (every eCQM is a
    per-patient computation). The measures then run on a copy of only the rows those patients' measures
    read (:mod:`chc_equity.measures.scoped`), so the cost follows the number of patients, not the
    network's size. The returned counts are then the subjects' rows.

    Runs in one transaction: the results of a period are replaced as a whole or not at all.
    With ``materialize_defines`` every define of every measure is also kept as a table in schema
    ``defines`` (see :mod:`chc_equity.measures.defines`). ``profiles`` is the profile rule
    (:mod:`chc_equity.measures.profiles`): ``strict`` evaluates a copy of the warehouse without its
    unprofiled clinical resources and writes only the results back. Returns the number of subject rows
    written per measure.
    """
    if check_profile_rule(profiles) == "strict":
        if materialize_defines:
            raise ValueError("--materialize-defines keeps defines of lenient runs only")
        return _run_strict(con, list(modules), period_start, period_end, centers, on_measure, subjects)
    ctx = Context(Period(period_start, period_end), tuple(centers) if centers else None, subjects)
    if subjects is None or materialize_defines:
        return _run_here(con, modules, ctx, on_measure, materialize_defines)
    modules = list(modules)
    # current in the warehouse (a catalog query once tagged), so the scoped copy copies it, not rebuilds it
    load_terminology(con, warn=False)
    with scoped_copy(con, subjects) as home:  # only the subjects' rows: cost in proportion to them
        written = _run_here(con, modules, ctx, on_measure, False, commit_point=False)
        con.execute(f'USE "{home}"')
        _copy_back(con, modules, ctx, SCOPE_DB)
    return written


def _run_here(
    con: duckdb.DuckDBPyConnection,
    modules: Iterable[MeasureModule],
    ctx: Context,
    on_measure: Callable[[Measure, float], None] | None,
    materialize_defines: bool,
    *,
    commit_point: bool = True,
) -> dict[str, int]:
    """Run the measures in the connection's default database, in one transaction."""
    prepare(con)
    done: set[str] = set()
    written: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for module in modules:
            started = time.perf_counter()
            rendered = render(module, ctx)
            for statement in statements(rendered, ctx, done):
                con.execute(statement)
            if materialize_defines:
                for statement in materialize_statements(rendered):
                    con.execute(statement)
            m = module.measure
            where = results_where(m, ctx)
            written[m.name] = con.execute(f"SELECT count(*) FROM {RESULTS_TABLE} WHERE {where}").fetchone()[0]
            if on_measure:
                on_measure(m, time.perf_counter() - started)
        if commit_point:
            crash_point("measures:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written


def _copy_back(
    con: duckdb.DuckDBPyConnection,
    modules: list[MeasureModule],
    ctx: Context,
    source: str,
    *,
    observations: bool = False,
) -> None:
    """Replace the warehouse's result rows of ``modules`` for ``ctx`` with those database ``source``
    computed (a copy's run: strict profile rule, or the subjects' scoped copy), and with
    ``observations`` their measure observations likewise, in one transaction."""
    con.execute(RESULTS_DDL)
    tables = (RESULTS_TABLE,)
    if observations:
        con.execute(OBSERVATIONS_DDL)
        tables += (OBSERVATIONS_TABLE,)
    con.execute("BEGIN TRANSACTION")
    try:
        for module in modules:
            where = results_where(module.measure, ctx)
            for table in tables:
                con.execute(f"DELETE FROM {table} WHERE {where}")
                con.execute(f"INSERT INTO {table} SELECT * FROM {source}.main.{table} WHERE {where}")
        crash_point("measures:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _run_strict(
    con: duckdb.DuckDBPyConnection,
    modules: list[MeasureModule],
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None,
    on_measure: Callable[[Measure, float], None] | None,
    subjects: str | None = None,
) -> dict[str, int]:
    """``run_measures`` with ``profiles="strict"``: run on :func:`profiles.strict_copy`, then replace
    the warehouse's result rows of these measures with the copy's, in one transaction."""
    with strict_copy(con) as home:
        written = run_measures(
            con,
            modules,
            period_start=period_start,
            period_end=period_end,
            centers=centers,
            on_measure=on_measure,
            subjects=subjects,
        )
        con.execute(f'USE "{home}"')
        ctx = Context(Period(period_start, period_end), tuple(centers) if centers else None, subjects)
        _copy_back(con, modules, ctx, SCRATCH)
    return written


def population_columns() -> tuple[str, ...]:
    """Results-table column of each population code, in MeasureReport order."""
    return tuple(code.replace("-", "_") for code in POPULATIONS)
