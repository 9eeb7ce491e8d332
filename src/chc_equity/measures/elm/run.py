"""Run compiled measures over the warehouse into ``measure_results``, as the hand-written ones are.

A package's Measure resources are compiled (:func:`measure.compile_measure`) and their scored rows
replace the rows of the same measure and period in ``measure_results`` (one transaction, the engine's
:func:`engine.results_where` deciding which rows), so summaries, MeasureReports, equity and the web
app read a compiled measure exactly like a hand-written one. A ratio or continuous-variable measure's
observations (:func:`measure.run_observations`'s rows) replace its rows in ``measure_observations``
the same way. The profile rule is the engine's:
``strict`` runs on :func:`profiles.strict_copy` and copies the rows back.

Which engine runs a measure that is both hand-written and published as ELM is chosen here
(:func:`plan`), once for the CLI's ``measures run`` and ``measures evaluate``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.measures import engine
from chc_equity.measures.elm.conformance import PackageLayout
from chc_equity.measures.elm.episodes import SCORED
from chc_equity.measures.elm.library import ElmError
from chc_equity.measures.elm.measure import Compiled, MeasureDef, compile_measure
from chc_equity.measures.elm.measure import prepare as prepare_macros
from chc_equity.measures.engine import (
    OBSERVATIONS_DDL,
    OBSERVATIONS_TABLE,
    RESULTS_TABLE,
    Context,
    MeasureModule,
    results_where,
)
from chc_equity.measures.model import Measure
from chc_equity.measures.profiles import SCRATCH, check_profile_rule, strict_copy
from chc_equity.measures.vocabulary import Period, sql_str

ENGINES = ("compiled", "handwritten")


@dataclass(frozen=True)
class Plan:
    """What a run over a package does: hand-written modules, compiled measures, and the measures that
    could not be compiled (name -> the compiler's message)."""

    handwritten: tuple[MeasureModule, ...]
    compiled: tuple[Compiled, ...]
    failed: dict[str, str]


def package_measures(package: str | Path, wanted: Sequence[str] | None = None) -> list[str]:
    """The package's Measure resource names; ``wanted`` selects by full name or CMS id (``CMS75``)."""
    names = PackageLayout(Path(package)).measure_names()
    if not wanted:
        return names
    out = []
    for ident in wanted:
        key = ident.lower()
        match = [n for n in names if key in (n.lower(), n.split("FHIR")[0].lower())]
        if not match:
            raise KeyError(f"no measure {ident!r} in {package}; it has: {', '.join(names)}")
        out.extend(m for m in match if m not in out)
    return out


def compile_package(
    package: str | Path,
    names: Sequence[str],
    period: Period,
    valueset_table: str = "valueset_codes",
) -> tuple[list[Compiled], dict[str, str]]:
    """Compile ``names`` from the package's ELM: the compiled measures and, per measure the compiler
    does not support, its message (the ELM node, library, define and line)."""
    layout = PackageLayout(Path(package))
    compiled, failed = [], {}
    for name in names:
        try:
            compiled.append(
                compile_measure(
                    MeasureDef.read(layout.measures / f"{name}.json"), layout.elm, period, valueset_table
                )
            )
        except (ElmError, FileNotFoundError) as exc:
            failed[name] = str(exc).splitlines()[0]
    return compiled, failed


def plan(
    package: str | Path,
    wanted: Sequence[str] | None,
    period: Period,
    engine_name: str = "compiled",
) -> Plan:
    """The package's measures (or ``wanted``), each run compiled, except that ``engine_name=
    "handwritten"`` runs the hand-written module of a measure that has one (same Measure name)."""
    from chc_equity.measures.registry import all_measures

    if engine_name not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine_name!r}")
    names = package_measures(package, wanted)
    handwritten: list[MeasureModule] = []
    if engine_name == "handwritten":
        by_name = {m.measure.name: m for m in all_measures()}
        handwritten = [by_name[n] for n in names if n in by_name]
        names = [n for n in names if n not in by_name]
    compiled, failed = compile_package(package, names, period)
    return Plan(tuple(handwritten), tuple(compiled), failed)


def compiled_module(compiled: Compiled) -> MeasureModule:
    """The engine's view of a compiled measure (its metadata; the criteria are the compiled SQL's)."""
    return MeasureModule(compiled.measure.model(), lambda ctx: compiled.select)


def run_compiled_measures(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[Compiled],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    profiles: str = "lenient",
    on_measure: Callable[[Measure, float], None] | None = None,
) -> dict[str, int]:
    """Write the compiled measures' rows for the period (and centers) into ``measure_results``,
    replacing that measure's earlier rows there; returns the rows written per measure."""
    ctx = Context(Period(period_start, period_end), tuple(centers) if centers else None)
    if check_profile_rule(profiles) == "strict":
        with strict_copy(con) as home:
            written = _run_here(con, measures, ctx, on_measure)
            con.execute(f'USE "{home}"')
            engine._copy_back(con, [compiled_module(c) for c in measures], ctx, SCRATCH, observations=True)
        return written
    return _run_here(con, measures, ctx, on_measure)


_ALIAS = re.compile(r"\b([abf])(\d+)_")
_TABLE = re.compile(r"\belm_[a-z0-9_]+")


def canonical(sql: str) -> str:
    """``sql`` with the compiler's generated alias numbers (``a12_``, ``b3_``, ``f7_``) renumbered in
    order of first appearance: one define compiled by two measures' compilers then reads the same."""
    numbers: dict[str, int] = {}

    def renumber(m: re.Match[str]) -> str:
        n = numbers.setdefault(m.group(2), len(numbers) + 1)
        return f"{m.group(1)}{n}_"

    return _ALIAS.sub(renumber, sql)


class DefineTables:
    """The define tables of one run. A define another measure of the run already built from the same
    SQL, reading the same defines (a shared library's: Hospice, PalliativeCare, AdvancedIllnessandFrailty
    ...), is read rather than rebuilt: DuckDB's planning of the large compiled expressions is most of a
    compiled measure's time. A measure's own defines are dropped once its rows are written, the shared
    ones when the run ends (:meth:`close`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.built: dict[str, str] = {}  # table -> key of what it holds

    def build(self, compiled: Compiled, patients_where: str = "") -> None:
        statements = compiled.statements(patients_where)
        self.con.execute(statements[0])  # the patients: the same relation for every measure of a run
        defines = statements[1 : 1 + len(compiled.defines)]
        keys: dict[str, str] = {}
        for define, statement in zip(compiled.defines, defines, strict=True):
            reads = sorted(t for t in set(_TABLE.findall(define.sql)) if t in keys and t != define.table)
            key = hashlib.sha256(
                "\n".join([canonical(define.sql), *(keys[t] for t in reads)]).encode()
            ).hexdigest()
            keys[define.table] = key
            if self.built.get(define.table) != key:
                self.con.execute(statement)
                self.built[define.table] = key
        for statement in statements[1 + len(compiled.defines) :]:  # episodes of the measure's basis
            self.con.execute(statement)

    def release(self, compiled: Compiled) -> None:
        """Drop the measure's own defines (those of its main library)."""
        own = "elm_" + re.sub(r"[^a-z0-9]+", "_", compiled.measure.library.lower()).strip("_") + "_"
        for define in compiled.defines:
            if define.table.startswith(own):
                self._drop(define.table)

    def close(self) -> None:
        for table in list(self.built):
            self._drop(table)

    def _drop(self, table: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.built.pop(table, None)


def _run_here(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[Compiled],
    ctx: Context,
    on_measure: Callable[[Measure, float], None] | None,
) -> dict[str, int]:
    engine.prepare(con)
    con.execute(OBSERVATIONS_DDL)
    prepare_macros(con)
    where = "p.center IN (" + ", ".join(sql_str(c) for c in ctx.centers) + ")" if ctx.centers else ""
    written: dict[str, int] = {}
    tables = DefineTables(con)
    con.execute("BEGIN TRANSACTION")
    try:
        for compiled in measures:
            started = time.perf_counter()
            tables.build(compiled, where)
            model = compiled.measure.model()
            rows = results_where(model, ctx)
            con.execute(f"DELETE FROM {RESULTS_TABLE} WHERE {rows}")
            # the subjects of the initial population, as the hand-written measures write them; a
            # measure with observations keeps every scored subject first (the observations read them)
            scored = f"({compiled.select})"
            if compiled.observations_sql:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {SCORED} AS {compiled.select}")
                scored = SCORED
            con.execute(f"INSERT INTO {RESULTS_TABLE} SELECT * FROM {scored} WHERE initial_population")
            con.execute(f"DELETE FROM {OBSERVATIONS_TABLE} WHERE {rows}")
            if compiled.observations_sql:
                subject_type = "Patient" if model.basis == "boolean" else model.basis
                con.execute(
                    f"INSERT INTO {OBSERVATIONS_TABLE} SELECT o_.center, {sql_str(model.name)}, "
                    f"o_.group_id, {ctx.period.start_date}, {ctx.period.end_date}, "
                    f"{sql_str(subject_type)}, o_.subject_id, o_.patient_id, o_.observation, o_.value "
                    f"FROM ({compiled.observations_sql}) o_"
                )
            written[model.name] = con.execute(
                f"SELECT count(*) FROM {RESULTS_TABLE} WHERE {rows}"
            ).fetchone()[0]
            tables.release(compiled)
            if on_measure:
                on_measure(model, time.perf_counter() - started)
        tables.close()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written
