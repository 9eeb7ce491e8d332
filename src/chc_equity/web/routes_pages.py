"""Server-rendered pages. Each handler gathers data through the same functions as the API, so a page can
never show what the matching API call would refuse."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from chc_equity.web import data, matrix, plainwords, service
from chc_equity.web.authstore import AuthStore
from chc_equity.web.roles import ADMIN_ROLES, OUTREACH_READ_ROLES, PATIENT_LEVEL_ROLES, Principal, Role
from chc_equity.web.routes_api import DemographicField, center_summaries, data_quality
from chc_equity.web.security import (
    CenterScope,
    auth_store,
    csrf_protect,
    optional_center_access,
    require_center_access,
    require_role,
)

router = APIRouter(include_in_schema=False)


def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(
        user=user,
        csrf_token=user.csrf_token,
        patient_level=user.role in PATIENT_LEVEL_ROLES,
        unit=plainwords.unit_of,
    )
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


Family = Annotated[str | None, Query(max_length=20, description="uds, adult, pediatric or behavioral")]
Sort = Annotated[str, Query(max_length=40, description="center, worse, or a measure column (e.g. CMS165)")]
SortOrder = Annotated[Literal["asc", "desc"], Query()]


def _matrix(request: Request, view: service.Overview, family: str | None, sort: str, order: str):
    from chc_equity.network.benchmarks import load_targets

    targets = load_targets(request.app.state.config.targets_file)
    return matrix.build(view.cells, targets, family=family, sort=sort, order=order)  # type: ignore[arg-type]


@router.get("/")
def overview(
    request: Request,
    user: Annotated[Principal, Depends(require_role())],
    period_end: Annotated[date | None, Query()] = None,
    family: Family = None,
    sort: Sort = matrix.SORT_CENTER,
    order: SortOrder = "asc",
) -> Response:
    """Network overview: centers (rows) x measure groups (columns), each cell against the network, the
    network's target and the national average; sortable, filterable by measure family."""
    with service.warehouse(request) as con:  # one read-only open per request
        view = service.overview(request, user, period_end, con)
        centers = center_summaries(request, user, con)
    grid = _matrix(request, view, family, sort, order)
    query = f"period_end={view.run.period_end.isoformat()}&" if view.run and period_end else ""
    return _render(request, "overview.html", user, centers=centers, view=view, matrix=grid, query=query)


def _export_name(view: service.Overview, family: str | None, ext: str) -> str:
    period = view.run.period_end.isoformat() if view.run else "none"
    return f"overview-{family or 'all'}-{period}.{ext}"


@router.get("/overview.csv")
def overview_csv(
    request: Request,
    user: Annotated[Principal, Depends(require_role())],
    period_end: Annotated[date | None, Query()] = None,
    family: Family = None,
    sort: Sort = matrix.SORT_CENTER,
    order: SortOrder = "asc",
) -> Response:
    """The overview matrix as CSV: one row per center x measure group, suppressed as on the page."""
    view = service.overview(request, user, period_end)
    grid = _matrix(request, view, family, sort, order)
    return Response(
        matrix.csv_bytes(grid),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(view, grid.family, "csv")}"'},
    )


@router.get("/overview.xlsx")
def overview_xlsx(
    request: Request,
    user: Annotated[Principal, Depends(require_role())],
    period_end: Annotated[date | None, Query()] = None,
    family: Family = None,
    sort: Sort = matrix.SORT_CENTER,
    order: SortOrder = "asc",
) -> Response:
    """The overview matrix as Excel (a centers x measures sheet and the long table), suppressed."""
    view = service.overview(request, user, period_end)
    grid = _matrix(request, view, family, sort, order)
    return Response(
        matrix.xlsx_bytes(grid, view.run.label if view.run else ""),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(view, grid.family, "xlsx")}"'},
    )


def _center_page(request: Request, scope: CenterScope, **extra) -> Response:
    center = scope.center or ""
    summaries = center_summaries(request, scope.user)
    summary = next((s for s in summaries if s.center == center), None)
    if summary is None:
        raise HTTPException(status_code=404, detail="No such center.")
    quality = data_quality(request, scope)
    fields = list(data.DEMOGRAPHIC_FIELDS)
    run, cells = service.center_cells(request, scope)
    network = {c.key: c for c in cells if c.is_network}
    mine = [c for c in cells if not c.is_network]
    return _render(
        request,
        "center.html",
        scope.user,
        center=summary,
        quality=quality,
        fields=fields,
        run=run,
        measures=mine,
        network=network,
        **extra,
    )


@router.get("/centers/{center}")
def center_page(
    request: Request, scope: Annotated[CenterScope, Depends(require_center_access())]
) -> Response:
    return _center_page(request, scope)


@router.post("/centers/{center}/missing-demographics", dependencies=[Depends(csrf_protect)])
def center_missing(
    request: Request,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
    field: Annotated[DemographicField, Form()],
) -> Response:
    """Patient-level list on the center page; POST so that nothing identifying is in the URL."""
    with service.warehouse(request) as con:
        ids = data.patients_missing(con, scope.center or "", field)
    return _center_page(request, scope, missing_field=field, missing_ids=ids)


@router.get("/data-quality")
def data_quality_page(
    request: Request, scope: Annotated[CenterScope, Depends(optional_center_access())]
) -> Response:
    return _render(request, "data_quality.html", scope.user, quality=data_quality(request, scope))


@router.get("/social-needs")
def social_needs_page(
    request: Request, scope: Annotated[CenterScope, Depends(optional_center_access())]
) -> Response:
    """Social-needs funnels and flagged equity strata (aggregates; suppressed for viewers)."""
    from chc_equity.web import sdoh

    with service.warehouse(request) as con:
        if scope.center is not None and not scope.user.center and not data.center_exists(con, scope.center):
            raise HTTPException(status_code=404, detail="No such center.")
        view = sdoh.load(con, scope.center, suppressed=scope.user.suppressed)
    staff = scope.user.role in OUTREACH_READ_ROLES
    return _render(request, "sdoh.html", scope.user, view=view, center=scope.center, staff_lists=staff)


# Staff lists: the outreach routes' roles (never a viewer); a CHW limited to a panel sees their patients.
SDOH_LISTS = require_center_access(*OUTREACH_READ_ROLES)
SdohList = Literal["positive-not-referred", "referred-not-closed"]


def _sdoh_list(request: Request, scope: CenterScope, key: str) -> list[dict] | None:
    from chc_equity.sdoh import lists
    from chc_equity.web import outreach

    center = scope.center or ""
    with outreach.appdb(request).read() as s:
        allowed = outreach.panel(s, scope.user, center)
    with service.warehouse(request) as con:
        if not lists.available(con):
            return None
        return lists.rows(con, key, center, allowed)


@router.get("/centers/{center}/social-needs/lists")
def social_needs_lists_page(
    request: Request,
    scope: Annotated[CenterScope, Depends(SDOH_LISTS)],
    list_: Annotated[SdohList, Query(alias="list")] = "positive-not-referred",
) -> Response:
    """A center's "screened positive but not referred" / "referred but not closed" list (patient rows)."""
    from chc_equity.sdoh.lists import LISTS

    found = _sdoh_list(request, scope, list_)
    return _render(
        request, "sdoh_lists.html", scope.user, center=scope.center, spec=LISTS[list_], lists=LISTS,
        rows=found, available=found is not None,
    )  # fmt: skip


@router.get("/centers/{center}/social-needs/lists.csv")
def social_needs_lists_csv(
    request: Request,
    scope: Annotated[CenterScope, Depends(SDOH_LISTS)],
    list_: Annotated[SdohList, Query(alias="list")] = "positive-not-referred",
) -> Response:
    """The same list as CSV (cells made safe by chc_equity.exports)."""
    from chc_equity.sdoh.lists import to_csv

    found = _sdoh_list(request, scope, list_)
    if found is None:
        raise HTTPException(status_code=404, detail="Not computed yet: run chc-equity sdoh.")
    return Response(
        to_csv(list_, found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="sdoh-{list_}-{scope.center}.csv"'},
    )


# -- pull status (network admin and analyst) ---------------------------------------------------------
PULL_STATUS_ROLES = (Role.NETWORK_ADMIN, Role.NETWORK_ANALYST)


@router.get("/admin/pulls")
def pulls_page(
    request: Request, user: Annotated[Principal, Depends(require_role(*PULL_STATUS_ROLES))]
) -> Response:
    """Last pull and last load per center (`chc-equity pull` / `ingest`): when, how long, counts, errors."""
    from chc_equity.pull.state import status_rows

    with service.warehouse(request) as con:
        rows = status_rows(con)
    return _render(request, "pulls.html", user, rows=rows)


# -- users admin (network admin only) -----------------------------------------------------------------
def _users_page(request: Request, user: Principal, message: str | None = None, status: int = 200) -> Response:
    store: AuthStore = request.app.state.auth
    return _render(
        request, "users.html", user, status, users=store.list_users(), roles=list(Role), message=message
    )


@router.get("/admin/users")
def users_page(request: Request, user: Annotated[Principal, Depends(require_role(*ADMIN_ROLES))]) -> Response:
    return _users_page(request, user)


@router.post("/admin/users", dependencies=[Depends(csrf_protect)])
def add_user(
    request: Request,
    user: Annotated[Principal, Depends(require_role(*ADMIN_ROLES))],
    store: Annotated[AuthStore, Depends(auth_store)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[Role, Form()],
    center: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        store.add_user(username, password, role, center.strip() or None)
    except ValueError as exc:
        return _users_page(request, user, str(exc), status=400)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{username}/delete", dependencies=[Depends(csrf_protect)])
def delete_user(
    request: Request,
    username: str,
    user: Annotated[Principal, Depends(require_role(*ADMIN_ROLES))],
    store: Annotated[AuthStore, Depends(auth_store)],
) -> Response:
    if username == user.username:
        return _users_page(request, user, "You cannot delete your own account.", status=400)
    if not store.delete_user(username):
        raise HTTPException(status_code=404, detail="No such user.")
    return RedirectResponse("/admin/users", status_code=303)
