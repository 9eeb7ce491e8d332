"""Hospital partner data pages: the transitions-of-care list, follow-up rates and the review queue of
uncertain patient matches (issue 21; rules in ``chc_equity.vbp``).

* ``/centers/{center}/hospital``: the list staff work from (patient level: never for viewers or CHWs,
  whose patient rows follow the panel rule of the outreach pages), with the import's quarantine;
* ``/centers/{center}/hospital/rates``: follow-up rates by hospital or by an equity stratum, aggregates
  only, cells under 11 suppressed (complementary) for every role;
* ``/centers/{center}/hospital/review``: pending candidates; staff confirm or reject one (POST, CSRF,
  optimistic ``version``). Patient ids travel in forms, never in URLs (the access log writes paths).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from chc_equity.appdb.worklist import overlay
from chc_equity.equity.attributes import DIMENSIONS
from chc_equity.vbp import hospital
from chc_equity.vbp.transitions import WINDOWS, rates
from chc_equity.web import data
from chc_equity.web.roles import PATIENT_LEVEL_ROLES, Principal, Role
from chc_equity.web.security import CenterScope, csrf_protect, require_center_access

router = APIRouter(include_in_schema=False)

# Who decides a match: the center's staff and program managers, and the network admin.
REVIEW_WRITE_ROLES = frozenset({Role.NETWORK_ADMIN, Role.CENTER_STAFF, Role.PROGRAM_MANAGER})
STAFF = require_center_access(*PATIENT_LEVEL_ROLES, patient_level=True)
DECIDE = require_center_access(*REVIEW_WRITE_ROLES, patient_level=True)
AGGREGATES = require_center_access()
GROUPS = ("hospital", *DIMENSIONS)


def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token)
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def _known(con, center: str) -> None:
    if not data.center_exists(con, center):
        raise HTTPException(status_code=404, detail="No such center.")


@router.get("/centers/{center}/hospital")
def transitions_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(STAFF)],
    as_of: Annotated[date | None, Query()] = None,
) -> Response:
    """Discharged patients: contact due within 2 business days, visit within 7 / 14 days, CHW, phone."""
    center, day = scope.center, as_of or date.today()
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        _known(con, center)
        with request.app.state.db.read() as s:
            rows = hospital.transition_list(s, con, center, day, overlay(s, center))
            counts = hospital.match_counts(s, center)
            quarantined = hospital.quarantine(s, center, 50)
    return _render(request, "hospital.html", scope.user, center=center, as_of=day, rows=rows, counts=counts,
                   quarantined=quarantined, write=scope.user.role in REVIEW_WRITE_ROLES)  # fmt: skip


@router.get("/centers/{center}/hospital/rates")
def rates_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(AGGREGATES)],
    by: Annotated[str, Query(max_length=40)] = "hospital",
    as_of: Annotated[date | None, Query()] = None,
) -> Response:
    """Follow-up rates (contact in 2 business days, visit in 7 and 14 days) by hospital or stratum."""
    if by not in GROUPS:
        raise HTTPException(status_code=422, detail=f"by must be one of {', '.join(GROUPS)}")
    center, day = scope.center, as_of or date.today()
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        _known(con, center)
        groups = None if by == "hospital" else hospital.strata(con, center, by)
        with request.app.state.db.read() as s:
            rows = hospital.transition_list(s, con, center, day)
    table = {w: rates([r.transition for r in rows], groups, w) for w in WINDOWS}
    labels = sorted({r.label for rs in table.values() for r in rs})
    cells = {(w, r.label): r for w, rs in table.items() for r in rs}
    return _render(request, "hospital_rates.html", scope.user, center=center, as_of=day, by=by, groups=GROUPS,
                   labels=labels, windows=list(WINDOWS), cells=cells)  # fmt: skip


@router.get("/centers/{center}/hospital/review")
def review_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(STAFF)],
    message: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Uncertain matches: the hospital's demographics beside each candidate patient's."""
    center = scope.center
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        _known(con, center)
        with request.app.state.db.read() as s:
            items = hospital.review_queue(s, center)
        who = hospital.people(con, center, sorted({i.candidate_id for i in items}))
    return _render(request, "hospital_review.html", scope.user, center=center, items=items, who=who,
                   message=message, write=scope.user.role in REVIEW_WRITE_ROLES)  # fmt: skip


@router.post("/centers/{center}/hospital/review/{record_id}", dependencies=[Depends(csrf_protect)])
def decide_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(DECIDE)],
    record_id: int,
    decision: Annotated[str, Form(pattern="^(confirm|reject)$")],
    version: Annotated[int, Form(ge=1)],
) -> Response:
    """Confirm (the event becomes this patient's) or reject one candidate."""
    try:
        with request.app.state.db.write() as s:
            hospital.decide(s, scope.center, record_id, decision, scope.user.username, version)
    except hospital.ReviewError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    done = "confirmed" if decision == "confirm" else "rejected"
    return RedirectResponse(
        f"/centers/{scope.center}/hospital/review?message=Candidate+{done}.", status_code=303
    )
