"""CHW program routes: CHWs, assignments (panels), the "panel only" setting and outreach records.

JSON under ``/api/centers/{center}/...`` and minimal pages under ``/centers/{center}/...``; both go
through ``web/outreach.py``, so a page can never do what the matching API call would refuse. Patient
ids travel in request bodies, never in URLs (the access log writes paths).
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chc_equity.appdb.outreach import CHANNELS, MAX_MINUTES, MAX_NOTE, OUTCOMES
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
