"""Import CHWs, their panels and CHW services from the warehouse into the app database (idempotent).

* CHWs: practitioners with a PractitionerRole coded NUCC ``172V00000X`` (community health worker), from
  ``flat.practitioner_role`` (+ ``flat.practitioner`` for the name). One CHW per (center, practitioner).
* Panels: active CareTeams (``flat.care_team_member``) with such a practitioner (directly or through
  a PractitionerRole) assign the patient to that CHW -- only when the patient has no assignment yet, so
  what a program manager decided in the app is never overwritten by a later import.
* Outreach: finished Encounters typed with a CHW service code (CPT 98960-98962, HCPCS G0019, G0022,
  G0023, G0024; matched on the code) become outreach records: outcome ``reached``, channel from
  Encounter.class (HH home visit, VR phone, else in clinic), minutes from Encounter.length or the
  period (0 when neither), date from the period start. Keyed by ``<center>/Encounter/<id>``, so a
  re-import adds nothing and never overwrites an edit made in the app.
* Outreach from Communications (``flat.communication``) whose sender is a CHW (the Practitioner, or a
  PractitionerRole of one): channel from ``medium`` (v3 ParticipationMode PHONE -> phone, SMSWRIT and
  the other written modes -> text, FACE -> in clinic; or the project's own channel codes), else from a
  category coded the same way; date from ``sent``; outcome ``reached`` when completed, else the
  ``statusReason`` (no-answer, wrong-number, declined); minutes 0 (a Communication has no duration).
  A Communication whose channel, outcome or date cannot be told, or that is not finished (status other
  than completed / not-done), is skipped and counted. Keyed by ``<center>/Communication/<id>``: a
  re-import adds nothing and never overwrites an edit made in the app.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from chc_equity.appdb import outreach as records
from chc_equity.appdb.chw import now
from chc_equity.appdb.models import Assignment, Chw

CHW_TAXONOMY = "172V00000X"
CHW_SERVICE_CODES = ("98960", "98961", "98962", "G0019", "G0022", "G0023", "G0024")
CLASS_CHANNEL = {"HH": "home_visit", "VR": "phone"}
AUTHOR = "fhir-import"


@dataclass(frozen=True, slots=True)
class ImportResult:
    center: str
    chws_added: int
    assignments_added: int
    outreach_added: int
    outreach_found: int
    communications_added: int = 0
    communications_found: int = 0
    communications_skipped: int = 0
    communication_view_outdated: bool = False  # flat.communication predates sender/medium: rebuild views


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'flat' AND table_name = ?",
        [table],
    ).fetchone()
    return bool(row and row[0])


def chw_id_for(center: str, practitioner_id: str) -> str:
    """A stable CHW id for an imported practitioner (fits the 64-character id column)."""
    return "chw-f" + hashlib.sha256(f"{center}/{practitioner_id}".encode()).hexdigest()[:16]


def _chws(con: duckdb.DuckDBPyConnection, center: str) -> dict[str, str]:
    """practitioner id -> display name of the center's CHWs."""
    if not _exists(con, "practitioner_role"):
        return {}
    name = "p.family_name" if _exists(con, "practitioner") else "NULL"
    join = (
        "LEFT JOIN flat.practitioner p ON p.center = r.center AND p.id = r.practitioner_id"
        if name != "NULL"
        else ""
    )
    rows = con.execute(
        f"SELECT DISTINCT r.practitioner_id, {name} FROM flat.practitioner_role r {join} "
        "WHERE r.center = ? AND r.code = ? AND coalesce(r.active, true) AND r.practitioner_id IS NOT NULL "
        "ORDER BY 1",
        [center, CHW_TAXONOMY],
    ).fetchall()
    return {pid: (family or f"Practitioner {pid}") for pid, family in rows}


def _care_teams(con: duckdb.DuckDBPyConnection, center: str) -> list[tuple[str, str, str | None]]:
    """(patient id, practitioner id, earliest participant.period.start) of every active care-team
    membership at the center. The start becomes the assignment's date: the program indicators count
    reach and days to first contact from enrolment, which an import run months later must not move."""
    if not _exists(con, "care_team_member"):
        return []
    via_role = _exists(con, "practitioner_role")
    member = "coalesce(c.practitioner_id, r.practitioner_id)" if via_role else "c.practitioner_id"
    join = (
        "LEFT JOIN (SELECT DISTINCT center, id, practitioner_id FROM flat.practitioner_role) r "
        "ON r.center = c.center AND r.id = c.role_member_id"
        if via_role
        else ""
    )
    return con.execute(
        f"SELECT c.patient_id, {member} AS practitioner_id, min(CAST(c.period_start AS VARCHAR)) "
        f"FROM flat.care_team_member c {join} "
        "WHERE c.center = ? AND coalesce(c.status, 'active') = 'active' AND c.patient_id IS NOT NULL "
        f"AND {member} IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        [center],
    ).fetchall()


def _instant(text: str | None) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (a date is midnight UTC); None when absent or bad."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text else None
        if value is None:
            value = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _minutes(length: float | None, unit: str | None, start: str | None, end: str | None) -> int:
    if length is not None and unit in ("min", "minutes", "minute"):
        value = float(length)
    elif length is not None and unit in ("h", "hours", "hour"):
        value = float(length) * 60
    elif start and end and len(start) > 10 and len(end) > 10:
        value = (_parse(end) - _parse(start)).total_seconds() / 60
    else:
        value = 0
    return max(0, min(records.MAX_MINUTES, round(value)))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _services(con: duckdb.DuckDBPyConnection, center: str) -> list[tuple]:
    if not (_exists(con, "encounter") and _exists(con, "encounter_type")):
        return []
    codes = ", ".join(f"'{c}'" for c in CHW_SERVICE_CODES)
    return con.execute(
        "SELECT e.id, e.patient_id, e.class_code, CAST(e.period_start AS VARCHAR), "
        "CAST(e.period_end AS VARCHAR), e.length_value, e.length_unit FROM flat.encounter e "
        "WHERE e.center = ? AND e.status = 'finished' AND e.patient_id IS NOT NULL "
        "AND e.period_start IS NOT NULL "
        f"AND EXISTS (SELECT 1 FROM flat.encounter_type t WHERE t.center = e.center AND t.id = e.id "
        f"AND t.code IN ({codes})) ORDER BY e.id",
        [center],
    ).fetchall()


# Communication.medium / category -> outreach channel: HL7 v3 ParticipationMode, and the channel codes
# the synthetic generator (and a program without a standard code) uses.
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUM_CHANNEL = {
    "PHONE": "phone",
    "SMSWRIT": "text",
    "EMAILWRIT": "text",
    "ONLINEWRIT": "text",
    "MAILWRIT": "text",
    "FAXWRIT": "text",
    "WRITTEN": "text",
    "FACE": "in_clinic",
    "phone": "phone",
    "text": "text",
    "home-visit": "home_visit",
    "in-clinic": "in_clinic",
}
NOT_REACHED = {"no-answer": "no_answer", "wrong-number": "wrong_number", "declined": "declined"}


def _communications(con: duckdb.DuckDBPyConnection, center: str, chws: dict[str, str]) -> list[tuple]:
    """(id, patient, CHW practitioner, status, sent, medium code, category codes, status reasons) of the
    center's Communications sent by a CHW (directly or as a PractitionerRole of one)."""
    if not (_exists(con, "communication") and chws) or _outdated(con):
        return []
    via_role = _exists(con, "practitioner_role")
    sender = (
        "coalesce(c.sender_practitioner_id, r.practitioner_id)" if via_role else "c.sender_practitioner_id"
    )
    join = (
        "LEFT JOIN (SELECT DISTINCT center, id, practitioner_id FROM flat.practitioner_role) r "
        "ON r.center = c.center AND r.id = c.sender_role_id"
        if via_role
        else ""
    )
    lists = {
        "category": "communication_category",
        "reasons": "communication_status_reason",
    }
    parts = {
        key: (
            f"(SELECT list(k.code ORDER BY k.code) FROM flat.{table} k "
            "WHERE k.center = c.center AND k.id = c.id)"
            if _exists(con, table)
            else "[]"
        )
        for key, table in lists.items()
    }
    return con.execute(
        f"SELECT c.id, c.patient_id, {sender}, c.status, CAST(c.sent AS VARCHAR), c.medium_code, "
        f"{parts['category']}, {parts['reasons']} FROM flat.communication c {join} "
        f"WHERE c.center = ? AND c.patient_id IS NOT NULL AND {sender} IN (SELECT unnest(?)) ORDER BY c.id",
        [center, sorted(chws)],
    ).fetchall()


SENDER_COLUMNS = ("sender_practitioner_id", "sender_role_id", "medium_code")


def _outdated(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``flat.communication`` was built before it had the sender and medium columns."""
    if not _exists(con, "communication"):
        return False
    cols = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'flat' AND table_name = 'communication'"
        ).fetchall()
    }
    return not set(SENDER_COLUMNS) <= cols


def communication_fields(
    status: str | None, sent: str | None, medium: str | None, categories: list[str], reasons: list[str]
) -> records.OutreachFields | None:
    """The outreach record a CHW's Communication stands for; None when it cannot be told (see the
    module doc)."""
    channel = MEDIUM_CHANNEL.get(medium or "") or next(
        (MEDIUM_CHANNEL[c] for c in categories or [] if c in MEDIUM_CHANNEL), None
    )
    if status == "completed":
        outcome: str | None = "reached"
    elif status == "not-done":
        outcome = next((NOT_REACHED[r] for r in reasons or [] if r in NOT_REACHED), None)
    else:
        outcome = None
    try:
        day = date.fromisoformat(sent[:10]) if sent else None
    except ValueError:
        day = None
    if channel is None or outcome is None or day is None:
        return None
    return records.OutreachFields(contact_date=day, channel=channel, outcome=outcome, minutes=0)


def import_center(con: duckdb.DuckDBPyConnection, session: Session, center: str) -> ImportResult:
    """Import one center's CHWs, care-team panels and CHW-service encounters (see the module doc)."""
    chws = _chws(con, center)
    added_chws = 0
    known = set(session.scalars(select(Chw.id).where(Chw.center == center, Chw.source == "fhir")))
    for pid, name in chws.items():
        cid = chw_id_for(center, pid)
        if cid not in known:
            session.add(
                Chw(
                    id=cid,
                    center=center,
                    display_name=name[:200],
                    username=None,
                    source="fhir",
                    source_id=pid,
                    active=True,
                    created_by=AUTHOR,
                    created_at=now(),
                )
            )
            added_chws += 1
    session.flush()
    assigned = set(session.scalars(select(Assignment.patient_id).where(Assignment.center == center)))
    added_assignments = 0
    for patient, practitioner, started in _care_teams(con, center):
        if practitioner in chws and patient not in assigned:
            session.add(
                Assignment(
                    center=center,
                    patient_id=patient,
                    chw_id=chw_id_for(center, practitioner),
                    assigned_by=AUTHOR,
                    assigned_at=_instant(started) or now(),
                )
            )
            assigned.add(patient)
            added_assignments += 1
    rows = _services(con, center)
    added_outreach = 0
    for eid, patient, klass, start, end, length, unit in rows:
        fields = records.OutreachFields(
            contact_date=date.fromisoformat(start[:10]),
            channel=CLASS_CHANNEL.get(klass or "", "in_clinic"),
            outcome="reached",
            minutes=_minutes(length, unit, start, end),
        )
        _row, created = records.create(
            session, center, patient, fields, AUTHOR, source="fhir", source_id=f"{center}/Encounter/{eid}"
        )
        added_outreach += created
    comms = _communications(con, center, chws)
    added_comms = skipped = 0
    for cid, patient, practitioner, status, sent, medium, categories, reasons in comms:
        fields = communication_fields(status, sent, medium, categories, reasons)
        if fields is None:
            skipped += 1
            continue
        fields = replace(fields, chw_id=chw_id_for(center, practitioner))
        _row, created = records.create(
            session, center, patient, fields, AUTHOR, source="fhir", source_id=f"{center}/Communication/{cid}"
        )
        added_comms += created
    return ImportResult(
        center,
        added_chws,
        added_assignments,
        added_outreach,
        len(rows),
        added_comms,
        len(comms),
        skipped,
        _outdated(con),
    )


def centers(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT center FROM loads ORDER BY center").fetchall()]
