"""Compiled vs hand-written: the two independent implementations of a measure on the same warehouse.

For every measure of a package that is also hand-written (same Measure name), both run over every
patient of the warehouse for one period; every (center, patient, group, population) where they
differ is listed. A difference is a bug in one of them (or an undocumented reading of the CQL):
``scripts/elm_crosscheck.py`` prints them, docs/conformance.md records what each was.

The hand-written rows come from the engine's ``measure_results`` (the connection's own, written by
:func:`engine.run_measures`); the compiled rows go to a TEMP table, so nothing a published warehouse
holds is replaced by this check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from chc_equity.measures.elm.measure import prepare as prepare_macros
from chc_equity.measures.elm.run import DefineTables, compile_package, package_measures
from chc_equity.measures.engine import RESULTS_DDL, RESULTS_TABLE, run_measures
from chc_equity.measures.model import POPULATION_COLUMNS
from chc_equity.measures.vocabulary import Period, sql_str

COMPILED_TABLE = "_elm_crosscheck"


@dataclass
class Agreement:
    """One measure: patients compared, per population code the (hand-written, compiled) counts, and
    the differing cells ``(center, patient_id, group_id, population, handwritten, compiled)``."""

    measure: str
    error: str = ""
    patients: int = 0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    differences: list[tuple[str, str, str, str, bool, bool]] = field(default_factory=list)  # the first ones
    n_differences: int = 0
    # subjects of both initial populations whose strata (the stratifier names they meet) differ
    # (a subject outside one initial population is a population difference); apart from them, as
    # the two may name a stratifier differently (2026 CMS74: the Measure resource's three stratifiers
    # all name "Initial Population", the hand-written measure its CQL's age bands)
    strata_differences: int = 0
    seconds: tuple[float, float] = (0.0, 0.0)  # hand-written, compiled (wall)
    cpu: tuple[float, float] = (0.0, 0.0)  # hand-written, compiled (CPU seconds of this process)

    @property
    def agrees(self) -> bool:
        return not self.error and self.n_differences == 0


def both(package: str | Path, wanted: Sequence[str] | None = None) -> list[str]:
    """The package's measures that are hand-written too (by Measure name)."""
    from chc_equity.measures.registry import all_measures

    handwritten = {m.measure.name for m in all_measures()}
    return [n for n in package_measures(package, wanted) if n in handwritten]


def crosscheck(
    con: duckdb.DuckDBPyConnection,
    package: str | Path,
    period: Period,
    wanted: Sequence[str] | None = None,
    max_differences: int = 50,
    on_result: Callable[[Agreement], None] | None = None,
    run_handwritten: bool = True,
) -> dict[str, Agreement]:
    """Run both engines on every patient of ``con``'s warehouse for ``period`` and compare.

    ``run_handwritten=False`` compares with the hand-written rows ``measure_results`` already holds for
    the period (a warehouse on which ``measures run`` ran, unchanged since)."""
    from chc_equity.measures.registry import find

    names = both(package, wanted)
    out = {n: Agreement(n) for n in names}
    compiled, failed = compile_package(package, names, period)
    for name, message in failed.items():
        out[name].error = message
    modules = find([c.measure.name for c in compiled])
    hand_seconds: dict[str, float] = {}
    hand_cpu: dict[str, float] = {}
    last = [time.process_time()]

    def handwritten_done(m, seconds: float) -> None:
        hand_seconds[m.name], hand_cpu[m.name], last[0] = (
            seconds,
            time.process_time() - last[0],
            time.process_time(),
        )

    if run_handwritten:
        run_measures(
            con,
            modules,
            period_start=period.start,
            period_end=period.end,
            on_measure=handwritten_done,
        )
    prepare_macros(con)
    con.execute(
        RESULTS_DDL.replace(f"TABLE IF NOT EXISTS {RESULTS_TABLE}", f"OR REPLACE TEMP TABLE {COMPILED_TABLE}")
    )
    tables = DefineTables(con)
    for c in compiled:
        started, cpu0 = time.perf_counter(), time.process_time()
        result = out[c.measure.name]
        try:
            tables.build(c)
            con.execute(f"INSERT INTO {COMPILED_TABLE} {c.select}")
        except duckdb.Error as exc:  # a run-time stop of the compiled SQL: reported, the others go on
            result.error = f"SQL error: {str(exc).splitlines()[0][:200]}"
            tables.close()
            if on_result:
                on_result(result)
            continue
        tables.release(c)
        result.seconds = (hand_seconds.get(c.measure.name, 0.0), time.perf_counter() - started)
        result.cpu = (hand_cpu.get(c.measure.name, 0.0), time.process_time() - cpu0)
        _compare(con, result, period, max_differences)
        if on_result:
            on_result(result)
    tables.close()
    return out


def _compare(con: duckdb.DuckDBPyConnection, result: Agreement, period: Period, limit: int) -> None:
    """Fill ``result`` from the two tables: a subject missing on one side has every population false."""
    where = (
        f"measure = {sql_str(result.measure)} AND period_start = {period.start_date} "
        f"AND period_end = {period.end_date}"
    )
    cols = list(POPULATION_COLUMNS.values())
    pairs = ", ".join(f"coalesce(h.{c}, FALSE) AS h_{c}, coalesce(k.{c}, FALSE) AS k_{c}" for c in cols)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _elm_pairs AS
        SELECT coalesce(h.center, k.center) AS center, coalesce(h.patient_id, k.patient_id) AS patient_id,
               coalesce(h.group_id, k.group_id) AS group_id, {pairs},
               coalesce(h.initial_population AND k.initial_population, FALSE)
                 AND list_sort(coalesce(h.strata, [])) IS DISTINCT FROM list_sort(coalesce(k.strata, []))
                 AS strata_differ
        FROM (SELECT * FROM {RESULTS_TABLE} WHERE {where}) h
        FULL JOIN (SELECT * FROM {COMPILED_TABLE} WHERE {where}) k
          ON h.center = k.center AND h.subject_id = k.subject_id AND h.group_id = k.group_id"""
    )
    result.patients = con.execute("SELECT count(DISTINCT (center, patient_id)) FROM _elm_pairs").fetchone()[0]
    sums = ", ".join(f"count(*) FILTER (h_{c}), count(*) FILTER (k_{c})" for c in cols)
    row = con.execute(f"SELECT {sums} FROM _elm_pairs").fetchone()
    result.counts = {code: (row[2 * i], row[2 * i + 1]) for i, code in enumerate(POPULATION_COLUMNS)}
    diffs = " UNION ALL ".join(
        f"SELECT center, patient_id, group_id, {sql_str(code)}, h_{c}, k_{c} "
        f"FROM _elm_pairs WHERE h_{c} <> k_{c}"
        for code, c in POPULATION_COLUMNS.items()
    )
    result.n_differences = con.execute(f"SELECT count(*) FROM ({diffs})").fetchone()[0]
    result.strata_differences = con.execute("SELECT count(*) FROM _elm_pairs WHERE strata_differ").fetchone()[
        0
    ]
    result.differences = [
        tuple(r) for r in con.execute(f"SELECT * FROM ({diffs}) ORDER BY ALL LIMIT {limit}").fetchall()
    ]
    con.execute("DROP TABLE _elm_pairs")
