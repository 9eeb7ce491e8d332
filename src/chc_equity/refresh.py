"""Finish the refresh of derived results that loads left pending, exactly once, even across crashes.

A load that changes a center's data writes a ``pending_refresh`` row for it in the load's own
transaction (``chc_equity.ingest.loader``). The results derived from that data -- the center's rows of
``measure_results`` for every period already computed, and each period's web aggregates (``agg_*``) --
are then older than the data until :func:`finish_pending` has rebuilt them and deleted the row.

Why this shape: the refresh is far too long to run inside the load's transaction, so it runs after the
commit. Each step is atomic on its own (``run_measures`` replaces a period's results in one transaction,
``precompute`` a period's aggregates in another) and a pure function of the warehouse, so repeating a
step that already committed changes nothing. The rows are deleted only after the last step: a crash at
any point leaves them in place, and the next ``chc-equity ingest``, ``measures run`` or ``precompute``
repeats the whole refresh and ends exactly where an uninterrupted run would have.

This module chains stages (measures, network) like the CLI does; ingest itself never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb

from chc_equity.crashpoints import crash_point
from chc_equity.warehouse import PENDING_REFRESH

Period = tuple[date, date]


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What :func:`finish_pending` rebuilt: the centers it cleared and the periods it recomputed."""

    centers: tuple[str, ...] = ()
    periods: tuple[Period, ...] = ()


def pending_centers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Centers whose derived results are older than their data, by name."""
    return [r[0] for r in con.execute(f"SELECT center FROM {PENDING_REFRESH} ORDER BY center").fetchall()]


def finish_pending(
    con: duckdb.DuckDBPyConnection, *, on_step: Callable[[str], None] | None = None
) -> Refreshed:
    """Re-run, for every pending center, the measures already computed in each period, then recompute
    each period's aggregates; finally clear the pending rows. A no-op when nothing is pending.

    Every implemented measure is re-run, not only those with rows in the period: a measure whose
    population was empty before the load has no rows yet. With no measure results at all there is
    nothing derived to refresh, so the rows are simply cleared. ``on_step(text)`` reports progress.
    """
    rows = con.execute(f"SELECT center, load_id FROM {PENDING_REFRESH} ORDER BY center").fetchall()
    if not rows:
        return Refreshed()
    centers = [center for center, _ in rows]
    crash_point("refresh:started")
    periods = _periods(con)
    if periods:  # imported only when there is something to re-run: `ingest` stays free of scipy & co.
        from chc_equity.measures.engine import run_measures
        from chc_equity.measures.registry import all_measures
        from chc_equity.network import precompute
    for start, end in periods:
        modules = all_measures()
        if on_step is not None:
            on_step(f"re-running {len(modules)} measures for {', '.join(centers)}, {start} to {end}")
        run_measures(con, modules, period_start=start, period_end=end, centers=centers)
        crash_point("refresh:measures-done")
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
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    crash_point("refresh:cleared")
    return Refreshed(tuple(centers), tuple(periods))


def _periods(con: duckdb.DuckDBPyConnection) -> list[Period]:
    """Every period with measure results (none when measures have never run)."""
    from chc_equity.measures.engine import RESULTS_TABLE
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [RESULTS_TABLE]
    ).fetchone()[0]
    if not exists:
        return []
    return [
        (start, end)
        for start, end in con.execute(
            f"SELECT DISTINCT period_start, period_end FROM {RESULTS_TABLE} ORDER BY 1, 2"
        ).fetchall()
    ]
