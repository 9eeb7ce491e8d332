"""Claims and fills from FHIR resources already in the warehouse (Claim -> cost and use, MedicationDispense
-> PDC), through ingest and the SQL-on-FHIR views, on a hand-built patient."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from chc_equity.ingest import load
from chc_equity.vbp import report, store
from chc_equity.vbp.roster import read_roster_csv
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "birthDate": "1960-01-01",
    "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
    "name": [{"family": "Doe", "given": ["Jo"]}],
}


def _dispense(i: str, day: str, supply: int, drug: str, status: str = "completed") -> dict:
    return {
        "resourceType": "MedicationDispense",
        "id": i,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {
            "coding": [
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "617310", "display": drug}
            ]
        },
        "whenHandedOver": f"{day}T10:00:00Z",
        "daysSupply": {"value": supply, "unit": "d"},
    }


def _claim(i: str, day: str, encounter: str, total: str) -> dict:
    return {
        "resourceType": "Claim",
        "id": i,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": f"{day}T00:00:00Z",
        "billablePeriod": {"start": f"{day}T08:00:00Z"},
        "item": [
            {
                "sequence": 1,
                "encounter": [{"reference": f"Encounter/{encounter}"}],
                "productOrService": {"text": "visit"},
            }
        ],
        "total": {"value": float(total), "currency": "USD"},
    }


def _encounter(i: str, day: str, cls: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": i,
        "status": "finished",
        "subject": {"reference": "Patient/p1"},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "period": {"start": f"{day}T08:00:00Z", "end": f"{day}T09:00:00Z"},
    }


def test_claims_and_dispenses_from_the_warehouse(tmp_path: Path) -> None:
    data = tmp_path / "hc"
    data.mkdir()
    resources = {
        "Patient": [PATIENT],
        "Encounter": [
            _encounter("e1", "2026-03-02", "EMER"),
            _encounter("e2", "2026-04-02", "IMP"),
            _encounter("e3", "2026-05-02", "AMB"),
        ],
        "Claim": [
            _claim("c1", "2026-03-02", "e1", "1200.5"),
            _claim("c2", "2026-04-02", "e2", "9000"),
            _claim("c3", "2026-05-02", "e3", "150"),
            _claim("c4", "2025-05-02", "e3", "99"),
        ],
        "MedicationDispense": [
            _dispense("d1", "2026-01-01", 30, "atorvastatin 20 MG Oral Tablet"),
            _dispense("d2", "2026-01-20", 30, "atorvastatin 20 MG Oral Tablet"),
            _dispense("d3", "2026-03-15", 90, "atorvastatin 40 MG Oral Tablet"),
            _dispense("d4", "2026-06-01", 90, "atorvastatin 40 MG", status="cancelled"),
        ],
    }
    for kind, rows in resources.items():
        (data / f"{kind}.ndjson").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    con = connect(tmp_path / "wh.duckdb")
    try:
        load(con, [data], "hc", after_load=lambda c, center: build_views(c, centers=[center]))
        members, _ = read_roster_csv(
            "payer,member_id,last_name,first_name,birth_date,attribution_start,mrn\n"
            "Plan,M1,Doe,Jo,1960-01-01,2026-01-01,MRN-1\n"
        )
        assert store.import_roster(con, "hc", members, [], "r.csv") == {"rejected": 0, "identifier": 1}
        claims = report.warehouse_claims(con, "hc")  # c4 is before the attribution: no member, left out
        assert sorted((c.claim_id, c.setting, c.paid, c.member_id) for c in claims) == [
            ("c1", "ed", Decimal("1200.50"), "M1"),
            ("c2", "inpatient", Decimal("9000.00"), "M1"),
            ("c3", "outpatient", Decimal("150.00"), "M1"),
        ]
        store.import_claims(con, "hc", claims, [], "fhir:Claim")
        fills = report.fills_from_warehouse(con, "hc")
        assert sorted((f.day, f.days_supply) for f in fills) == [
            (date(2026, 1, 1), 30),
            (date(2026, 1, 20), 30),
            (date(2026, 3, 15), 90),
        ]
        store.import_fills(con, "hc", [(f, None) for f in fills], [], "fhir:MedicationDispense")
        (r,) = report.pdc_view(con, "hc", 2026)
        assert (r.drug_class, r.treatment_days, r.covered_days) == ("statins", 365, 150)
        rows, _, _ = report.cost_view(con, "hc", date(2026, 1, 1), date(2026, 12, 31))
        by_month = {x.month.month: x for x in rows}
        assert (by_month[3].ed_visits, by_month[4].admissions, by_month[5].paid) == (1, 1, Decimal("150.00"))
        assert sum(x.member_months for x in rows) == 12
    finally:
        con.close()
