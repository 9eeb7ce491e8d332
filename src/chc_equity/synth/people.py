"""Demographics and social facts for one synthetic patient, and their FHIR representation.

Sampling draws only from the patient's own `random.Random`, so output never depends on other patients.
Where facts live (documented in docs/synth.md): race/ethnicity/birth sex/gender identity as US Core
Patient extensions; language in Patient.communication; insurance as Coverage (PHVS Source of Payment
Typology); income, homelessness, agricultural work, veteran status and sexual orientation as Observations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.codes import CDCREC, LOINC, SNOMED, SOPT, Code
from chc_equity.synth.fhir import USCORE, Chart, concept_value, quantity, ts

US_CORE_EXT = "http://hl7.org/fhir/us/core/StructureDefinition/"
SOCIAL = "social-history"

RACE_CODES = {
    "White": "2106-3",
    "Black or African American": "2054-5",
    "Asian": "2028-9",
    "American Indian or Alaska Native": "1002-5",
    "Native Hawaiian or Other Pacific Islander": "2076-8",
}
HISPANIC_DETAIL = {
    "Puerto Rican": "2180-8",
    "Dominican": "2184-0",
    "Salvadoran": "2161-8",
    "Guatemalan": "2157-6",
    "Mexican": "2148-5",
    "Colombian": "2169-1",
}
LANGUAGES = {
    "English": "en",
    "Spanish": "es",
    "Portuguese": "pt",
    "Haitian Creole": "ht",
    "Vietnamese": "vi",
    "Chinese": "zh",
    "Cape Verdean Creole": "kea",
}
INSURANCE_SOPT = {
    "medicaid": ("2", "MEDICAID"),
    "medicare": ("1", "MEDICARE"),
    "private": ("5", "PRIVATE HEALTH INSURANCE"),
    "uninsured": ("81", "Self-pay"),
}
SEX_SNOMED = {"F": "248152002", "M": "248153007"}  # Female (finding) / Male (finding)
SEXUAL_ORIENTATION = {  # LOINC 76690-7 answers
    "heterosexual": (SNOMED, "20430005", "Heterosexual (finding)"),
    "lesbian_or_gay": (SNOMED, "38628009", "Homosexual (finding)"),
    "bisexual": (SNOMED, "42035005", "Bisexual (finding)"),
    "something_else": ("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "OTH", "other"),
    "dont_know": ("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "UNK", "unknown"),
    "not_disclosed": (
        "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "asked-declined",
        "Asked But Declined",
    ),
}


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    """Weighted choice over a dict in its (YAML) order; deterministic for a given rng state."""
    total = sum(weights.values())
    x = rng.random() * total
    for key, w in weights.items():
        x -= w
        if x < 0:
            return key
    return next(reversed(weights))


@dataclass
class Person:
    """Everything the clinical generator needs to know about one patient."""

    pid: str
    birth: date
    age_end: int  # age in whole years at end of the measurement period
    age_start: int  # ... at start
    female: bool
    hispanic: str | None  # detailed Hispanic origin, None if not Hispanic
    race: str
    language: str
    income: str
    insurance: str
    zip: str
    site_ref: str
    special: dict[str, bool] = field(default_factory=dict)
    orientation: str = "not_disclosed"
    sdoh_factors: list[str] = field(default_factory=list)
    prapare: bool = False

    @property
    def sdoh_risk(self) -> str:
        if not self.prapare:
            return "unscreened"
        n = len(self.sdoh_factors)
        return "high" if n >= 3 else "moderate" if n >= 1 else "low"

    @property
    def race_ethnicity(self) -> str:
        if self.hispanic:
            return "Hispanic"
        return {
            "White": "White non-Hispanic",
            "Black or African American": "Black non-Hispanic",
            "Asian": "Asian non-Hispanic",
            "Unreported": "Unknown",
        }.get(self.race, "Other non-Hispanic")

    def strata(self, center: str) -> dict[str, str]:
        return {
            "center": center,
            "race_ethnicity": self.race_ethnicity,
            "language": self.language,
            "income": self.income,
            "insurance": self.insurance,
            "sdoh_risk": self.sdoh_risk,
        }


def age_at(birth: date, when: date) -> int:
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def sample_person(
    rng: random.Random, cfg: dict[str, Any], pid: str, mp_start: date, mp_end: date, site: dict[str, Any]
) -> Person:
    """Draw one patient's demographics and social facts from the configured distributions."""
    bands = cfg["age_bands"]
    lo, hi, _ = bands[int(pick(rng, {str(i): b[2] for i, b in enumerate(bands)}))]
    age = rng.randint(lo, hi)
    birth = mp_end - timedelta(days=365 * age + rng.randint(1, 364))
    birth = min(birth, mp_end - timedelta(days=30))
    hispanic = pick(rng, cfg["hispanic_detail"]) if rng.random() < cfg["hispanic"] else None
    race = pick(rng, cfg["race"])
    group = "hispanic" if hispanic else race if race in cfg["languages_by_group"] else "other"
    lang_w = dict(cfg["languages_by_group"][group])
    lang_w["English"] = max(0.0, 1.0 - sum(lang_w.values()))
    language = pick(rng, lang_w)
    age_end = age_at(birth, mp_end)
    ins_key = (
        "insurance_child" if age_end < 18 else "insurance_senior" if age_end >= 65 else "insurance_adult"
    )
    p = Person(
        pid=pid,
        birth=birth,
        age_end=age_end,
        age_start=age_at(birth, mp_start),
        female=rng.random() < cfg["female"],
        hispanic=hispanic,
        race=race,
        language=language,
        income=pick(rng, cfg["income_fpl"]),
        insurance=pick(rng, cfg[ins_key]),
        zip=rng.choice(site["zips"]),
        site_ref=f"Location/{site['id']}",
    )
    for name, rate in cfg["special_populations"].items():
        p.special[name] = age_end >= 18 and rng.random() < rate
    if age_end >= 18:
        p.orientation = pick(rng, cfg["sexual_orientation"])
    p.prapare = rng.random() < cfg["prapare_screened"]
    factor_rates = cfg["sdoh_factor_rates"]
    boost = 1.6 if p.income == "<=100%" or p.special["homeless"] else 1.0
    p.sdoh_factors = [f for f, r in factor_rates.items() if rng.random() < min(0.95, r * boost)]
    if p.special["homeless"] and "housing" not in p.sdoh_factors:
        p.sdoh_factors.insert(0, "housing")
    return p


def patient_resource(p: Person, org_ref: str, rng: random.Random) -> dict[str, Any]:
    """QI-Core Patient with US Core race/ethnicity/birthsex/genderIdentity extensions."""
    race_ext: list[dict[str, Any]] = []
    if p.race in RACE_CODES:
        race_ext.append(
            {
                "url": "ombCategory",
                "valueCoding": {"system": CDCREC, "code": RACE_CODES[p.race], "display": p.race},
            }
        )
    elif p.race == "More than one race":
        for name in ("White", "Black or African American"):
            race_ext.append(
                {
                    "url": "ombCategory",
                    "valueCoding": {"system": CDCREC, "code": RACE_CODES[name], "display": name},
                }
            )
    else:
        race_ext.append(
            {
                "url": "ombCategory",
                "valueCoding": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                    "code": "UNK",
                    "display": "Unknown",
                },
            }
        )
    race_ext.append({"url": "text", "valueString": p.race})
    if p.hispanic:
        eth_ext = [
            {
                "url": "ombCategory",
                "valueCoding": {"system": CDCREC, "code": "2135-2", "display": "Hispanic or Latino"},
            },
            {
                "url": "detailed",
                "valueCoding": {"system": CDCREC, "code": HISPANIC_DETAIL[p.hispanic], "display": p.hispanic},
            },
            {"url": "text", "valueString": p.hispanic},
        ]
    else:
        eth_ext = [
            {
                "url": "ombCategory",
                "valueCoding": {"system": CDCREC, "code": "2186-5", "display": "Not Hispanic or Latino"},
            },
            {"url": "text", "valueString": "Not Hispanic or Latino"},
        ]
    sex = "F" if p.female else "M"
    gi = (
        ("446141000124107", "Identifies as female gender (finding)")
        if p.female
        else ("446151000124109", "Identifies as male gender (finding)")
    )
    if p.age_end >= 18 and rng.random() < 0.01:
        gi = ("33791000087105", "Identifies as nonbinary gender (finding)")
    given = rng.choice(
        ["Alex", "Sam", "Jordan", "Rosa", "Ana", "Minh", "Wei", "Jean", "Maria", "Chris", "Lee"]
    )
    return {
        "resourceType": "Patient",
        "id": p.pid,
        "meta": {"profile": ["http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-patient"]},
        "extension": [
            {"url": US_CORE_EXT + "us-core-race", "extension": race_ext},
            {"url": US_CORE_EXT + "us-core-ethnicity", "extension": eth_ext},
            {"url": US_CORE_EXT + "us-core-birthsex", "valueCode": sex},
            # US Core 6 sex (SNOMED): what CQL `Patient.sex` reads (CMS124/CMS125 female criterion)
            {"url": US_CORE_EXT + "us-core-sex", "valueCode": SEX_SNOMED[sex]},
            {
                "url": US_CORE_EXT + "us-core-genderIdentity",
                "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": gi[0], "display": gi[1]}]},
            },
        ],
        "identifier": [{"system": "urn:chc-equity:synth:mrn", "value": p.pid}],
        "name": [{"family": "Synthetic", "given": [given]}],
        "gender": "female" if p.female else "male",
        "birthDate": p.birth.isoformat(),
        "address": [{"use": "home", "city": "", "state": "MA", "postalCode": p.zip, "country": "US"}],
        "communication": [
            {
                "language": {
                    "coding": [
                        {"system": "urn:ietf:bcp:47", "code": LANGUAGES[p.language], "display": p.language}
                    ]
                },
                "preferred": True,
            }
        ],
        "managingOrganization": {"reference": org_ref},
    }


def coverage_resource(p: Person, chart: Chart, mp_start: date) -> None:
    """Insurance as a Coverage whose type is a PHVS Source of Payment Typology code."""
    code, display = INSURANCE_SOPT[p.insurance]
    chart.add(
        {
            "resourceType": "Coverage",
            "meta": {"profile": ["http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-coverage"]},
            "status": "active",
            "type": {"coding": [{"system": SOPT, "code": code, "display": display}]},
            "beneficiary": chart.subject,
            "period": {"start": ts(mp_start.replace(year=mp_start.year - 1), 0)},
            "payor": [chart.subject if p.insurance == "uninsured" else {"display": display.title()}],
        }
    )


def social_observations(p: Person, chart: Chart, day: date) -> None:
    """Income % poverty, housing/ag-worker/veteran status, sexual orientation (adults) as Observations."""

    def obs(code: Code, value: dict[str, Any]) -> None:
        chart.observation(
            code,
            day,
            category=SOCIAL,
            profile=USCORE + "us-core-observation-sdoh-assessment",
            value=value,
            hour=8,
            minute=30,
        )

    if p.income != "unknown":
        pct = {"<=100%": 70, "101-200%": 150, ">200%": 260}[p.income]
        obs(
            Code(LOINC, "99500-1", "Household income as a percentage of federal poverty level"),
            quantity(pct, "%"),
        )
    if p.age_end < 18:
        return
    housing = (
        ("32911000", "Homeless (finding)")
        if p.special["homeless"]
        # not 160734000: that is "Lives in nursing home", which AIFrailLTCF turns into an exclusion at 66+
        else ("414418009", "Housed (finding)")
    )
    obs(Code(LOINC, "71802-3", "Housing status"), concept_value(Code(SNOMED, *housing)))
    if p.special["agricultural_worker"]:
        obs(
            Code(LOINC, "11341-5", "History of Occupation"),
            concept_value(Code(SNOMED, "10660007", "Agricultural migrant worker (occupation)")),
        )
    obs(
        Code(LOINC, "93034-7", "Have you been discharged from the armed forces of the United States?"),
        concept_value(
            Code(
                SNOMED,
                "373066001" if p.special["veteran"] else "373067005",
                "Yes (qualifier value)" if p.special["veteran"] else "No (qualifier value)",
            )
        ),
    )
    system, code, display = SEXUAL_ORIENTATION[p.orientation]
    so_value = (
        {"dataAbsentReason": {"coding": [{"system": system, "code": code, "display": display}]}}
        if p.orientation == "not_disclosed"
        else concept_value(Code(system, code, display))
    )
    obs(Code(LOINC, "76690-7", "Sexual orientation"), so_value)
