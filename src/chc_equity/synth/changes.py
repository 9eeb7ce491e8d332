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
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.codes import CODES
from chc_equity.synth.config import DIMENSIONS, CareModel
from chc_equity.synth.fhir import Chart, Resource, quantity
from chc_equity.synth.people import Person, age_at


@dataclass(frozen=True)
class Spread:
    """What the generator controls for a measure it can spread over months."""

    condition: str  # key of Clinic.dx
    ages: tuple[int, int]  # CQL: age at the end of the period, inclusive


SPREADABLE = {"CMS122": Spread("diabetes", (18, 75)), "CMS165": Spread("htn", (18, 85))}
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
        if measure not in SPREADABLE:
            raise ValueError(
                f"{where}.measure: {measure!r} cannot be planted; use one of {sorted(SPREADABLE)}"
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

    def __init__(self, changes: tuple[Change, ...], model: CareModel, mp_start: date, mp_end: date) -> None:
        self.changes, self.model = changes, model
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
        return cls(changes, model, mp_start, mp_end) if changes else None

    def probability(self, measure: str, center: str, strata: dict[str, str], month: str) -> float:
        factor = 1.0
        for c in self.changes:
            if c.measure == measure and month >= c.from_month and c.applies(center, strata):
                factor *= c.factor
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
    ) -> dict[str, float]:
        """Write one patient's spread visits and results; record the monthly truth units.

        Returns, per planted measure, the numerator chance of the patient's most recent result in the
        measurement period (the period's truth unit).
        """
        measures = [m for m in self.measures if dx[SPREADABLE[m].condition]]
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
