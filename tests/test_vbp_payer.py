"""Payer gap files (CSV and DEQM $care-gaps) and their merge with our gaps; cost and use per payer,
month and stratum on hand-built claims (docs/vbp.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from chc_equity.vbp.cost import Claim, by_stratum, cost_use, read_claims_csv, total_cost
from chc_equity.vbp.payer_gaps import PayerGap, merge, read_care_gaps, read_gaps_csv

D = date.fromisoformat
GAP_EXT = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-gapStatus"


def _issue(i: str, code: str, report: str) -> dict:
    return {
        "resourceType": "DetectedIssue",
        "id": i,
        "status": "final",
        "patient": {"reference": "Patient/x"},
        "modifierExtension": [{"url": GAP_EXT, "valueCodeableConcept": {"coding": [{"code": code}]}}],
        "evidence": [{"detail": [{"reference": f"MeasureReport/{report}"}]}],
    }


def test_deqm_care_gaps_parameters():
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {"resource": r}
            for r in [
                {"resourceType": "Composition", "id": "c"},
                {
                    "resourceType": "Patient",
                    "id": "x",
                    "name": [{"family": "Doe", "given": ["Jo"]}],
                    "birthDate": "1960-02-02",
                    "identifier": [
                        {"type": {"coding": [{"code": "MB"}]}, "value": "M-1"},
                        {"value": "other"},
                    ],
                },
                {
                    "resourceType": "MeasureReport",
                    "id": "r1",
                    "measure": "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR|0.2.000",
                },
                {"resourceType": "MeasureReport", "id": "r2", "measure": "http://example.org/Measure/BCS-E"},
                {
                    "resourceType": "MeasureReport",
                    "id": "r3",
                    "measure": "http://example.org/Measure/Unknown",
                },
                _issue("i1", "open-gap", "r1"),
                _issue("i2", "closed-gap", "r2"),
                _issue("i3", "not-applicable", "r3"),
                _issue("i4", "prospective-gap", "r3"),
                _issue("i5", "open-gap", "missing"),
            ]
        ],
    }
    gaps, rejects = read_care_gaps(
        {"resourceType": "Parameters", "parameter": [{"name": "return", "resource": bundle}]},
        "Plan A",
        "cg.json",
    )
    assert [(g.member_id, g.measure, g.cms_id, g.status) for g in gaps] == [
        ("M-1", "ControllingHighBloodPressureFHIR", "CMS165", "open"),
        ("M-1", "BCS-E", "CMS125", "closed"),
        ("M-1", "Unknown", None, "open"),
    ]
    assert gaps[0].identifiers == ("M-1", "other") and gaps[0].birth_date == D("1960-02-02")
    assert [(r.line, r.field) for r in rejects] == [(5, "DetectedIssue")]


def test_gap_csv_and_merge_table():
    text = (
        "payer,member_id,last_name,first_name,birth_date,measure,status\n"
        "A,M1,Doe,Jo,1960-01-01,CBP,open\n"
        "A,M2,Roe,Al,1961-01-01,CBP,open\n"
        "A,M3,Poe,Ed,1962-01-01,COL,open\n"
        "A,M4,Moe,Cy,1963-01-01,BCS,closed\n"
        "A,M5,Zoe,Di,1964-01-01,CBP,maybe\n"
        "A,M6,Koe,Bo,,XYZ,open\n"
    )
    gaps, rejects = read_gaps_csv(text, "g.csv")
    assert [(r.line, r.field) for r in rejects] == [(6, "status")]
    linked = list(zip(gaps, ["p1", "p2", "p3", "p4", None], strict=True))
    center = {
        ("p1", "CMS165"): "open",
        ("p2", "CMS165"): "closed",
        ("p4", "CMS125"): "open",
        ("p9", "CMS122"): "open",
        ("p8", "CMS122"): "open",
        ("p1", "CMS122"): "closed",
    }
    rows = merge(linked, center, attributed={"p1", "p2", "p3", "p4", "p9"})
    assert [(d.agreement, d.patient_id, d.cms_id) for d in rows] == [
        ("submit", "p2", "CMS165"),  # payer open, our record closed: supplemental data
        ("payer-closed", "p4", "CMS125"),  # payer closed, ours open: update the chart
        ("both-open", "p1", "CMS165"),
        ("payer-only", None, None),  # an unknown measure of an unlinked member
        ("payer-only", "p3", "CMS130"),  # not in our denominator
        ("center-only", "p9", "CMS122"),  # p8 is not attributed: not listed
    ]


def test_cost_and_use_hand_computed():
    c = lambda i, m, d, s, paid, p="A": Claim(i, p, m, D(d), s, Decimal(paid))  # noqa: E731
    claims = [
        c("1", "m1", "2026-01-05", "outpatient", "100.00"),
        c("2", "m1", "2026-01-20", "ed", "900.00"),
        c("3", "m2", "2026-01-10", "inpatient", "5000.00"),
        c("4", "m2", "2026-02-10", "ed", "700.00"),
        c("5", "m3", "2026-02-11", "outpatient", "50.00"),  # m3 not attributed in February: left out
        c("6", "m1", "2026-02-01", "ed", "300.00", p="B"),  # a payer m1 is not attributed to
    ]
    months = {
        ("A", "m1"): {D("2026-01-01"), D("2026-02-01")},
        ("A", "m2"): {D("2026-01-01"), D("2026-02-01")},
        ("A", "m3"): {D("2026-01-01")},
    }
    rows = {(r.payer, r.month.month): r for r in cost_use(claims, months)}
    jan, feb = rows[("A", 1)], rows[("A", 2)]
    assert (jan.member_months, jan.paid, jan.ed_visits, jan.admissions) == (3, Decimal("6000.00"), 1, 1)
    assert jan.pmpm == Decimal("2000.00") and jan.per_1000(1) == Decimal("333.3")
    assert (feb.member_months, feb.paid, feb.pmpm, feb.ed_visits) == (
        2,
        Decimal("700.00"),
        Decimal("350.00"),
        1,
    )
    assert total_cost(claims, months, "A") == 6700
    # strata: 12 members in "X" and 3 in "Y": Y is under 11; the total is published, so X must go too
    many = {("A", f"x{i}"): {D("2026-01-01")} for i in range(12)} | {
        ("A", f"y{i}"): {D("2026-01-01")} for i in range(3)
    }
    strata = {k: ("X" if k[1].startswith("x") else "Y") for k in many}
    out = {r.stratum: r for r in by_stratum([c("9", "x0", "2026-01-03", "ed", "10")], many, strata)}
    assert out["Y"].members is None and out["Y"].pmpm is None
    assert out["X"].members is None  # complementary suppression
    big = many | {("A", f"y{i}"): {D("2026-01-01")} for i in range(3, 11)}
    out = {
        r.stratum: r
        for r in by_stratum(
            [c("9", "x0", "2026-01-03", "ed", "12")],
            big,
            strata | {("A", f"y{i}"): "Y" for i in range(3, 11)},
        )
    }
    # X's one ED visit: 83.3 per 1,000 of its 12 member months would give it back, so the rate is hidden
    assert (out["X"].members, out["X"].member_months, out["X"].pmpm, out["X"].ed_per_1000) == (
        12,
        12,
        Decimal("1.00"),
        None,
    )
    assert out["Y"].members == 11 and out["Y"].ed_per_1000 == Decimal("0.0")  # a zero is published


def test_claims_csv_rejects():
    text = (
        "claim_id,payer,member_id,service_date,setting,paid_amount\n"
        '1,A,m1,2026-01-05,ED,"$1,200.50"\n'
        "2,A,m1,2026-13-05,ed,1\n"
        "3,A,m1,2026-01-05,lab,1\n"
        "4,A,m1,2026-01-05,ed,abc\n"
    )
    claims, rejects = read_claims_csv(text, "c.csv")
    assert [(x.setting, x.paid) for x in claims] == [("ed", Decimal("1200.50"))]
    assert [(r.line, r.field) for r in rejects] == [(3, "service_date"), (4, "setting"), (5, "paid_amount")]


def test_payer_gap_unknown_measure_has_no_cms_id():
    assert PayerGap("A", "m", "", "", None, "XYZ", "open").cms_id is None
    assert PayerGap("A", "m", "", "", None, "cbp", "open").cms_id == "CMS165"
