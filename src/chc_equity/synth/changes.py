"""Planted changes over time: a center's rate (optionally for one stratum) moves from a given month.

The default generator writes one measurement period, so a series over months has nothing to find.
A ``changes:`` list in the synth config (opt-in; absent by default) makes the generator, for each
measure named there, write that measure's deciding events over a 24-month window (the year before
the measurement period and the period itself) and draw their outcomes with a chance that moves from
the change's month on:

- every patient with the measure's condition (diabetes for CMS122, hypertension for CMS165), in
  every center, gets 1-3 extra office visits in the year before the period (its own random stream,
  ``f"{seed}:{center}:{index}:change"``), on top of the period's routine visits;
- on each day with a qualifying encounter (office, preventive or annual wellness visit) in the
  window the patient gets one deciding result -- an HbA1c (CMS122) or a blood pressure (CMS165) --
  drawn with the care model's chance for the patient's strata, the good-care chance multiplied by
  the factor of every change that applies to the patient's center (and stratum) from its month on;
- the period's single result of that measure (``clinical.py``) is not written (its draw still is,
  so every other resource keeps its value).

So a calendar-month period contains a patient exactly when he has a qualifying visit in that month,
and the month's most recent result has that month's chance: the expected rate of each month is exact
(``truth.json`` -> ``changes``). With no ``changes`` nothing here runs and the output is byte-identical
to what it was.

Social-needs screening (``measure: sdoh:screened``, the metric of :mod:`chc_equity.sdoh`) is planted the
same way over the same window: every adult, in every center, gets 1-3 extra office visits in the year
before the period; in each calendar month with a visit (any encounter: MIPS #487 counts a visit of any
kind) the patient is screened with the month's chance (``sdoh_screening_monthly`` in the config, default
0.3, times the factor of every change that applies from that month on): five screening-response
Observations, one per CMS HRSN domain, answered "no need", on the month's first visit day. The month
of the patient's PRAPARE (the period's first visit, when he has one) is screened anyway: its chance is 1.
A month's unit is an adult at the month's end, so its expected rate is exact too; the period's
``sdoh`` truth counts a patient screened by a planted screen in the period.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.codes import CODES, LOINC, Code
from chc_equity.synth.config import DIMENSIONS, CareModel
from chc_equity.synth.fhir import Chart, Resource, quantity
from chc_equity.synth.people import Person, age_at


@dataclass(frozen=True)
class Spread:
    """What the generator controls for a measure it can spread over months."""

    condition: str  # key of Clinic.dx
    ages: tuple[int, int]  # CQL: age at the end of the period, inclusive


SPREADABLE = {"CMS122": Spread("diabetes", (18, 75)), "CMS165": Spread("htn", (18, 85))}
SCREENING = "sdoh:screened"  # the social-needs screening rate (chc_equity.sdoh.series key)
PLANTABLE = (*SPREADABLE, SCREENING)
SCREENING_BASE = 0.3  # default monthly chance of a screen at a visit month (`sdoh_screening_monthly`)
NOT_A_VISIT = ("cancelled", "entered-in-error", "planned")  # as chc_equity.sdoh.metrics counts visits
# One "no need" answer per CMS HRSN domain (item LOINC, answer LA code, display): chc_equity.sdoh's
# mapping table reads each as the domain answered and negative.
NO_NEED_ANSWERS = (
    (
        "88122-7",
        "LA28398-8",
        "Within the past 12 months we worried whether our food would run out",
        "Never true",
    ),
    ("71802-3", "LA30189-7", "Housing status", "I have housing"),
    ("93030-5", "LA32-8", "Has lack of transportation kept you from medical appointments", "No"),
    (
        "96779-4",
        "LA32-8",
        "Has the electric, gas, oil, or water company threatened to shut off services",
        "No",
    ),
    ("93026-3", "LA33-6", "Do you feel physically and emotionally safe where you currently live", "Yes"),
)
# Encounter codes the generator writes that are in the CMS122 / CMS165 "Qualifying Encounters"
# (adult office visit, preventive care 18+, annual wellness): adult_outpatient.OUTPATIENT_VISITS.
QUALIFYING = frozenset(
    (CODES[k].system, CODES[k].code)
    for k in (
        "office_visit",
        "office_visit_new",
        "preventive_18_39",
        "preventive_40_64",
        "preventive_65_up",
        "annual_wellness",
    )
)


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _month_end(month: str) -> date:
    y, m = int(month[:4]), int(month[5:])
    return date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)


@dataclass(frozen=True)
class Change:
    """One planted change: from ``from_month`` on, ``measure``'s good-care chance at ``center`` (for
    patients in ``dimension`` = ``stratum`` when given) is multiplied by ``factor``."""

    center: str
    measure: str
    from_month: str  # "YYYY-MM"
    factor: float
    dimension: str | None = None
    stratum: str | None = None

    @property
    def key(self) -> str:
        return "all" if self.dimension is None else f"{self.dimension}={self.stratum}"

    def applies(self, center: str, strata: dict[str, str]) -> bool:
        return center == self.center and (self.dimension is None or strata[self.dimension] == self.stratum)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "center": self.center,
            "measure": self.measure,
            "from": self.from_month,
            "factor": self.factor,
        }
        if self.dimension is not None:
            out["stratum"] = {"dimension": self.dimension, "value": self.stratum}
        return out


def parse_changes(items: Iterable[dict[str, Any]] | None) -> tuple[Change, ...]:
    """Validate the ``changes:`` entries of a synth config (clear errors naming the entry and field)."""
    out = []
    for n, item in enumerate(items or [], start=1):
        where = f"changes[{n}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with center, measure, from, factor")
        missing = [k for k in ("center", "measure", "from", "factor") if k not in item]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        unknown = set(item) - {"center", "measure", "from", "factor", "stratum"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        measure = str(item["measure"])
        if measure not in PLANTABLE:
            raise ValueError(
                f"{where}.measure: {measure!r} cannot be planted; use one of {sorted(PLANTABLE)}"
            )
        month = str(item["from"])
        try:
            date.fromisoformat(month + "-01")
        except ValueError:
            raise ValueError(f"{where}.from: {month!r} is not a month (YYYY-MM)") from None
        factor = float(item["factor"])
        if factor <= 0:
            raise ValueError(f"{where}.factor: must be > 0, got {factor}")
        dimension = stratum = None
        if item.get("stratum") is not None:
            s = item["stratum"]
            if not isinstance(s, dict) or set(s) != {"dimension", "value"}:
                raise ValueError(f"{where}.stratum: expected {{dimension: ..., value: ...}}")
            dimension, stratum = str(s["dimension"]), str(s["value"])
            if dimension not in DIMENSIONS or dimension == "center":
                raise ValueError(f"{where}.stratum.dimension: {dimension!r}; use one of {DIMENSIONS[1:]}")
        out.append(Change(str(item["center"]), measure, month, factor, dimension, stratum))
    return tuple(out)


class ChangePlan:
    """The changes of one run, the 24-month window they are written over, and their truth."""

    def __init__(
        self,
        changes: tuple[Change, ...],
        model: CareModel,
        mp_start: date,
        mp_end: date,
        screening_base: float = SCREENING_BASE,
    ) -> None:
        self.changes, self.model, self.screening_base = changes, model, screening_base
        self.mp_start, self.mp_end = mp_start, mp_end
        self.window_start = date(mp_start.year - 1, mp_start.month, 1)
        months, d = [], self.window_start
        while d <= mp_end:
            months.append(month_key(d))
            d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        self.months = months
        for c in changes:
            if c.from_month not in months[1:]:
                raise ValueError(
                    f"changes: {c.measure} at {c.center} from {c.from_month} is outside the window "
                    f"{months[1]}..{months[-1]} (a change needs at least one month before it)"
                )
        self.measures = tuple(sorted({c.measure for c in changes}))
        # (measure, center, key, month) -> [units, sum p, sum p(1-p)]
        self.acc: dict[tuple[str, str, str, str], list[float]] = {}

    @classmethod
    def from_config(
        cls, cfg: dict[str, Any], model: CareModel, mp_start: date, mp_end: date
    ) -> ChangePlan | None:
        changes = parse_changes(cfg.get("changes"))
        base = float(cfg.get("sdoh_screening_monthly", SCREENING_BASE))
        if not 0 < base <= 1:
            raise ValueError(f"sdoh_screening_monthly: a chance in (0, 1], got {base}")
        return cls(changes, model, mp_start, mp_end, base) if changes else None

    def probability(self, measure: str, center: str, strata: dict[str, str], month: str) -> float:
        factor = 1.0
        for c in self.changes:
            if c.measure == measure and month >= c.from_month and c.applies(center, strata):
                factor *= c.factor
        if measure == SCREENING:
            return min(1.0, self.screening_base * factor)
        return self.model.numerator_probability(measure, strata, factor=factor)

    # ------------------------------------------------------------------------------------------
    def plant(
        self,
        chart: Chart,
        person: Person,
        dx: dict[str, bool],
        hospice_day: date | None,
        rng: random.Random,
        center: str,
        strata: dict[str, str],
        screened: Callable[[], None] | None = None,
    ) -> dict[str, float]:
        """Write one patient's spread visits and results (and planted screens); record the monthly
        truth units.

        Returns, per planted measure, the numerator chance of the patient's most recent result in the
        measurement period (the period's truth unit). ``screened``: called when a planted screen in the
        period screens a patient the generator had not screened (the sdoh truth counts him).
        """
        period_p = self._plant_measures(chart, person, dx, hospice_day, rng, center, strata)
        if SCREENING in self.measures:
            self._plant_screening(chart, person, rng, center, strata, screened)
        return period_p

    def _plant_measures(
        self,
        chart: Chart,
        person: Person,
        dx: dict[str, bool],
        hospice_day: date | None,
        rng: random.Random,
        center: str,
        strata: dict[str, str],
    ) -> dict[str, float]:
        measures = [m for m in self.measures if m in SPREADABLE and dx[SPREADABLE[m].condition]]
        if not measures:
            return {}
        before = (self.mp_start - self.window_start).days
        days = sorted({rng.randint(0, before - 1) for _ in range(rng.choice((1, 1, 2, 2, 3)))})
        for d in days:
            day = self.window_start + timedelta(days=d)
            chart.encounter(CODES["office_visit"], day, location=person.site_ref, hour=11)
        visits: dict[date, Resource] = {}  # one result per day: the first qualifying encounter of it
        for r in list(chart.resources):
            if r["resourceType"] != "Encounter":
                continue
            coding = r["type"][0]["coding"][0]
            day = date.fromisoformat(r["period"]["start"][:10])
            if (coding["system"], coding["code"]) in QUALIFYING and self.window_start <= day <= self.mp_end:
                visits.setdefault(day, r)
        period_p: dict[str, float] = {}
        for measure in measures:
            lo, hi = SPREADABLE[measure].ages
            month_p: dict[str, float] = {}
            for day in sorted(visits):
                month = month_key(day)
                p = self.probability(measure, center, strata, month)
                met = rng.random() < p
                _write_result(chart, measure, visits[day], day, met, rng)
                month_p[month] = p
                if self.mp_start <= day:
                    period_p[measure] = p
            for month, p in month_p.items():
                end = _month_end(month)
                if not lo <= age_at(person.birth, end) <= hi:
                    continue
                if hospice_day is not None and month_key(hospice_day) == month:
                    continue  # hospice in the month excludes the patient from that month
                self._add(measure, center, strata, month, p)
        return period_p

    def _plant_screening(
        self,
        chart: Chart,
        person: Person,
        rng: random.Random,
        center: str,
        strata: dict[str, str],
        screened: Callable[[], None] | None,
    ) -> None:
        """Spread visits and monthly screens of one patient (module docstring, "Social-needs screening")."""
        if age_at(person.birth, _month_end(self.months[-1])) < 18:
            return  # never an adult in the window
        before = (self.mp_start - self.window_start).days
        for d in sorted({rng.randint(0, before - 1) for _ in range(rng.choice((1, 1, 2, 2, 3)))}):
            chart.encounter(
                CODES["office_visit"],
                self.window_start + timedelta(days=d),
                location=person.site_ref,
                hour=10,
            )
        first_day: dict[str, tuple[date, Resource]] = {}  # month -> its first visit day and encounter
        for r in chart.resources:
            if r["resourceType"] != "Encounter" or r.get("status", "finished") in NOT_A_VISIT:
                continue
            day = date.fromisoformat(r["period"]["start"][:10])
            if self.window_start <= day <= self.mp_end:
                m = month_key(day)
                if m not in first_day or day < first_day[m][0]:
                    first_day[m] = (day, r)
        qr = next((r for r in chart.resources if r["resourceType"] == "QuestionnaireResponse"), None)
        qr_month = month_key(date.fromisoformat(qr["authored"][:10])) if qr is not None else None
        in_period = False
        for month in sorted(first_day):
            adult = age_at(person.birth, _month_end(month)) >= 18
            if month == qr_month:
                p = 1.0  # the PRAPARE of the period screens this month anyway
            else:
                p = self.probability(SCREENING, center, strata, month)
                day, enc = first_day[month]
                if rng.random() < p:
                    _write_screen(chart, enc, day)
                    in_period |= day >= self.mp_start
            if adult:
                self._add(SCREENING, center, strata, month, p)
        if in_period and qr is None and screened is not None:
            screened()

    def _add(self, measure: str, center: str, strata: dict[str, str], month: str, p: float) -> None:
        keys = {"all"} | {c.key for c in self.changes if c.dimension and strata[c.dimension] == c.stratum}
        for key in keys:
            a = self.acc.setdefault((measure, center, key, month), [0.0, 0.0, 0.0])
            a[0] += 1
            a[1] += p
            a[2] += p * (1 - p)

    # ------------------------------------------------------------------------------------------
    def as_json(self) -> dict[str, Any]:
        series: dict[str, Any] = {}
        for (measure, center, key, month), a in sorted(self.acc.items()):
            series.setdefault(measure, {}).setdefault(center, {}).setdefault(key, {})[month] = _cell(a)
        effects = []
        for c in self.changes:
            cells = series.get(c.measure, {}).get(c.center, {}).get(c.key, {})
            sums = {"before": [0.0, 0.0, 0.0], "after": [0.0, 0.0, 0.0]}
            for month, cell in cells.items():
                s = sums["after" if month >= c.from_month else "before"]
                s[0] += cell["denominator"]
                s[1] += cell["expected_numerator"]
                s[2] += cell["variance_numerator"]
            effects.append({**c.as_json(), "before": _cell(sums["before"]), "after": _cell(sums["after"])})
        return {
            "definition": "per calendar month of the window: denominator = patients with a qualifying "
            "encounter in the month, of eligible age at its end, without hospice in it; expected_rate = "
            "mean numerator chance of the month's most recent result; before/after sum the months "
            "before / from the change's month",
            "window": {"start": self.window_start.isoformat(), "end": self.mp_end.isoformat()},
            "months": self.months,
            "planted": [c.as_json() for c in self.changes],
            "effects": effects,
            "series": series,
        }


def _cell(a: list[float]) -> dict[str, Any]:
    n, sp, var = a
    return {
        "denominator": int(n),
        "expected_numerator": round(sp, 6),
        "expected_rate": round(sp / n, 8) if n else None,
        "variance_numerator": round(var, 6),
    }


def _write_screen(chart: Chart, enc: Resource, day: date) -> None:
    """A social-needs screen with no need found: one screening-response Observation per HRSN domain."""
    from chc_equity.synth.fhir import concept_value

    for item, answer, question, display in NO_NEED_ANSWERS:
        chart.observation(
            Code(LOINC, item, question),
            day,
            category="social-history",
            profile="http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment",
            encounter=enc,
            value=concept_value(Code(LOINC, answer, display)),
            hour=10,
            minute=20,
        )


def _write_result(
    chart: Chart, measure: str, enc: Resource, day: date, met: bool, rng: random.Random
) -> None:
    """The deciding result of one visit, as clinical.py writes it for the period."""
    from chc_equity.synth.clinical import bp_observation  # clinical imports nothing from here

    if measure == "CMS122":  # inverse: met = poor control (> 9 %)
        value = round(rng.uniform(9.1, 12.5), 1) if met else round(rng.uniform(5.8, 8.9), 1)
        chart.observation(
            CODES["hba1c"],
            day,
            category="laboratory",
            profile="qicore-observation-lab",
            encounter=enc,
            value=quantity(value, "%"),
        )
    else:  # CMS165: met = controlled (< 140 / < 90)
        s, d = (
            (rng.randint(112, 138), rng.randint(68, 88))
            if met
            else (rng.randint(142, 172), rng.randint(84, 102))
        )
        bp_observation(chart, enc, day, s, d)
