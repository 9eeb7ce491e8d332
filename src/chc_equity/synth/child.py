"""Child health: guardians, behavioral-health and specialist referrals with their consultant reports, and ED
visits for mental illness with follow-ups, with a planted gap (docs/synth.md, "Child health").

Everything here draws from its **own** stream per patient (``f"{seed}:{center}:{index}:child"``) and adds
resources after every other module's (ids ``<patient>-<n>`` continue the chart's numbering), so every
earlier draw, resource id and truth.json figure stays as it was. The guardian written as ``Patient.contact``
is drawn first (:func:`add_guardian_contact`, before the Patient is written), the rest after the chart is
complete (:func:`enrich`).

Shapes follow chc_equity.child: a referral is a ServiceRequest (SNOMED referral code, category "Patient
referral", performer the receiving organization) with a lifecycle Task (focus = the referral); the
report that closes it is a completed Task coded LOINC 11488-4 "Consult note" whose ``basedOn`` is the
referral (CMS50). Some reports never come back, some come back late (after the period: open at its end),
a few referrals are cancelled. Planted (``child_gaps``): the chance that a report comes back is
multiplied by ``closure.factor`` for children whose language is ``closure.language``.
:class:`ChildTruth` records, per center, referral type and language, the referrals and the exact expected
number closed in the period (with its variance), and the exact ED-visit and follow-up counts.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.fhir import Chart, Resource, ts
from chc_equity.synth.people import LANGUAGES, Person, age_at

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
BH_CODE, SPECIALIST_CODE, PATIENT_REFERRAL, CONSULT_NOTE = "390866009", "103696004", "3457005", "11488-4"
# receiving organizations: (id, name, referral type)
ORGS = (
    ("bh-01", "Harbor Youth Counseling", "behavioral_health"),
    ("bh-02", "Family Behavioral Health Partners", "behavioral_health"),
    ("sp-01", "Children's Cardiology Group", "specialist"),
    ("sp-02", "Pediatric ENT Associates", "specialist"),
    ("sp-03", "Children's Neurology Clinic", "specialist"),
)
RELATIONSHIPS = ("MTH", "MTH", "FTH", "GRD")
GIVEN = ("Carmen", "David", "Lucia", "Pedro", "Grace")
# Encounter.type (UDS+ requires one) from a local code system: no eCQM value set holds these codes, so the
# new encounters never qualify a patient for a measure (every measure's truth stays as it was).
ENCOUNTER_TYPE = "https://chc-equity.org/fhir/CodeSystem/synthetic-encounter-type"
BH_DX = ("F32.9", "F41.1", "F43.10", "X78.0XXA")
DEFAULTS: dict[str, Any] = {
    "guardian_related_person": 0.85,  # a RelatedPerson; else Patient.contact with this chance:
    "guardian_contact": 0.6,
    "bh_referral": 0.5,  # per child aged 3-17 (high, so that one small center has power)
    "specialist_referral": 0.45,  # per child
    "cancelled": 0.05,
    "report_returned": 0.8,
    "report_late": 0.2,  # of returned reports: 60-150 days instead of 3-45
    "ed_visit": 0.08,  # per child aged 6-17: an ED visit for mental illness or self-harm
    "followup_7d": 0.5,
    "followup_30d": 0.25,  # (else no follow-up within 30 days)
}


def organizations() -> list[Resource]:
    """The receiving organizations (the same resources in every center's files)."""
    return [{"resourceType": "Organization", "id": i, "active": True, "name": n} for i, n, _ in ORGS]


def _cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **cfg.get("child", {})}


class ChildTruth:
    """What the generator wrote, for truth.json's ``child`` section."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, Any]] = {}

    def center(self, center: str) -> dict[str, Any]:
        return self.counts.setdefault(
            center,
            {"children": 0, "guardians": 0, "referrals": {}, "cancelled": 0, "closure": {},
             "ed_visits": 0, "followup_7d": 0, "followup_30d": 0},
        )  # fmt: skip

    def as_json(self, cfg: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for c, v in sorted(self.counts.items()):
            closure = {
                t: {
                    lang: {"referrals": n, "expected_closed": round(e, 6), "variance_closed": round(var, 6)}
                    for lang, (n, e, var) in sorted(by_lang.items())
                }
                for t, by_lang in sorted(v["closure"].items())
            }
            out[c] = {**v, "closure": closure}
        return {
            "definition": "children = under 18 at the period end; referrals = BH / specialist "
            "ServiceRequests of children (not cancelled), per type; closure = a consultant-report Task "
            "based on the referral, "
            "completed after it and within the period, expected per type and language; ed_visits = ED visits "
            "for mental illness or self-harm of children 6-17 (one per child, none after December 1), with "
            "a follow-up within 7 / 30 days",
            "planted": cfg.get("child_gaps", {}),
            "centers": out,
        }


def add_guardian_contact(patient: Resource, p: Person, rng: random.Random, cfg: dict[str, Any]) -> str | None:
    """Decide the child's guardian; write a ``Patient.contact`` now when that is the shape drawn.
    Returns "related" when :func:`enrich` must add a RelatedPerson, else None."""
    if p.age_end >= 18:
        return None
    c = _cfg(cfg)
    u = rng.random()
    if u < c["guardian_related_person"]:
        return "related"
    if rng.random() < c["guardian_contact"]:
        family = patient.get("name", [{}])[0].get("family", "Family")
        patient["contact"] = [
            {
                "relationship": [{"coding": [{"system": V2_0131, "code": "N"}]}],
                "name": {"family": family, "given": [rng.choice(("Maria", "Jose", "Ana", "Luis", "Rosa"))]},
                "telecom": [{"system": "phone", "value": f"(617) 555-01{rng.randint(0, 99):02d}"}],
            }
        ]
    return None


def _family_language(p: Person, rng: random.Random) -> str:
    if p.language == "English" and p.hispanic and rng.random() < 0.4:
        return "Spanish"  # an English-speaking child of a Spanish-speaking family
    return p.language


def _closure_probability(cfg: dict[str, Any], p_return: float, remaining: int) -> float:
    """P(report completed within the period) given ``remaining`` days from the referral to the period end."""

    def fits(lo: int, hi: int) -> float:
        return max(0, min(hi, remaining) - lo + 1) / (hi - lo + 1)

    late = cfg["report_late"]
    return p_return * ((1 - late) * fits(3, 45) + late * fits(60, 150))


def enrich(
    chart: Chart,
    patient: Resource,
    p: Person,
    rng: random.Random,
    cfg: dict[str, Any],
    truth: ChildTruth,
    center: str,
    guardian: str | None,
    mp_start: date,
    mp_end: date,
) -> None:
    """Add the child's RelatedPerson, referrals with their Tasks and reports, ED visits and follow-ups."""
    if p.age_end >= 18:
        return
    c = _cfg(cfg)
    t = truth.center(center)
    t["children"] += 1
    if guardian == "related" or patient.get("contact"):
        t["guardians"] += 1
    if guardian == "related":
        lang = _family_language(p, rng)
        family = patient.get("name", [{}])[0].get("family", "Family")
        chart.add(
            {
                "resourceType": "RelatedPerson",
                "active": True,
                "patient": chart.subject,
                "relationship": [{"coding": [{"system": ROLE, "code": rng.choice(RELATIONSHIPS)}]}],
                "name": [{"family": family, "given": [rng.choice(GIVEN)]}],
                "telecom": [{"system": "phone", "value": f"(508) 555-01{rng.randint(0, 99):02d}"}],
                "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                            "code": LANGUAGES.get(lang, "en")}]},
                                   "preferred": True}],
            }
        )  # fmt: skip
    gaps = cfg.get("child_gaps", {}).get("closure", {})
    factor = gaps.get("factor", 1.0) if p.language == gaps.get("language") else 1.0
    kinds = []
    if p.age_end >= 3 and rng.random() < c["bh_referral"]:
        kinds.append("behavioral_health")
    if rng.random() < c["specialist_referral"]:
        kinds.append("specialist")
    for kind in kinds:
        _referral(chart, p, rng, c, t, kind, factor, mp_start, mp_end)
    if p.age_end >= 7 and rng.random() < c["ed_visit"]:  # 6-17 on any day of the period
        _ed_visit(chart, p, rng, c, t, mp_start)


def _referral(
    chart: Chart, p: Person, rng: random.Random, c: dict[str, Any], t: dict[str, Any], kind: str,
    factor: float, mp_start: date, mp_end: date,
) -> None:  # fmt: skip
    authored = mp_start + timedelta(days=rng.randint(5, 290))
    org = rng.choice([o for o in ORGS if o[2] == kind])[0]
    code = BH_CODE if kind == "behavioral_health" else SPECIALIST_CODE
    sr = chart.add(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": PATIENT_REFERRAL}]}],
            "code": {"coding": [{"system": SNOMED, "code": code}]},
            "subject": chart.subject,
            "authoredOn": ts(authored, 10),
            "performer": [{"reference": f"Organization/{org}"}],
        }
    )
    task: Resource = {
        "resourceType": "Task",
        "intent": "order",
        "focus": chart.ref(sr),
        "for": chart.subject,
        "owner": {"reference": f"Organization/{org}"},
        "authoredOn": ts(authored, 10),
    }
    if rng.random() < c["cancelled"]:
        chart.add({**task, "status": "cancelled", "lastModified": ts(authored + timedelta(days=2), 12)})
        t["cancelled"] += 1
        return
    p_return = min(1.0, c["report_returned"] * factor)
    remaining = (mp_end - authored).days
    q = _closure_probability(c, p_return, remaining)
    by_lang = t["closure"].setdefault(kind, {})
    n, e, var = by_lang.get(p.language, (0, 0.0, 0.0))
    by_lang[p.language] = (n + 1, e + q, var + q * (1 - q))
    t["referrals"][kind] = t["referrals"].get(kind, 0) + 1
    if rng.random() < p_return:
        late = rng.random() < c["report_late"]
        end = authored + timedelta(days=rng.randint(60, 150) if late else rng.randint(3, 45))
        if end <= mp_end:
            chart.add({**task, "status": "completed", "lastModified": ts(end, 16),
                       "executionPeriod": {"start": ts(authored, 11), "end": ts(end, 16)}})  # fmt: skip
            chart.add(
                {
                    "resourceType": "Task",
                    "status": "completed",
                    "intent": "order",
                    "code": {"coding": [{"system": LOINC, "code": CONSULT_NOTE, "display": "Consult note"}]},
                    "basedOn": [chart.ref(sr)],
                    "for": chart.subject,
                    "owner": {"reference": f"Organization/{org}"},
                    "executionPeriod": {"start": ts(end, 9), "end": ts(end, 16)},
                    "lastModified": ts(end, 16),
                }
            )
            return
    status = rng.choice(("requested", "accepted", "in-progress"))
    chart.add(
        {**task, "status": status, "lastModified": ts(authored + timedelta(days=rng.randint(1, 10)), 12)}
    )


def _ed_visit(
    chart: Chart, p: Person, rng: random.Random, c: dict[str, Any], t: dict[str, Any], mp_start: date
) -> None:
    day = mp_start + timedelta(days=rng.randint(5, 320))  # before December 1
    if age_at(p.birth, day) < 6:  # the measure's ages are 6-17 on the visit day
        return
    dx = rng.choice(BH_DX)

    def encounter(d: date, cls: str, code: str, hour: int) -> Resource:
        kind = "ed-visit" if cls == "EMER" else "bh-follow-up"
        return chart.add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": ACT, "code": cls},
                "type": [{"coding": [{"system": ENCOUNTER_TYPE, "code": kind}], "text": kind}],
                "subject": chart.subject,
                "period": {"start": ts(d, hour), "end": ts(d, hour + 1)},
                "reasonCode": [{"coding": [{"system": ICD10, "code": code}]}],
                "serviceProvider": {"reference": chart.org_ref},
            }
        )

    encounter(day, "EMER", dx, 20)
    t["ed_visits"] += 1
    u = rng.random()
    follow = "F32.9" if dx.startswith("X") else dx
    if u < c["followup_7d"]:
        encounter(day + timedelta(days=rng.randint(1, 7)), "AMB", follow, 10)
        t["followup_7d"] += 1
        t["followup_30d"] += 1
    elif u < c["followup_7d"] + c["followup_30d"]:
        encounter(day + timedelta(days=rng.randint(8, 30)), "AMB", follow, 10)
        t["followup_30d"] += 1
