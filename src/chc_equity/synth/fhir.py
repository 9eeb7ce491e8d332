"""Small FHIR R4 / QI-Core 6 resource builders used by the generator.

Shapes follow the official eCQM test patients in ../shared (profiles, statuses, categories, value types),
so that the resources qualify for measures exactly as the CQL expects. Every builder returns a plain dict
and registers it with the patient's :class:`Chart`, which hands out deterministic ids.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from chc_equity.synth.codes import ACT_CODE, COND_CATEGORY, COND_CLINICAL, OBS_CATEGORY, UCUM, Code

QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
USCORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
TZ = "-05:00"

Resource = dict[str, Any]


def ts(day: date, hour: int = 9, minute: int = 0) -> str:
    """FHIR dateTime on `day` (clinic local time, fixed offset so output never depends on the host TZ)."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{TZ}"


def _profile(name: str) -> dict[str, list[str]]:
    return {"profile": [name if name.startswith("http") else QICORE + name]}


def _category(system: str, code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


class Chart:
    """Collects one patient's resources in generation order, with ids `<patient>-<n>`."""

    def __init__(self, patient_id: str, org_ref: str) -> None:
        self.patient_id = patient_id
        self.subject = {"reference": f"Patient/{patient_id}"}
        self.org_ref = org_ref
        self.resources: list[Resource] = []

    def add(self, resource: Resource) -> Resource:
        resource["id"] = f"{self.patient_id}-{len(self.resources)}"
        self.resources.append(resource)
        return resource

    def ref(self, resource: Resource) -> dict[str, str]:
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}

    # --- encounters -----------------------------------------------------------------------------
    def encounter(
        self,
        code: Code,
        day: date,
        *,
        location: str | None = None,
        minutes: int = 20,
        reason: Code | None = None,
        hour: int = 9,
    ) -> Resource:
        start = datetime(day.year, day.month, day.day, hour)
        end = start + timedelta(minutes=minutes)
        enc: Resource = {
            "resourceType": "Encounter",
            "meta": _profile("qicore-encounter"),
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [code.concept()],
            "subject": self.subject,
            "period": {"start": ts(day, start.hour, start.minute), "end": ts(day, end.hour, end.minute)},
            "serviceProvider": {"reference": self.org_ref},
        }
        if reason is not None:
            enc["reasonCode"] = [reason.concept()]
        if location is not None:
            enc["location"] = [{"location": {"reference": location}}]
        return self.add(enc)

    # --- conditions -----------------------------------------------------------------------------
    def condition(
        self, code: Code, onset: date, *, category: str = "problem-list-item", abatement: date | None = None
    ) -> Resource:
        profile = (
            "qicore-condition-encounter-diagnosis"
            if category == "encounter-diagnosis"
            else "qicore-condition-problems-health-concerns"
        )
        cond: Resource = {
            "resourceType": "Condition",
            "meta": _profile(profile),
            "clinicalStatus": {
                "coding": [{"system": COND_CLINICAL, "code": "resolved" if abatement else "active"}]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": _category(COND_CATEGORY, category),
            "code": code.concept(),
            "subject": self.subject,
            "onsetDateTime": ts(onset, 8),
            "recordedDate": ts(onset, 8),
        }
        if abatement is not None:
            cond["abatementDateTime"] = ts(abatement, 17)
        return self.add(cond)

    # --- observations ---------------------------------------------------------------------------
    def observation(
        self,
        code: Code,
        day: date,
        *,
        category: str,
        profile: str,
        value: dict[str, Any] | None,
        encounter: Resource | None = None,
        hour: int = 9,
        minute: int = 5,
    ) -> Resource:
        obs: Resource = {
            "resourceType": "Observation",
            "meta": _profile(profile),
            "status": "final",
            "category": _category(OBS_CATEGORY, category),
            "code": code.concept(),
            "subject": self.subject,
            "effectiveDateTime": ts(day, hour, minute),
            "issued": ts(day, hour, minute),
        }
        if encounter is not None:
            obs["encounter"] = self.ref(encounter)
        if value is not None:
            obs.update(value)
        return self.add(obs)

    def procedure(self, code: Code, day: date, *, encounter: Resource | None = None) -> Resource:
        proc: Resource = {
            "resourceType": "Procedure",
            "meta": _profile("qicore-procedure"),
            "status": "completed",
            "code": code.concept(),
            "subject": self.subject,
            "performedPeriod": {"start": ts(day, 9, 10), "end": ts(day, 9, 30)},
        }
        if encounter is not None:
            proc["encounter"] = self.ref(encounter)
        return self.add(proc)

    def immunization(self, code: Code, day: date) -> Resource:
        return self.add(
            {
                "resourceType": "Immunization",
                "meta": _profile("qicore-immunization"),
                "status": "completed",
                "vaccineCode": code.concept(),
                "patient": self.subject,
                "occurrenceDateTime": ts(day, 10),
                "recorded": ts(day, 10),
                "primarySource": True,
            }
        )

    def medication_request(self, code: Code, day: date) -> Resource:
        return self.add(
            {
                "resourceType": "MedicationRequest",
                "meta": _profile("qicore-medicationrequest"),
                "status": "active",
                "intent": "order",
                "category": _category(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community"
                ),
                "medicationCodeableConcept": code.concept(),
                "subject": self.subject,
                "authoredOn": ts(day, 9, 30),
                "dosageInstruction": [{"text": "1 tablet by mouth daily"}],
                "dispenseRequest": {
                    "expectedSupplyDuration": {"value": 90, "unit": "days", "system": UCUM, "code": "d"}
                },
            }
        )


def quantity(value: float, unit: str, ucum: str | None = None) -> dict[str, Any]:
    """`valueQuantity` fragment with a UCUM code."""
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum or unit}}


def concept_value(code: Code) -> dict[str, Any]:
    """`valueCodeableConcept` fragment."""
    return {"valueCodeableConcept": code.concept()}
