"""Hospital events in the app database (SQLite and PostgreSQL): import with matching and quarantine,
idempotent re-import, the review queue, and the transitions list joined to the CHW worklist's data."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from browser.webseed import NORTH, PERIOD, SOUTH, build_warehouse, mrn, patient_id
from chc_equity.appdb import AppDB, database_url
from chc_equity.appdb.outreach import OutreachFields, create
from chc_equity.appdb.worklist import overlay
from chc_equity.vbp import hospital
from chc_equity.vbp.adt import read_hl7_text
from chc_equity.vbp.matching import Matcher

END = PERIOD[1]  # webseed: patient i of a center has a finished visit on END - i days
DISCHARGE = END - timedelta(days=5)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("hospital") / "wh.duckdb")


@pytest.fixture
def db(app_backend: str, warehouse: Path, tmp_path: Path):
    appdb = AppDB(database_url(warehouse) if app_backend == "postgresql" else tmp_path / "app.sqlite")
    yield appdb
    appdb.dispose()


def a03(cid: str, pid3: str, family: str, birth: str, day: date = DISCHARGE) -> str:
    pv1 = (
        ["PV1", "1", "I", "W"]
        + [""] * 15
        + [f"V{cid}"]
        + [""] * 24
        + [f"{day:%Y%m%d}0800", f"{day:%Y%m%d}1000"]
    )
    return "\r".join([
        f"MSH|^~\\&|ADT|MERCY|CHC|N|{day:%Y%m%d}1000||ADT^A03|{cid}|P|2.5.1",
        "EVN|A03",
        f"PID|1||{pid3}||{family}^Test||{birth}|||||",
        "|".join(pv1),
    ])  # fmt: skip


# the admission of M3's stay (same visit number VM3)
ADMIT_M3 = (
    a03("M3", "H3^^^MERCY^MR", "Family002", "19520116")
    .replace("A03|M3", "A01|M3a")
    .replace("EVN|A03", "EVN|A01")
)
FEED = "\r\r".join([
    a03("M1", f"H1^^^MERCY^MR~{mrn(NORTH, 0)}^^^NORTHMRN^MR", "Whoever", "19500115"),  # by MRN
    a03("M2", "H2^^^MERCY^MR", "Family001", "19510115"),  # by name + birth date
    ADMIT_M3,
    a03("M3", "H3^^^MERCY^MR", "Family002", "19520116"),  # birth date one digit off: review (A01 + A03)
    a03("M4", "H4^^^MERCY^MR", "Stranger", "19900101"),  # not our patient
    a03("M5", "", "Family003", "19530115"),  # no PID-3: quarantined
    a03("M2", "H2^^^MERCY^MR", "Family001", "19510115"),  # re-sent
])  # fmt: skip


def _import(db: AppDB, warehouse: Path) -> hospital.ImportSummary:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        patients = hospital.load_patients(con, NORTH)
    matcher = Matcher(patients, {"NORTHMRN": "urn:example:mrn"})
    with db.write() as s:
        return hospital.import_events(s, NORTH, read_hl7_text(FEED, "mercy.hl7"), matcher, "tester")


def test_import_match_review_and_transitions(db: AppDB, warehouse: Path) -> None:
    first = _import(db, warehouse)
    assert first == hospital.ImportSummary(
        events=5, duplicates=1, matched=2, review=2, unmatched=1, quarantined=1
    )
    again = _import(db, warehouse)  # the same file again: nothing new (quarantine is logged per import)
    assert (again.events, again.duplicates) == (0, 6)
    with db.read() as s:
        assert hospital.match_counts(s, NORTH) == {"matched": 2, "review": 2, "unmatched": 1}
        q = hospital.quarantine(s, NORTH)[0]
        assert (q.source, q.message_no, q.line, q.location) == ("mercy.hl7", 6, 26, "PID-3")
        admit_item, item = hospital.review_queue(s, NORTH)  # one per message of the stay
        assert (admit_item.event_type, item.event_type) == ("A01", "A03")
        assert (
            item.candidate_id == patient_id(NORTH, 2) and item.reason == "same name, birth date one edit away"
        )
        assert hospital.review_queue(s, SOUTH) == []
    with db.write() as s, pytest.raises(hospital.ReviewError) as stale:
        hospital.decide(s, NORTH, item.review_id, "confirm", "staff", version=item.version + 1)
    assert stale.value.status == 409
    with db.write() as s, pytest.raises(hospital.ReviewError) as other:
        hospital.decide(s, SOUTH, item.review_id, "confirm", "staff")  # another center's item
    assert other.value.status == 404
    with db.write() as s:
        event = hospital.decide(s, NORTH, item.review_id, "confirm", "staff", version=item.version)
        assert (event.patient_id, event.match_status, event.match_method) == (
            patient_id(NORTH, 2),
            "matched",
            "review",
        )
        # the stay's A01 (same hospital and visit number) was decided with it
        assert hospital.review_queue(s, NORTH) == []
        assert hospital.match_counts(s, NORTH) == {"matched": 4, "unmatched": 1}
    with db.write() as s, pytest.raises(hospital.ReviewError) as twice:
        hospital.decide(s, NORTH, item.review_id, "reject", "staff")
    assert twice.value.status == 409
    # outreach by the CHW program: patient 0 reached the next day, patient 1 only an attempt
    with db.write() as s:
        create(
            s,
            NORTH,
            patient_id(NORTH, 0),
            OutreachFields(DISCHARGE + timedelta(days=1), "phone", "reached", 5),
            "chw",
        )
        create(s, NORTH, patient_id(NORTH, 1), OutreachFields(DISCHARGE, "phone", "no_answer", 1), "chw")
    as_of = END + timedelta(days=20)
    with db.read() as s, duckdb.connect(str(warehouse), read_only=True) as con:
        rows = hospital.transition_list(s, con, NORTH, as_of, overlay(s, NORTH))
    by_patient = {r.transition.discharge.patient_id: r for r in rows}
    assert sorted(by_patient) == [patient_id(NORTH, i) for i in range(3)]
    p0, p1, p2 = (by_patient[patient_id(NORTH, i)] for i in range(3))
    assert p0.person.mrn == mrn(NORTH, 0) and p0.person.name == "Family000, Test"
    assert p0.transition.contact.done_on == DISCHARGE + timedelta(days=1)
    assert p1.transition.contact.status == "late" and p1.transition.attempts == 1
    assert p1.last_outreach == (DISCHARGE, "no_answer")
    # visits (webseed): patient i on END - i days, i.e. day 5 - i after the discharge
    assert p0.transition.visit7.done_on == END and p1.transition.visit7.done_on == END - timedelta(days=1)
    assert p2.transition.visit7.done_on == END - timedelta(days=2)


def test_cli_synth_import_review_transitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`chc-equity hospital synth-adt | import-adt | review | transitions` on a copy of the seeded warehouse
    (SQLite app database beside it)."""
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app

    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    wh = build_warehouse(tmp_path / "wh.duckdb")
    _register("hospital")
    runner = CliRunner(env={"COLUMNS": "240"})
    feed = tmp_path / "feed.hl7"
    made = runner.invoke(app, ["hospital", "synth-adt", str(feed), "-c", NORTH, "-w", str(wh), "--seed", "3",
                               "--stays", "30", "--start", str(END - timedelta(days=40))])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "urn:example:mrn" in made.output
    args = [
        "hospital",
        "import-adt",
        str(feed),
        "-c",
        NORTH,
        "-w",
        str(wh),
        "-a",
        "CENTERMRN=urn:example:mrn",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 quarantined" in first.output and "feed.hl7: message" in first.output
    again = runner.invoke(app, args)
    assert "0 events stored" in again.output and "60 already known" in again.output
    bundle = tmp_path / "partner.json"  # a FHIR partner: Encounter + Patient, identifier = our MRN system
    patient = {
        "resourceType": "Patient",
        "id": "x3",
        "name": [{"family": "Family003", "given": ["Test"]}],
        "identifier": [{"system": "urn:example:mrn", "value": mrn(NORTH, 3)}],
        "birthDate": "1953-01-15",
    }
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "EMER"},
                 "subject": {"reference": "Patient/x3"}, "period": {"start": f"{DISCHARGE}T01:00:00Z",
                 "end": f"{DISCHARGE}T05:00:00Z"}}  # fmt: skip
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": patient}, {"resource": encounter}]}))  # fmt: skip
    fhir = runner.invoke(app, ["hospital", "import-adt", str(bundle), "-c", NORTH, "-w", str(wh),
                               "--hospital", "PARTNER"])  # fmt: skip
    assert fhir.exit_code == 0 and "1 events stored (1 matched" in fhir.output, fhir.output
    listed = runner.invoke(app, ["hospital", "transitions", "-c", NORTH, "-w", str(wh), "--as-of", str(END)])
    assert listed.exit_code == 0 and "Transitions of care" in listed.output, listed.output
    assert any(h in listed.output for h in ("MERCY", "STLUKE", "GENERAL")) and "Family0" in listed.output
    assert "PARTNER" in listed.output and mrn(NORTH, 3) in listed.output
    rates_cmd = [
        "hospital",
        "transitions",
        "-c",
        NORTH,
        "-w",
        str(wh),
        "--as-of",
        str(END),
        "--rates",
        "hospital",
    ]
    rates_out = runner.invoke(app, rates_cmd)
    assert rates_out.exit_code == 0 and "contact_2bd" in rates_out.output, rates_out.output
    review = runner.invoke(app, ["hospital", "review", "-c", NORTH, "-w", str(wh)])
    assert review.exit_code == 0 and "Matches to review" in review.output
    bad = runner.invoke(app, ["hospital", "review", "-c", NORTH, "-w", str(wh), "--confirm", "999999"])
    assert bad.exit_code == 1 and "no review item 999999" in bad.output
