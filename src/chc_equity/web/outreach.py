"""What the CHW-program routes (API and pages) do for one user: the panel rule and checks in one place.

* the center comes from the route guard's scope, so every query below is restricted to it;
* a CHW at a center whose "panel only" setting is on sees and writes only patients assigned to them
  (:func:`panel`); a patient outside it gets the same 404 as an unknown patient;
* patient ids a user sends are checked against the warehouse (read-only): only patients of that center;
* a CHW edits only records they wrote; program managers and center staff edit any at their center.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from chc_equity.appdb import AppDB
from chc_equity.appdb import chw as chws
from chc_equity.appdb import outreach as records
from chc_equity.appdb.models import Outreach, User
from chc_equity.appdb.worklist import overlay
from chc_equity.outreach.page import Prepared, Query, Selection, WorklistStore
from chc_equity.web import data
from chc_equity.web.roles import Principal, Role
from chc_equity.web.security import CenterScope

NO_PATIENT = "No such patient at this center."


def appdb(request: Request) -> AppDB:
    return request.app.state.db


def panel(session: Session, user: Principal, center: str) -> set[str] | None:
    """The patient ids ``user`` is limited to at ``center``; None: every patient of the center."""
    if user.role is Role.CHW and chws.panel_only(session, center):
        return chws.panel_of(session, user.username, center)
    return None


def known_patients(request: Request, center: str, patient_ids: Iterable[str]) -> set[str]:
    """Which of ``patient_ids`` are patients of ``center`` in the warehouse."""
    ids = sorted(set(patient_ids))
    if not ids:
        return set()
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        rows = con.execute(
            "SELECT patient_id FROM patient_contact WHERE center = ? AND patient_id IN (SELECT unnest(?))",
            [center, ids],
        ).fetchall()
    return {r[0] for r in rows}


def check_patient(request: Request, session: Session, scope: CenterScope, patient_id: str) -> None:
    """404 unless ``patient_id`` is in the user's panel (when limited to one); the warehouse check is
    :func:`check_in_warehouse`, done before a write transaction starts (not while holding its lock)."""
    allowed = panel(session, scope.user, scope.center or "")
    if allowed is not None and patient_id not in allowed:
        raise HTTPException(status_code=404, detail=NO_PATIENT)


def check_in_warehouse(request: Request, scope: CenterScope, patient_id: str) -> None:
    if patient_id not in known_patients(request, scope.center or "", [patient_id]):
        raise HTTPException(status_code=404, detail=NO_PATIENT)


def record_out(row: Outreach) -> dict:
    return {
        "id": row.id,
        "patient_id": row.patient_id,
        "chw_id": row.chw_id,
        "contact_date": row.contact_date.isoformat(),
        "channel": row.channel,
        "outcome": row.outcome,
        "minutes": row.minutes,
        "note": row.note,
        "version": row.version,
        "source": row.source,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_by": row.updated_by,
        "updated_at": row.updated_at.isoformat(),
    }


def list_chws(request: Request, scope: CenterScope) -> dict:
    center = scope.center or ""
    with appdb(request).read() as s:
        rows = chws.list_chws(s, center)
        only = chws.panel_only(s, center)
    return {
        "center": center,
        "panel_only": only,
        "chws": [
            {
                "id": c.id,
                "display_name": c.display_name,
                "username": c.username,
                "source": c.source,
                "active": c.active,
                "patients": c.patients,
            }
            for c in rows
        ],
    }


def add_chw(request: Request, scope: CenterScope, display_name: str, username: str | None) -> dict:
    center = scope.center or ""
    with appdb(request).write() as s:
        if username:
            user = s.get(User, username.strip().lower())
            if user is None or user.role != Role.CHW.value or user.center != center:
                raise HTTPException(status_code=400, detail="username must be a chw user of this center")
            username = user.username
        try:
            row = chws.add_chw(s, center, display_name, scope.user.username, username or None)
        except (ValueError, chws.Conflict) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return {"id": row.id, "display_name": row.display_name, "username": row.username}


def assign(request: Request, scope: CenterScope, chw_id: str, patient_ids: list[str]) -> int:
    center = scope.center or ""
    unknown = set(patient_ids) - known_patients(request, center, patient_ids)
    if unknown:
        raise HTTPException(
            status_code=400, detail=f"{len(unknown)} patient id(s) are not patients of this center"
        )
    with appdb(request).write() as s:
        try:
            return chws.assign(s, center, chw_id, patient_ids, scope.user.username)
        except chws.NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc


def set_panel_only(request: Request, scope: CenterScope, on: bool) -> None:
    with appdb(request).write() as s:
        chws.set_panel_only(s, scope.center or "", on, scope.user.username)


def assignments(request: Request, scope: CenterScope) -> dict[str, str]:
    center = scope.center or ""
    with appdb(request).read() as s:
        mapping = chws.assignments(s, center)
        allowed = panel(s, scope.user, center)
    return mapping if allowed is None else {p: c for p, c in mapping.items() if p in allowed}


def _fields(body, session: Session, scope: CenterScope) -> records.OutreachFields:
    chw_id = body.chw_id
    if chw_id is not None:
        try:
            chws.get_chw(session, scope.center or "", chw_id)
        except chws.NotFound as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
    elif scope.user.role is Role.CHW:  # a CHW records as themself
        mine = chws.chw_of_user(session, scope.user.username, scope.center)
        chw_id = mine.id if mine else None
    return records.OutreachFields(
        contact_date=body.contact_date,
        channel=body.channel,
        outcome=body.outcome,
        minutes=body.minutes,
        note=(body.note or "").strip() or None,
        chw_id=chw_id,
    )


def record(request: Request, scope: CenterScope, body, idempotency_key: str | None) -> tuple[dict, bool]:
    """Create an outreach record (idempotent per author and key); returns (record, created)."""
    if body.contact_date > date.today():
        raise HTTPException(status_code=400, detail="contact_date is in the future")
    check_in_warehouse(request, scope, body.patient_id)
    with appdb(request).write() as s:
        check_patient(request, s, scope, body.patient_id)
        try:
            row, created = records.create(
                s,
                scope.center or "",
                body.patient_id,
                _fields(body, s, scope),
                scope.user.username,
                idempotency_key,
            )
        except records.Conflict as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return record_out(row), created


def history(request: Request, scope: CenterScope, patient_id: str) -> list[dict]:
    check_in_warehouse(request, scope, patient_id)
    with appdb(request).read() as s:
        check_patient(request, s, scope, patient_id)
        out = []
        for row in records.history(s, scope.center or "", patient_id):
            item = record_out(row)
            item["revisions"] = [
                {
                    "version": r.version,
                    "contact_date": r.contact_date.isoformat(),
                    "channel": r.channel,
                    "outcome": r.outcome,
                    "minutes": r.minutes,
                    "note": r.note,
                    "changed_by": r.changed_by,
                    "changed_at": r.changed_at.isoformat(),
                }
                for r in records.revisions(s, row.id)
            ]
            out.append(item)
        return out


def recent(request: Request, scope: CenterScope) -> list[dict]:
    center = scope.center or ""
    with appdb(request).read() as s:
        return [record_out(r) for r in records.recent(s, center, patients=panel(s, scope.user, center))]


def edit(request: Request, scope: CenterScope, record_id: int, body) -> dict:
    with appdb(request).write() as s:
        try:
            row = records.get(s, scope.center or "", record_id)
        except records.NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        allowed = panel(s, scope.user, scope.center or "")
        if allowed is not None and row.patient_id not in allowed:
            raise HTTPException(status_code=404, detail="No such outreach record at this center.")
        if scope.user.role is Role.CHW and row.created_by != scope.user.username:
            raise HTTPException(status_code=403, detail="A CHW may edit only the records they wrote.")
        try:
            row = records.edit(
                s, scope.center or "", record_id, _fields(body, s, scope), scope.user.username, body.version
            )
        except records.Conflict as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return record_out(row)


# -- the worklist ------------------------------------------------------------------------------------
def worklist_store(request: Request) -> WorklistStore:
    return request.app.state.worklists


def worklist(
    request: Request,
    scope: CenterScope,
    query: Query,
    *,
    mine: bool = False,
    period_end: date | None = None,
    as_of: date | None = None,
) -> tuple[Prepared, Selection] | None:
    """One page (or, with ``query.limit`` None, all) of the center's worklist for this user: the
    warehouse part from the store, the app database's assignments and last outreach joined in
    (:func:`chc_equity.appdb.worklist.overlay`), the panel rule applied. None: no precomputed run."""
    center = scope.center or ""
    warehouse = request.app.state.config.warehouse
    # The request's published snapshot (chc_equity.serving): an immutable file, so it is the cache key,
    # and the worklist, the page's other reads and X-Data-Version are one state.
    snapshot = data.snapshot_for(warehouse, request.state)
    prepared = worklist_store(request).get(
        snapshot.path,
        lambda: data.open_warehouse(warehouse, request.state),
        center,
        period_end=period_end,
        as_of=as_of or date.today(),
    )
    if prepared is None:
        return None
    with appdb(request).read() as s:
        joined = overlay(s, center)
        allowed = panel(s, scope.user, center)
        own = chws.panel_of(s, scope.user.username, center) if mine else None
    query = replace(
        query,
        only=None if allowed is None else frozenset(allowed),
        mine=None if own is None else frozenset(own),
    )
    try:
        return prepared, prepared.select(joined, query)
    except ValueError as exc:  # an unknown sort (the routes' parameter types already refuse one)
        raise HTTPException(status_code=400, detail=str(exc)) from exc
