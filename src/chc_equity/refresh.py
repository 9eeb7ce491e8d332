"""Finish the refresh of derived results that loads left pending, exactly once, even across crashes.

A load that changes a center's data writes a ``pending_refresh`` row for it in the load's own
transaction (``chc_equity.ingest.loader``), and ``pending_patients`` rows saying which of the center's
patients it touched (``chc_equity.touched``; one row with patient_id NULL = the whole center). The
results derived from that data -- those patients' rows of ``measure_results`` for every period already
computed and of ``patient_attributes``, and each period's web aggregates (``agg_*``) -- are then older
than the data until :func:`finish_pending` has rebuilt them and deleted the rows.

Cost in proportion to the change: every eCQM and every patient attribute is a per-patient computation,
so only the pending patients are re-run (``run_measures(subjects=...)``) and their attribute rows
replaced; the aggregates, which compare centers, are recomputed once per period for the whole batch
of pending loads, after all of them.

Why this shape: the refresh is far too long to run inside the load's transaction, so it runs after the
commit. Each step is atomic on its own (``run_measures`` replaces a period's results in one transaction,
the attributes refresh its rows in another, ``precompute`` a period's aggregates in a third) and a pure
function of the warehouse and of the pending rows, so repeating a step that already committed changes
nothing. The rows are deleted only after the last step: a crash at any point leaves them in place, and
the next ``chc-equity ingest``, ``measures run`` or ``precompute`` repeats the whole refresh and ends
exactly where an uninterrupted run would have.

This module chains stages (measures, equity, network) like the CLI does; ingest itself never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb

from chc_equity.crashpoints import crash_point
from chc_equity.warehouse import PENDING_PATIENTS, PENDING_REFRESH

Period = tuple[date, date]
SUBJECTS = "_refresh_subjects"  # temp table (center, patient_id): the patients a partial refresh re-runs


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What :func:`finish_pending` rebuilt: the centers it cleared, the periods it recomputed, and the
    number of patients re-run (None: whole centers)."""

    centers: tuple[str, ...] = ()
    periods: tuple[Period, ...] = ()
    patients: int | None = None


def pending_centers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Centers whose derived results are older than their data, by name."""
    return [r[0] for r in con.execute(f"SELECT center FROM {PENDING_REFRESH} ORDER BY center").fetchall()]


def finish_pending(
    con: duckdb.DuckDBPyConnection, *, on_step: Callable[[str], None] | None = None
) -> Refreshed:
    """Re-run, for the pending patients of every pending center, the measures already computed in each
    period and their patient attributes, then recompute each period's aggregates once; finally clear the
    pending rows. A no-op when nothing is pending.

    Every implemented measure is re-run, not only those with rows in the period: a measure whose
    population was empty before the load has no rows yet. With no measure results at all there is
    nothing derived to refresh, so the rows are simply cleared. ``on_step(text)`` reports progress.
    """
    rows = con.execute(f"SELECT center, load_id FROM {PENDING_REFRESH} ORDER BY center").fetchall()
    if not rows:
        return Refreshed()
    centers = [center for center, _ in rows]
    crash_point("refresh:started")
    subjects, patients = _subjects(con, rows)
    periods = _periods(con)
    if periods:  # imported only when there is something to re-run: `ingest` stays free of scipy & co.
        from chc_equity.measures.engine import run_measures
        from chc_equity.measures.registry import all_measures
        from chc_equity.network import precompute
    if patients == 0:  # the loads touched no patient's data (e.g. only resources no view reads)
        periods = []
    scope = "whole centers" if subjects is None else f"{patients:,} patients"
    for start, end in periods:
        modules = all_measures()
        if on_step is not None:
            on_step(
                f"re-running {len(modules)} measures for {', '.join(centers)} ({scope}), {start} to {end}"
            )
        run_measures(con, modules, period_start=start, period_end=end, centers=centers, subjects=subjects)
        crash_point("refresh:measures-done")
    if patients != 0 and _attributes_current_but_pending(con, rows):
        from chc_equity.equity.attributes import refresh_patient_attributes

        if on_step is not None:
            on_step(f"refreshing patient attributes ({scope})")
        refresh_patient_attributes(con, centers=centers, subjects=subjects)
    crash_point("refresh:attributes-done")
    for start, end in periods:  # once per batch: the aggregates compare all centers
        if on_step is not None:
            on_step(f"precomputing web aggregates, {start} to {end}")
        precompute(con, period_start=start, period_end=end)
        crash_point("refresh:aggregates-done")
    crash_point("refresh:all-done")
    # Only the rows seen above: a row re-marked since (a later load) has a higher load_id and stays.
    con.execute("BEGIN TRANSACTION")
    try:
        for center, load_id in rows:
            con.execute(f"DELETE FROM {PENDING_REFRESH} WHERE center = ? AND load_id = ?", [center, load_id])
            con.execute(
                f"DELETE FROM {PENDING_PATIENTS} WHERE center = ? AND load_id <= ?", [center, load_id]
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if subjects is not None:
        con.execute(f"DROP TABLE IF EXISTS {SUBJECTS}")
    crash_point("refresh:cleared")
    return Refreshed(tuple(centers), tuple(periods), patients)


def _subjects(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int]]) -> tuple[str | None, int | None]:
    """Build the temp table of the patients to re-run; returns its name and size, or (None, None) when
    every pending center is refreshed whole (the run is then restricted by center alone).

    A center is whole when one of its pending loads says so (patient_id NULL); a center without any
    ``pending_patients`` row changed no patient's data (its loads touched only resources no view reads).
    When some centers are whole and others are not, a whole center's patients are listed too: those in
    ``flat.patient`` and those with results or attributes (a deleted patient's rows must go).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _refresh_pending (center VARCHAR, load_id BIGINT)")
    con.executemany("INSERT INTO _refresh_pending VALUES (?, ?)", rows)
    whole = [
        r[0]
        for r in con.execute(
            f"""SELECT r.center FROM _refresh_pending r
                WHERE EXISTS (SELECT 1 FROM {PENDING_PATIENTS} p WHERE p.center = r.center
                              AND p.load_id <= r.load_id AND p.patient_id IS NULL)
                ORDER BY 1"""
        ).fetchall()
    ]
    if len(whole) == len(rows):
        con.execute("DROP TABLE _refresh_pending")
        return None, None
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {SUBJECTS} AS
            SELECT DISTINCT p.center, p.patient_id FROM {PENDING_PATIENTS} p
            JOIN _refresh_pending r ON r.center = p.center AND p.load_id <= r.load_id
            WHERE p.patient_id IS NOT NULL"""
    )
    if whole:
        listed = ", ".join("'" + c.replace("'", "''") + "'" for c in whole)
        sources = ["SELECT center, id FROM flat.patient"]
        for table in ("measure_results", "patient_attributes"):
            if _exists(con, table):
                sources.append(f"SELECT center, patient_id FROM {table}")
        union = " UNION ".join(f"({s} WHERE center IN ({listed}))" for s in sources)
        con.execute(f"INSERT INTO {SUBJECTS} {union} EXCEPT SELECT center, patient_id FROM {SUBJECTS}")
    con.execute("DROP TABLE _refresh_pending")
    return SUBJECTS, int(con.execute(f"SELECT count(*) FROM {SUBJECTS}").fetchone()[0])


def _attributes_current_but_pending(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int]]) -> bool:
    """Whether ``patient_attributes`` holds every change but the pending ones, so that refreshing the
    pending patients' rows makes it equal to a rebuild: its tag names a load at or after the last load
    that preceded the earliest pending one (a load since then either is pending or changed nothing).
    Otherwise the table is left to ``ensure_patient_attributes``, which rebuilds it when next needed."""
    if not _exists(con, "patient_attributes"):
        return False
    from chc_equity.equity.attributes import built_for

    built = built_for(con)
    if built is None or built[2] is None:
        return False
    first = min(
        [load_id for _, load_id in rows]
        + [
            r[0]
            for r in con.execute(
                f"SELECT min(load_id) FROM {PENDING_PATIENTS} WHERE center IN "
                f"(SELECT center FROM {PENDING_REFRESH})"
            ).fetchall()
            if r[0] is not None
        ]
    )
    before = con.execute(
        "SELECT max(load_id) FROM loads WHERE load_id < ? AND (inserted > 0 OR updated > 0)", [first]
    ).fetchone()[0]
    return before is None or built[2] >= before


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main' "
            "AND NOT temporary",
            [table],
        ).fetchone()[0]
    )


def _periods(con: duckdb.DuckDBPyConnection) -> list[Period]:
    """Every period with measure results (none when measures have never run)."""
    from chc_equity.measures.engine import RESULTS_TABLE

    if not _exists(con, RESULTS_TABLE):
        return []
    return [
        (start, end)
        for start, end in con.execute(
            f"SELECT DISTINCT period_start, period_end FROM {RESULTS_TABLE} ORDER BY 1, 2"
        ).fetchall()
    ]
