"""Clinical histories that exercise the 21 eCQMs, plus PRAPARE, CHW encounters and community referrals.

For each measure the generator decides (by construction) who is denominator-eligible and not excluded,
draws the numerator with the CareModel's probability p, writes the qualifying data, and records a
truth *unit* (measure, p). Patient-based measures get one unit per patient; episode measures (CMS22,
CMS177) one per qualifying encounter. Hospice (an Encounter in the MP) removes a patient from the
measures whose CQL excludes on hospice (CMS159: only when it falls in the index-to-follow-up window),
and, where hospice is an exception (CMS347), from those who miss the numerator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.codes import CODES, LOINC, SNOMED, Code
from chc_equity.synth.fhir import USCORE, Chart, Resource, concept_value, quantity, ts
from chc_equity.synth.people import Person, age_at
from chc_equity.synth.sdoh import prapare_items, referral_category

C = CODES
HOSPICE_REMOVES = frozenset(
    {
        "CMS69",
        "CMS74",
        "CMS75",
        "CMS117",
        "CMS122",
        "CMS124",
        "CMS125",
        "CMS130",
        "CMS131",
        "CMS138",
        "CMS139",
        "CMS155",
        "CMS159",
        "CMS165",
        "CMS347",
        "CMS951",
    }
)
# ... and those where hospice is a denominator *exception* (CQL "Denominator Exceptions")
HOSPICE_EXCEPTS = frozenset({"CMS347"})
PRAPARE_ITEMS = {
    "housing": "93033-9",
    "food": "88124-3",
    "transportation": "93030-5",
    "utilities": "96779-4",
    "safety": "93038-8",
    "isolation": "93029-7",
    "stress": "93038-8",
    "childcare": "93031-3",
    "employment": "67875-5",
}


def _day(rng: random.Random, start: date, lo: int, hi: int) -> date:
    return start + timedelta(days=rng.randint(lo, hi))


def _plus_year(d: date) -> date:
    """CQL `d + 12 months`: the same day a year later, Feb 29 -> Feb 28."""
    return d.replace(year=d.year + 1, day=min(d.day, 28) if d.month == 2 else d.day)


def _preventive(p: Person) -> Code:
    a = p.age_end
    key = (
        "preventive_1_4"
        if a < 5
        else "preventive_5_11"
        if a < 12
        else "preventive_12_17"
        if a < 18
        else "preventive_18_39"
        if a < 40
        else "preventive_40_64"
        if a < 65
        else "preventive_65_up"
    )
    return C[key]


def bp_observation(chart: Chart, enc: Resource, day: date, sys_: int, dia: int) -> None:
    """A US Core blood pressure panel (systolic + diastolic components) at ``enc``."""
    chart.observation(
        C["bp_panel"],
        day,
        category="vital-signs",
        profile=USCORE + "us-core-blood-pressure",
        encounter=enc,
        value={
            "component": [
                {"code": C["systolic"].concept(), **quantity(sys_, "mmHg", "mm[Hg]")},
                {"code": C["diastolic"].concept(), **quantity(dia, "mmHg", "mm[Hg]")},
            ]
        },
    )


class Clinic:
    """Writes one patient's care for the measurement period and collects truth units."""

    def __init__(
        self,
        p: Person,
        chart: Chart,
        rng: random.Random,
        prob: Callable[[str], float],
        cfg: dict[str, Any],
        mp_start: date,
        mp_end: date,
        planted: frozenset[str] = frozenset(),
        group_rng: random.Random | None = None,
    ) -> None:
        self.p, self.chart, self.rng, self.prob, self.cfg = p, chart, rng, prob, cfg
        # the later groups of multi-group measures (CMS138, CMS155, CMS347) draw from their own stream,
        # seeded from the patient's seed plus a label: every draw of ``rng`` (and so every other
        # resource and truth unit) stays as it was before those groups had rates of their own
        self.group_rng = group_rng if group_rng is not None else random.Random(f"{p.pid}:groups")
        # measures whose results synth/changes.py writes over months instead (their draws still happen
        # here, so the random stream and every other resource stay as they are)
        self.planted = planted
        self.mp_start, self.mp_end = mp_start, mp_end
        self.units: list[tuple[str, float]] = []
        self.hospice = False
        self.hospice_day: date | None = None
        self.visits: list[Resource] = []
        # every encounter in the MP that the CMS22 / CMS69 "qualifying encounter" value sets contain:
        # the routine visits plus a CMS159 follow-up visit that falls in the MP
        self.mp_visits: list[Resource] = []

    def draw(self, measure: str, *, removed: bool | None = None) -> bool:
        """Record a denominator unit for `measure` and draw whether its numerator is met.

        `removed` overrides the default hospice rule for measures whose exclusion window is not the
        Measurement Period (CMS159); the draw happens either way so the random stream does not depend
        on it.
        """
        p = self.prob(measure)
        return self._record(measure, measure, p, self.rng.random() < p, removed)

    def draw_group(self, key: str, *, p: float | None = None) -> bool:
        """Like :meth:`draw` for a later group of a multi-group measure (``key`` = "CMS347:Group_3"),
        on the group stream; ``p`` overrides the configured chance (a group whose numerator combines
        draws, CMS138 Group 3). The hospice rules are those of the base measure."""
        chance = self.prob(key) if p is None else p
        met = self.group_rng.random() < chance
        return self._record(key, key.split(":")[0], chance, met, None)

    def _record(self, key: str, measure: str, p: float, met: bool, removed: bool | None) -> bool:
        if self.hospice and measure in HOSPICE_EXCEPTS:
            # an exception only removes patients who miss the numerator: a hospice patient stays in
            # the performance denominator exactly when met, and then certainly in the numerator
            if met:
                self.units.append((key, 1.0))
            return met
        if removed is None:
            removed = self.hospice and measure in HOSPICE_REMOVES
        if not removed:
            self.units.append((key, p))
        return met

    # ------------------------------------------------------------------------------------------
    def run(self) -> None:
        p, rng, prev = self.p, self.rng, self.cfg["prevalence"]
        self.dx = {
            "diabetes": p.age_end >= 18 and rng.random() < prev["diabetes_adult"] * (1 + p.age_end / 80),
            "htn": p.age_end >= 18 and rng.random() < prev["hypertension_adult"] * (0.3 + p.age_end / 50),
            "ascvd": p.age_end >= 40 and rng.random() < prev["ascvd_40_up"],
            "hiv": p.age_end >= 18 and rng.random() < prev["hiv_adult"],
            "smoker": p.age_start >= 12 and rng.random() < prev["smoker_12_up"],
        }
        self.hospice = p.age_end >= 65 and rng.random() < prev["hospice_65_up"]
        self._visits()
        self._conditions()
        if self.hospice:
            self.hospice_day = _day(rng, self.mp_start, 250, 330)
            self.chart.encounter(C["hospice_encounter"], self.hospice_day, minutes=60)
        self.mp_visits = list(self.visits)
        for step in (
            self._cms159,  # first: its follow-up visit is a qualifying encounter for CMS22 / CMS69
            self._cms2,
            self._cms22,
            self._cms69,
            self._cms138,
            self._cms139,
            self._cms155,
            self._cms117,
            self._cancer,
            self._diabetes,
            self._cms165,
            self._cms347,
            self._hiv,
            self._cms349,
            self._dental,
            self._cms177,
        ):
            step()
        self._sdoh()

    def _visits(self) -> None:
        rng, p = self.rng, self.p
        # first visit within the first 200 days (CMS314 needs one in the first 240)
        days = sorted(
            {rng.randint(4, 200)} | {rng.randint(4, 350) for _ in range(rng.choice((0, 1, 1, 2, 3)))}
        )
        self.visits.append(
            self.chart.encounter(
                _preventive(p), self.mp_start + timedelta(days=days[0]), location=p.site_ref, minutes=40
            )
        )
        for d in days[1:]:
            self.visits.append(
                self.chart.encounter(
                    C["office_visit"], self.mp_start + timedelta(days=d), location=p.site_ref, hour=10 + d % 6
                )
            )

    def _visit_day(self, enc: Resource) -> date:
        return date.fromisoformat(enc["period"]["start"][:10])

    def _conditions(self) -> None:
        ch, rng = self.chart, self.rng
        long_ago = self.mp_start - timedelta(days=rng.randint(400, 3000))
        if self.dx["diabetes"]:
            ch.condition(C["diabetes"], long_ago)
            ch.condition(C["diabetes"], self._visit_day(self.visits[0]), category="encounter-diagnosis")
        if self.dx["htn"]:
            ch.condition(C["hypertension"], long_ago - timedelta(days=30))
            ch.condition(C["hypertension"], self._visit_day(self.visits[0]), category="encounter-diagnosis")
        if self.dx["ascvd"]:
            ch.condition(C["ischemic_heart_disease"], long_ago - timedelta(days=60))
        if self.dx["hiv"]:
            ch.condition(C["hiv"], long_ago - timedelta(days=90))

    # --- vitals / screening ---------------------------------------------------------------------
    def _bp(self, enc: Resource, sys_: int, dia: int) -> None:
        bp_observation(self.chart, enc, self._visit_day(enc), sys_, dia)

    def _cms2(self) -> None:
        if self.p.age_start < 12:
            return
        if self.draw("CMS2"):
            enc = self.visits[-1]
            code = C["adult_dep_screen"] if self.p.age_start >= 18 else C["adolescent_dep_screen"]
            self.chart.observation(
                code,
                self._visit_day(enc),
                category="survey",
                profile="qicore-observation-screening-assessment",
                encounter=enc,
                value=concept_value(C["dep_screen_negative"]),
            )

    def _cms22(self) -> None:
        if self.p.age_start < 18 or self.dx["htn"]:
            return
        for enc in self.mp_visits:  # episode-based: one unit per qualifying encounter
            if self.draw("CMS22"):
                self._bp(enc, self.rng.randint(100, 118), self.rng.randint(60, 78))

    def _cms69(self) -> None:
        # CQL: a qualifying encounter in the MP at which the patient is 18+ (not: 18+ at the MP start)
        adult = [e for e in self.mp_visits if age_at(self.p.birth, self._visit_day(e)) >= 18]
        if not adult:
            return
        if self.draw("CMS69"):
            enc = adult[0]
            self.chart.observation(
                C["bmi"],
                self._visit_day(enc),
                category="vital-signs",
                profile=USCORE + "us-core-bmi",
                encounter=enc,
                value=quantity(round(self.rng.uniform(19.0, 24.8), 1), "kg/m2"),
            )

    def _cms138(self) -> None:
        if self.p.age_start < 12:
            return
        # Group 1: screened (the main stream's draw, as before). Group 2: screened users who got a
        # cessation intervention (a draw of its own). Group 3: screened, and counselled if a user; its
        # chance is the product of the two.
        screened = self.draw("CMS138")
        counselled = False
        if screened:
            enc = self.visits[0]
            day = self._visit_day(enc)
            status = C["tobacco_user"] if self.dx["smoker"] else C["tobacco_non_user"]
            self.chart.observation(
                C["smoking_status"],
                day,
                category="social-history",
                profile=USCORE + "us-core-smokingstatus",
                encounter=enc,
                value=concept_value(status),
            )
            if self.dx["smoker"] and self.draw_group("CMS138:Group_2"):
                counselled = True
                self.chart.procedure(C["tobacco_counseling"], day, encounter=enc)
        p3 = self.prob("CMS138") * (self.prob("CMS138:Group_2") if self.dx["smoker"] else 1.0)
        self._record("CMS138:Group_3", "CMS138", p3, screened and (counselled or not self.dx["smoker"]), None)

    def _cms139(self) -> None:
        if self.p.age_start < 65:
            return
        if self.draw("CMS139"):
            enc = self.visits[0]
            self.chart.observation(
                C["falls_screening"],
                self._visit_day(enc),
                category="survey",
                profile="qicore-observation-screening-assessment",
                encounter=enc,
                value=concept_value(C["no"]),
            )

    def _cms155(self) -> None:
        if not 3 <= self.p.age_end <= 17:
            return
        # Group 1 (BMI percentile, height, weight) keeps the main stream's draw; nutrition (Group 2) and
        # physical-activity counselling (Group 3) are drawn on the group stream, each with its own rate
        enc = self.visits[0]
        if self.draw_group("CMS155:Group_2"):
            self.chart.procedure(C["nutrition_counseling"], self._visit_day(enc), encounter=enc)
        if self.draw_group("CMS155:Group_3"):
            self.chart.procedure(C["activity_counseling"], self._visit_day(enc), encounter=enc)
        if self.draw("CMS155"):
            enc = self.visits[0]
            day = self._visit_day(enc)
            vs = "vital-signs"
            self.chart.observation(
                C["bmi_percentile"],
                day,
                category=vs,
                profile=USCORE + "pediatric-bmi-for-age",
                encounter=enc,
                value=quantity(self.rng.randint(20, 80), "%"),
            )
            self.chart.observation(
                C["body_height"],
                day,
                category=vs,
                profile=USCORE + "us-core-body-height",
                encounter=enc,
                value=quantity(round(80 + 6 * self.p.age_end, 1), "cm"),
            )
            self.chart.observation(
                C["body_weight"],
                day,
                category=vs,
                profile=USCORE + "us-core-body-weight",
                encounter=enc,
                value=quantity(round(10 + 2.8 * self.p.age_end, 1), "kg"),
            )

    def _cms117(self) -> None:
        if self.p.age_end != 2:
            return
        met = self.draw("CMS117")
        b = self.p.birth
        schedule = [
            ("vax_hepb", 60),
            ("vax_hepb", 120),
            ("vax_hepb", 180),
            ("vax_dtap", 60),
            ("vax_dtap", 120),
            ("vax_dtap", 180),
            ("vax_dtap", 470),
            ("vax_ipv", 60),
            ("vax_ipv", 120),
            ("vax_ipv", 180),
            ("vax_hib", 60),
            ("vax_hib", 120),
            ("vax_hib", 380),
            ("vax_pcv", 60),
            ("vax_pcv", 120),
            ("vax_pcv", 180),
            ("vax_pcv", 380),
            ("vax_rota", 60),
            ("vax_rota", 120),
            ("vax_mmr", 380),
            ("vax_vzv", 380),
            ("vax_hepa", 380),
            ("vax_flu", 200),
            ("vax_flu", 240),
        ]
        if not met:  # the commonest gap: the influenza series (sometimes plus the 4th DTaP)
            schedule = [
                s
                for s in schedule
                if s[0] != "vax_flu" and (self.rng.random() < 0.5 or s != ("vax_dtap", 470))
            ]
        for concept, offset in schedule:
            self.chart.immunization(C[concept], b + timedelta(days=offset))

    def _cancer(self) -> None:
        p, ch, rng = self.p, self.chart, self.rng
        if p.female and 24 <= p.age_end <= 64 and self.draw("CMS124"):
            day = _day(rng, self.mp_start, -700, 300)
            ch.observation(
                C["pap"],
                day,
                category="laboratory",
                profile="qicore-observation-lab",
                value={"valueCodeableConcept": {"text": "Negative for intraepithelial lesion"}},
            )
        if p.female and 42 <= p.age_end <= 74 and self.draw("CMS125"):
            day = _day(rng, self.mp_start, -400, 300)
            ch.observation(
                C["mammogram"],
                day,
                category="imaging",
                profile="qicore-observation-clinical-result",
                value=concept_value(Code(LOINC, "LA11137-5", "Negative")),
            )
        if 46 <= p.age_end <= 75 and self.draw("CMS130"):
            if rng.random() < 0.5:
                ch.procedure(C["colonoscopy"], _day(rng, self.mp_start, -3000, -30))
            else:
                ch.observation(
                    C["fobt"],
                    _day(rng, self.mp_start, 10, 300),
                    category="laboratory",
                    profile="qicore-observation-lab",
                    value=concept_value(Code(LOINC, "LA6577-6", "Negative")),
                )

    def _diabetes(self) -> None:
        p, ch, rng = self.p, self.chart, self.rng
        if not self.dx["diabetes"]:
            return
        enc = self.visits[-1]
        day = self._visit_day(enc)
        if p.age_end <= 75:
            poor = self.draw("CMS122")  # inverse: numerator = most recent HbA1c > 9 % or none
            if not poor:
                value = round(rng.uniform(5.8, 8.9), 1)
            elif rng.random() < 0.7:
                value = round(rng.uniform(9.1, 12.5), 1)
            else:
                value = None  # no HbA1c in the MP also counts as poor control
            if value is not None and "CMS122" not in self.planted:
                ch.observation(
                    C["hba1c"],
                    day,
                    category="laboratory",
                    profile="qicore-observation-lab",
                    encounter=enc,
                    value=quantity(value, "%"),
                )
            if self.draw("CMS131"):
                ch.observation(
                    C["retinal_exam"],
                    _day(rng, self.mp_start, 5, 300),
                    category="exam",
                    profile="qicore-observation-clinical-result",
                    value=concept_value(
                        Code(SNOMED, "428341000124108", "Diabetic retinopathy not detected (situation)")
                    ),
                )
        if 18 <= p.age_start <= 85 and self.draw("CMS951"):  # CQL: 18-85 at the start of the MP
            ch.observation(
                C["egfr"],
                day,
                category="laboratory",
                profile="qicore-observation-lab",
                encounter=enc,
                value=quantity(rng.randint(45, 110), "mL/min/{1.73_m2}"),
            )
            ch.observation(
                C["uacr"],
                day,
                category="laboratory",
                profile="qicore-observation-lab",
                encounter=enc,
                value=quantity(rng.randint(5, 60), "mg/g"),
            )

    def _cms165(self) -> None:
        if not (self.dx["htn"] and 18 <= self.p.age_end <= 85):
            return
        controlled = self.draw("CMS165")
        for enc in self.visits:  # the most recent reading decides; earlier ones may be high
            last = enc is self.visits[-1]
            if last:
                s, d = (
                    (self.rng.randint(112, 138), self.rng.randint(68, 88))
                    if controlled
                    else (self.rng.randint(142, 172), self.rng.randint(84, 102))
                )
            else:
                s, d = self.rng.randint(125, 160), self.rng.randint(75, 95)
            if "CMS165" not in self.planted:
                self._bp(enc, s, d)

    def _cms347(self) -> None:
        """Population 1 (clinical ASCVD) keeps the main stream's draw; populations 2 (LDL >= 190 mg/dL
        at 20-75, no ASCVD) and 3 (diabetes at 40-75, neither) are drawn on the group stream."""
        day = self._visit_day(self.visits[0])
        if self.dx["ascvd"]:
            if self.draw("CMS347"):
                self.chart.medication_request(C["statin_moderate"], day)
            return
        age, g = self.p.age_start, self.group_rng
        high_ldl = 20 <= age <= 75 and g.random() < self.cfg["prevalence"]["ldl_190_20_75"]
        if high_ldl:
            self.chart.observation(
                C["ldl"],
                day,
                category="laboratory",
                profile="qicore-observation-lab",
                encounter=self.visits[0],
                value=quantity(g.randint(190, 260), "mg/dL"),
            )
            if self.draw_group("CMS347:Group_2"):
                self.chart.medication_request(C["statin_moderate"], day)
        elif self.dx["diabetes"] and 40 <= age <= 75 and self.draw_group("CMS347:Group_3"):
            self.chart.medication_request(C["statin_moderate"], day)

    def _hiv(self) -> None:
        if self.dx["hiv"] and self.draw("CMS314"):
            self.chart.observation(
                C["hiv_viral_load"],
                _day(self.rng, self.mp_start, 250, 340),
                category="laboratory",
                profile="qicore-observation-lab",
                value=quantity(self.rng.randint(20, 180), "{copies}/mL"),
            )
        elif self.dx["hiv"]:
            self.chart.observation(
                C["hiv_viral_load"],
                _day(self.rng, self.mp_start, 250, 340),
                category="laboratory",
                profile="qicore-observation-lab",
                value=quantity(self.rng.randint(400, 40000), "{copies}/mL"),
            )

    def _cms349(self) -> None:
        if not 15 <= self.p.age_start <= 65 or self.dx["hiv"]:
            return
        if self.draw("CMS349"):
            self.chart.observation(
                C["hiv_test"],
                self._visit_day(self.visits[0]),
                category="laboratory",
                profile="qicore-observation-lab",
                value=concept_value(Code(SNOMED, "260385009", "Negative (qualifier value)")),
            )

    def _dental(self) -> None:
        p, rng = self.p, self.rng
        if not (1 <= p.age_start <= 20 and rng.random() < self.cfg["prevalence"]["dental_program_1_20"]):
            return
        d1 = _day(rng, self.mp_start, 10, 150)
        d2 = _day(rng, self.mp_start, 190, 340)
        enc = self.chart.encounter(C["dental_eval"], d1, location=p.site_ref, minutes=45)
        second = self.chart.encounter(C["dental_eval"], d2, location=p.site_ref, minutes=45)
        if self.draw("CMS74"):
            self.chart.procedure(C["fluoride_varnish"], d1, encounter=enc)
            self.chart.procedure(C["fluoride_varnish"], d2, encounter=second)
        if self.draw("CMS75"):  # inverse: numerator = caries overlapping the MP
            self.chart.condition(C["dental_caries"], d1, abatement=d2)

    def _cms159(self) -> None:
        """Index PHQ-9 > 9 in the denominator identification period (prior year), follow-up ~12 months on."""
        p, rng, ch = self.p, self.rng, self.chart
        if p.age_start < 13 or rng.random() >= self.cfg["prevalence"]["depression_index_12_up"]:
            return
        index_day = date(self.mp_start.year - 1, 1, 20) + timedelta(days=rng.randint(0, 200))
        enc = ch.encounter(C["office_visit"], index_day, location=p.site_ref)
        ch.condition(C["depression_dx"], index_day)
        ch.observation(
            C["phq9"],
            index_day,
            category="survey",
            profile="qicore-observation-screening-assessment",
            encounter=enc,
            value={"valueInteger": rng.randint(10, 22)},
        )
        follow = index_day + timedelta(days=365 + rng.randint(-40, 40))
        # CQL excludes hospice overlapping [index period start, index + 12 months + 60 days] only
        one_year = _plus_year(index_day)
        in_window = self.hospice_day is not None and self.hospice_day <= one_year + timedelta(days=60)
        score = rng.randint(0, 4) if self.draw("CMS159", removed=in_window) else rng.randint(6, 18)
        fenc = ch.encounter(C["office_visit"], follow, location=p.site_ref)
        if self.mp_start <= follow <= self.mp_end:
            self.mp_visits.append(fenc)
        ch.observation(
            C["phq9"],
            follow,
            category="survey",
            profile="qicore-observation-screening-assessment",
            encounter=fenc,
            value={"valueInteger": score},
        )

    def _cms177(self) -> None:
        p, rng = self.p, self.rng
        if not 6 <= p.age_start <= 16 or rng.random() >= self.cfg["prevalence"]["mdd_child_6_16"]:
            return
        for _ in range(rng.choice((1, 1, 2))):  # episode-based
            day = _day(rng, self.mp_start, 20, 330)
            enc = self.chart.encounter(
                C["office_visit"], day, location=p.site_ref, reason=C["mdd_active"], hour=14
            )
            if self.draw("CMS177"):
                self.chart.observation(
                    C["suicide_risk_assessment"],
                    day,
                    category="survey",
                    profile="qicore-observation-screening-assessment",
                    encounter=enc,
                    value=concept_value(Code(SNOMED, "455549009", "Low risk of suicide")),
                    hour=14,
                    minute=5,
                )

    # --- PRAPARE, CHW, referrals ----------------------------------------------------------------
    def _sdoh(self) -> None:
        p, ch, rng = self.p, self.chart, self.rng
        if not p.prapare:
            return
        enc = self.visits[0]
        day = self._visit_day(enc)
        items = prapare_items(p)  # Gravity's shape: /group/item linkIds, LOINC LA answers (synth/sdoh.py)
        ch.add(
            {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "questionnaire": "http://hl7.org/fhir/us/sdoh-clinicalcare/Questionnaire/SDOHCC-QuestionnairePRAPARE",
                "subject": ch.subject,
                "encounter": ch.ref(enc),
                "authored": ts(day, 8, 45),
                "item": items,
            }
        )
        ch.observation(
            Code(
                LOINC,
                "93025-5",
                "Protocol for Responding to and Assessing Patients' Assets, Risks, and Experiences [PRAPARE]",
            ),
            day,
            category="survey",
            profile=USCORE + "us-core-observation-screening-assessment",
            encounter=enc,
            value={
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": PRAPARE_ITEMS[f]}], "text": f},
                        **concept_value(C["yes"]),
                    }
                    for f in p.sdoh_factors
                ]
            },
            hour=8,
            minute=50,
        )
        if p.sdoh_risk == "high" and rng.random() < self.cfg["chw_rate_given_high_risk"]:
            ch.encounter(
                C["chw_visit"], day + timedelta(days=rng.randint(3, 30)), location=p.site_ref, minutes=60
            )
        for f in p.sdoh_factors:
            if rng.random() >= self.cfg["referral_rate_given_need"]:
                continue
            sr = ch.add(
                {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "category": [
                        {
                            "coding": [
                                {"system": SNOMED, "code": "410606002", "display": "Social service procedure"}
                            ]
                        },
                        referral_category(f),
                    ],
                    "code": {"text": f"Referral to community resource: {f}"},
                    "subject": ch.subject,
                    "authoredOn": ts(day, 9, 50),
                }
            )
            status = rng.choice(
                ("requested", "accepted", "in-progress", "completed", "completed", "cancelled")
            )
            ch.add(
                {
                    "resourceType": "Task",
                    "status": status,
                    "intent": "order",
                    "focus": ch.ref(sr),
                    "for": ch.subject,
                    "authoredOn": ts(day, 9, 55),
                    "lastModified": ts(day + timedelta(days=14), 12),
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
                    },
                }
            )
