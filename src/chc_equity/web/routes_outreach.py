"""CHW program routes: CHWs, assignments (panels), the "panel only" setting and outreach records.

JSON under ``/api/centers/{center}/...`` and minimal pages under ``/centers/{center}/...``; both go
through ``web/outreach.py``, so a page can never do what the matching API call would refuse. Patient
ids travel in request bodies, never in URLs (the access log writes paths).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chc_equity.appdb.outreach import CHANNELS, MAX_MINUTES, MAX_NOTE, OUTCOMES
from chc_equity.outreach import page as wlpage
from chc_equity.outreach import worklist as wl
from chc_equity.web import outreach
from chc_equity.web.roles import (
    OUTREACH_READ_ROLES,
    OUTREACH_WRITE_ROLES,
    PROGRAM_ROLES,
    Principal,
)
from chc_equity.web.security import CenterScope, csrf_protect, require_center_access

api = APIRouter(prefix="/api", tags=["chw program"])
pages = APIRouter(include_in_schema=False)

READ = require_center_access(*OUTREACH_READ_ROLES)
WRITE = require_center_access(*OUTREACH_WRITE_ROLES)
PROGRAM = require_center_access(*PROGRAM_ROLES)


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A rule of the CHW program refused the request (the detail says which)",
        "model": ErrorOut,
    },
    401: {"description": "Not signed in"},
    403: {"description": "Role or center not allowed"},
    404: {"description": "No such patient, CHW or record at this center (or outside your panel)"},
    409: {"description": "Idempotency key reused for another record, or a stale version"},
    503: {"description": "Warehouse missing or busy (ingest writing); retry with the same key"},
}

Channel = Literal[CHANNELS]  # type: ignore[valid-type]  (the lists live in appdb.outreach)
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChwIn(_Strict):
    display_name: str = Field(min_length=1, max_length=200)
    username: str | None = Field(default=None, max_length=64, description="A chw user of this center")


class ChwOut(BaseModel):
    id: str
    display_name: str
    username: str | None
    source: str = "app"
    active: bool = True
    patients: int = 0


class ChwList(BaseModel):
    center: str
    panel_only: bool
    chws: list[ChwOut]


class AssignIn(_Strict):
    chw_id: str = Field(max_length=64)
    patient_ids: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=5000)


class AssignOut(BaseModel):
    assigned: int


class SettingsIn(_Strict):
    panel_only: bool


class OutreachFieldsIn(_Strict):
    contact_date: date
    channel: Channel
    outcome: Outcome
    minutes: int = Field(ge=0, le=MAX_MINUTES)
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Non-clinical remark (optional)")
    chw_id: str | None = Field(default=None, max_length=64)


class OutreachIn(OutreachFieldsIn):
    patient_id: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(
        default=None, max_length=200, description="Retries with the same key return the first record"
    )


class OutreachEdit(OutreachFieldsIn):
    version: int = Field(ge=1, description="The version you are editing (409 if it changed meanwhile)")


class HistoryIn(_Strict):
    patient_id: str = Field(min_length=1, max_length=200)


class RevisionOut(BaseModel):
    version: int
    contact_date: str
    channel: str
    outcome: str
    minutes: int
    note: str | None
    changed_by: str
    changed_at: str


class OutreachOut(BaseModel):
    id: int
    patient_id: str
    chw_id: str | None
    contact_date: str
    channel: str
    outcome: str
    minutes: int
    note: str | None
    version: int
    source: str
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str
    revisions: list[RevisionOut] | None = None


# -- API ------------------------------------------------------------------------------------------------
@api.get("/centers/{center}/chws", responses=ERRORS)
def chws_api(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> ChwList:
    """The center's CHWs (with their caseload) and whether CHWs see only their own panel."""
    return ChwList.model_validate(outreach.list_chws(request, scope))


@api.post("/centers/{center}/chws", dependencies=[Depends(csrf_protect)], status_code=201, responses=ERRORS)
def add_chw_api(request: Request, body: ChwIn, scope: Annotated[CenterScope, Depends(PROGRAM)]) -> ChwOut:
    """A program manager adds a CHW (optionally linked to a chw user of the center)."""
    return ChwOut.model_validate(outreach.add_chw(request, scope, body.display_name, body.username))


@api.post("/centers/{center}/assignments", dependencies=[Depends(csrf_protect)], responses=ERRORS)
def assign_api(
    request: Request, body: AssignIn, scope: Annotated[CenterScope, Depends(PROGRAM)]
) -> AssignOut:
    """Assign one patient or a whole list to a CHW (replacing their earlier CHW)."""
    return AssignOut(assigned=outreach.assign(request, scope, body.chw_id, body.patient_ids))


@api.get("/centers/{center}/assignments", responses=ERRORS)
def assignments_api(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> dict[str, str]:
    """patient id -> CHW id (a CHW limited to a panel sees only their own patients)."""
    return outreach.assignments(request, scope)


@api.put("/centers/{center}/settings", dependencies=[Depends(csrf_protect)], responses=ERRORS)
def settings_api(
    request: Request, body: SettingsIn, scope: Annotated[CenterScope, Depends(PROGRAM)]
) -> SettingsIn:
    """Turn "panel only" on or off for the center's CHWs."""
    outreach.set_panel_only(request, scope, body.panel_only)
    return body


@api.post(
    "/centers/{center}/outreach",
    dependencies=[Depends(csrf_protect)],
    status_code=201,
    responses={
        **ERRORS,
        200: {"description": "A retry: the record created by the first request", "model": OutreachOut},
    },
)
def record_api(
    request: Request,
    body: OutreachIn,
    scope: Annotated[CenterScope, Depends(WRITE)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Record an outreach attempt. 201 when created; 200 with the same record when the idempotency key
    (body field or ``Idempotency-Key`` header) was already used by you for this patient."""
    row, created = outreach.record(request, scope, body, body.idempotency_key or idempotency_key)
    return JSONResponse(OutreachOut.model_validate(row).model_dump(), status_code=201 if created else 200)


@api.get("/centers/{center}/outreach", responses=ERRORS)
def recent_api(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> list[OutreachOut]:
    """The center's latest outreach records (a CHW limited to a panel: their patients only)."""
    return [OutreachOut.model_validate(r) for r in outreach.recent(request, scope)]


@api.post("/centers/{center}/outreach/history", dependencies=[Depends(csrf_protect)], responses=ERRORS)
def history_api(
    request: Request, body: HistoryIn, scope: Annotated[CenterScope, Depends(READ)]
) -> list[OutreachOut]:
    """One patient's outreach, newest first, each record with all its versions (POST: no id in the URL)."""
    return [OutreachOut.model_validate(r) for r in outreach.history(request, scope, body.patient_id)]


@api.put("/centers/{center}/outreach/{record_id}", dependencies=[Depends(csrf_protect)], responses=ERRORS)
def edit_api(
    request: Request, record_id: int, body: OutreachEdit, scope: Annotated[CenterScope, Depends(WRITE)]
) -> OutreachOut:
    """Edit a record: the previous version stays in its history."""
    return OutreachOut.model_validate(outreach.edit(request, scope, record_id, body))


# -- pages ----------------------------------------------------------------------------------------------
def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token, channels=CHANNELS, outcomes=OUTCOMES, status=status)
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def _program_page(
    request: Request, scope: CenterScope, message: str | None = None, status: int = 200
) -> Response:
    listing = outreach.list_chws(request, scope)
    manage = scope.user.role in PROGRAM_ROLES
    return _render(
        request,
        "chws.html",
        scope.user,
        status,
        center=scope.center,
        listing=listing,
        manage=manage,
        message=message,
    )


@pages.get("/centers/{center}/chws")
def chws_page(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    return _program_page(request, scope)


def _form_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


@pages.post("/centers/{center}/chws", dependencies=[Depends(csrf_protect)])
def add_chw_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(PROGRAM)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        body = ChwIn(display_name=display_name, username=username.strip() or None)
        outreach.add_chw(request, scope, body.display_name, body.username)
    except ValidationError as exc:
        return _program_page(request, scope, _form_errors(exc), status=422)
    except HTTPException as exc:
        return _program_page(request, scope, str(exc.detail), status=exc.status_code)
    return RedirectResponse(f"/centers/{scope.center}/chws", status_code=303)


@pages.post("/centers/{center}/assignments", dependencies=[Depends(csrf_protect)])
def assign_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(PROGRAM)],
    chw_id: Annotated[str, Form(max_length=64)] = "",
    patient_ids: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """Patient ids one per line or comma-separated (a pasted list, or a filtered worklist's ids)."""
    ids = [p.strip() for p in patient_ids.replace(",", "\n").splitlines() if p.strip()]
    try:
        body = AssignIn(chw_id=chw_id, patient_ids=ids)
        n = outreach.assign(request, scope, body.chw_id, body.patient_ids)
    except ValidationError as exc:
        return _program_page(request, scope, _form_errors(exc), status=422)
    except HTTPException as exc:
        return _program_page(request, scope, str(exc.detail), status=exc.status_code)
    return _program_page(request, scope, f"Assigned {n} patient(s).")


@pages.post("/centers/{center}/settings", dependencies=[Depends(csrf_protect)])
def settings_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(PROGRAM)],
    panel_only: Annotated[Literal["on", "off"], Form()],
) -> Response:
    outreach.set_panel_only(request, scope, panel_only == "on")
    return RedirectResponse(f"/centers/{scope.center}/chws", status_code=303)


def _outreach_page(
    request: Request,
    scope: CenterScope,
    *,
    patient_id: str | None = None,
    records: list[dict] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    return _render(
        request,
        "outreach.html",
        scope.user,
        status,
        center=scope.center,
        recent=outreach.recent(request, scope),
        patient_id=patient_id,
        records=records,
        message=message,
        key=secrets.token_urlsafe(16),
        today=date.today().isoformat(),
    )


@pages.get("/centers/{center}/outreach")
def outreach_page(request: Request, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    return _outreach_page(request, scope)


def _outreach_form(form: dict[str, str], model: type[BaseModel]) -> BaseModel:
    values: dict[str, Any] = {k: v for k, v in form.items() if k in model.model_fields and v != ""}
    return model.model_validate(values)


@pages.post("/centers/{center}/outreach", dependencies=[Depends(csrf_protect)])
async def record_page(request: Request, scope: Annotated[CenterScope, Depends(WRITE)]) -> Response:
    """The record form; its hidden idempotency key makes a double submit or a resubmit harmless."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        body = _outreach_form(form, OutreachIn)
    except ValidationError as exc:
        return _outreach_page(request, scope, message=_form_errors(exc), status=422)
    try:
        outreach.record(request, scope, body, body.idempotency_key)  # type: ignore[attr-defined]
    except HTTPException as exc:
        return _outreach_page(request, scope, message=str(exc.detail), status=exc.status_code)
    return _history_page(request, scope, body.patient_id, "Outreach recorded.")  # type: ignore[attr-defined]


def _history_page(
    request: Request, scope: CenterScope, patient_id: str, message: str | None = None
) -> Response:
    try:
        records = outreach.history(request, scope, patient_id)
    except HTTPException as exc:
        return _outreach_page(request, scope, message=str(exc.detail), status=exc.status_code)
    return _outreach_page(request, scope, patient_id=patient_id, records=records, message=message)


@pages.post("/centers/{center}/outreach/history", dependencies=[Depends(csrf_protect)])
def history_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(READ)],
    patient_id: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """A patient's outreach history with an edit form per record (POST: no patient id in the URL)."""
    if not patient_id.strip():
        return _outreach_page(request, scope, message="Enter a patient id.", status=422)
    return _history_page(request, scope, patient_id.strip())


@pages.post("/centers/{center}/outreach/{record_id}/edit", dependencies=[Depends(csrf_protect)])
async def edit_page(
    request: Request, record_id: int, scope: Annotated[CenterScope, Depends(WRITE)]
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        body = _outreach_form(form, OutreachEdit)
    except ValidationError as exc:
        return _outreach_page(request, scope, message=_form_errors(exc), status=422)
    try:
        row = outreach.edit(request, scope, record_id, body)
    except HTTPException as exc:
        return _outreach_page(request, scope, message=str(exc.detail), status=exc.status_code)
    return _history_page(request, scope, row["patient_id"], "Outreach record updated.")


# -- the worklist (page, exports, API) -----------------------------------------------------------------
ASSIGNED = {"yes": True, "no": False}
Text = Annotated[str | None, Query(max_length=200)]


@dataclass(frozen=True, slots=True)
class WorklistParams:
    """The worklist's query string, checked: filters, sort, page, "mine", the measure run."""

    filters: wl.Filters
    sort: str
    reverse: bool
    page: int
    mine: bool
    period_end: date | None
    given: dict[str, str]  # the non-empty parameters as sent (for page links)

    def query(self, limit: int | None = wlpage.PAGE_SIZE) -> wlpage.Query:
        offset = 0 if limit is None else (self.page - 1) * limit
        return wlpage.Query(self.filters, self.sort, self.reverse, offset, limit)


Band = Literal["", "high", "medium", "low"]
AssignedFilter = Literal["", "yes", "no", "mine"]
SortBy = Literal[("", *wl.SORTS)]  # type: ignore[valid-type]  (the sorts live in outreach.worklist)


def worklist_params(
    site: Text = None,
    language: Annotated[str | None, Query(max_length=35, description="BCP-47 code, e.g. es")] = None,
    measure: Annotated[str | None, Query(max_length=20, description="CMS id, e.g. CMS122")] = None,
    priority: Annotated[Band | None, Query(description="Priority band")] = None,
    assigned: Annotated[AssignedFilter | None, Query(description="With a CHW, without, or yours")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name or MRN contains")] = None,
    sort: Annotated[SortBy, Query(description="Sort (empty: priority)")] = "priority",
    reverse: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    period_end: Annotated[date | None, Query(description="Measure run; default: the latest")] = None,
) -> WorklistParams:
    """Empty values (an untouched select of the filter form) mean "no filter"."""
    raw = {"site": site, "language": language, "measure": measure, "priority": priority}
    raw |= {"assigned": assigned, "q": q, "sort": sort}
    given = {k: v.strip() for k, v in raw.items() if v and v.strip()}
    filters = wl.Filters(
        site=given.get("site"),
        language=given.get("language"),
        measure=given.get("measure"),
        priority=given.get("priority"),
        assigned=ASSIGNED.get(given.get("assigned", "")),
        search=given.get("q"),
    )
    if reverse:
        given["reverse"] = "true"
    if period_end is not None:
        given["period_end"] = period_end.isoformat()
    mine = given.get("assigned") == "mine"
    sort = given.pop("sort", "priority")
    if sort != "priority":
        given["sort"] = sort
    return WorklistParams(filters, sort, reverse, page, mine, period_end, given)


Params = Annotated[WorklistParams, Depends(worklist_params)]
NO_RUN = "No precomputed measure run yet: run `chc-equity measures run` and `chc-equity precompute`."


def _select(request: Request, scope: CenterScope, params: WorklistParams, limit: int | None):
    found = outreach.worklist(
        request, scope, params.query(limit), mine=params.mine, period_end=params.period_end
    )
    if found is None:
        raise HTTPException(status_code=404, detail=NO_RUN)
    return found


class OpenItemOut(BaseModel):
    kind: str
    code: str
    text: str
    last_value: str | None
    last_date: date | None


class WorklistRowOut(BaseModel):
    patient_id: str = Field(description="Internal key: send it (in a body) to record outreach")
    priority: float
    band: str
    name: str | None
    mrn: str | None
    age: int | None
    language: str | None
    interpreter: bool | None
    phone: str | None
    site: str | None
    next_visit: str | None
    last_visit: date | None
    assigned_chw: str | None
    last_outreach: date | None
    last_outcome: str | None
    social_risk: str | None
    items: list[OpenItemOut]


class WorklistOut(BaseModel):
    center: str
    period_start: date
    period_end: date
    as_of: date
    visible: int = Field(description="Patients on the list you may see (your panel, if limited)")
    matched: int = Field(description="Of those, the ones matching the filters")
    offset: int
    limit: int
    rows: list[WorklistRowOut]


def _row_out(r: wl.WorklistRow) -> WorklistRowOut:
    items = [
        OpenItemOut(kind=i.kind, code=i.code, text=i.text, last_value=i.last_value, last_date=i.last_date)
        for i in r.items
    ]
    fields = {k: getattr(r, k) for k in WorklistRowOut.model_fields if k != "items"}
    return WorklistRowOut(**fields, items=items)


@api.get("/centers/{center}/worklist", responses=ERRORS)
def worklist_api(
    request: Request, params: Params, scope: Annotated[CenterScope, Depends(READ)]
) -> WorklistOut:
    """One page (100 rows) of the center's CHW worklist: each patient once with every open item, the
    assigned CHW and last outreach from the app database, by priority. A CHW limited to a panel sees
    only their own patients; ``assigned=mine``: only the patients assigned to you."""
    prepared, sel = _select(request, scope, params, wlpage.PAGE_SIZE)
    return WorklistOut(
        center=scope.center or "",
        period_start=prepared.period[0],
        period_end=prepared.period[1],
        as_of=prepared.as_of,
        visible=sel.visible,
        matched=sel.matched,
        offset=sel.offset,
        limit=wlpage.PAGE_SIZE,
        rows=[_row_out(r) for r in sel.rows],
    )


@pages.get("/centers/{center}/worklist")
def worklist_page(request: Request, params: Params, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    prepared, sel = _select(request, scope, params, wlpage.PAGE_SIZE)
    base = f"/centers/{scope.center}/worklist"

    def link(path: str = base, **change: object) -> str:
        args = {**params.given, **{k: str(v) for k, v in change.items()}}
        return f"{path}?{urlencode(args)}" if args else path

    last_page = max(1, -(-sel.matched // wlpage.PAGE_SIZE))
    return _render(
        request,
        "worklist.html",
        scope.user,
        center=scope.center,
        prepared=prepared,
        sel=sel,
        given=params.given,
        options={
            "site": [(x, x) for x in prepared.sites],
            "language": [(x, x) for x in prepared.languages],
            "measure": [(x, x) for x in prepared.measures],
            "sort": [(x, x.replace("_", " ")) for x in wl.SORTS if x != "priority"],
        },
        page=params.page,
        last_page=last_page,
        prev_link=link(page=params.page - 1) if params.page > 1 else None,
        next_link=link(page=params.page + 1) if params.page < last_page else None,
        csv_link=link(base + ".csv"),
        xlsx_link=link(base + ".xlsx"),
        is_chw=scope.user.role.value == "chw",
    )


def _export_name(scope: CenterScope, prepared: wlpage.Prepared, suffix: str) -> str:
    return f"worklist-{scope.center}-{prepared.as_of.isoformat()}.{suffix}"


@pages.get("/centers/{center}/worklist.csv")
def worklist_csv(request: Request, params: Params, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    """The filtered, sorted list (every matching row, not one page), cells made safe (chc_equity.exports)."""
    prepared, sel = _select(request, scope, params, None)
    return Response(
        wl.worklist_csv(sel.rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(scope, prepared, "csv")}"'},
    )


@pages.get("/centers/{center}/worklist.xlsx")
def worklist_xlsx(request: Request, params: Params, scope: Annotated[CenterScope, Depends(READ)]) -> Response:
    prepared, sel = _select(request, scope, params, None)
    return Response(
        wl.worklist_xlsx(sel.rows),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(scope, prepared, "xlsx")}"'},
    )
