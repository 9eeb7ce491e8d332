"""What a page or API call about measures returns for one user: the scoping and privacy rules in one place.

Pages and the API both call these functions, so a page can never show what the matching API call would
refuse. The rules:

* the SQL is restricted to the user's center (center staff, center-bound viewers);
* a center-bound user sees the network *rate* only, and funnel lines only up to their own size; and no
  network number at all (rate, test, funnel, equity strata) where the publication plan withholds it;
* viewers get the counts the precomputed publication plan (``agg_suppression``) publishes: small cells
  and their complements hidden jointly over centers, network and strata; no rate where a count is hidden;
* patient-level lists (:func:`gap_list`, :func:`previsit_list`) are for PATIENT_LEVEL_ROLES; the route
  guard enforces that, and these functions take the center from the guard's scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fastapi import HTTPException, Request

from chc_equity.network.precompute import NETWORK
from chc_equity.web import analytics, data, gaps
from chc_equity.web.analytics import HIDE_ALL, Cell, MeasureView, Plan, Run
from chc_equity.web.privacy import suppress_cell, suppress_stratum, without_network
from chc_equity.web.roles import Principal
from chc_equity.web.security import CenterScope

NO_RESULTS = "No measure results yet: run `chc-equity measures run`, then the aggregates are precomputed."


def warehouse(request: Request):
    """The request's read-only connection to the published snapshot (the same one on every call)."""
    path: Path = request.app.state.config.warehouse
    return data.open_warehouse(path, request.state)


def _plan_key(cell: Cell, center: str) -> analytics.PlanKey:
    return (cell.period_start, cell.period_end, cell.measure, cell.group_id, center)


def network_shown(user: Principal, plans: dict[analytics.PlanKey, Plan], cell: Cell) -> bool:
    """Whether ``user`` may see numbers derived from the network's counts for ``cell``'s measure group.

    Center-bound users: not where the plan withholds the network from their center (the network minus
    their own center would be a small cell or a single other center). Viewers: only while the network's
    met and not-met counts are themselves published (the network rate would give a hidden one back).
    """
    if user.center is not None and plans.get(_plan_key(cell, user.center), HIDE_ALL).network_withheld:
        return False
    if user.suppressed:
        return not plans.get(_plan_key(cell, NETWORK), HIDE_ALL).rate_hidden
    return True


def strata_shown(
    user: Principal, plans: dict[analytics.PlanKey, Plan], run: Run, measure: str, group: str
) -> bool:
    """Whether ``user`` may see the network equity strata of one measure group (same rule as the cells)."""
    key = (run.period_start, run.period_end, measure, group)
    if user.center is not None and plans.get((*key, user.center), HIDE_ALL).network_withheld:
        return False
    if user.suppressed:
        return not plans.get((*key, NETWORK), HIDE_ALL).rate_hidden
    return True


def network_strata(request: Request, user: Principal, period_end: date | None = None):
    """Every measure's network equity strata the user may see (viewers: suppressed), with the run and
    the measures' metadata: the network "largest inequities" page."""
    with warehouse(request) as con:
        run = _run_or_404(con, period_end)
        if run is None:
            raise HTTPException(status_code=404, detail=NO_RESULTS)
        plans = analytics.plans(con)
        strata = analytics.equity(con, run, None)
        meta = analytics.measure_meta(con, run)
    strata = [s for s in strata if strata_shown(user, plans, run, s.measure, s.group_id)]
    if user.suppressed:
        strata = [suppress_stratum(s) for s in strata]
    return run, strata, meta


def center_strata(
    request: Request, scope: CenterScope, period_end: date | None = None, measure: str | None = None
):
    """One center's own equity strata (compared within the center); never for viewers (the route's guard)."""
    center = scope.center or ""
    with warehouse(request) as con:
        _center_known(con, center)
        run = _run_or_404(con, period_end)
        if run is None:
            raise HTTPException(status_code=404, detail=NO_RESULTS)
        name = resolve_measure(con, measure)[0] if measure else None
        strata = analytics.equity(con, run, name, center=center)
        meta = analytics.measure_meta(con, run)
    return run, strata, meta


def present(cells: list[Cell], user: Principal, plans: dict[analytics.PlanKey, Plan]) -> list[Cell]:
    """Apply the user's privacy rules to agg cells (SQL already restricted them to the user's centers)."""
    out = []
    for cell in cells:
        if cell.is_network and user.center is not None:
            cell = analytics.network_for_bound_user(cell)
        if user.suppressed:
            cell = suppress_cell(cell, plans.get(_plan_key(cell, cell.center), HIDE_ALL))
        if not network_shown(user, plans, cell):
            cell = without_network(cell)
        out.append(cell)
    return out


@dataclass(slots=True)
class Overview:
    runs: list[Run]
    run: Run | None
    centers: list[str]
    keys: list[str]  # measure-group column labels, in order
    cells: list[Cell]
    measures: list[Cell]  # network cells: one per measure group

    def grid(self) -> dict[tuple[str, str], Cell]:
        return {(c.center, c.key): c for c in self.cells}


def _run_or_404(con, period_end: date | None) -> Run | None:
    run = analytics.pick_run(con, period_end)
    if run is None and period_end is not None:
        raise HTTPException(status_code=404, detail="No precomputed results for that period.")
    return run


def overview(request: Request, user: Principal, period_end: date | None = None, con=None) -> Overview:
    """The heat map's data; pass ``con`` to reuse the request's warehouse connection."""
    if con is None:
        with warehouse(request) as own:
            return overview(request, user, period_end, own)
    runs = analytics.runs(con)
    run = (
        runs[0]
        if period_end is None and runs
        else next((r for r in runs if r.period_end == period_end), None)
    )
    if run is None and period_end is not None:
        raise HTTPException(status_code=404, detail="No precomputed results for that period.")
    cells = analytics.cells(con, run, user.center) if run else []
    cells = present(cells, user, analytics.plans(con))
    keys = list(dict.fromkeys(c.key for c in cells))
    centers = sorted({c.center for c in cells if not c.is_network})
    measures = [c for c in cells if c.is_network]
    return Overview(runs, run, centers, keys, cells, measures)


def resolve_measure(con, key: str) -> tuple[str, str]:
    found = analytics.find_measure(con, key)
    if found is None:
        raise HTTPException(status_code=404, detail="No such measure (or no results for it yet).")
    return found


def measure_view(request: Request, user: Principal, key: str, period_end: date | None = None) -> MeasureView:
    """The measure page's data, scoped to the user."""
    with warehouse(request) as con:
        name, _cms = resolve_measure(con, key)
        run = _run_or_404(con, period_end)
        if run is None:
            raise HTTPException(status_code=404, detail=NO_RESULTS)
        plans = analytics.plans(con, name)
        cells = present(analytics.cells(con, run, user.center, measure=name), user, plans)
        limits = analytics.funnel(con, run, name)
        history = present(analytics.trend(con, name, user.center), user, plans)
        strata = analytics.equity(con, run, name)
        all_runs = analytics.runs(con)
    if not cells:
        raise HTTPException(status_code=404, detail="No results for this measure in that period.")
    first = cells[0]
    groups = list(dict.fromkeys(c.group_id for c in cells))
    network = {c.group_id: c for c in cells if c.is_network}
    centers: dict[str, list[Cell]] = {g: [] for g in groups}
    for c in cells:
        if not c.is_network:
            centers[c.group_id].append(c)
    shown = {c.group_id for c in cells if c.is_network and network_shown(user, plans, c)}
    limits = {g: pts for g, pts in limits.items() if g in shown}
    strata = [s for s in strata if s.group_id in shown or user.center is None]
    if user.center is not None:  # funnel lines only up to 1.5 x the user's own denominator
        for g, pts in limits.items():
            own = max((c.performance_denominator or 0 for c in centers.get(g, [])), default=0)
            limits[g] = [p for p in pts if p.n <= max(20, int(own * 1.5))]
    if user.suppressed:
        strata = [suppress_stratum(s) for s in strata]
    return MeasureView(
        run=run,
        measure=name,
        cms_id=first.cms_id,
        title=first.title,
        inverse=first.inverse,
        uds=first.uds,
        groups=groups,
        network=network,
        centers=centers,
        funnel=limits,
        trend=history,
        equity=[s for s in strata if s.group_id in groups or not groups],
        equity_status=run.equity_status,
        runs=all_runs,
    )


def center_cells(
    request: Request, scope: CenterScope, period_end: date | None = None
) -> tuple[Run | None, list[Cell]]:
    """One center's measure cells (with the network cells for comparison)."""
    with warehouse(request) as con:
        run = _run_or_404(con, period_end)
        cells = analytics.cells(con, run, scope.center) if run else []
        plans = analytics.plans(con)
    return run, present(cells, scope.user, plans)


def _center_known(con, center: str) -> None:
    if not data.center_exists(con, center):
        raise HTTPException(status_code=404, detail="No such center.")


def gap_list(
    request: Request,
    scope: CenterScope,
    key: str,
    period_end: date | None = None,
    group: gaps.GroupFilter | None = None,
) -> tuple[Run, str, str, list[gaps.Gap]]:
    """Patient-level: open care gaps of one measure (one equity group when given) at the scope's center."""
    center = scope.center or ""
    with warehouse(request) as con:
        _center_known(con, center)
        name, cms = resolve_measure(con, key)
        run = _run_or_404(con, period_end)
        if run is None:
            raise HTTPException(status_code=404, detail=NO_RESULTS)
        rows = gaps.care_gaps(con, run, center, name, group)
    return run, name, cms, rows


def previsit_list(
    request: Request, scope: CenterScope, day: date, period_end: date | None = None
) -> tuple[Run, list[gaps.PatientGaps]]:
    """Patient-level: patients with an encounter at the center on ``day`` and all their open gaps.

    Uses the precomputed period that contains ``day`` when there is one, else the latest.
    """
    center = scope.center or ""
    with warehouse(request) as con:
        _center_known(con, center)
        run = _run_or_404(con, period_end)
        if period_end is None:
            run = next((r for r in analytics.runs(con) if r.period_start <= day <= r.period_end), run)
        if run is None:
            raise HTTPException(status_code=404, detail=NO_RESULTS)
        people = gaps.previsit(con, run, center, day)
    return run, people
