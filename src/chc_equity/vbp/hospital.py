"""Hospital partner data at the edges: the center's patients from the warehouse, ADT events and the
review queue in the app database, and the transitions-of-care list that joins them with the CHW
worklist's people and outreach.

The rules are elsewhere and pure (``adt`` parses, ``matching`` matches, ``transitions`` counts days);
this module only reads and writes. One import is one app-database transaction: a re-sent message (same
hospital, control id and event) is skipped, so importing a file twice changes nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import HospitalEvent, HospitalMatchReview, HospitalQuarantine, Outreach
from chc_equity.outreach.page import Overlay
from chc_equity.vbp.adt import AdtEvent, ReadResult
from chc_equity.vbp.matching import Matcher, PatientRecord
from chc_equity.vbp.transitions import (
    FOLLOW_UP_CLASSES,
    Discharge,
    Transition,
    dedupe_discharges,
    transitions,
)

DECISIONS = ("confirm", "reject")


class ReviewError(ValueError):
    """A decision the queue refuses (unknown item, already decided, stale version)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


# -- the center's patients (warehouse, read only) -------------------------------------------------------
_SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}


def load_patients(con: duckdb.DuckDBPyConnection, center: str) -> list[PatientRecord]:
    """Every Patient of ``center`` as the matcher needs it (identifiers, official name, birth date ...)."""
    rows = con.execute(
        "SELECT id, resource FROM resources WHERE center = ? AND type = 'Patient' ORDER BY id", [center]
    ).fetchall()
    out = []
    for pid, raw in rows:
        p = json.loads(raw) if isinstance(raw, str) else raw
        names = p.get("name") or [{}]
        name = next((n for n in names if n.get("use") == "official"), names[0])
        try:
            birth = date.fromisoformat(p["birthDate"]) if p.get("birthDate") else None
        except ValueError:
            birth = None
        ids = frozenset((i.get("system", ""), i["value"]) for i in p.get("identifier", []) if i.get("value"))
        zip5 = ((p.get("address") or [{}])[0].get("postalCode") or "")[:5]
        out.append(
            PatientRecord(
                pid,
                ids,
                name.get("family", ""),
                (name.get("given") or [""])[0],
                birth,
                _SEX.get(p.get("gender", ""), ""),
                zip5,
            )
        )
    return out


# -- import ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportSummary:
    events: int
    duplicates: int
    matched: int
    review: int
    unmatched: int
    quarantined: int


def import_events(
    session: Session, center: str, result: ReadResult, matcher: Matcher, by: str
) -> ImportSummary:
    """Store the events (matched now, or queued for review) and the quarantine of one import."""
    now = _now()
    known = set(session.scalars(select(HospitalEvent.event_key).where(HospitalEvent.center == center)))
    counts = defaultdict(int)
    for e in result.events:
        if e.key in known:
            counts["duplicates"] += 1
            continue
        known.add(e.key)
        m = matcher.match(
            [(i.authority, i.value) for i in e.identifiers],
            e.family,
            e.given,
            e.birth_date,
            e.sex,
            e.postal_code,
        )
        row = _event_row(e, center, by, now)
        row.patient_id, row.match_status, row.match_method = m.patient_id, m.status, m.method
        session.add(row)
        if m.status == "review":
            session.flush()
            for c in m.candidates:
                session.add(
                    HospitalMatchReview(
                        event_id=row.id,
                        center=center,
                        candidate_id=c.patient_id,
                        score=c.score,
                        reason=c.reason,
                        status="pending",
                        version=1,
                    )
                )
        counts[m.status] += 1
        counts["events"] += 1
    for q in result.quarantined:
        session.add(
            HospitalQuarantine(
                center=center,
                source=q.source[:300],
                message_no=q.message_no,
                line=q.line,
                location=q.where[:64],
                reason=q.reason,
                imported_at=now,
            )
        )
    return ImportSummary(
        counts["events"],
        counts["duplicates"],
        counts["matched"],
        counts["review"],
        counts["unmatched"],
        len(result.quarantined),
    )


def _event_row(e: AdtEvent, center: str, by: str, now: datetime) -> HospitalEvent:
    return HospitalEvent(
        center=center,
        event_key=e.key[:400],
        source=e.source[:300],
        message_no=e.message_no,
        line=e.line,
        origin=e.origin,
        event_type=e.event_type,
        hospital=e.hospital[:200],
        patient_class=e.patient_class[:2],
        visit_number=e.visit_number[:200],
        event_time=e.event_time,
        admit_at=e.admit_at,
        discharge_at=e.discharge_at,
        disposition=e.disposition[:16],
        identifiers=json.dumps([[i.authority, i.value, i.type] for i in e.identifiers]),
        family=e.family[:200],
        given=e.given[:200],
        birth_date=e.birth_date,
        sex=e.sex[:1],
        postal_code=e.postal_code[:10],
        imported_by=by,
        imported_at=now,
    )


# -- review queue ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReviewItem:
    review_id: int
    version: int
    event_id: int
    hospital: str
    event_type: str
    event_day: date | None
    incoming: str  # the hospital's "FAMILY, Given  birth date  sex  postal"
    candidate_id: str
    score: float
    reason: str


def review_queue(session: Session, center: str, limit: int = 500) -> list[ReviewItem]:
    """Pending candidates of ``center``, oldest event first, best candidate first."""
    rows = session.execute(
        select(HospitalMatchReview, HospitalEvent)
        .join(HospitalEvent, HospitalEvent.id == HospitalMatchReview.event_id)
        .where(HospitalMatchReview.center == center, HospitalMatchReview.status == "pending")
        .order_by(HospitalEvent.id, HospitalMatchReview.score.desc(), HospitalMatchReview.candidate_id)
        .limit(limit)
    ).all()
    out = []
    for r, e in rows:
        when = e.discharge_at or e.event_time
        incoming = (
            f"{e.family.upper()}, {e.given}  {e.birth_date or '?'}  {e.sex or '?'}  {e.postal_code or '?'}"
        )
        out.append(
            ReviewItem(
                r.id,
                r.version,
                e.id,
                e.hospital,
                e.event_type,
                when.date() if when else None,
                incoming,
                r.candidate_id,
                r.score,
                r.reason,
            )
        )
    return out


def decide(
    session: Session, center: str, review_id: int, decision: str, by: str, version: int | None = None
) -> HospitalEvent:
    """Confirm (the event is this patient's; the other candidates are rejected) or reject one candidate
    (when none is left, the event stays unmatched). Another center's item is "not found"."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}", 422)
    item = session.get(HospitalMatchReview, review_id)
    if item is None or item.center != center:
        raise ReviewError(f"no review item {review_id}", 404)
    if item.status != "pending":
        raise ReviewError(f"review item {review_id} was already {item.status}", 409)
    if version is not None and version != item.version:
        raise ReviewError(f"review item {review_id} changed (version {item.version}); reload", 409)
    now = _now()
    event = session.get(HospitalEvent, item.event_id)
    siblings = session.scalars(
        select(HospitalMatchReview).where(
            HospitalMatchReview.event_id == item.event_id, HospitalMatchReview.status == "pending"
        )
    )
    for other in siblings:
        if other.id == item.id:
            other.status = "confirmed" if decision == "confirm" else "rejected"
        elif decision == "confirm":
            other.status = "rejected"
        else:
            continue
        other.version += 1
        other.decided_by, other.decided_at = by, now
    session.flush()
    if decision == "confirm":
        event.patient_id, event.match_status, event.match_method = item.candidate_id, "matched", "review"
        _same_stay(session, event, item.candidate_id, by, now)
    else:
        left = session.scalar(
            select(func.count())
            .select_from(HospitalMatchReview)
            .where(HospitalMatchReview.event_id == event.id, HospitalMatchReview.status == "pending")
        )
        if not left:
            event.match_status = "unmatched"
    return event


def _same_stay(session: Session, event: HospitalEvent, patient: str, by: str, now: datetime) -> None:
    """The other messages of the same stay (hospital + visit number: the A01 of an A03) waiting for the
    same candidate are this patient's too, so staff decide a stay once, not once per message."""
    if not event.visit_number:
        return
    others = session.scalars(
        select(HospitalEvent).where(
            HospitalEvent.center == event.center,
            HospitalEvent.hospital == event.hospital,
            HospitalEvent.visit_number == event.visit_number,
            HospitalEvent.match_status == "review",
            HospitalEvent.id != event.id,
        )
    ).all()
    for other in others:
        items = session.scalars(
            select(HospitalMatchReview).where(
                HospitalMatchReview.event_id == other.id, HospitalMatchReview.status == "pending"
            )
        ).all()
        if patient not in {i.candidate_id for i in items}:
            continue
        for i in items:
            i.status = "confirmed" if i.candidate_id == patient else "rejected"
            i.version += 1
            i.decided_by, i.decided_at = by, now
        other.patient_id, other.match_status, other.match_method = patient, "matched", "review"


def quarantine(session: Session, center: str, limit: int = 200) -> list[HospitalQuarantine]:
    return list(
        session.scalars(
            select(HospitalQuarantine)
            .where(HospitalQuarantine.center == center)
            .order_by(HospitalQuarantine.id.desc())
            .limit(limit)
        )
    )


def match_counts(session: Session, center: str) -> dict[str, int]:
    rows = session.execute(
        select(HospitalEvent.match_status, func.count())
        .where(HospitalEvent.center == center)
        .group_by(HospitalEvent.match_status)
    ).all()
    return {status: n for status, n in rows}


# -- the transitions-of-care list -----------------------------------------------------------------------
def discharges(session: Session, center: str) -> list[Discharge]:
    """Matched discharges (A03) of the classes that need follow-up, one per patient and day."""
    rows = session.scalars(
        select(HospitalEvent).where(
            HospitalEvent.center == center,
            HospitalEvent.event_type == "A03",
            HospitalEvent.match_status == "matched",
            HospitalEvent.discharge_at.is_not(None),
        )
    )
    out = [
        Discharge(
            r.id,
            r.patient_id,
            r.hospital,
            r.patient_class,
            r.admit_at.date() if r.admit_at else None,
            r.discharge_at.date(),
        )
        for r in rows
        if r.patient_class in FOLLOW_UP_CLASSES or not r.patient_class
    ]
    return dedupe_discharges(out)


def contacts(session: Session, center: str, patients: Sequence[str]) -> dict[str, list[tuple[date, str]]]:
    """Outreach (date, outcome) per patient from the CHW program's records (app database)."""
    out: dict[str, list[tuple[date, str]]] = defaultdict(list)
    if not patients:
        return out
    rows = session.execute(
        select(Outreach.patient_id, Outreach.contact_date, Outreach.outcome).where(
            Outreach.center == center, Outreach.patient_id.in_(list(patients))
        )
    )
    for pid, day, outcome in rows:
        out[pid].append((day, outcome))
    return out


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def visits(
    con: duckdb.DuckDBPyConnection, center: str, patients: Sequence[str], since: date
) -> dict[str, list[date]]:
    """Center visit days per patient since ``since``: finished encounters that are not hospital stays or
    ED visits (the worklist's definitions of a visit and of an acute encounter)."""
    from chc_equity.outreach.worklist import ACUTE_CLASSES, ED_CLASS, NOT_A_VISIT

    out: dict[str, list[date]] = defaultdict(list)
    if not patients or not _table_exists(con, "flat", "encounter"):
        return out
    rows = con.execute(
        f"""
        SELECT patient_id, CAST(substr(period_start, 1, 10) AS DATE)
          FROM flat.encounter
         WHERE center = ? AND patient_id IN (SELECT unnest(?)) AND status NOT IN {NOT_A_VISIT}
           AND status <> 'planned' AND coalesce(class_code, '') NOT IN {(*ACUTE_CLASSES, ED_CLASS)}
           AND try_cast(substr(period_start, 1, 10) AS DATE) >= ?
        """,
        [center, list(patients), since],
    ).fetchall()
    for pid, day in rows:
        out[pid].append(day)
    return out


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    mrn: str
    phone: str


def people(con: duckdb.DuckDBPyConnection, center: str, patients: Sequence[str]) -> dict[str, Person]:
    """Name, MRN and phone from the worklist's ``patient_contact`` summary (serving snapshot or warehouse)."""
    if not patients or not _table_exists(con, "main", "patient_contact"):
        return {}
    rows = con.execute(
        "SELECT patient_id, name, mrn, phone FROM patient_contact"
        " WHERE center = ? AND patient_id IN (SELECT unnest(?))",
        [center, list(patients)],
    ).fetchall()
    return {pid: Person(name or "", mrn or "", phone or "") for pid, name, mrn, phone in rows}


def strata(con: duckdb.DuckDBPyConnection, center: str, dimension: str) -> dict[str, str]:
    """patient -> label of one equity dimension (``patient_attributes``; unknown dimension: ValueError)."""
    from chc_equity.equity.attributes import DIMENSIONS

    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}")
    if not _table_exists(con, "main", "patient_attributes"):
        return {}
    rows = con.execute(f'SELECT patient_id, "{dimension}" FROM patient_attributes WHERE center = ?', [center])
    return {pid: label or "Unknown" for pid, label in rows.fetchall()}


@dataclass(frozen=True, slots=True)
class TransitionRow:
    transition: Transition
    person: Person | None
    chw: str | None
    last_outreach: tuple[date, str] | None


def transition_list(
    session: Session, con: duckdb.DuckDBPyConnection, center: str, as_of: date, overlay: Overlay | None = None
) -> list[TransitionRow]:
    """The list staff work from: every matched discharge with its windows, the patient's contact data
    and the CHW worklist's assignment and last outreach (``overlay`` from appdb.worklist)."""
    ds = [d for d in discharges(session, center) if d.discharged <= as_of]
    ids = sorted({d.patient_id for d in ds})
    since = min((d.discharged for d in ds), default=as_of)
    rows = transitions(ds, contacts(session, center, ids), visits(con, center, ids, since), as_of)
    who = people(con, center, ids)
    assigned: Mapping[str, str] = overlay.assignments if overlay is not None else {}
    last: Mapping[str, tuple[date, str]] = overlay.last_outreach if overlay is not None else {}
    return [
        TransitionRow(
            t,
            who.get(t.discharge.patient_id),
            assigned.get(t.discharge.patient_id),
            last.get(t.discharge.patient_id),
        )
        for t in rows
    ]
