"""The JSON API under /api. Every route but /api/health needs a session (401 otherwise).

Center-scoped routes take the center through :func:`require_center_access`/:func:`optional_center_access`
and filter in SQL by the scope those guards return. Patient-level answers are POST-only (the request
names no patient, and nothing identifying ever goes into a URL or a log line).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from chc_equity.web import data, gaps, service
from chc_equity.web.privacy import suppress_center, suppress_rate
from chc_equity.web.roles import ALL_ROLES, Principal, Role
from chc_equity.web.security import (
    CenterScope,
    csrf_protect,
    optional_center_access,
    public,
    require_center_access,
    require_role,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role or center not allowed"},
    503: {"description": "Warehouse missing or busy (ingest writing); retry"},
}

router = APIRouter(prefix="/api", tags=["api"])

DemographicField = Literal["birth_sex", "race", "ethnicity", "language", "postal_code"]


class Health(BaseModel):
    status: Literal["ok"]
    warehouse: bool = Field(description="Whether the warehouse file exists yet")


class Me(BaseModel):
    username: str
    role: Role
    center: str | None
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on POST requests")


class CenterOut(BaseModel):
    center: str
    loads: int
    last_load: str | None
    last_status: str | None
    resources: int | None = Field(description="Resources in the warehouse; null when suppressed")
    by_type: dict[str, int | None]
    hidden: dict[str, str] = Field(
        default_factory=dict,
        description='Why a null count is hidden: "small" (1-10) or "complementary" (protects another cell)',
    )


class LoadOut(BaseModel):
    load_id: int
    center: str
    started_at: str | None
    duration_s: float | None
    files: int
    resources_read: int | None
    inserted: int | None
    updated: int | None
    unchanged: int | None
    quarantined: int | None
    status: str


class RejectGroupOut(BaseModel):
    center: str | None
    source_file: str | None
    resource_type: str | None
    reason: str
    field: str | None
    count: int


class UnknownRateOut(BaseModel):
    center: str
    field: str
    patients: int | None = Field(description="Patients of the center; null when suppressed")
    unknown: int | None = Field(description="Patients with an unknown value; null when suppressed")
    rate: float | None
    hidden: dict[str, str] = Field(
        default_factory=dict,
        description='Why a null count is hidden: "small" (1-10) or "complementary" (protects another cell)',
    )


class DemographicsOut(BaseModel):
    available: bool
    message: str | None
    rates: list[UnknownRateOut]


class DataQualityOut(BaseModel):
    center: str | None = Field(description="The center shown, or null for every center you may see")
    suppressed: bool = Field(description="True when small counts are suppressed (viewer role)")
    loads: list[LoadOut]
    rejects: list[RejectGroupOut]
    demographics: DemographicsOut


class MissingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: DemographicField


class MissingOut(BaseModel):
    center: str
    field: DemographicField
    patient_ids: list[str]
    truncated: bool


def _warehouse(request: Request):
    return data.open_warehouse(request.app.state.config.warehouse, request.state)


def data_quality(request: Request, scope: CenterScope) -> DataQualityOut:
    """Loads, rejects (counts only) and unknown demographic rates for the user's scope."""
    with _warehouse(request) as con:
        if scope.center is not None and not scope.user.center and not data.center_exists(con, scope.center):
            raise HTTPException(status_code=404, detail="No such center.")
        loads = data.loads(con, scope.center)
        rejects = data.reject_groups(con, scope.center)
        demo = data.demographics(con, scope.center)
    rates = [suppress_rate(r) for r in demo.rates] if scope.user.suppressed else demo.rates
    return DataQualityOut(
        center=scope.center,
        suppressed=scope.user.suppressed,
        loads=[LoadOut(**asdict(x)) for x in loads],
        rejects=[RejectGroupOut(**asdict(x)) for x in rejects],
        demographics=DemographicsOut(
            available=demo.available,
            message=demo.message,
            rates=[UnknownRateOut(**asdict(r), rate=r.rate) for r in rates],
        ),
    )


def center_summaries(request: Request, user: Principal, con=None) -> list[CenterOut]:
    """Centers the user may see; pass ``con`` to reuse the request's warehouse connection."""
    if con is None:
        with _warehouse(request) as own:
            return center_summaries(request, user, own)
    summaries = data.centers(con, user.center)
    if user.suppressed:
        summaries = [suppress_center(s) for s in summaries]
    return [CenterOut(**asdict(s)) for s in summaries]


@router.get("/health", dependencies=[Depends(public)])
def health(request: Request) -> Health:
    """Liveness, without login (for load balancers); says only whether a warehouse file exists."""
    return Health(status="ok", warehouse=request.app.state.config.warehouse.exists())


@router.get("/me", responses=ERRORS)
def me(user: Annotated[Principal, Depends(require_role(*ALL_ROLES))]) -> Me:
    return Me(username=user.username, role=user.role, center=user.center, csrf_token=user.csrf_token)


@router.get("/centers", responses=ERRORS)
def centers(request: Request, user: Annotated[Principal, Depends(require_role())]) -> list[CenterOut]:
    """Centers you may see, from the loads log, with resource counts (suppressed for viewers)."""
    return center_summaries(request, user)


@router.get("/centers/{center}/loads", responses={**ERRORS, 404: {"description": "No such center"}})
def center_loads(
    request: Request, scope: Annotated[CenterScope, Depends(require_center_access())]
) -> list[LoadOut]:
    with _warehouse(request) as con:
        if not data.center_exists(con, scope.center or ""):
            raise HTTPException(status_code=404, detail="No such center.")
        return [LoadOut(**asdict(x)) for x in data.loads(con, scope.center)]


@router.get("/data-quality", responses={**ERRORS, 404: {"description": "No such center"}})
def data_quality_api(
    request: Request, scope: Annotated[CenterScope, Depends(optional_center_access())]
) -> DataQualityOut:
    """Data quality for one center (``?center=``) or every center you may see."""
    return data_quality(request, scope)


@router.post(
    "/centers/{center}/data-quality/missing-demographics",
    dependencies=[Depends(csrf_protect)],
    responses={**ERRORS, 404: {"description": "No such center, or flat.patient not built"}},
)
def missing_demographics(
    request: Request,
    body: MissingRequest,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
) -> MissingOut:
    """Patient-level: ids of the center's patients whose ``field`` is unknown (for chart review)."""
    center = scope.center or ""
    with _warehouse(request) as con:
        if not data.center_exists(con, center):
            raise HTTPException(status_code=404, detail="No such center.")
        ids = data.patients_missing(con, center, body.field)
    if ids is None:
        raise HTTPException(status_code=404, detail="flat.patient is not built yet.")
    return MissingOut(
        center=center, field=body.field, patient_ids=ids, truncated=len(ids) >= data.PATIENT_LIST_LIMIT
    )


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, user: Annotated[Principal, Depends(require_role())]) -> dict[str, Any]:
    """The OpenAPI document of the /api routes (signed-in users only, like the rest of /api)."""
    return request.app.openapi()


# -- measures (agg_* tables) --------------------------------------------------------------------------
class RunOut(BaseModel):
    period_start: date
    period_end: date
    computed_at: str
    measures: int
    centers: int
    equity_status: str


class CellOut(BaseModel):
    """One measure group at one center, or the network (``center == "*"``); null values are hidden."""

    measure: str
    cms_id: str
    title: str
    group_id: str
    group_title: str | None
    inverse: bool = Field(description="Lower is better (e.g. CMS122, CMS75)")
    uds: str | None
    center: str
    initial_population: int | None
    denominator: int | None
    denominator_exclusion: int | None
    denominator_exception: int | None
    numerator: int | None
    numerator_exclusion: int | None
    performance_denominator: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    network_rate: float | None
    p_value: float | None = Field(description="Center vs the network rate (exact binomial test; funnel plot)")
    signal: str | None = Field(description="worse / better / as expected / no data")
    band: str | None = Field(description="Funnel-plot band of the center")
    period_start: date
    period_end: date
    hidden: dict[str, str] = Field(
        default_factory=dict,
        description='Why a null count is hidden: "small" (1-10) or "complementary" (protects another cell)',
    )


class OverviewOut(BaseModel):
    run: RunOut | None
    runs: list[RunOut]
    centers: list[str]
    cells: list[CellOut]


class FunnelOut(BaseModel):
    group_id: str
    n: int
    network_rate: float
    lo95: float
    hi95: float
    lo998: float
    hi998: float


class EquityOut(BaseModel):
    group_id: str
    dimension: str
    dimension_label: str
    stratum: str
    numerator: int | None
    denominator: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    is_reference: bool | None
    rate_difference: float | None
    p_value: float | None
    q_value: float | None
    gap_to_equity: int | None
    worse: bool | None
    unreliable: bool | None
    suppressed: bool | None
    hidden_reason: str | None = Field(
        default=None, description='Why a suppressed stratum is hidden: "small" or "complementary"'
    )


class MeasureOut(BaseModel):
    run: RunOut
    measure: str
    cms_id: str
    title: str
    inverse: bool
    uds: str | None
    groups: list[str]
    cells: list[CellOut]
    funnel: list[FunnelOut]
    trend: list[CellOut]
    equity: list[EquityOut]
    equity_status: str


class GapOut(BaseModel):
    cms_id: str
    group_id: str
    reason: str
    mrn: str | None
    name: str | None
    birth_date: str | None
    last_visit: date | None


class GapsOut(BaseModel):
    center: str
    measure: str
    cms_id: str
    period_start: date
    period_end: date
    gaps: list[GapOut]
    truncated: bool


class PrevisitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: date


class PrevisitPatientOut(BaseModel):
    mrn: str | None
    name: str | None
    birth_date: str | None
    visit_times: list[str]
    gaps: list[GapOut]


class PrevisitOut(BaseModel):
    center: str
    date: date
    period_start: date
    period_end: date
    patients: list[PrevisitPatientOut]


PeriodEnd = Annotated[date | None, Query(description="Period end; default: the latest precomputed")]
NOT_FOUND = {**ERRORS, 404: {"description": "No such center / measure / period"}}


def _gap_out(g: gaps.Gap) -> GapOut:
    return GapOut(
        cms_id=g.cms_id,
        group_id=g.group_id,
        reason=g.reason,
        mrn=g.mrn,
        name=g.name,
        birth_date=g.birth_date,
        last_visit=g.last_visit,
    )


@router.get("/periods", responses=ERRORS)
def periods(request: Request, user: Annotated[Principal, Depends(require_role())]) -> list[RunOut]:
    """Precomputed measurement periods, latest first."""
    return [RunOut(**asdict(r)) for r in service.overview(request, user).runs]


@router.get("/overview", responses=NOT_FOUND)
def overview(
    request: Request, user: Annotated[Principal, Depends(require_role())], period_end: PeriodEnd = None
) -> OverviewOut:
    """Centers x measures (the heat map's data) for the centers you may see, plus network rows."""
    view = service.overview(request, user, period_end)
    return OverviewOut(
        run=RunOut(**asdict(view.run)) if view.run else None,
        runs=[RunOut(**asdict(r)) for r in view.runs],
        centers=view.centers,
        cells=[CellOut(**asdict(c)) for c in view.cells],
    )


@router.get("/measures/{measure}", responses=NOT_FOUND)
def measure_detail(
    request: Request,
    measure: str,
    user: Annotated[Principal, Depends(require_role())],
    period_end: PeriodEnd = None,
) -> MeasureOut:
    """One measure: network and center cells, funnel limits, trend over periods, equity strata."""
    v = service.measure_view(request, user, measure, period_end)
    cells = [c for g in v.groups for c in ([v.network[g]] if g in v.network else []) + v.centers[g]]
    return MeasureOut(
        run=RunOut(**asdict(v.run)),
        measure=v.measure,
        cms_id=v.cms_id,
        title=v.title,
        inverse=v.inverse,
        uds=v.uds,
        groups=v.groups,
        cells=[CellOut(**asdict(c)) for c in cells],
        funnel=[FunnelOut(group_id=g, **asdict(p)) for g, pts in v.funnel.items() for p in pts],
        trend=[CellOut(**asdict(c)) for c in v.trend],
        equity=[EquityOut(**asdict(s)) for s in v.equity],
        equity_status=v.equity_status,
    )


@router.get("/centers/{center}/measures", responses=NOT_FOUND)
def center_measures(
    request: Request,
    scope: Annotated[CenterScope, Depends(require_center_access())],
    period_end: PeriodEnd = None,
) -> list[CellOut]:
    """One center's measure cells (and the network's, as the user may see them)."""
    with _warehouse(request) as con:
        if not data.center_exists(con, scope.center or ""):
            raise HTTPException(status_code=404, detail="No such center.")
    _run, cells = service.center_cells(request, scope, period_end)
    return [CellOut(**asdict(c)) for c in cells]


@router.get("/centers/{center}/measures/{measure}/gaps", responses=NOT_FOUND)
def care_gaps(
    request: Request,
    measure: str,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
    period_end: PeriodEnd = None,
) -> GapsOut:
    """Patient-level: the center's open care gaps of one measure (inverse measures: in the numerator)."""
    run, name, cms, rows = service.gap_list(request, scope, measure, period_end)
    return GapsOut(
        center=scope.center or "",
        measure=name,
        cms_id=cms,
        period_start=run.period_start,
        period_end=run.period_end,
        gaps=[_gap_out(g) for g in rows],
        truncated=len(rows) >= gaps.GAP_LIMIT,
    )


@router.post("/centers/{center}/previsit", dependencies=[Depends(csrf_protect)], responses=NOT_FOUND)
def previsit(
    request: Request,
    body: PrevisitRequest,
    scope: Annotated[CenterScope, Depends(require_center_access(patient_level=True))],
) -> PrevisitOut:
    """Patient-level: patients with an encounter on ``date`` at the center, with all their open gaps."""
    run, people = service.previsit_list(request, scope, body.date)
    return PrevisitOut(
        center=scope.center or "",
        date=body.date,
        period_start=run.period_start,
        period_end=run.period_end,
        patients=[
            PrevisitPatientOut(
                mrn=p.mrn,
                name=p.name,
                birth_date=p.birth_date,
                visit_times=p.visit_times,
                gaps=[_gap_out(g) for g in p.gaps],
            )
            for p in people
        ],
    )
