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


def test_cli_indicators_from_the_app_database(tmp_path, app_backend) -> None:
    """`chc-equity chw indicators` reads panels and outreach from the app database (SQLite, PostgreSQL) and
    the language of each patient from the warehouse's patient_attributes; values computed by hand."""
    from datetime import UTC, datetime

    from sqlalchemy import update
    from typer.testing import CliRunner

    import chc_equity.cli.outreach  # noqa: F401 - registers `chw`
    from chc_equity.appdb import chw as chws
    from chc_equity.appdb import open_for_warehouse
    from chc_equity.appdb import outreach as records
    from chc_equity.appdb.models import Assignment
    from chc_equity.cli import app
    from chc_equity.warehouse import connect

    wh = tmp_path / "wh.duckdb"
    con = connect(wh)
    # Ana: p0-p39 Spanish, p40-p69 English, p70-p79 Portuguese; "=Bo": q1, q2 Portuguese
    langs = {f"p{i}": "es" if i < 40 else "en" if i < 70 else "pt" for i in range(80)} | {
        "q1": "pt",
        "q2": "pt",
    }
    con.execute("CREATE TABLE patient_attributes (center VARCHAR, patient_id VARCHAR, language VARCHAR)")
    con.executemany("INSERT INTO patient_attributes VALUES ('c1', ?, ?)", [list(kv) for kv in langs.items()])
    # the social-needs stage's referral loop: r1 (two domains, closed after 10 days), r2 open, r3 of a
    # patient not enrolled, r4 of another center
    con.execute(
        "CREATE TABLE sdoh_referral (center VARCHAR, patient_id VARCHAR, referral_id VARCHAR, "
        "domain VARCHAR, authored DATE, closed BOOLEAN, days_to_closure INTEGER)"
    )
    con.execute(
        "INSERT INTO sdoh_referral VALUES ('c1', 'p0', 'r1', 'food', '2026-01-05', true, 10), "
        "('c1', 'p0', 'r1', 'housing', '2026-01-05', true, 10), "
        "('c1', 'p1', 'r2', 'food', '2026-01-06', false, NULL), "
        "('c1', 'z9', 'r3', 'food', '2026-01-06', true, 3), ('c2', 'p0', 'r4', 'food', '2026-01-06', true, 1)"
    )
    con.close()
    db = open_for_warehouse(wh)
    with db.write() as s:
        ana = chws.add_chw(s, "c1", "Ana", "pm")
        bo = chws.add_chw(s, "c1", "=Bo", "pm")  # a name a spreadsheet would run as a formula
        chws.assign(s, "c1", ana.id, [f"p{i}" for i in range(80)], "pm")
        chws.assign(s, "c1", bo.id, ["q1", "q2"], "pm")
        s.execute(update(Assignment).values(assigned_at=datetime(2026, 1, 1, tzinfo=UTC)))
        # reached: 30 of 40 es, 12 of 30 en, 4 of 10 pt (Ana) + q1 (Bo); each reached patient first had a
        # no-answer 2 days after enrolment and was reached on day 10
        reached = [f"p{i}" for i in (*range(30), *range(40, 52), *range(70, 74))] + ["q1"]
        for pid in reached:
            chw = bo.id if pid.startswith("q") else ana.id
            for day, outcome in ((date(2026, 1, 3), "no_answer"), (date(2026, 1, 11), "reached")):
                records.create(
                    s, "c1", pid, records.OutreachFields(day, "phone", outcome, 5, chw_id=chw), "u"
                )
    out = tmp_path / "ind"
    args = ["--from", "2026-01-01", "--to", "2026-01-31", "--by", "language", "--warehouse", str(wh)]
    result = CliRunner().invoke(app, ["chw", "indicators", "--center", "c1", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "82 enrolled with 2 CHWs, 47 reached (57%)" in result.output
    per_chw = pd.read_csv(out / "chw_indicators.csv").set_index("chw")
    assert sorted(per_chw.index) == ["'=Bo", "Ana"]  # the formula neutralized in the file
    ana_row = per_chw.loc["Ana"]
    assert (ana_row["enrolled"], ana_row["attempted"], ana_row["reached"]) == (80, 46, 46)
    assert ana_row["reach_rate"] == pytest.approx(46 / 80)
    assert ana_row["median_days_to_first_attempt"] == 2 and ana_row["median_days_to_first_contact"] == 10
    assert ana_row["contacts"] == 92
    assert ana_row["contacts_per_patient_month"] == pytest.approx(92 / (80 * 31 / 30.4375))
    referrals = pd.read_csv(out / "referrals.csv").iloc[0]
    assert (referrals["made"], referrals["closed"]) == (2, 1)
    assert referrals["closure_rate"] == 0.5 and referrals["median_days_to_close"] == 10
    by_lang = pd.read_csv(out / "reach_by_language.csv").set_index("stratum")
    # pt: 5 of 12 reached, a cell under 11, hidden; one complement (es or en) is hidden with it, so that
    # it cannot be recovered from the total; the one stratum left shows its hand-computed counts
    assert bool(by_lang.loc["pt", "suppressed"]) and pd.isna(by_lang.loc["pt", "numerator"])
    shown = by_lang[~by_lang["suppressed"].astype(bool)]
    assert len(shown) == 1
    ((stratum, row),) = shown.iterrows()
    assert (row["numerator"], row["denominator"]) == {"es": (30, 40), "en": (12, 30)}[stratum]
