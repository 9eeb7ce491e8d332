"""Outreach records: each attempt a CHW makes to reach a patient, with an append-only history of edits.

Rules kept here, in one place:

* channel and outcome come from fixed lists (:data:`CHANNELS`, :data:`OUTCOMES`); minutes 0-600; the
  note is optional, short, and meant for non-clinical remarks (it is never required);
* a create may carry an idempotency key (unique per author): a retried create with the same key returns
  the first record and adds nothing -- so a POST retried after a timeout or a crash never duplicates;
* every version of a record, the first included, is a row of ``outreach_revisions`` (never updated or
  deleted); an edit names the version it saw, and a stale one is refused (no lost update).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chc_equity.appdb.chw import Conflict, NotFound, now
from chc_equity.appdb.models import Outreach, OutreachRevision

CHANNELS = ("phone", "text", "home_visit", "in_clinic")
OUTCOMES = ("reached", "no_answer", "wrong_number", "declined", "scheduled_visit", "referral_made")
MAX_MINUTES = 600
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class OutreachFields:
    """What a person enters for one attempt (validated by :meth:`check`)."""

    contact_date: date
    channel: str
    outcome: str
    minutes: int
    note: str | None = None
    chw_id: str | None = None

    def check(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if not 0 <= self.minutes <= MAX_MINUTES:
            raise ValueError(f"minutes must be between 0 and {MAX_MINUTES}")
        if self.note is not None and len(self.note) > MAX_NOTE:
            raise ValueError(f"note must be at most {MAX_NOTE} characters")


def _revision(row: Outreach, by: str) -> OutreachRevision:
    return OutreachRevision(
        outreach_id=row.id,
        version=row.version,
        contact_date=row.contact_date,
        channel=row.channel,
        outcome=row.outcome,
        minutes=row.minutes,
        note=row.note,
        chw_id=row.chw_id,
        changed_by=by,
        changed_at=row.updated_at,
    )


def create(
    session: Session,
    center: str,
    patient_id: str,
    fields: OutreachFields,
    author: str,
    idempotency_key: str | None = None,
    *,
    source: str = "app",
    source_id: str | None = None,
) -> tuple[Outreach, bool]:
    """Record an attempt; returns (record, created). ``created`` is False for a replayed key/source id."""
    fields.check()
    replay = _existing(session, author, idempotency_key, source, source_id)
    if replay is not None:
        return _same_request(replay, center, patient_id), False
    at = now()
    row = Outreach(
        center=center,
        patient_id=patient_id,
        chw_id=fields.chw_id,
        contact_date=fields.contact_date,
        channel=fields.channel,
        outcome=fields.outcome,
        minutes=fields.minutes,
        note=fields.note or None,
        version=1,
        source=source,
        source_id=source_id,
        idempotency_key=idempotency_key,
        created_by=author,
        created_at=at,
        updated_by=author,
        updated_at=at,
    )
    try:
        with session.begin_nested():  # a concurrent create with the same key loses here, not later
            session.add(row)
            session.flush()
            session.add(_revision(row, author))
            session.flush()
    except IntegrityError:
        replay = _existing(session, author, idempotency_key, source, source_id)
        if replay is None:
            raise
        return _same_request(replay, center, patient_id), False
    return row, True


def _existing(
    session: Session, author: str, key: str | None, source: str, source_id: str | None
) -> Outreach | None:
    if source_id is not None:
        return session.scalar(
            select(Outreach).where(Outreach.source == source, Outreach.source_id == source_id)
        )
    if key is None:
        return None
    return session.scalar(
        select(Outreach).where(Outreach.created_by == author, Outreach.idempotency_key == key)
    )


def _same_request(row: Outreach, center: str, patient_id: str) -> Outreach:
    if (row.center, row.patient_id) != (center, patient_id):
        raise Conflict("This idempotency key was already used for another record.")
    return row


def get(session: Session, center: str, record_id: int) -> Outreach:
    row = session.get(Outreach, record_id)
    if row is None or row.center != center:
        raise NotFound("No such outreach record at this center.")
    return row


def edit(
    session: Session, center: str, record_id: int, fields: OutreachFields, editor: str, expected_version: int
) -> Outreach:
    """Change a record; its previous versions stay in the revisions table. ``expected_version`` is the
    version the editor saw: when someone else saved in between, :class:`Conflict` (reload and retry)."""
    fields.check()
    row = get(session, center, record_id)
    if row.version != expected_version:
        raise Conflict(f"The record changed meanwhile (now version {row.version}); reload it.")
    row.contact_date, row.channel, row.outcome = fields.contact_date, fields.channel, fields.outcome
    row.minutes, row.note = fields.minutes, fields.note or None
    if fields.chw_id is not None:
        row.chw_id = fields.chw_id
    row.version += 1
    row.updated_by, row.updated_at = editor, now()
    session.flush()
    session.add(_revision(row, editor))
    session.flush()
    return row


def revisions(session: Session, record_id: int) -> list[OutreachRevision]:
    return list(
        session.scalars(
            select(OutreachRevision)
            .where(OutreachRevision.outreach_id == record_id)
            .order_by(OutreachRevision.version)
        )
    )


def history(session: Session, center: str, patient_id: str) -> list[Outreach]:
    """A patient's outreach at ``center``, newest first."""
    return list(
        session.scalars(
            select(Outreach)
            .where(Outreach.center == center, Outreach.patient_id == patient_id)
            .order_by(Outreach.contact_date.desc(), Outreach.id.desc())
        )
    )


def recent(
    session: Session, center: str, limit: int = 200, patients: set[str] | None = None
) -> list[Outreach]:
    """The center's latest records (restricted to ``patients`` when given: a CHW's panel)."""
    query = select(Outreach).where(Outreach.center == center)
    if patients is not None:
        query = query.where(Outreach.patient_id.in_(sorted(patients)))
    return list(session.scalars(query.order_by(Outreach.created_at.desc(), Outreach.id.desc()).limit(limit)))


def last_outreach(session: Session, center: str) -> dict[str, tuple[date, str]]:
    """patient id -> (date, outcome) of their latest outreach at ``center`` (for the worklist)."""
    rows = session.execute(
        select(Outreach.patient_id, Outreach.contact_date, Outreach.outcome)
        .where(Outreach.center == center)
        .order_by(Outreach.patient_id, Outreach.contact_date, Outreach.id)
    )
    out: dict[str, tuple[date, str]] = {}
    for pid, day, outcome in rows:
        out[pid] = (day, outcome)  # ordered ascending: the last one wins
    return out
