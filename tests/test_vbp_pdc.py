"""PDC (PQA method) on hand-built fills: overlapping fills of the same drug shifted, different drugs not,
the 91-day and two-fill rules at the period's edges, exclusions and death (docs/vbp.md, "PDC")."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from chc_equity.vbp.pdc import Fill, below_threshold, classify, pdc, pdc_all, summary

D = date.fromisoformat
Y0, Y1 = D("2026-01-01"), D("2026-12-31")


def f(pid: str, day: str, supply: int, drug: str) -> Fill:
    return Fill(pid, D(day), supply, drug)


FILLS = [
    # p1: Jan 1 covers Jan 1-30; the Jan 20 refill is shifted to Jan 31 - Mar 1; Mar 15 covers 90 days
    f("p1", "2026-01-01", 30, "atorvastatin 20 MG Oral Tablet"),
    f("p1", "2026-01-20", 30, "atorvastatin 20 MG Oral Tablet"),
    f("p1", "2026-03-15", 90, "Atorvastatin 40 mg tab"),
    # p2: two different RAS drugs overlap: not shifted (Jul 1 - Aug 14 = 45 days of Jul 1 - Dec 31 = 184)
    f("p2", "2026-07-01", 30, "lisinopril 10 MG"),
    f("p2", "2026-07-16", 30, "losartan potassium 50 MG"),
    # p3: first fill Oct 1 (92 days to Dec 31); the Dec 1 refill shifts to Dec 30: 2 days left in the period
    f("p3", "2026-10-01", 90, "metformin 500 MG"),
    f("p3", "2026-12-01", 90, "metformin 500 MG"),
    # p4: first fill Oct 2: exactly 91 days, still eligible; covered Oct 2 - Dec 31
    f("p4", "2026-10-02", 90, "glipizide 5 MG"),
    f("p4", "2026-12-31", 30, "glipizide 5 MG"),
    # p5: first fill Oct 3: 90 days, not eligible
    f("p5", "2026-10-03", 30, "simvastatin 20 MG"),
    f("p5", "2026-11-03", 30, "simvastatin 20 MG"),
    # p6: two fills on the same day: one unique date of service, not eligible
    f("p6", "2026-02-01", 30, "rosuvastatin 10 MG"),
    f("p6", "2026-02-01", 30, "rosuvastatin 10 MG"),
    # p7: insulin in the period: excluded from PDC-DR
    f("p7", "2026-01-05", 30, "metformin 1000 MG"),
    f("p7", "2026-02-05", 30, "metformin 1000 MG"),
    f("p7", "2026-03-05", 30, "insulin glargine 100 UNT/ML"),
    # p8: the December 2025 fill is outside the period (no carry-in): index Feb 1, 334 days, 60 covered
    f("p8", "2025-12-15", 90, "pravastatin 40 MG"),
    f("p8", "2026-02-01", 30, "pravastatin 40 MG"),
    f("p8", "2026-03-01", 30, "pravastatin 40 MG"),
    # p9: died Jun 30: treatment Jan 1 - Jun 30 = 181 days; covered Jan 1 - Mar 31 and Apr 1 - Jun 29 = 180
    f("p9", "2026-01-01", 90, "atorvastatin 10 MG"),
    f("p9", "2026-04-01", 90, "atorvastatin 10 MG"),
    # p10: sacubitril/valsartan: excluded from PDC-RASA
    f("p10", "2026-01-01", 30, "sacubitril 49 MG / valsartan 51 MG"),
    f("p10", "2026-02-01", 30, "sacubitril 49 MG / valsartan 51 MG"),
]


def by(results, pid, cls):
    return next(r for r in results if r.patient_id == pid and r.drug_class == cls)


def test_pdc_equals_hand_computed():
    res = pdc_all(FILLS, Y0, Y1, deaths={"p9": D("2026-06-30")})
    got = {
        (r.patient_id, r.drug_class): (r.eligible, r.index_date, r.treatment_days, r.covered_days)
        for r in res
    }
    assert got[("p1", "statins")] == (True, D("2026-01-01"), 365, 150)
    assert got[("p2", "ras")] == (True, D("2026-07-01"), 184, 45)
    assert got[("p3", "diabetes")] == (True, D("2026-10-01"), 92, 92)
    assert got[("p4", "diabetes")] == (True, D("2026-10-02"), 91, 91)
    assert got[("p8", "statins")] == (True, D("2026-02-01"), 334, 60)
    assert got[("p9", "statins")] == (True, D("2026-01-01"), 181, 180)
    assert by(res, "p1", "statins").pdc == Fraction(150, 365)
    assert by(res, "p9", "statins").adherent is True
    for pid, cls, reason in [
        ("p5", "statins", "91 days"),
        ("p6", "statins", "unique dates"),
        ("p7", "diabetes", "exclusion"),
        ("p10", "ras", "exclusion"),
    ]:
        r = by(res, pid, cls)
        assert not r.eligible and reason in r.reason and r.pdc is None


def test_same_drug_shifted_different_drugs_not():
    same = [f("q", "2026-07-01", 30, "lisinopril"), f("q", "2026-07-16", 30, "lisinopril")]
    assert pdc("q", same, "ras", Y0, Y1).covered_days == 60
    other = [f("q", "2026-07-01", 30, "lisinopril"), f("q", "2026-07-16", 30, "losartan")]
    assert pdc("q", other, "ras", Y0, Y1).covered_days == 45


def test_below_80_list_and_summary():
    res = pdc_all(FILLS, Y0, Y1, deaths={"p9": D("2026-06-30")})
    assert [(r.patient_id, r.drug_class) for r in below_threshold(res)] == [
        ("p8", "statins"),  # 60/334 = 18.0 %
        ("p2", "ras"),  # 45/184 = 24.5 %
        ("p1", "statins"),  # 150/365 = 41.1 %
    ]
    assert summary(res) == {"statins": (3, 1), "ras": (1, 0), "diabetes": (2, 2)}


def test_classify():
    assert classify("Amlodipine 5 MG / Atorvastatin 10 MG", "statins") == ("target", "atorvastatin")
    assert classify("Insulin Lispro", "diabetes") == ("exclude", "insulin")
    assert classify("amlodipine", "ras") is None
