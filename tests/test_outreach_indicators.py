"""CHW program indicators on small hand-computed record sets, and equity stratification with suppression."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from chc_equity.outreach.indicators import (
    caseload,
    closure_summary,
    contacts_per_patient_month,
    gap_closure_by_reach,
    reach,
    reach_per_patient,
    referral_closure,
    stratify,
)

PANEL = pd.DataFrame(
    {
        "patient_id": ["a", "b", "c", "d", "e"],
        "chw": ["ana", "ana", "ana", "bo", "bo"],
        "enrolled_on": ["2026-01-01", "2026-01-01", "2026-02-01", "2026-01-15", "2026-03-01"],
    }
)
OUTREACH = pd.DataFrame(
    {
        "patient_id": ["a", "a", "b", "d", "d", "d", "x"],
        "chw": ["ana", "ana", "ana", "bo", "bo", "bo", "bo"],
        "day": [
            "2026-01-05",
            "2026-01-10",
            "2026-01-03",
            "2026-01-20",
            "2026-01-25",
            "2026-02-14",
            "2026-01-01",
        ],
        "outcome": ["no-answer", "reached", "wrong-number", "no-answer", "no-answer", "reached", "reached"],
    }
)


def test_caseload_reach_and_days_to_first_contact() -> None:
    assert caseload(PANEL).to_dict("records") == [
        {"chw": "ana", "patients": 3},
        {"chw": "bo", "patients": 2},
    ]
    r = reach(PANEL, OUTREACH).set_index("chw")
    assert r.loc["ana", ["enrolled", "attempted", "reached"]].tolist() == [3, 2, 1]
    assert r.loc["ana", "reach_rate"] == pytest.approx(1 / 3)
    assert r.loc["ana", "median_days_to_first_attempt"] == 3.0  # a: 4 days, b: 2 days
    assert r.loc["ana", "median_days_to_first_contact"] == 9.0  # a: reached on day 9
    assert r.loc["bo", ["enrolled", "attempted", "reached"]].tolist() == [2, 1, 1]  # x is not enrolled
    assert r.loc["bo", "median_days_to_first_contact"] == 30.0  # d: 2026-01-15 -> 2026-02-14


def test_contacts_per_enrolled_patient_month() -> None:
    out = contacts_per_patient_month(PANEL, OUTREACH, date(2026, 1, 1), date(2026, 3, 31)).set_index("chw")
    # ana: a, b 90 days each, c 59 days -> 239 days; 3 contacts
    assert out.loc["ana", "contacts"] == 3
    assert out.loc["ana", "patient_months"] == pytest.approx(239 / 30.4375)
    assert out.loc["ana", "contacts_per_patient_month"] == pytest.approx(3 / (239 / 30.4375))
    assert out.loc["bo", "contacts"] == 3  # x is not on a panel


def test_referrals_made_and_closed() -> None:
    refs = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "d"],
            "made_on": ["2026-01-01", "2026-01-10", "2026-02-01", "2026-03-01"],
            "closed_on": ["2026-01-11", None, "2026-02-21", None],
        }
    )
    assert referral_closure(refs) == {
        "made": 4,
        "closed": 2,
        "closure_rate": 0.5,
        "median_days_to_close": 15.0,
    }


def test_gap_closure_within_90_days_reached_vs_not() -> None:
    gaps = pd.DataFrame(
        {
            "patient_id": ["a", "b", "d", "e", "a"],
            "opened_on": ["2026-01-01", "2026-01-01", "2026-01-15", "2026-03-01", "2025-06-01"],
            "closed_on": ["2026-02-01", "2026-03-01", "2026-06-30", None, "2025-07-01"],
        }
    )
    per = gap_closure_by_reach(gaps, OUTREACH)
    # a (2026): reached on 01-10, closed in 31 days; b: never reached, closed in 59 days;
    # d: reached 02-14, closed after 166 days; e: not reached, open; a (2025): reach was > 90 days later
    assert per["reached"].tolist() == [True, False, True, False, False]
    assert per["closed"].tolist() == [True, True, False, False, True]
    summary = closure_summary(per).set_index("group")
    assert summary.loc["reached", ["gaps", "closed"]].tolist() == [2, 1]
    assert summary.loc["not reached", ["gaps", "closed"]].tolist() == [3, 2]
    assert summary.loc["not reached", "closure_rate"] == pytest.approx(2 / 3)


def test_reach_stratified_by_language_with_suppression() -> None:
    n_es, n_en, n_pt = 45, 60, 5
    panel = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(n_es + n_en + n_pt + 3)],
            "chw": "ana",
            "enrolled_on": "2026-01-01",
        }
    )
    langs = ["es"] * n_es + ["en"] * n_en + ["pt"] * n_pt  # the last 3 have no attribute row
    attrs = pd.DataFrame({"patient_id": [f"p{i}" for i in range(len(langs))], "language": langs})
    reached_ids = [f"p{i}" for i in range(30)] + [f"p{i}" for i in range(n_es, n_es + 30)]
    outreach = pd.DataFrame(
        {"patient_id": reached_ids, "chw": "ana", "day": "2026-01-05", "outcome": "reached"}
    )
    out = stratify(reach_per_patient(panel, outreach), attrs, "language", numerator="reached").set_index(
        "stratum"
    )
    assert set(out.index) == {"en", "es", "pt", "Unknown"}
    hand = {"es": (30, 45), "en": (30, 60), "pt": (0, 5), "Unknown": (0, 3)}
    for stratum, (x, d) in hand.items():
        row = out.loc[stratum]
        assert row["numerator"] in (x, None) or pd.isna(row["numerator"])
        assert row["denominator"] in (d, None) or pd.isna(row["denominator"])
        if not row["suppressed"]:
            assert (row["numerator"], row["denominator"], row["rate"]) == (x, d, pytest.approx(x / d))
    assert out.loc["pt", "suppressed"] and out.loc["Unknown", "suppressed"]  # 5 and 3 patients: below 11
    assert not out.loc["en", "suppressed"] and out.loc["en", "rate"] == pytest.approx(0.5)
    # 5 + 3 hidden patients are fewer than 11, so one more stratum is hidden as a complement
    assert out["suppressed"].sum() == 3
    assert bool(out.loc["en", "is_reference"])
