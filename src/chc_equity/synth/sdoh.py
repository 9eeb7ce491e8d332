"""Social needs as the Gravity SDOH Clinical Care IG records them: PRAPARE answers, Z-code health concerns,
community organizations and referral Task histories, with planted gaps (docs/synth.md, "Social needs").

The PRAPARE QuestionnaireResponse items (:func:`prapare_items`) are deterministic functions of the
patient's social factors, as the clinical module has always drawn them. Everything random here draws
from its **own** stream per patient (``f"{seed}:{center}:{index}:sdoh"``): :func:`enrich` runs after the
clinical history, fills in the referral loop of the ServiceRequests and Tasks the clinical module wrote
(receiving organization, status, reason, timestamps, outcome) and adds Z-code health concerns, so the
clinical draws -- and every eCQM in truth.json -- stay exactly as they were.

Planted (``sdoh_gaps`` in the config): closure of referrals is multiplied by ``closure.factor`` for the
patients whose preferred language is ``closure.language``; referrals to the organization ``slow_org``
take ``slow_factor`` times as long to close; organizations marked at capacity reject most referrals
with the Gravity capacity reason. :class:`SdohTruth` records what was generated for truth.json.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.fhir import Chart, Resource, ts
from chc_equity.synth.people import Person

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
THO = "http://terminology.hl7.org/CodeSystem"
CONDITION_CATEGORY = f"{THO}/condition-category"
SOCIAL_REFERRAL = "410606002"

# generator factor -> (domain of chc_equity.sdoh, Gravity category, PRAPARE item, positive LA, negative LA,
# ICD-10-CM code of the health concern)
FACTORS: dict[str, tuple[str, str, str, str, str | None, str]] = {
    "housing": ("housing_instability", "housing-instability", "93033-9", "LA33-6", "LA32-8", "Z59.811"),
    "food": ("food", "food-insecurity", "93031-3", "LA30125-1", None, "Z59.41"),
    "transportation": ("transportation", "transportation-insecurity", "93030-5", "LA30133-5", "LA32-8",
                       "Z59.82"),
    "utilities": ("utilities", "utility-insecurity", "93031-3", "LA30124-4", None, "Z59.12"),
    "safety": ("interpersonal_safety", "intimate-partner-violence", "93026-3", "LA32-8", "LA33-6", "Z65.4"),
    "isolation": ("social_isolation", "social-connection", "93029-7", "LA27722-0", "LA30132-7", "Z60.2"),
    "stress": ("stress", "stress", "93038-8", "LA13914-9", "LA6568-5", "Z73.3"),
    "childcare": ("income", "financial-insecurity", "93031-3", "LA30127-7", None, "Z59.87"),
    "employment": ("employment", "employment-status", "67875-5", "LA17956-6", "LA30136-8", "Z56.0"),
}  # fmt: skip
GROUP = {
    "71802-3": "93042-0", "93033-9": "93042-0", "82589-3": "93041-2", "67875-5": "93041-2",
    "76437-3": "93041-2", "93031-3": "93041-2", "93030-5": "93041-2", "93029-7": "93040-4",
    "93038-8": "93040-4", "93026-3": "93039-6",
}  # fmt: skip
INSURANCE_ANSWER = {
    "medicaid": "LA17849-3",
    "uninsured": "LA30194-7",
    "private": "LA6350-8",
    "medicare": "LA15652-3",
}
ORG_NAMES = (
    "Greater Boston Food Bank Partner", "Neighborhood Pantry Network", "Housing Stability Coalition",
    "Tenant Rights Center", "Ride to Care", "Community Van Service", "Fuel and Utility Assistance",
    "Heat Help Fund", "Safe Homes Alliance", "Family Violence Hotline Partner", "Senior Connection Circle",
    "Peer Support Collective", "Stress and Coping Program", "Mindful Families", "Child Care Resource Center",
    "Family Aid Fund", "Job Readiness Hub", "Workforce Connect", "Legal Aid Partner",
    "Benefits Navigation Desk", "Community Action Agency", "United Way 211 Partner",
)  # fmt: skip
ORG_FACTORS = (
    "food", "food", "housing", "housing", "transportation", "transportation", "utilities", "utilities",
    "safety", "safety", "isolation", "isolation", "stress", "stress", "childcare", "childcare",
    "employment", "employment", None, None, None, None,
)  # fmt: skip


def org_id(k: int) -> str:
    return f"cbo-{k + 1:02d}"


def organizations(cfg: dict[str, Any]) -> list[Resource]:
    """The network's community organizations (the same resources in every center's files)."""
    gaps = cfg.get("sdoh_gaps", {})
    at_capacity = set(gaps.get("at_capacity_orgs", ()))
    out = []
    for k, name in enumerate(ORG_NAMES):
        org: Resource = {
            "resourceType": "Organization",
            "id": org_id(k),
            "active": True,
            "name": name,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "cg", "display": "Community Group"}]}],
        }  # fmt: skip
        if org_id(k) in at_capacity:
            org["extension"] = [
                {
                    "url": "https://chc-equity.org/fhir/StructureDefinition/capacity-status",
                    "valueCode": "no-capacity",
                }
            ]
        out.append(org)
    return out


def prapare_items(p: Person) -> list[dict[str, Any]]:
    """PRAPARE answers as Gravity's QuestionnaireResponse nests them (``/group/item`` linkIds, LA codes).

    Material security (93031-3) lists only the needs checked; a patient with none has no answer to it,
    as LHC-Forms writes an unchecked multi-select (the sdoh stage reads that as "asked, no need")."""
    answers: dict[str, list[dict[str, Any]]] = {}

    def code(item: str, la: str) -> None:
        answers.setdefault(item, []).append({"valueCoding": {"system": LOINC, "code": la}})

    code("71802-3", "LA30190-5" if p.special.get("homeless") else "LA30189-7")
    code("82589-3", "LA30192-1")
    code("76437-3", INSURANCE_ANSWER.get(p.insurance, "LA6350-8"))
    for f, (_d, _c, item, pos, neg, _z) in FACTORS.items():
        if f in p.sdoh_factors:
            code(item, pos)
        elif neg is not None:
            code(item, neg)
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in GROUP:
        if item in answers:
            groups.setdefault(GROUP[item], []).append(
                {"linkId": f"/{GROUP[item]}/{item}", "answer": answers[item]}
            )
    return [{"linkId": "/93025-5", "item": [{"linkId": f"/{g}", "item": its} for g, its in groups.items()]}]


def referral_category(factor: str) -> dict[str, Any]:
    """The Gravity SDOH category of a referral for ``factor`` (ServiceRequest.category)."""
    return {"coding": [{"system": SDOHCC, "code": FACTORS[factor][1]}]}


class SdohTruth:
    """What the generator wrote, for truth.json: exact counts and expected closures per language."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, Any]] = {}

    def center(self, center: str) -> dict[str, Any]:
        return self.counts.setdefault(
            center,
            {"eligible": 0, "screened": 0, "positive": {}, "referrals": {}, "closure_by_language": {}},
        )

    def as_json(self, cfg: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for c, v in sorted(self.counts.items()):
            lang = {
                k: {"referrals": n, "expected_closed": round(e, 6), "variance_closed": round(var, 6)}
                for k, (n, e, var) in sorted(v["closure_by_language"].items())
            }
            out[c] = {**v, "closure_by_language": lang}
        return {
            "definition": "eligible = adults (18+ at the period end; every generated patient has a visit "
            "in the period); screened = adults with a PRAPARE (it asks all five HRSN groups); positive = "
            "adults with the factor, by chc_equity.sdoh domain; referrals = ServiceRequests per domain of "
            "adults; closure = completed Task with an output",
            "planted": cfg.get("sdoh_gaps", {}),
            "centers": out,
        }


def _org_for(factor: str, rng: random.Random) -> str:
    ks = [k for k, f in enumerate(ORG_FACTORS) if f == factor] + [
        k for k, f in enumerate(ORG_FACTORS) if f is None
    ]
    return org_id(rng.choice(ks[:2]) if rng.random() < 0.85 else rng.choice(ks))


def enrich(
    chart: Chart, p: Person, rng: random.Random, cfg: dict[str, Any], truth: SdohTruth, center: str
) -> None:
    """Fill in the referral loop of ``chart``'s social referrals and add Z-code health concerns."""
    gaps = cfg.get("sdoh_gaps", {})
    adult = p.age_end >= 18
    t = truth.center(center)
    if adult:
        t["eligible"] += 1
        if p.prapare:
            t["screened"] += 1
            for f in p.sdoh_factors:
                d = FACTORS[f][0]
                t["positive"][d] = t["positive"].get(d, 0) + 1
            if p.special.get("homeless"):
                t["positive"]["homelessness"] = t["positive"].get("homelessness", 0) + 1
    if not p.prapare:
        return
    qr = next(r for r in chart.resources if r["resourceType"] == "QuestionnaireResponse")
    day = date.fromisoformat(qr["authored"][:10])
    for f in p.sdoh_factors:  # a health concern for about half the positive domains
        if rng.random() < cfg.get("sdoh_documentation_rate", 0.5):
            chart.add(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": {"coding": [{"system": f"{THO}/condition-clinical", "code": "active"}]},
                    "verificationStatus": {"coding": [{"system": f"{THO}/condition-ver-status",
                                                       "code": "unconfirmed"}]},
                    "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "health-concern"}]},
                                 {"coding": [{"system": SDOHCC, "code": FACTORS[f][1]}]}],
                    "code": {"coding": [{"system": ICD10, "code": FACTORS[f][5]}]},
                    "subject": chart.subject,
                    "recordedDate": day.isoformat(),
                }
            )  # fmt: skip
    srs = {r["id"]: r for r in chart.resources if r["resourceType"] == "ServiceRequest" and _social(r)}
    closure = gaps.get("closure", {})
    factor = closure.get("factor", 1.0) if p.language == closure.get("language") else 1.0
    p_done, p_output = cfg.get("sdoh_completion_rate", 0.6) * factor, cfg.get("sdoh_output_rate", 0.9)
    at_capacity = set(gaps.get("at_capacity_orgs", ()))
    for task in [r for r in chart.resources if r["resourceType"] == "Task"]:
        sr = srs.get(task["focus"]["reference"].split("/")[-1])
        if sr is None:
            continue
        f = _factor(sr)
        authored = date.fromisoformat(sr["authoredOn"][:10])
        org = _org_for(f, rng)
        sr["performer"] = [{"reference": f"Organization/{org}"}]
        task["owner"] = {"reference": f"Organization/{org}"}
        task.pop("statusReason", None)
        if org in at_capacity and rng.random() < 0.7:
            status, done = "rejected", False
            task["statusReason"] = {
                "coding": [{"system": SDOHCC, "code": "no-capacity"}],
                "text": "At capacity",
            }
            modified = authored + timedelta(days=rng.randint(1, 5))
        else:
            u = rng.random()
            done = u < p_done
            status = (
                "completed" if done else rng.choice(("requested", "accepted", "in-progress", "cancelled"))
            )
            start = authored + timedelta(days=rng.randint(1, 10))
            modified = start
            if status in ("in-progress", "completed"):
                task["executionPeriod"] = {"start": ts(start, 9)}
            if done:
                slow = gaps.get("slow_factor", 1.0) if org == gaps.get("slow_org") else 1.0
                end = start + timedelta(days=max(1, round(rng.randint(5, 30) * slow)))
                task["executionPeriod"]["end"] = ts(end, 16)
                modified = end
                if rng.random() < p_output:
                    task["output"] = [
                        {
                            "type": {"coding": [{"system": SDOHCC, "code": "resulting-activity"}]},
                            "valueReference": {"reference": f"Procedure/{task['id']}-outcome"},
                        }
                    ]
        task["status"] = status
        task["lastModified"] = ts(modified, 12)
        if adult:
            d = FACTORS[f][0]
            t["referrals"][d] = t["referrals"].get(d, 0) + 1
            n, e, var = t["closure_by_language"].get(p.language, (0, 0.0, 0.0))
            q = 0.0 if org in at_capacity else p_done * p_output
            if org in at_capacity:  # 30 % pass the capacity check, then close as usual
                q = 0.3 * p_done * p_output
            t["closure_by_language"][p.language] = (n + 1, e + q, var + q * (1 - q))


def _factor(sr: Resource) -> str:
    """The generator factor of a referral, from its Gravity category (:func:`referral_category`)."""
    codes = {c.get("code") for cat in sr.get("category", []) for c in cat.get("coding", [])}
    return next(f for f, v in FACTORS.items() if v[1] in codes)


def _social(sr: Resource) -> bool:
    return any(
        c.get("code") == SOCIAL_REFERRAL for cat in sr.get("category", []) for c in cat.get("coding", [])
    )
