"""Measure pages: network overview heat map, measure page, care-gap lists, pre-visit planning, UDS.

Patient-level pages (care gaps, pre-visit) name no patient in their URL: the center and measure are path
parameters, the visit day travels in a POST body. The CSV export is the same list, same guard.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import Response

from chc_equity.web import charts, data, equityview, gaps, matrix, plainwords, service, trends, uds
from chc_equity.web.roles import ADMIN_ROLES, PATIENT_LEVEL_ROLES, Principal
from chc_equity.web.security import CenterScope, csrf_protect, require_center_access, require_role

router = APIRouter(include_in_schema=False)
PeriodEnd = Annotated[date | None, Query(description="Period end date; default: the latest precomputed")]
Reference = Annotated[str | None, Query(max_length=200, description="Reference group")]


def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(
        user=user,
        csrf_token=user.csrf_token,
        patient_level=user.role in PATIENT_LEVEL_ROLES,
        unit=plainwords.unit_of,
    )
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def _measure_page(
    request: Request,
    user: Principal,
    measure: str,
    period_end: date | None,
    focus: str | None = None,
    reference: str | None = None,
) -> Response:
    """The measure page; ``focus``: the center whose page it is (its rows marked, its series shown)."""
    from chc_equity.network.benchmarks import load_targets, national, target_for

    view = service.measure_view(request, user, measure, period_end)
    funnels = {
        g: charts.funnel(view.centers[g], view.funnel.get(g, []), f"{view.cms_id} {g.replace('_', ' ')}")
        for g in view.groups
    }
    with service.warehouse(request) as con:
        series = trends.series_trend(con, view.cms_id, focus or user.center)
    titles = {g: (c.group_title or "") for g, c in view.network.items()}
    targets = load_targets(request.app.state.config.targets_file)
    if focus is not None:  # a center's page: its own points and the network's
        view.trend = [c for c in view.trend if c.is_network or c.center == focus]
    keys = {g: view.cms_id if g == "Group_1" else f"{view.cms_id} {g.replace('_', ' ')}" for g in view.groups}
    return _render(
        request,
        "measure.html",
        user,
        view=view,
        funnels=funnels,
        trend_spec=charts.trend(view.trend),
        series=series,
        series_spec=trends.series_spec(series, titles) if series else None,
        runs=view.runs,
        focus=focus,
        unit_word=plainwords.unit_of(view.cms_id),
        uds_note=matrix.uds_note(view.cms_id) if len(view.groups) > 1 else None,
        national={g: national(view.cms_id, g) for g in view.groups},
        targets={g: target_for(targets, view.cms_id, keys[g]) for g in view.groups},
        **equity_context(view, reference),
    )


@router.get("/measures/{measure}")
def measure_page(
    request: Request,
    measure: str,
    user: Annotated[Principal, Depends(require_role())],
    period_end: PeriodEnd = None,
    reference: Reference = None,
) -> Response:
    return _measure_page(request, user, measure, period_end, reference=reference)


@router.get("/centers/{center}/measures/{measure}")
def center_measure_page(
    request: Request,
    measure: str,
    scope: Annotated[CenterScope, Depends(require_center_access())],
    period_end: PeriodEnd = None,
    reference: Reference = None,
) -> Response:
    """One center's view of a measure (where an overview cell leads): every group, the center's rows
    marked against the network, target and national average, and the center's own series."""
    with service.warehouse(request) as con:
        if not data.center_exists(con, scope.center or ""):
            raise HTTPException(status_code=404, detail="No such center.")
    return _measure_page(request, scope.user, measure, period_end, focus=scope.center, reference=reference)


def equity_context(view, reference: str | None) -> dict:
    """The measure page's equity section: strata against the chosen reference group, a sentence and a
    forest plot per measure group (network-wide)."""
    unit = plainwords.unit_of(view.measure)
    strata = equityview.with_reference(view.equity, reference, inverse=view.inverse)
    groups = list(dict.fromkeys(s.group_id for s in strata))
    per_group = {g: [s for s in strata if s.group_id == g] for g in groups}
    sentences = {
        g: plainwords.headline(rows, cms_id=view.cms_id, inverse=view.inverse, unit=unit)
        for g, rows in per_group.items()
    }
    forests = {
        g: charts.forest(rows, inverse=view.inverse, description=sentences[g])
        for g, rows in per_group.items()
    }
    return {
        "equity_groups": per_group,
        "equity_sentences": sentences,
        "equity_forests": forests,
        "equity_unit": unit,
        "reference": reference,
        "reference_choices": equityview.reference_choices(strata),
    }


@router.get("/centers/{center}/measures/{measure}/gaps")
def gaps_page(
    request: Request,
    measure: str,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
    period_end: PeriodEnd = None,
    group_id: Annotated[str | None, Query(max_length=40, alias="group")] = None,
    dimension: Annotated[str | None, Query(max_length=40)] = None,
    stratum: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A center's open care gaps of one measure; with group, dimension and stratum: of one equity group
    only (the "largest inequities" rows link here)."""
    group = None
    if group_id and dimension and stratum:
        try:
            group = gaps.GroupFilter(group_id, dimension, stratum)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
    run, _name, cms, rows = service.gap_list(request, scope, measure, period_end, group)
    return _render(
        request,
        "gaps.html",
        scope.user,
        center=scope.center,
        run=run,
        cms_id=cms,
        gaps=rows,
        limit=gaps.GAP_LIMIT,
        group=group,
    )


@router.get("/centers/{center}/measures/{measure}/gaps.csv")
def gaps_csv(
    request: Request,
    measure: str,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
    period_end: PeriodEnd = None,
) -> Response:
    run, _name, cms, rows = service.gap_list(request, scope, measure, period_end)
    center = scope.center or ""
    filename = f"care-gaps-{center}-{cms}-{run.period_end.isoformat()}.csv"
    return Response(
        gaps.gaps_csv(center, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/centers/{center}/previsit")
def previsit_form(
    request: Request, scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))]
) -> Response:
    return _render(request, "previsit.html", scope.user, center=scope.center, day=None, people=None, run=None)


@router.post("/centers/{center}/previsit", dependencies=[Depends(csrf_protect)])
def previsit_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
    day: Annotated[date, Form()],
) -> Response:
    run, people = service.previsit_list(request, scope, day)
    return _render(request, "previsit.html", scope.user, center=scope.center, day=day, people=people, run=run)


@router.get("/uds")
def uds_page(request: Request, user: Annotated[Principal, Depends(require_role())]) -> Response:
    """The UDS tables for patient-level roles; the UDS+ submissions section for network admins only."""
    packages = uds.udsplus_packages(request, user)
    return _render(request, "uds.html", user, status_info=uds.status(request, user), udsplus=packages)


@router.get("/uds/udsplus/{submission_id}.zip")
def udsplus_download(
    request: Request, submission_id: str, user: Annotated[Principal, Depends(require_role(*ADMIN_ROLES))]
) -> Response:
    """One exported UDS+ package as a zip (network admins only; never the re-link table or key)."""
    return uds.udsplus_zip(request, user, submission_id)


@router.get("/uds/tables.xlsx")
def uds_download(
    request: Request, user: Annotated[Principal, Depends(require_role(patient_level=True))]
) -> Response:
    """Unsuppressed UDS counts: patient-level roles only, a center-bound user gets their own center."""
    return uds.download(request, user)
