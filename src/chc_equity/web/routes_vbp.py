"""Value-based payment pages: roster reconciliation, payer gaps, contract estimator, cost and use, PDC.

``/vbp`` is aggregates only (every analytics role; a viewer gets counts of people under 11 hidden with
their complements, chc_equity.equity.suppression); cost and use by equity stratum is suppressed for
everyone, as the equity layer's tables are. The per-center lists name patients and are for
PATIENT_LEVEL_ROLES only (never a viewer, nor a CHW, whose patient rows go through the worklist).
Everything is read from the published snapshot (the ``vbp_*`` tables that ``chc-equity vbp import``
writes); nothing here writes.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from chc_equity.equity.suppression import DEFAULT_THRESHOLD as SMALL
from chc_equity.equity.suppression import one_way_table, suppress
from chc_equity.vbp import cost, pdc, report, store
from chc_equity.vbp.contract import money
from chc_equity.web import data, service
from chc_equity.web.roles import PATIENT_LEVEL_ROLES, Principal
from chc_equity.web.security import CenterScope, optional_center_access, require_center_access

router = APIRouter(include_in_schema=False)
LISTS = require_center_access(*PATIENT_LEVEL_ROLES, patient_level=True)
AGGREGATES = require_center_access()
ROSTER_LISTS = {
    "outreach": "Attributed, not seen (outreach)",
    "seen": "Attributed and seen",
    "not-attributed": "Seen, not attributed",
}


def _render(request: Request, template: str, user: Principal, **context) -> Response:
    context.update(
        user=user, csrf_token=user.csrf_token, money=money, patient_level=user.role in PATIENT_LEVEL_ROLES
    )
    return request.app.state.templates.TemplateResponse(request, template, context)


def _as_of(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else date.today()
    except ValueError as exc:
        raise HTTPException(status_code=422, detail="as_of must be YYYY-MM-DD") from exc


def _hide(values: list[int], on: bool) -> list[int | None]:
    """Counts of people as a viewer may see them: under 11 hidden, with complements (one total)."""
    if not on or not values:
        return list(values)
    return suppress(one_way_table(values)).published()[: len(values)]


def _summary(con, center: str, as_of: date, hide: bool) -> dict:
    payers = []
    for payer in store.payers(con, center):
        view = report.roster_view(con, center, payer, as_of)
        c = view.reconciliation.counts()
        seen, not_seen = _hide([c["attributed_seen"], c["attributed_not_seen"]], hide)
        (other,) = _hide([c["seen_not_attributed"]], hide)
        mm: int | None = sum(n for _, n in view.member_months)
        if hide and any(0 < n < SMALL for _, n in view.member_months):
            mm = None  # a viewer could subtract the months the cost page shows from it
        payers.append(dict(payer=payer, seen=seen, not_seen=not_seen, not_attributed=other, member_months=mm))
    results = report.pdc_view(con, center, as_of.year) if store.available(con, "vbp_fills") else []
    adherence = []
    for cls, (n, ok) in pdc.summary(results).items():
        shown = _hide([ok, n - ok], hide)
        adherence.append(dict(label=pdc.CLASS_LABELS[cls], adherent=shown[0], below=shown[1]))
    contracts = []
    for c in store.contracts(con, center):
        e = report.estimate_view(con, center, c).estimate
        contracts.append(dict(id=c.id, payer=c.payer, score=float(e.quality_score), total=money(e.total)))
    return dict(center=center, payers=payers, adherence=adherence, contracts=contracts)


@router.get("/vbp")
def vbp_overview(
    request: Request,
    scope: Annotated[CenterScope, Depends(optional_center_access())],
    as_of: str | None = None,
) -> Response:
    """Per center: roster reconciliation counts, member months, PDC and contract estimates (aggregates)."""
    day = _as_of(as_of)
    with service.warehouse(request) as con:
        centers = [c.center for c in data.centers(con, scope.center)]
        rows = [_summary(con, c, day, scope.user.suppressed) for c in centers]
    return _render(request, "vbp.html", scope.user, rows=rows, as_of=day, center=scope.center)


def _payer(con, center: str, payer: str | None) -> str | None:
    known = store.payers(con, center)
    if payer and payer not in known:
        raise HTTPException(status_code=404, detail="No roster of this payer.")
    return payer or (known[0] if known else None)


@router.get("/vbp/{center}/roster")
def vbp_roster(
    request: Request,
    scope: Annotated[CenterScope, Depends(LISTS)],
    payer: str | None = None,
    list_: Annotated[str, Query(alias="list")] = "outreach",
    as_of: str | None = None,
) -> Response:
    """One payer's roster against the active panel: the chosen list of members / patients."""
    if list_ not in ROSTER_LISTS:
        raise HTTPException(status_code=404, detail="No such list.")
    day, center = _as_of(as_of), scope.center or ""
    with service.warehouse(request) as con:
        chosen = _payer(con, center, payer)
        view = report.roster_view(con, center, chosen, day) if chosen else None
    rows = []
    if view:
        rec = view.reconciliation
        pid_of = {m.member_id: p for m, p in view.linked if p}
        if list_ == "not-attributed":
            rows = [
                dict(
                    member="",
                    name=view.identity.get(p, (None, None))[0],
                    mrn=view.identity.get(p, (None, None))[1],
                )
                for p in rec.seen_not_attributed
            ]
        else:
            for mid in rec.attributed_not_seen if list_ == "outreach" else rec.attributed_seen:
                m = view.members[mid]
                name, mrn = view.identity.get(pid_of.get(mid) or "", (None, None))
                rows.append(
                    dict(
                        member=mid,
                        name=name or f"{m.family}, {m.given}",
                        mrn=mrn or "",
                        linked="yes" if pid_of.get(mid) else "no",
                    )
                )
    return _render(
        request,
        "vbp_roster.html",
        scope.user,
        center=center,
        payer=chosen,
        view=view,
        rows=rows,
        list_=list_,
        lists=ROSTER_LISTS,
        as_of=day,
    )


def _gap_rows(request: Request, center: str, payer: str | None, day: date):
    with service.warehouse(request) as con:
        chosen = _payer(con, center, payer)
        rows, period = report.payer_gap_view(con, center, chosen, day) if chosen else ([], None)
        ident = report.identity(con, center, {r.patient_id for r in rows if r.patient_id})
    shown = [
        dict(
            agreement=r.agreement,
            member=r.member_id,
            name=ident.get(r.patient_id or "", (None, None))[0],
            mrn=ident.get(r.patient_id or "", (None, None))[1],
            measure=r.cms_id or r.payer_measure,
            payer=r.payer_status or "",
            ours=r.center_status or "not in denominator",
        )
        for r in rows
    ]
    return chosen, shown, period


@router.get("/vbp/{center}/gaps")
def vbp_gaps(
    request: Request,
    scope: Annotated[CenterScope, Depends(LISTS)],
    payer: str | None = None,
    as_of: str | None = None,
) -> Response:
    """The payer's gaps beside ours; "submit" rows are the supplemental-data submission list."""
    center = scope.center or ""
    chosen, rows, period = _gap_rows(request, center, payer, _as_of(as_of))
    return _render(
        request, "vbp_gaps.html", scope.user, center=center, payer=chosen, rows=rows, period=period
    )


@router.get("/vbp/{center}/gaps.csv")
def vbp_gaps_csv(
    request: Request,
    scope: Annotated[CenterScope, Depends(LISTS)],
    payer: str | None = None,
    agreement: str = "submit",
    as_of: str | None = None,
) -> Response:
    """One kind of row as CSV (default: the supplemental-data submission list); cells made safe."""
    import io

    from chc_equity.exports import dict_writer

    center = scope.center or ""
    _, rows, _ = _gap_rows(request, center, payer, _as_of(as_of))
    buf = io.StringIO()
    w = dict_writer(buf, ["agreement", "member", "name", "mrn", "measure", "payer", "ours"])
    w.writeheader()
    w.writerows(r for r in rows if r["agreement"] == agreement)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payer-gaps-{agreement}.csv"'},
    )


@router.get("/vbp/{center}/estimate")
def vbp_estimate(
    request: Request,
    scope: Annotated[CenterScope, Depends(LISTS)],
    contract: str | None = None,
) -> Response:
    """A contract's projected payment, the value of a closed gap and the patients worth most."""
    center = scope.center or ""
    with service.warehouse(request) as con:
        known = {c.id: c for c in store.contracts(con, center)}
        if contract and contract not in known:
            raise HTTPException(status_code=404, detail="No such contract.")
        chosen = known.get(contract) if contract else next(iter(known.values()), None)
        view = report.estimate_view(con, center, chosen) if chosen else None
        ident = report.identity(con, center, {p for p, _, _ in view.patients[:50]}) if view else {}
    return _render(
        request, "vbp_estimate.html", scope.user, center=center, view=view, contracts=list(known), ident=ident
    )


@router.get("/vbp/{center}/cost")
def vbp_cost(
    request: Request,
    scope: Annotated[CenterScope, Depends(AGGREGATES)],
    year: int | None = None,
    by: str = "race_ethnicity",
) -> Response:
    """PMPM, ED visits and admissions per 1,000 member months; by stratum with small cells suppressed."""
    center, y = scope.center or "", year or date.today().year
    if by not in report.STRATA:
        raise HTTPException(status_code=404, detail="No such dimension.")
    with service.warehouse(request) as con:
        rows, strata, shown = report.cost_view(con, center, date(y, 1, 1), date(y, 12, 31), by)
    if scope.user.suppressed:  # a viewer: small months left out, small visit counts' rates hidden
        rows = shown
    else:
        rows = [
            cost.MonthRow(r.payer, r.month, r.member_months, r.pmpm, r.per_1000(r.ed_visits),
                          r.per_1000(r.admissions))
            for r in rows
        ]  # fmt: skip
    return _render(
        request,
        "vbp_cost.html",
        scope.user,
        center=center,
        rows=rows,
        strata=strata,
        year=y,
        by=by,
        dimensions=report.STRATA,
    )


@router.get("/vbp/{center}/pdc")
def vbp_pdc(
    request: Request, scope: Annotated[CenterScope, Depends(LISTS)], year: int | None = None
) -> Response:
    """Patients under 80 % PDC (pharmacist or MA outreach), lowest first."""
    center, y = scope.center or "", year or date.today().year
    with service.warehouse(request) as con:
        results = report.pdc_view(con, center, y) if store.available(con, "vbp_fills") else []
        low = pdc.below_threshold(results)
        ident = report.identity(con, center, {r.patient_id for r in low})
    rows = [
        dict(
            name=ident.get(r.patient_id, (None, None))[0],
            mrn=ident.get(r.patient_id, (None, None))[1],
            cls=pdc.CLASS_LABELS[r.drug_class],
            pdc=f"{float(r.pdc):.1%}",
            days=f"{r.covered_days}/{r.treatment_days}",
            index=r.index_date,
        )
        for r in low
    ]
    return _render(
        request,
        "vbp_pdc.html",
        scope.user,
        center=center,
        rows=rows,
        year=y,
        summary=pdc.summary(results),
        labels=pdc.CLASS_LABELS,
    )
