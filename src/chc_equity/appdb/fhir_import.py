"""Import CHWs, their panels and CHW services from the warehouse into the app database (idempotent).

* CHWs: practitioners with a PractitionerRole coded NUCC ``172V00000X`` (community health worker), from
  ``flat.practitioner_role`` (+ ``flat.practitioner`` for the name). One CHW per (center, practitioner).
* Panels: active CareTeams (``flat.care_team_participant``) with such a practitioner (directly or through
  a PractitionerRole) assign the patient to that CHW -- only when the patient has no assignment yet, so
  what a program manager decided in the app is never overwritten by a later import.
* Outreach: finished Encounters typed with a CHW service code (CPT 98960-98962, HCPCS G0019, G0022,
  G0023, G0024; matched on the code) become outreach records: outcome ``reached``, channel from
  Encounter.class (HH home visit, VR phone, else in clinic), minutes from Encounter.length or the
  period (0 when neither), date from the period start. Keyed by ``<center>/Encounter/<id>``, so a
  re-import adds nothing and never overwrites an edit made in the app.

Communication resources are not imported yet: the flat ``communication`` view has no sender or medium,
so neither the CHW nor the channel could be told (see docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

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


def _care_teams(con: duckdb.DuckDBPyConnection, center: str) -> list[tuple[str, str]]:
    """(patient id, practitioner id) of every active care-team membership at the center."""
    if not _exists(con, "care_team_participant"):
        return []
    via_role = _exists(con, "practitioner_role")
    member = "coalesce(c.member_id, r.practitioner_id)" if via_role else "c.member_id"
    join = (
        "LEFT JOIN (SELECT DISTINCT center, id, practitioner_id FROM flat.practitioner_role) r "
        "ON r.center = c.center AND r.id = c.role_member_id"
        if via_role
        else ""
    )
    return con.execute(
        f"SELECT DISTINCT c.patient_id, {member} AS practitioner_id FROM flat.care_team_participant c {join} "
        "WHERE c.center = ? AND coalesce(c.status, 'active') = 'active' AND c.patient_id IS NOT NULL "
        f"AND {member} IS NOT NULL ORDER BY 1, 2",
        [center],
    ).fetchall()


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
    for patient, practitioner in _care_teams(con, center):
        if practitioner in chws and patient not in assigned:
            session.add(
                Assignment(
                    center=center,
                    patient_id=patient,
                    chw_id=chw_id_for(center, practitioner),
                    assigned_by=AUTHOR,
                    assigned_at=now(),
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
    return ImportResult(center, added_chws, added_assignments, added_outreach, len(rows))


def centers(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT center FROM loads ORDER BY center").fetchall()]
