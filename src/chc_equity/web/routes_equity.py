"""Equity pages: a center's own equity, the "largest inequities" (network and per center), help pages.

* ``/inequities``: every measure's network strata ranked by gap to equity (significant ones only);
  every analytics role -- viewers see the suppressed strata (which never rank), center-bound users the
  measure groups whose network numbers the publication plan shows them.
* ``/centers/{center}/inequities`` and ``/centers/{center}/equity``: that center's own strata, compared
  within the center. For the roles that see the center's unsuppressed counts (its staff, program
  manager and CHWs; network analysts and admins for any center); never for viewers, whose publication
  plan covers the network strata only.
* ``/help`` and ``/help/{topic}``: the concepts the equity views use, for a quality manager.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from chc_equity.web import charts, equityview, plainwords, service
from chc_equity.web.roles import ALL_ROLES, ANALYTICS_ROLES, PATIENT_LEVEL_ROLES, Principal, Role
from chc_equity.web.security import CenterScope, require_center_access, require_role

router = APIRouter(include_in_schema=False)
# Who sees a center's own equity strata: everyone of the analytics but viewers (see the module doc).
CENTER_EQUITY_ROLES = tuple(sorted(ANALYTICS_ROLES - {Role.VIEWER}))
PeriodEnd = Annotated[date | None, Query(description="Period end date; default: the latest precomputed")]
Reference = Annotated[str | None, Query(max_length=200, description="Reference group (stratum label)")]

# Help topics: slug -> title (the text is in templates/help.html).
HELP_TOPICS: dict[str, str] = {
    "funnel-plot": "Funnel plot",
    "q-value": "q-value (significance after many comparisons)",
    "gap-to-equity": "Gap to equity",
    "reference-group": "Reference group",
    "suppression": "Suppressed and hidden numbers",
    "forest-plot": "Forest plot",
}


def _render(request: Request, template: str, user: Principal, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token, patient_level=user.role in PATIENT_LEVEL_ROLES)
    return request.app.state.templates.TemplateResponse(request, template, context)


@router.get("/inequities")
def network_inequities(
    request: Request, user: Annotated[Principal, Depends(require_role())], period_end: PeriodEnd = None
) -> Response:
    run, strata, meta = service.network_strata(request, user, period_end)
    rows = equityview.rank(strata, meta)
    return _render(request, "inequities.html", user, run=run, rows=rows, center=None, tested=len(strata))


@router.get("/centers/{center}/inequities")
def center_inequities(
    request: Request,
    scope: Annotated[CenterScope, Depends(require_center_access(*CENTER_EQUITY_ROLES))],
    period_end: PeriodEnd = None,
) -> Response:
    run, strata, meta = service.center_strata(request, scope, period_end)
    rows = equityview.rank(strata, meta, where=f" at {scope.center}")
    return _render(
        request, "inequities.html", scope.user, run=run, rows=rows, center=scope.center, tested=len(strata)
    )


@router.get("/centers/{center}/equity")
def center_equity(
    request: Request,
    scope: Annotated[CenterScope, Depends(require_center_access(*CENTER_EQUITY_ROLES))],
    measure: Annotated[str | None, Query(max_length=200)] = None,
    reference: Reference = None,
    period_end: PeriodEnd = None,
) -> Response:
    """Every equity view of one measure for one center (default: the first measure with strata)."""
    run, everything, meta = service.center_strata(request, scope, period_end)
    if measure is not None:
        with service.warehouse(request) as con:
            name = service.resolve_measure(con, measure)[0]
    else:
        name = next(iter(dict.fromkeys(s.measure for s in everything)), None)
    if name is None:  # the center exists (the guard and center_strata checked) but has no strata yet
        return _render(request, "center_equity.html", scope.user, run=run, center=scope.center, empty=True)
    cms_id, title, inverse = meta.get(name, (name, name, False))
    unit = plainwords.unit_of(name)
    mine = [s for s in everything if s.measure == name]
    strata = equityview.with_reference(mine, reference, inverse=inverse)
    where = f" at {scope.center}"
    groups = list(dict.fromkeys(s.group_id for s in strata))
    per_group = {g: [s for s in strata if s.group_id == g] for g in groups}
    sentences = {
        g: plainwords.headline(rows, cms_id=cms_id, inverse=inverse, unit=unit, where=where)
        for g, rows in per_group.items()
    }
    forests = {
        g: charts.forest(rows, inverse=inverse, description=sentences[g]) for g, rows in per_group.items()
    }
    names = {s.measure for s in everything}
    measures = sorted(((m, meta.get(m, (m, m, False))[0]) for m in names), key=lambda x: x[1])
    return _render(
        request,
        "center_equity.html",
        scope.user,
        run=run,
        center=scope.center,
        cms_id=cms_id,
        title=title,
        inverse=inverse,
        unit=unit,
        groups=groups,
        per_group=per_group,
        sentences=sentences,
        forests=forests,
        measures=measures,
        reference=reference,
        choices=equityview.reference_choices(strata),
    )


@router.get("/help")
def help_index(request: Request, user: Annotated[Principal, Depends(require_role(*ALL_ROLES))]) -> Response:
    return _render(request, "help.html", user, topic=None, topics=HELP_TOPICS)


@router.get("/help/{topic}")
def help_topic(
    request: Request, topic: str, user: Annotated[Principal, Depends(require_role(*ALL_ROLES))]
) -> Response:
    if topic not in HELP_TOPICS:
        raise HTTPException(status_code=404, detail="No such help page.")
    return _render(request, "help.html", user, topic=topic, topics=HELP_TOPICS)
