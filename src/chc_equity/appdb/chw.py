"""CHWs, patient assignments (panels) and the per-center "panel only" setting.

Pure database functions on a SQLAlchemy session: the web routes decide who may call them (the guards in
``web/security.py``) and check patient ids against the warehouse; these functions only read and write
the app database, always restricted to one center.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import Assignment, CenterSetting, Chw

MAX_BULK = 5000  # patient ids per assignment call (a whole filtered worklist fits)


class NotFound(LookupError):
    """No such record at this center (the same answer whether it is elsewhere or nowhere)."""


class Conflict(ValueError):
    """The request contradicts what is stored (a reused idempotency key, a stale version)."""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChwRow:
    id: str
    center: str
    display_name: str
    username: str | None
    source: str
    active: bool
    patients: int


def add_chw(
    session: Session, center: str, display_name: str, author: str, username: str | None = None
) -> Chw:
    """A program manager adds a CHW (optionally linked to the web user who works as this CHW)."""
    name = display_name.strip()
    if not name or len(name) > 200:
        raise ValueError("display_name must be 1-200 characters")
    if username and session.scalar(select(Chw.id).where(Chw.username == username)) is not None:
        raise Conflict(f"user {username!r} is already linked to a CHW")
    chw = Chw(
        id=f"chw-{uuid.uuid4().hex[:12]}",
        center=center,
        display_name=name,
        username=username or None,
        source="app",
        source_id=None,
        active=True,
        created_by=author,
        created_at=now(),
    )
    session.add(chw)
    session.flush()
    return chw


def list_chws(session: Session, center: str) -> list[ChwRow]:
    counts: dict[str, int] = {}
    for (chw_id,) in session.execute(select(Assignment.chw_id).where(Assignment.center == center)):
        counts[chw_id] = counts.get(chw_id, 0) + 1
    rows = session.scalars(select(Chw).where(Chw.center == center).order_by(Chw.display_name, Chw.id))
    return [
        ChwRow(c.id, c.center, c.display_name, c.username, c.source, c.active, counts.get(c.id, 0))
        for c in rows
    ]


def get_chw(session: Session, center: str, chw_id: str) -> Chw:
    chw = session.get(Chw, chw_id)
    if chw is None or chw.center != center:
        raise NotFound("No such CHW at this center.")
    return chw


def chw_of_user(session: Session, username: str, center: str | None) -> Chw | None:
    """The CHW record a web user works as (at their center), if any."""
    chw = session.scalar(select(Chw).where(Chw.username == username))
    return chw if chw is not None and (center is None or chw.center == center) else None


def assign(session: Session, center: str, chw_id: str, patient_ids: Iterable[str], author: str) -> int:
    """Assign patients to a CHW (replacing any earlier CHW of theirs); returns how many were assigned."""
    get_chw(session, center, chw_id)
    ids = list(dict.fromkeys(patient_ids))
    if len(ids) > MAX_BULK:
        raise ValueError(f"at most {MAX_BULK} patients per call")
    if not ids:
        return 0
    at = now()
    existing = {
        a.patient_id: a
        for a in session.scalars(
            select(Assignment).where(Assignment.center == center, Assignment.patient_id.in_(ids))
        )
    }
    for pid in ids:
        row = existing.get(pid)
        if row is None:
            session.add(
                Assignment(center=center, patient_id=pid, chw_id=chw_id, assigned_by=author, assigned_at=at)
            )
        else:
            row.chw_id, row.assigned_by, row.assigned_at = chw_id, author, at
    return len(ids)


def unassign(session: Session, center: str, patient_ids: Iterable[str]) -> int:
    ids = list(dict.fromkeys(patient_ids))
    done = session.execute(
        delete(Assignment).where(Assignment.center == center, Assignment.patient_id.in_(ids))
    )
    return done.rowcount


def assignments(session: Session, center: str) -> dict[str, str]:
    """patient id -> CHW id for every assigned patient of ``center`` (for the worklist)."""
    rows = session.execute(
        select(Assignment.patient_id, Assignment.chw_id).where(Assignment.center == center)
    )
    return {pid: chw_id for pid, chw_id in rows}


def panel_only(session: Session, center: str) -> bool:
    setting = session.get(CenterSetting, center)
    return bool(setting and setting.panel_only)


def set_panel_only(session: Session, center: str, on: bool, author: str) -> None:
    setting = session.get(CenterSetting, center)
    if setting is None:
        session.add(CenterSetting(center=center, panel_only=on, updated_by=author, updated_at=now()))
    else:
        setting.panel_only, setting.updated_by, setting.updated_at = on, author, now()


def panel_of(session: Session, username: str, center: str) -> set[str]:
    """Patient ids assigned to the CHW record(s) of ``username`` at ``center``."""
    rows = session.scalars(
        select(Assignment.patient_id)
        .join(Chw, Chw.id == Assignment.chw_id)
        .where(Assignment.center == center, Chw.username == username)
    )
    return set(rows)
