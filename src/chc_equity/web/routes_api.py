"""The JSON API under /api. Every route but /api/health needs a session (401 otherwise).

Center-scoped routes take the center through :func:`require_center_access`/:func:`optional_center_access`
and filter in SQL by the scope those guards return. Patient-level answers are POST-only (the request
names no patient, and nothing identifying ever goes into a URL or a log line).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from chc_equity.web import data
from chc_equity.web.privacy import suppress_center, suppress_rate
from chc_equity.web.roles import Principal, Role
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
    return data.open_warehouse(request.app.state.config.warehouse)


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


def center_summaries(request: Request, user: Principal) -> list[CenterOut]:
    with _warehouse(request) as con:
        summaries = data.centers(con, user.center)
    if user.suppressed:
        summaries = [suppress_center(s) for s in summaries]
    return [CenterOut(**asdict(s)) for s in summaries]


@router.get("/health", dependencies=[Depends(public)])
def health(request: Request) -> Health:
    """Liveness, without login (for load balancers); says only whether a warehouse file exists."""
    return Health(status="ok", warehouse=request.app.state.config.warehouse.exists())


@router.get("/me", responses=ERRORS)
def me(user: Annotated[Principal, Depends(require_role())]) -> Me:
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
