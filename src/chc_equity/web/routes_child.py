"""Child health pages (docs/child.md): the pediatric view for every analytics role (aggregates, suppressed
for viewers), its Excel sheet, and the patient-level lists -- pediatric care gaps with the parent or
guardian's contact, open referrals by age -- only for roles allowed to see that center's patients
(``PATIENT_LEVEL_ROLES``: never a viewer, never another center's staff).

Every handler reads the published snapshot through :mod:`chc_equity.child.view` / ``lists``, the same
functions the CLI uses.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from chc_equity.web import data, service
from chc_equity.web.roles import PATIENT_LEVEL_ROLES, Principal
from chc_equity.web.security import CenterScope, optional_center_access, require_center_access

router = APIRouter(include_in_schema=False)
STAFF_LISTS = require_center_access(*PATIENT_LEVEL_ROLES, patient_level=True)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _render(request: Request, template: str, user: Principal, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token, patient_level=user.role in PATIENT_LEVEL_ROLES)
    return request.app.state.templates.TemplateResponse(request, template, context)


def _view(request: Request, scope: CenterScope):
    from chc_equity.child import view

    with service.warehouse(request) as con:
        if scope.center is not None and not scope.user.center and not data.center_exists(con, scope.center):
            raise HTTPException(status_code=404, detail="No such center.")
        return view.load(con, scope.center, suppressed=scope.user.suppressed)


@router.get("/children")
def children_page(
    request: Request, scope: Annotated[CenterScope, Depends(optional_center_access())]
) -> Response:
    """Pediatric measures by center and age band, referral loops, BH follow-up, flagged strata."""
    v = _view(request, scope)
    staff = scope.user.role in PATIENT_LEVEL_ROLES
    return _render(request, "child.html", scope.user, view=v, center=scope.center, staff_lists=staff)


@router.get("/children/pediatric.xlsx")
def children_workbook(
    request: Request, scope: Annotated[CenterScope, Depends(optional_center_access())]
) -> Response:
    """The same page as one Excel workbook (suppressed for viewers)."""
    from chc_equity.child import view

    v = _view(request, scope)
    if not v.available:
        raise HTTPException(status_code=404, detail="Not computed yet: run chc-equity child.")
    name = f"pediatric-{scope.center or 'network'}.xlsx"
    return Response(
        view.workbook(v), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


ChildList = Literal["gaps", "open-referrals"]


@router.get("/centers/{center}/children/lists")
def children_lists_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(STAFF_LISTS)],
    list_: Annotated[ChildList, Query(alias="list")] = "gaps",
    min_days: Annotated[int, Query(ge=0, le=3660)] = 30,
) -> Response:
    """A center's pediatric care gaps (with guardian contact and languages) or open referrals."""
    from chc_equity.child import lists

    with service.warehouse(request) as con:
        if list_ == "gaps":
            rows, columns = lists.gap_rows(con, scope.center or ""), lists.GAP_COLUMNS
        else:
            rows, columns = lists.open_referral_rows(con, scope.center or "", min_days), lists.OPEN_COLUMNS
    return _render(
        request, "child_lists.html", scope.user, center=scope.center, list_=list_, rows=rows,
        columns=columns, available=rows is not None, min_days=min_days,
    )  # fmt: skip
