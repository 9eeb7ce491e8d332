"""Improvement pages: readiness assessments (network heat map, a center's history, one assessment with
its data entry form, Excel export) and improvement projects (list, project page with its charts and
PDSA log, forms). Records live in the app database (``appdb/improvement.py``); charts read the
published ``measure_series``.

Guards: reading is open to every role (a viewer gets aggregates only: ``web/improvement.detail``),
writing to center staff and program managers for their own center and to the network admin
(``IMPROVEMENT_WRITE_ROLES``); every record is looked up by ``(center, id)``, so a record id of another
center is a 404 even for a user who may see the center in the URL.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from chc_equity.appdb import improvement as records
from chc_equity.equity.attributes import DIMENSIONS
from chc_equity.improvement import rubric as rubrics
from chc_equity.improvement.workbook import assessment_workbook
from chc_equity.measures.registry import all_measures
from chc_equity.sdoh import series as sdoh_series
from chc_equity.web import improvement as svc
from chc_equity.web.roles import (
    IMPROVEMENT_DETAIL_ROLES,
    IMPROVEMENT_READ_ROLES,
    IMPROVEMENT_WRITE_ROLES,
    Principal,
)
from chc_equity.web.security import (
    CenterScope,
    csrf_protect,
    optional_center_access,
    require_center_access,
)

router = APIRouter(include_in_schema=False)
READ = require_center_access(*IMPROVEMENT_READ_ROLES)
DETAIL = require_center_access(*IMPROVEMENT_DETAIL_ROLES)
WRITE = require_center_access(*IMPROVEMENT_WRITE_ROLES)
ANY = optional_center_access(*IMPROVEMENT_READ_ROLES)


class FormError(ValueError):
    """A form field that cannot be used (the message names it)."""


def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token, detail=svc.detail(user))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    return {k: v.strip() for k, v in (await request.form()).items() if isinstance(v, str)}


def _date(form: dict[str, str], name: str, required: bool = False) -> date | None:
    value = form.get(name, "")
    if not value:
        if required:
            raise FormError(f"{name}: required (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError(f"{name}: a date YYYY-MM-DD") from None


def _int(form: dict[str, str], name: str) -> int:
    try:
        return int(form.get(name, ""))
    except ValueError:
        raise FormError(f"{name}: a whole number") from None


def _rate(form: dict[str, str], name: str) -> float | None:
    """A rate typed as a percentage (``12.5`` or ``12.5%`` -> 0.125)."""
    value = form.get(name, "").rstrip("%").strip()
    if not value:
        return None
    try:
        x = float(value)
    except ValueError:
        raise FormError(f"{name}: a percentage, e.g. 25") from None
    return x / 100


# -- assessments ------------------------------------------------------------------------------------
@router.get("/assessments")
def assessments_network(request: Request, scope: Annotated[CenterScope, Depends(ANY)]) -> Response:
    """The network heat map (centers x domains, latest assessment) and the network mean per domain."""
    heat = svc.heat_map(request, scope.user, scope.center)
    return _render(request, "improvement_assessments.html", scope.user, heat=heat, center=scope.center)


def _center_assessments(
    request: Request, scope: CenterScope, message: str | None = None, status: int = 200
) -> Response:
    center = scope.center or ""
    rubric = rubrics.default()
    items = svc.history(request, center)
    latest = items[-1] if items else None
    radar = svc.radar_spec(rubric, latest.score) if latest else None
    return _render(
        request,
        "improvement_center.html",
        scope.user,
        status,
        center=center,
        rubric=rubric,
        history=items,
        radar=radar,
        write=svc.may_write(scope.user, center),
        message=message,
        today=date.today().isoformat(),
    )


@router.get("/centers/{center}/assessments")
def center_assessments(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    return _center_assessments(request, scope)


def _rater_responses(form: dict[str, str], rubric: rubrics.Rubric) -> tuple[str, list[records.ResponseIn]]:
    rater = form.get("rater", "")
    if not rater:
        raise FormError("rater: required (the name of the person rating)")
    out = []
    for item in rubric.items.values():
        level = form.get(f"level:{item.id}", "")
        if not level:
            continue
        try:
            value = int(level)
        except ValueError:
            raise FormError(f"level of {item.id}: a whole number") from None
        out.append(
            records.ResponseIn(
                item.id,
                rater,
                value,
                form.get(f"evidence:{item.id}") or None,
                form.get(f"note:{item.id}") or None,
            )
        )
    if not out:
        raise FormError("levels: rate at least one item")
    return rater, out


@router.post("/centers/{center}/assessments", dependencies=[Depends(csrf_protect)])
async def create_assessment(request: Request, scope: Annotated[CenterScope, Depends(WRITE)]) -> Response:
    """A new assessment with one rater's responses (more raters add theirs on the assessment's page)."""
    form = await _form(request)
    center = scope.center or ""
    try:
        assessed_on = _date(form, "assessed_on", required=True)
        rubric = rubrics.default()
        _rater, responses = _rater_responses(form, rubric)
        fields = records.AssessmentFields(assessed_on, responses, form.get("note"), rubric.id, rubric.version)  # type: ignore[arg-type]
        fields.checked()
    except ValueError as exc:
        return _center_assessments(request, scope, str(exc), status=422)
    svc.check_center(request, center)
    with svc.appdb(request).write() as s:
        row = records.create_assessment(s, center, fields, scope.user.username)
    return RedirectResponse(f"/centers/{center}/assessments/{row.id}", status_code=303)


def _assessment_page(
    request: Request, scope: CenterScope, assessment_id: int, message: str | None = None, status: int = 200
) -> Response:
    center = scope.center or ""
    sa, responses = svc.assessment_or_404(request, center, assessment_id)
    rubric = rubrics.get(sa.row.rubric_id, sa.row.rubric_version)
    show = svc.detail(scope.user)
    by_item: dict[str, list] = {}
    for r in responses if show else []:
        by_item.setdefault(r.item_id, []).append(r)
    return _render(
        request,
        "improvement_assessment.html",
        scope.user,
        status,
        center=center,
        a=sa.row,
        result=sa.score,
        change=sa.change,
        rubric=rubric,
        by_item=by_item,
        raters=sa.score.raters if show else (),
        radar=svc.radar_spec(rubric, sa.score),
        write=svc.may_write(scope.user, center),
        message=message,
    )


@router.get("/centers/{center}/assessments/{assessment_id}.xlsx")
def assessment_xlsx(
    request: Request, assessment_id: int, scope: Annotated[CenterScope, Depends(DETAIL)]
) -> Response:
    """The full assessment (scores, change, every response with its evidence and note) as Excel."""
    center = scope.center or ""
    sa, responses = svc.assessment_or_404(request, center, assessment_id)
    rubric = rubrics.get(sa.row.rubric_id, sa.row.rubric_version)
    body = assessment_workbook(rubric, center, sa.row.assessed_on, sa.score, sa.change, responses)
    name = f"assessment-{center}-{sa.row.assessed_on.isoformat()}.xlsx"
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/centers/{center}/assessments/{assessment_id}")  # after .xlsx: the path matches both
def assessment_page(
    request: Request, assessment_id: int, scope: Annotated[CenterScope, Depends(READ)]
) -> Response:
    return _assessment_page(request, scope, assessment_id)


@router.post("/centers/{center}/assessments/{assessment_id}", dependencies=[Depends(csrf_protect)])
async def edit_assessment(
    request: Request, assessment_id: int, scope: Annotated[CenterScope, Depends(WRITE)]
) -> Response:
    """Add (or replace) one rater's responses, and the date and note; the version must be current."""
    form = await _form(request)
    center = scope.center or ""
    try:
        version = _int(form, "version")
        assessed_on = _date(form, "assessed_on", required=True)
        with svc.appdb(request).write() as s:
            row = records.get_assessment(s, center, assessment_id)
            if row is None:
                raise HTTPException(status_code=404, detail=svc.NO_ASSESSMENT)
            rubric = rubrics.get(row.rubric_id, row.rubric_version)
            rater, mine = _rater_responses(form, rubric)
            others = [
                records.ResponseIn(r.item_id, r.rater, r.level, r.evidence_url, r.note)
                for r in records.responses_of(s, row.id)
                if r.rater != rater
            ]
            fields = records.AssessmentFields(assessed_on, [*others, *mine], form.get("note"))  # type: ignore[arg-type]
            records.edit_assessment(s, center, assessment_id, version, fields, scope.user.username)
    except records.Stale as exc:
        return _assessment_page(request, scope, assessment_id, f"{exc}: reload and try again.", 409)
    except ValueError as exc:
        return _assessment_page(request, scope, assessment_id, str(exc), 422)
    return RedirectResponse(f"/centers/{center}/assessments/{assessment_id}", status_code=303)


# -- projects -------------------------------------------------------------------------------------------
def _measure_links(form: dict[str, str]) -> list[records.MeasureLink]:
    links = []
    for role in records.MEASURE_ROLES:
        cms = form.get(f"{role}_measure", "")
        if cms:
            links.append(
                records.MeasureLink(
                    role, cms, form.get(f"{role}_dimension") or None, form.get(f"{role}_stratum") or None
                )
            )
    return links


def _project_fields(form: dict[str, str]) -> records.ProjectFields:
    items = form.get("rubric_items", "").replace(",", " ").split()
    fields = records.ProjectFields(
        title=form.get("title", ""),
        aim=form.get("aim", ""),
        measures=_measure_links(form),
        baseline=_rate(form, "baseline"),
        target=_rate(form, "target"),
        target_date=_date(form, "target_date"),
        baseline_end=_date(form, "baseline_end"),
        series_kind=form.get("series_kind") or "rolling12",
        team=form.get("team"),
        rubric_items=items,
        status=form.get("status") or "planning",
    )
    return fields.checked()


def _form_options() -> dict[str, Any]:
    return {
        "measures": [
            *sorted((m.measure.cms_id, m.measure.title) for m in all_measures()),
            *sdoh_series.link_options(),
        ],
        "dimensions": [(k, v) for k, v in DIMENSIONS.items() if k != "center"],
        "statuses": records.STATUSES,
        "kinds": records.SERIES_KINDS,
        "roles": records.MEASURE_ROLES,
        "decisions": records.DECISIONS,
        "rubric_items": list(rubrics.default().items.values()),
    }


def _projects_page(
    request: Request, scope: CenterScope, message: str | None = None, status: int = 200
) -> Response:
    center = scope.center
    return _render(
        request,
        "improvement_projects.html",
        scope.user,
        status,
        center=center,
        projects=svc.projects(request, center),
        write=svc.may_write(scope.user, center),
        message=message,
        options=_form_options(),
    )


@router.get("/projects")
def projects_network(request: Request, scope: Annotated[CenterScope, Depends(ANY)]) -> Response:
    """Every project the user may see (a center-bound user: their center's)."""
    return _projects_page(request, scope)


@router.get("/centers/{center}/projects")
def center_projects(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    return _projects_page(request, scope)


@router.post("/centers/{center}/projects", dependencies=[Depends(csrf_protect)])
async def create_project(request: Request, scope: Annotated[CenterScope, Depends(WRITE)]) -> Response:
    form = await _form(request)
    center = scope.center or ""
    try:
        fields = _project_fields(form)
    except ValueError as exc:
        return _projects_page(request, scope, str(exc), status=422)
    svc.check_center(request, center)
    with svc.appdb(request).write() as s:
        row = records.create_project(s, center, fields, scope.user.username)
    return RedirectResponse(f"/centers/{center}/projects/{row.id}", status_code=303)


def _project_page(
    request: Request,
    scope: CenterScope,
    project_id: int,
    chart: str = "run",
    message: str | None = None,
    status: int = 200,
) -> Response:
    center = scope.center or ""
    view = svc.project_view(request, center, project_id, chart)
    return _render(
        request,
        "improvement_project.html",
        scope.user,
        status,
        center=center,
        view=view,
        p=view.row,
        chart_kind=chart,
        write=svc.may_write(scope.user, center),
        message=message,
        options=_form_options(),
        today=date.today().isoformat(),
    )


@router.get("/centers/{center}/projects/{project_id}")
def project_page(
    request: Request,
    project_id: int,
    scope: Annotated[CenterScope, Depends(READ)],
    chart: Annotated[Literal["run", "p"], Query(description="run chart or p-chart")] = "run",
) -> Response:
    return _project_page(request, scope, project_id, chart)


def _write_project(request: Request, scope: CenterScope, project_id: int, action) -> Response:
    center = scope.center or ""
    try:
        with svc.appdb(request).write() as s:
            project = records.get_project(s, center, project_id)
            if project is None:
                raise HTTPException(status_code=404, detail=svc.NO_PROJECT)
            if action(s, project) is None:
                raise HTTPException(status_code=404, detail="No such PDSA cycle in this project.")
    except records.Stale as exc:
        return _project_page(request, scope, project_id, message=f"{exc}: reload and try again.", status=409)
    except ValueError as exc:
        return _project_page(request, scope, project_id, message=str(exc), status=422)
    return RedirectResponse(f"/centers/{center}/projects/{project_id}", status_code=303)


@router.post("/centers/{center}/projects/{project_id}", dependencies=[Depends(csrf_protect)])
async def edit_project(
    request: Request, project_id: int, scope: Annotated[CenterScope, Depends(WRITE)]
) -> Response:
    form = await _form(request)
    try:
        version, fields = _int(form, "version"), _project_fields(form)
    except ValueError as exc:
        return _project_page(request, scope, project_id, message=str(exc), status=422)
    user = scope.user.username
    return _write_project(
        request,
        scope,
        project_id,
        lambda s, p: records.edit_project(s, p.center, p.id, version, fields, user),
    )


def _cycle_fields(form: dict[str, str]) -> records.CycleFields:
    started = _date(form, "started_on", required=True)
    fields = records.CycleFields(
        change_idea=form.get("change_idea", ""),
        started_on=started,  # type: ignore[arg-type]
        ended_on=_date(form, "ended_on"),
        plan=form.get("plan"),
        prediction=form.get("prediction"),
        do=form.get("do"),
        study=form.get("study"),
        act=form.get("act"),
        decision=form.get("decision") or None,
        new_phase=form.get("new_phase") == "on",
    )
    return fields.checked()


@router.post("/centers/{center}/projects/{project_id}/cycles", dependencies=[Depends(csrf_protect)])
async def add_cycle(
    request: Request, project_id: int, scope: Annotated[CenterScope, Depends(WRITE)]
) -> Response:
    form = await _form(request)
    try:
        fields = _cycle_fields(form)
    except ValueError as exc:
        return _project_page(request, scope, project_id, message=str(exc), status=422)
    user = scope.user.username
    return _write_project(request, scope, project_id, lambda s, p: records.add_cycle(s, p, fields, user))


@router.post(
    "/centers/{center}/projects/{project_id}/cycles/{cycle_id}", dependencies=[Depends(csrf_protect)]
)
async def edit_cycle(
    request: Request, project_id: int, cycle_id: int, scope: Annotated[CenterScope, Depends(WRITE)]
) -> Response:
    form = await _form(request)
    try:
        version, fields = _int(form, "version"), _cycle_fields(form)
    except ValueError as exc:
        return _project_page(request, scope, project_id, message=str(exc), status=422)
    user = scope.user.username
    return _write_project(
        request, scope, project_id, lambda s, p: records.edit_cycle(s, p, cycle_id, version, fields, user)
    )
