"""Transitions of care (issue 21, item 5): business days across weekends and federal holidays, the
2-business-day contact and 7/14-day visit windows, and follow-up rates, on hand-computed fixtures."""

from __future__ import annotations

from datetime import date

import pytest

from chc_equity.vbp.transitions import (
    Discharge,
    add_business_days,
    dedupe_discharges,
    federal_holidays,
    rates,
    transition,
)

D = date


def test_federal_holidays_2024_as_published_by_opm() -> None:
    assert sorted(federal_holidays(2024)) == [
        D(2024, 1, 1), D(2024, 1, 15), D(2024, 2, 19), D(2024, 5, 27), D(2024, 6, 19), D(2024, 7, 4),
        D(2024, 9, 2), D(2024, 10, 14), D(2024, 11, 11), D(2024, 11, 28), D(2024, 12, 25),
    ]  # fmt: skip


def test_observed_holidays_move_off_weekends() -> None:
    # 2022-01-01 was a Saturday: observed Friday 2021-12-31 (in 2021's list, not 2022's)
    assert D(2021, 12, 31) in federal_holidays(2021) and D(2022, 1, 1) not in federal_holidays(2022)
    assert D(2021, 6, 18) in federal_holidays(2021)  # Juneteenth 2021 (Saturday) observed Friday
    assert D(2022, 6, 20) in federal_holidays(2022)  # Juneteenth 2022 (Sunday) observed Monday
    assert D(2023, 11, 10) in federal_holidays(2023)  # Veterans Day 2023 (Saturday) observed Friday
    assert not any(d.month == 6 and d.day in (18, 19, 20) for d in federal_holidays(2020))  # before 2021


# (discharge date, 2nd business day after it): counted by hand on a calendar.
CONTACT_DUE = [
    (D(2024, 7, 1), D(2024, 7, 3)),  # Mon -> Tue, Wed
    (D(2024, 7, 3), D(2024, 7, 8)),  # Wed -> (Thu Jul 4 holiday) Fri, (weekend) Mon
    (D(2024, 7, 5), D(2024, 7, 9)),  # Fri -> Mon, Tue
    (D(2024, 7, 6), D(2024, 7, 9)),  # Sat -> Mon, Tue
    (D(2024, 7, 7), D(2024, 7, 9)),  # Sun -> Mon, Tue
    (D(2024, 11, 8), D(2024, 11, 13)),  # Fri -> (Mon Veterans Day) Tue, Wed
    (D(2024, 11, 27), D(2024, 12, 2)),  # Wed -> (Thanksgiving) Fri, Mon
    (D(2024, 12, 20), D(2024, 12, 24)),  # Fri -> Mon, Tue (Christmas Eve is a business day)
    (D(2024, 12, 23), D(2024, 12, 26)),  # Mon -> Tue, (Christmas) Thu
    (D(2024, 12, 30), D(2025, 1, 2)),  # Mon -> Tue, (New Year) Thu
    (D(2021, 12, 30), D(2022, 1, 4)),  # Thu -> (Fri Dec 31 observed New Year) Mon, Tue
    (D(2024, 6, 18), D(2024, 6, 21)),  # Tue -> (Juneteenth) Thu, Fri
    (D(2024, 1, 12), D(2024, 1, 17)),  # Fri -> (MLK Day) Tue, Wed
]


@pytest.mark.parametrize(("discharged", "due"), CONTACT_DUE, ids=[str(d) for d, _ in CONTACT_DUE])
def test_contact_due_is_the_second_business_day(discharged: date, due: date) -> None:
    assert add_business_days(discharged, 2) == due


def _d(day: date, event_id: int = 1, patient: str = "p1", hospital: str = "MERCY") -> Discharge:
    return Discharge(event_id, patient, hospital, "I", None, day)


def test_windows_of_one_discharge_by_hand() -> None:
    d = _d(D(2024, 7, 3))  # Wed before July 4: contact due Mon Jul 8, visits by Jul 10 / Jul 17
    contacts = [(D(2024, 7, 5), "no_answer"), (D(2024, 7, 8), "reached"), (D(2024, 7, 9), "reached")]
    t = transition(d, contacts, [D(2024, 7, 3), D(2024, 7, 11), D(2024, 7, 16)], as_of=D(2024, 7, 20))
    assert (t.contact.due, t.contact.done_on, t.contact.status) == (D(2024, 7, 8), D(2024, 7, 8), "done")
    assert t.attempts == 1
    # the discharge-day visit is day 0 and never counts; Jul 11 is day 8: late for 7, done for 14
    assert (t.visit7.due, t.visit7.done_on, t.visit7.status) == (D(2024, 7, 10), None, "late")
    assert (t.visit14.due, t.visit14.done_on, t.visit14.status) == (D(2024, 7, 17), D(2024, 7, 11), "done")


@pytest.mark.parametrize(
    ("visit", "as_of", "s7", "s14"),
    [
        (D(2024, 3, 8), D(2024, 3, 30), "done", "done"),  # day 7
        (D(2024, 3, 9), D(2024, 3, 30), "late", "done"),  # day 8
        (D(2024, 3, 15), D(2024, 3, 30), "late", "done"),  # day 14
        (D(2024, 3, 16), D(2024, 3, 30), "late", "late"),  # day 15
        (D(2024, 3, 1), D(2024, 3, 30), "late", "late"),  # day 0
        (None, D(2024, 3, 8), "due", "due"),  # as of day 7: both windows still open
        (None, D(2024, 3, 9), "late", "due"),  # as of day 8
    ],
)
def test_visit_window_edges(visit: date | None, as_of: date, s7: str, s14: str) -> None:
    t = transition(_d(D(2024, 3, 1)), [], [visit] if visit else [], as_of)
    assert (t.visit7.status, t.visit14.status) == (s7, s14)


def test_contact_on_the_discharge_day_counts_and_after_the_due_day_does_not() -> None:
    fri = D(2024, 7, 5)  # due Tue Jul 9
    assert transition(_d(fri), [(fri, "reached")], [], D(2024, 7, 10)).contact.status == "done"
    late = transition(_d(fri), [(D(2024, 7, 10), "reached")], [], D(2024, 7, 10))
    assert late.contact.status == "late" and late.contact.done_on is None
    assert transition(_d(fri), [], [], D(2024, 7, 9)).contact.status == "due"  # due day: still open


def _group(hospital: str, n: int, met: int, start: int) -> list:
    """``n`` discharges on Mon 2024-04-01 (contact due Wed Apr 3), ``met`` of them reached in time."""
    out = []
    for i in range(n):
        contacts = [(D(2024, 4, 2), "reached")] if i < met else [(D(2024, 4, 4), "reached")]
        out.append(
            transition(_d(D(2024, 4, 1), start + i, f"{hospital}{i}", hospital), contacts, [], D(2024, 5, 1))
        )
    return out


def test_rates_by_hospital_by_hand_with_small_cells_suppressed() -> None:
    rows = _group("MERCY", 40, 25, 0) + _group("STLUKE", 30, 18, 100) + _group("SAINTX", 28, 14, 200)
    rows += _group("GENERAL", 4, 1, 300)  # 1 of 4: a small cell
    # an open window (discharged Apr 30, due May 2) is in no denominator yet
    rows.append(transition(_d(D(2024, 4, 30), 400, "x", "MERCY"), [], [], D(2024, 5, 1)))
    got = {r.label: r for r in rates(rows, None, "contact_2bd")}
    assert {k: (r.numerator, r.denominator) for k, r in got.items()} == {
        "MERCY": (25, 40), "STLUKE": (18, 30), "SAINTX": (14, 28), "GENERAL": (1, 4)}  # fmt: skip
    assert got["GENERAL"].suppressed and got["GENERAL"].rate is None
    # Complementary suppression (equity.suppression): GENERAL's hidden "met" 1 needs a partner in the met
    # column, the smallest positive one (SAINTX 14); its hidden "not met" 3 one in the not-met column
    # (STLUKE 12 < SAINTX 14 < MERCY 15). MERCY alone stays published.
    assert {k: r.rate for k, r in got.items() if not r.suppressed} == {"MERCY": 0.625}
    strata = {f"MERCY{i}": "A" for i in range(40)} | {f"STLUKE{i}": "B" for i in range(30)}
    by_stratum = {r.label: (r.numerator, r.denominator) for r in rates(rows, strata, "contact_2bd")}
    assert by_stratum == {"A": (25, 40), "B": (18, 30), "Unknown": (15, 32)}
    visits = {r.label: (r.numerator, r.denominator) for r in rates(rows, None, "visit_7d")}
    assert visits["MERCY"] == (0, 40)  # Apr 30's 7-day window is still open


def test_a_resent_discharge_counts_once() -> None:
    a, b = _d(D(2024, 5, 1), 1), _d(D(2024, 5, 1), 2)
    assert dedupe_discharges([b, a]) == [a]
