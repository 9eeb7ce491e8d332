"""Billing rules: minute patterns per month give the hand-computed codes and units (issue 13, Must show).

Each case is worked out by hand from the rule files: CHI/PIN per calendar month (60-minute base code from
31 minutes, each additional 30 minutes from 16 more: the CPT mid-point rule), CPT 98960-98962 per session
(a unit from 16 minutes, a second from 46), and the initiating-visit rule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from chc_equity.outreach.billing import (
    RulesError,
    Service,
    available_payers,
    bill,
    encounter_services,
    initiating_visits,
    load_rules,
    monthly_codes,
    units,
)

MEDICARE = load_rules("medicare")
MEDICAID = load_rules("medicaid-example")
VISIT = {"p": [date(2026, 3, 1)]}


def _m(*pattern: tuple[int, int]) -> list[Service]:
    """CHI minutes as (day of March 2026, minutes)."""
    return [Service("p", date(2026, 3, d), m, "chi", "phone") for d, m in pattern]


MONTHLY_CASES = [
    # (services, initiating visits, expected {(month, code): units})
    (_m((3, 30)), VISIT, {}),
    (_m((3, 31)), VISIT, {("2026-03", "G0019"): 1}),
    (_m((3, 20), (17, 20)), VISIT, {("2026-03", "G0019"): 1}),  # minutes add up within the month
    (_m((3, 60)), VISIT, {("2026-03", "G0019"): 1}),
    (_m((3, 75)), VISIT, {("2026-03", "G0019"): 1}),  # 15 beyond 60: no add-on yet
    (_m((3, 76)), VISIT, {("2026-03", "G0019"): 1, ("2026-03", "G0022"): 1}),
    (_m((3, 105)), VISIT, {("2026-03", "G0019"): 1, ("2026-03", "G0022"): 1}),
    (_m((3, 50), (20, 56)), VISIT, {("2026-03", "G0019"): 1, ("2026-03", "G0022"): 2}),  # 106
    (_m((3, 150)), VISIT, {("2026-03", "G0019"): 1, ("2026-03", "G0022"): 3}),
    # months are separate: 40 in March and 40 in April are one G0019 each, never a G0022
    (
        [Service("p", date(2026, 3, 30), 40, "chi"), Service("p", date(2026, 4, 2), 40, "chi")],
        VISIT,
        {("2026-03", "G0019"): 1, ("2026-04", "G0019"): 1},
    ),
    # initiating-visit rule: no visit -> nothing; minutes before the visit do not count
    (_m((3, 90)), {}, {}),
    (_m((3, 30), (20, 35)), {"p": [date(2026, 3, 10)]}, {("2026-03", "G0019"): 1}),
    (_m((3, 40), (5, 40)), {"p": [date(2026, 3, 10)]}, {}),
    # PIN: 90 minutes -> G0023 + one G0024
    ([Service("p", date(2026, 3, 3), 90, "pin")], VISIT, {("2026-03", "G0023"): 1, ("2026-03", "G0024"): 1}),
]


@pytest.mark.parametrize(("services", "visits", "want"), MONTHLY_CASES)
def test_monthly_codes_from_minute_patterns(services, visits, want) -> None:
    claims, unbilled = bill(services, MEDICARE, visits)
    assert {(c.month, c.code): c.units for c in claims} == want
    # every minute is accounted for: on the month's claim lines or on an unbilled line with its reason
    claimed = {(c.month, c.program): c.minutes for c in claims}
    assert sum(claimed.values()) + sum(u.minutes for u in unbilled) == sum(s.minutes for s in services)


SESSION_CASES = [
    # (minutes, patients in the session, channel, expected {code: units})
    (15, 1, "in-clinic", {}),
    (16, 1, "in-clinic", {"98960": 1}),
    (45, 1, "home-visit", {"98960": 1}),
    (46, 1, "in-clinic", {"98960": 2}),
    (60, 3, "in-clinic", {"98961": 2}),
    (30, 4, "in-clinic", {"98961": 1}),
    (30, 5, "in-clinic", {"98962": 1}),
    (90, 8, "in-clinic", {"98962": 3}),
    (30, 9, "in-clinic", {}),  # more than 8 patients: no code
    (30, 1, "phone", {}),  # face-to-face only in this example state
]


@pytest.mark.parametrize(("minutes", "size", "channel", "want"), SESSION_CASES)
def test_session_codes(minutes: int, size: int, channel: str, want: dict[str, int]) -> None:
    claims, unbilled = bill([Service("p", date(2026, 5, 4), minutes, "education", channel, size)], MEDICAID)
    assert {c.code: c.units for c in claims} == want
    assert bool(unbilled) == (not want)


def test_sessions_add_up_over_the_month_and_reasons_are_given() -> None:
    services = [
        Service("p", date(2026, 5, 4), 30, "education", "in-clinic"),
        Service("p", date(2026, 5, 18), 50, "education", "home-visit"),
        Service("p", date(2026, 5, 19), 40, "chi", "phone"),
    ]
    claims, unbilled = bill(services, MEDICAID)
    assert [(c.code, c.units, c.minutes) for c in claims] == [("98960", 3, 80)]
    assert [u.reason for u in unbilled] == ["no 'chi' program in medicaid-example rules"]
    _, unbilled = bill(_m((3, 20)), MEDICARE, VISIT)
    assert [u.reason for u in unbilled] == ["20 minutes < 31 needed"]


def test_unit_arithmetic_and_full_rule() -> None:
    assert [units(m, 30, "midpoint") for m in (0, 15, 16, 45, 46, 75, 76)] == [0, 0, 1, 1, 2, 2, 3]
    assert [units(m, 30, "full") for m in (29, 30, 59, 60)] == [0, 1, 1, 2]
    chi = MEDICARE.programs["chi"]
    assert monthly_codes(59, chi, "full") == [] and monthly_codes(60, chi, "full") == [("G0019", 1)]
    assert monthly_codes(119, chi, "full") == [("G0019", 1), ("G0022", 1)]


def test_rules_are_data_with_clear_errors(tmp_path: Path) -> None:
    assert {"medicare", "medicaid-example"} <= set(available_payers())
    assert "99211" not in MEDICARE.initiating_visit_codes and "99213" in MEDICARE.initiating_visit_codes
    bad = tmp_path / "state.yaml"
    bad.write_text("payer: x\nprograms:\n  chi:\n    per: month\n    base: {code: G0019}\n    add_on: {}\n")
    with pytest.raises(RulesError, match=r"state.yaml: programs.chi.base: missing field 'minutes'"):
        load_rules(bad)
    bad.write_text("payer: x\nunit_rule: nearest\nprograms: {}\n")
    with pytest.raises(RulesError, match="state.yaml: field 'unit_rule'"):
        load_rules(bad)
    with pytest.raises(RulesError, match="unknown payer"):
        load_rules("nobody")


def test_chw_encounters_from_a_real_warehouse(tmp_path: Path) -> None:
    """Synthetic CHW visits (Encounter type G0019, 60 minutes) after an office visit bill as G0019."""
    from browser.webseed import build_synthetic_warehouse
    from chc_equity.warehouse import connect

    path, centers = build_synthetic_warehouse(tmp_path, centers=1, patients=120)
    con = connect(path)
    try:
        services = encounter_services(con, centers[0])
        visits = initiating_visits(con, centers[0], MEDICARE)
    finally:
        con.close()
    assert services and all(s.program == "chi" and s.minutes == 60 for s in services)
    claims, unbilled = bill(services, MEDICARE, visits)
    assert claims and {c.code for c in claims} == {"G0019"}
    assert len(claims) + len(unbilled) == len(services)
