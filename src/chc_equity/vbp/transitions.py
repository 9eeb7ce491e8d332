"""Transitions of care: who was discharged, who must be reached within 2 business days and seen within
7 / 14 days, and how often that happens, by hospital and by stratum.

Why these windows: Medicare's transitional care management codes (CPT 99495 / 99496) ask for an
interactive contact within **2 business days** after discharge and a face-to-face visit within **14**
(moderate complexity) or **7** (high complexity) **calendar days**; Medicaid ACO contracts reuse them.

Rules (docs/vbp.md, "Hospital partner data"), all pure functions of dates:

* a business day is Monday to Friday and not a US federal holiday (:func:`federal_holidays`: the 11 days
  of 5 U.S.C. 6103, Juneteenth from 2021, with the Saturday -> Friday / Sunday -> Monday observance rule
  of federal employees; New Year's Day on a Saturday is observed on December 31 of the year before);
* contact due = the 2nd business day after the discharge date (:func:`add_business_days`); a contact on
  the discharge date itself or any day up to the due date counts; only an outreach whose outcome reached
  the patient counts (``reached``, ``scheduled_visit``, ``referral_made``), attempts are shown apart;
* visit within 7 / 14 days: a center visit (a finished encounter that is not itself a hospital stay) on
  day 1 to 7 / 1 to 14 after the discharge date (the discharge date is day 0: the patient was still in
  the hospital);
* a window is *open* until its last day has passed (as of today), so a rate's denominator holds only the
  discharges whose window has closed; an open window that is already met counts nowhere yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from chc_equity.equity.suppression import suppress_measure

CONTACT_BUSINESS_DAYS = 2
VISIT_DAYS = (7, 14)
CONTACT_OUTCOMES = ("reached", "scheduled_visit", "referral_made")
FOLLOW_UP_CLASSES = ("I", "E", "O")  # inpatient, emergency, observation/outpatient stays (HL7 table 0004)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: date) -> date:
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


@lru_cache(maxsize=64)
def federal_holidays(year: int) -> frozenset[date]:
    """The observed US federal holidays falling in ``year`` (5 U.S.C. 6103)."""
    mon, thu = 0, 3
    days = {
        _observed(date(year, 1, 1)),  # New Year's Day
        _nth_weekday(year, 1, mon, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, mon, 3),  # Washington's Birthday
        _last_weekday(year, 5, mon),  # Memorial Day
        _observed(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, mon, 1),  # Labor Day
        _nth_weekday(year, 10, mon, 2),  # Columbus Day
        _observed(date(year, 11, 11)),  # Veterans Day
        _nth_weekday(year, 11, thu, 4),  # Thanksgiving Day
        _observed(date(year, 12, 25)),  # Christmas Day
    }
    if year >= 2021:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth National Independence Day
    if _observed(date(year + 1, 1, 1)).year == year:  # next New Year's Day observed on Dec 31
        days.add(date(year, 12, 31))
    return frozenset(d for d in days if d.year == year)


def is_business_day(d: date) -> bool:
    return d.weekday() < 5 and d not in federal_holidays(d.year)


def add_business_days(d: date, n: int) -> date:
    """The ``n``-th business day after ``d`` (``d`` itself never counts)."""
    while n > 0:
        d += timedelta(days=1)
        if is_business_day(d):
            n -= 1
    return d


@dataclass(frozen=True, slots=True)
class Discharge:
    """A matched discharge (from an A03 or a finished FHIR Encounter)."""

    event_id: int
    patient_id: str
    hospital: str
    patient_class: str
    admitted: date | None
    discharged: date


@dataclass(frozen=True, slots=True)
class Window:
    due: date
    done_on: date | None
    closed: bool  # the window's last day has passed

    @property
    def status(self) -> str:
        """'done', 'late' (window closed, not met), 'due' (open, not met)."""
        if self.done_on is not None:
            return "done"
        return "late" if self.closed else "due"


@dataclass(frozen=True, slots=True)
class Transition:
    discharge: Discharge
    contact: Window
    visit7: Window
    visit14: Window
    attempts: int  # outreach attempts in the contact window that did not reach the patient


def _first_in(days: Iterable[date], start: date, end: date) -> date | None:
    return min((d for d in days if start <= d <= end), default=None)


def transition(
    d: Discharge, contacts: Sequence[tuple[date, str]], visits: Sequence[date], as_of: date
) -> Transition:
    """The three windows of one discharge, given the patient's outreach (date, outcome) and visit dates."""
    day = d.discharged
    contact_due = add_business_days(day, CONTACT_BUSINESS_DAYS)
    reached = [c for c, outcome in contacts if outcome in CONTACT_OUTCOMES]
    attempts = sum(
        1 for c, outcome in contacts if outcome not in CONTACT_OUTCOMES and day <= c <= contact_due
    )
    windows = []
    for n in VISIT_DAYS:
        due = day + timedelta(days=n)
        windows.append(Window(due, _first_in(visits, day + timedelta(days=1), due), as_of > due))
    contact = Window(contact_due, _first_in(reached, day, contact_due), as_of > contact_due)
    return Transition(d, contact, windows[0], windows[1], attempts)


def transitions(discharges: Iterable[Discharge], contacts: Mapping[str, Sequence[tuple[date, str]]],
                visits: Mapping[str, Sequence[date]], as_of: date) -> list[Transition]:  # fmt: skip
    """Every discharge's windows, newest discharge first."""
    rows = [
        transition(d, contacts.get(d.patient_id, ()), visits.get(d.patient_id, ()), as_of) for d in discharges
    ]
    return sorted(rows, key=lambda t: (t.discharge.discharged, t.discharge.event_id), reverse=True)


def dedupe_discharges(discharges: Iterable[Discharge]) -> list[Discharge]:
    """One discharge per patient and day (an A03 re-sent, or sent by ADT and FHIR alike)."""
    seen: dict[tuple[str, date], Discharge] = {}
    for d in sorted(discharges, key=lambda x: x.event_id):
        seen.setdefault((d.patient_id, d.discharged), d)
    return list(seen.values())


# -- rates -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rate:
    group: str
    label: str
    numerator: int
    denominator: int
    suppressed: bool = False

    @property
    def rate(self) -> float | None:
        if self.suppressed or not self.denominator:
            return None
        return self.numerator / self.denominator


WINDOWS = {"contact_2bd": "contact", "visit_7d": "visit7", "visit_14d": "visit14"}


def rates(rows: Sequence[Transition], group_of: Mapping[str, str] | None, window: str, *,
          threshold: int = 11) -> list[Rate]:  # fmt: skip
    """Follow-up rate per group (by hospital when ``group_of`` is None, else the patient's stratum) among
    discharges whose window has closed, small cells suppressed with complementary suppression
    (equity.suppression, the network's one rule)."""
    attr = WINDOWS[window]
    counts: dict[str, list[int]] = {}
    for t in rows:
        w: Window = getattr(t, attr)
        if not w.closed:
            continue
        key = t.discharge.hospital if group_of is None else group_of.get(t.discharge.patient_id, "Unknown")
        cell = counts.setdefault(key, [0, 0])
        cell[0] += w.done_on is not None
        cell[1] += 1
    labels = sorted(counts)
    if not labels:
        return []
    plan = suppress_measure(labels, [counts[k][0] for k in labels], [counts[k][1] for k in labels], threshold)
    group = "hospital" if group_of is None else "stratum"
    return [
        Rate(group, k, counts[k][0], counts[k][1], bool(plan.rate_suppressed[i]))
        for i, k in enumerate(labels)
    ]
