"""`chc-equity appdb import`: CHWs from PractitionerRole (NUCC 172V00000X), panels from CareTeam, outreach
from CHW-service Encounters and from Communications sent by a CHW -- through a real ingest and the
built-in views, imported twice (idempotent)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from chc_equity.appdb import AppDB, assignments, last_outreach, open_for_warehouse
from chc_equity.appdb import chw as chws
from chc_equity.appdb import outreach as records
from chc_equity.appdb.fhir_import import chw_id_for
from chc_equity.appdb.models import Assignment, Outreach
from chc_equity.warehouse import connect

CENTER = "ctr-imp"
NUCC = "http://nucc.org/provider-taxonomy"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
OUTREACH = "https://chc-equity.org/fhir/CodeSystem/chw-outreach"


def _communication(cid: str, patient: str, sender: str, status: str, sent: str | None, **extra) -> dict:
    out = {
        "resourceType": "Communication",
        "id": cid,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
        "sender": {"reference": sender},
        **extra,
    }
    if sent:
        out["sent"] = sent
    return out


def _medium(code: str, system: str = MODE) -> list[dict]:
    return [{"coding": [{"system": system, "code": code}]}]


COMMUNICATIONS = [
    # sent by the CHW (Practitioner), by phone, reached
    _communication(
        "c1", "p1", "Practitioner/chw1", "completed", "2026-03-01T10:00:00Z", medium=_medium("PHONE")
    ),
    # sent by the CHW's PractitionerRole, a text, not reached (wrong number)
    _communication(
        "c2",
        "p2",
        "PractitionerRole/r1",
        "not-done",
        "2026-03-02T10:00:00Z",
        medium=_medium("SMSWRIT"),
        statusReason={"coding": [{"system": OUTREACH, "code": "wrong-number"}]},
    ),
    # the project's own channel code in the category (no medium): a home visit
    _communication(
        "c3",
        "p3",
        "Practitioner/chw1",
        "completed",
        "2026-03-03",
        category=[{"coding": [{"system": OUTREACH, "code": "home-visit"}]}],
    ),
    # not a CHW's: a physician's message
    _communication(
        "c4", "p3", "Practitioner/doc1", "completed", "2026-03-04T10:00:00Z", medium=_medium("PHONE")
    ),
    # a CHW's, but skipped: unknown medium / not finished / no date
    _communication(
        "c5", "p1", "Practitioner/chw1", "completed", "2026-03-05T10:00:00Z", medium=_medium("VIDEOCONF")
    ),
    _communication(
        "c6", "p1", "Practitioner/chw1", "in-progress", "2026-03-06T10:00:00Z", medium=_medium("PHONE")
    ),
    _communication("c7", "p1", "Practitioner/chw1", "completed", None, medium=_medium("PHONE")),
]


def _encounter(eid: str, patient: str, status: str, klass: str, system: str, code: str, **extra) -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": ACT, "code": klass},
        "type": [{"coding": [{"system": system, "code": code}]}],
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }


RESOURCES = [
    *(
        {"resourceType": "Patient", "id": f"p{i}", "birthDate": "1980-01-01", "gender": "female"}
        for i in (1, 2, 3)
    ),
    {"resourceType": "Practitioner", "id": "chw1", "name": [{"family": "Garcia"}]},
    {"resourceType": "Practitioner", "id": "doc1", "name": [{"family": "House"}]},
    {
        "resourceType": "PractitionerRole",
        "id": "r1",
        "practitioner": {"reference": "Practitioner/chw1"},
        "code": [{"coding": [{"system": NUCC, "code": "172V00000X"}]}],
    },
    {
        "resourceType": "PractitionerRole",
        "id": "r2",
        "practitioner": {"reference": "Practitioner/doc1"},
        "code": [{"coding": [{"system": NUCC, "code": "207Q00000X"}]}],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        # enrolment: the membership's start becomes the assignment's date, not the import's
        "participant": [{"member": {"reference": "Practitioner/chw1"}, "period": {"start": "2026-01-15"}}],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct2",
        "status": "active",
        "subject": {"reference": "Patient/p2"},
        "participant": [{"member": {"reference": "PractitionerRole/r1"}}],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct3",
        "status": "active",
        "subject": {"reference": "Patient/p3"},
        "participant": [{"member": {"reference": "Practitioner/doc1"}}],
    },
    _encounter(
        "e1",
        "p1",
        "finished",
        "HH",
        CPT,
        "98960",
        period={"start": "2026-02-03T10:00:00Z", "end": "2026-02-03T10:40:00Z"},
    ),
    _encounter(
        "e2",
        "p2",
        "finished",
        "AMB",
        HCPCS,
        "G0019",
        period={"start": "2026-02-05T09:00:00Z"},
        length={"value": 30, "unit": "min"},
    ),
    _encounter("e3", "p3", "finished", "AMB", CPT, "99213", period={"start": "2026-02-06T09:00:00Z"}),
    _encounter("e4", "p1", "planned", "AMB", CPT, "98961", period={"start": "2026-02-07T09:00:00Z"}),
    *COMMUNICATIONS,
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chc_equity.ingest import load
    from chc_equity.views.build import build_views

    folder = tmp_path_factory.mktemp("import")
    data = folder / "data"
    data.mkdir()
    by_type: dict[str, list[dict]] = {}
    for r in RESOURCES:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        (data / f"{rtype}.ndjson").write_text("\n".join(json.dumps(r) for r in items) + "\n")
    path = folder / "wh.duckdb"
    con = connect(path)
    try:
        result = load(con, [data], CENTER, after_load=lambda c, center: build_views(c, centers=[center]))
        assert result.quarantined == 0, result
    finally:
        con.close()
    return path


def test_import_chws_panels_and_chw_services_idempotently(warehouse: Path, app_backend: str) -> None:
    from chc_equity.cli import app
    from chc_equity.cli import appdb as _appdb  # noqa: F401  (registers `appdb`)

    db = open_for_warehouse(warehouse)  # SQLite next to the warehouse, or the PostgreSQL of app_backend
    with db.write() as s:  # a program manager already put p2 on another CHW: the import keeps that
        other = chws.add_chw(s, CENTER, "Luis", "pm")
        chws.assign(s, CENTER, other.id, ["p2"], "pm")
    runner = CliRunner()
    first = runner.invoke(app, ["appdb", "import", "-w", str(warehouse)])
    assert first.exit_code == 0, first.output
    assert "1 CHWs added, 1 assignments added, 2 of 2 CHW-service encounters added" in first.output
    assert "3 of 6 CHW Communications added (3 skipped" in first.output
    again = runner.invoke(app, ["appdb", "import", "-w", str(warehouse)])
    assert "0 CHWs added, 0 assignments added, 0 of 2 CHW-service encounters added" in again.output
    assert "0 of 6 CHW Communications added (3 skipped" in again.output
    garcia = chw_id_for(CENTER, "chw1")
    with db.read() as s:
        assert [(c.id, c.display_name, c.source) for c in chws.list_chws(s, CENTER)] == sorted(
            [(garcia, "Garcia", "fhir"), (other.id, "Luis", "app")], key=lambda t: t[1]
        )
        assert assignments(s, CENTER) == {"p1": garcia, "p2": other.id}  # p3's team has no CHW
        enrolled = s.scalars(select(Assignment.assigned_at).where(Assignment.patient_id == "p1")).one()
        assert enrolled.date() == date(2026, 1, 15)
        rows = {
            r.source_id: (r.patient_id, r.channel, r.minutes, r.contact_date)
            for r in s.scalars(select(Outreach).where(Outreach.source_id.like("%/Encounter/%")))
        }
        assert rows == {
            f"{CENTER}/Encounter/e1": ("p1", "home_visit", 40, date(2026, 2, 3)),
            f"{CENTER}/Encounter/e2": ("p2", "in_clinic", 30, date(2026, 2, 5)),
        }
        comms = {
            r.source_id: (r.patient_id, r.chw_id, r.channel, r.outcome, r.minutes, r.contact_date)
            for r in s.scalars(select(Outreach).where(Outreach.source_id.like("%/Communication/%")))
        }
        assert comms == {
            f"{CENTER}/Communication/c1": ("p1", garcia, "phone", "reached", 0, date(2026, 3, 1)),
            f"{CENTER}/Communication/c2": ("p2", garcia, "text", "wrong_number", 0, date(2026, 3, 2)),
            f"{CENTER}/Communication/c3": ("p3", garcia, "home_visit", "reached", 0, date(2026, 3, 3)),
        }
        assert last_outreach(s, CENTER) == {
            "p1": (date(2026, 3, 1), "reached"),
            "p2": (date(2026, 3, 2), "wrong_number"),
            "p3": (date(2026, 3, 3), "reached"),
        }
    # An imported record edited in the app is not overwritten by the next import.
    with db.write() as s:
        row = s.scalar(select(Outreach).where(Outreach.source_id == f"{CENTER}/Encounter/e1"))
        fields = records.OutreachFields(row.contact_date, "home_visit", "referral_made", 45)
        records.edit(s, CENTER, row.id, fields, "pm", expected_version=1)
    with db.write() as s:
        row = s.scalar(select(Outreach).where(Outreach.source_id == f"{CENTER}/Communication/c2"))
        fields = records.OutreachFields(row.contact_date, "text", "scheduled_visit", 5)
        records.edit(s, CENTER, row.id, fields, "pm", expected_version=1)
    runner.invoke(app, ["appdb", "import", "-w", str(warehouse)])
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Outreach)) == 5
        assert s.scalar(select(Outreach.outcome).where(Outreach.source_id == f"{CENTER}/Encounter/e1")) == (
            "referral_made"
        )
        c2 = s.scalar(select(Outreach).where(Outreach.source_id == f"{CENTER}/Communication/c2"))
        assert (c2.outcome, c2.minutes, c2.version) == ("scheduled_visit", 5, 2)


def test_an_outdated_communication_view_is_reported_not_guessed(warehouse: Path, tmp_path: Path) -> None:
    """A warehouse whose flat.communication predates sender/medium: CHWs, panels and encounters still
    import; Communications are not, and the result says to rebuild the views."""
    import shutil

    import duckdb

    from chc_equity.appdb.fhir_import import import_center

    copy = Path(shutil.copy(warehouse, tmp_path / "old.duckdb"))
    con = duckdb.connect(str(copy))
    try:
        con.execute("ALTER TABLE flat.communication DROP COLUMN sender_practitioner_id")
        db = AppDB(tmp_path / "app.sqlite")
        with db.write() as s:
            result = import_center(con, s, CENTER)
    finally:
        con.close()
    assert result.communication_view_outdated and result.communications_found == 0
    assert (result.chws_added, result.outreach_added) == (1, 2)
