"""CHW program data: community health workers, their panels, phones, booked visits and outreach history.

Everything here draws from its **own** random stream per patient (``f"{seed}:{center}:{index}:chw"``),
never from the clinical one, so adding the CHW program left every measure outcome and truth.json exactly
as before. Resources:

- a CHW is a ``Practitioner`` plus a ``PractitionerRole`` coded NUCC 172V00000X (Community Health Worker);
  one per :data:`PATIENTS_PER_CHW` patients of a center (at least one);
- a panel is a ``CareTeam`` per enrolled patient whose participant is the CHW (role 172V00000X);
- a phone number in ``Patient.telecom`` (fictional 555-01xx numbers) for most patients, and the core
  ``patient-interpreterRequired`` extension for most patients whose preferred language is not English;
- a booked ``Appointment`` in the weeks after the period end for some patients (the next visit);
- outreach attempts as ``Communication`` (category :data:`OUTREACH_CATEGORY`, channel in ``medium``,
  ``completed`` = reached, ``not-done`` with a ``statusReason`` = no answer / wrong number / declined).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from chc_equity.synth.fhir import Chart, ts

NUCC = "http://nucc.org/provider-taxonomy"
CHW_TAXONOMY = "172V00000X"
OUTREACH_SYSTEM = "https://chc-equity.org/fhir/CodeSystem/chw-outreach"
OUTREACH_CATEGORY = {"system": OUTREACH_SYSTEM, "code": "chw-outreach", "display": "CHW outreach attempt"}
CHANNEL_SYSTEM = "https://chc-equity.org/fhir/CodeSystem/outreach-channel"
CHANNELS = ("phone", "text", "home-visit", "in-clinic")
NOT_REACHED = ("no-answer", "wrong-number", "declined")
INTERPRETER_EXT = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
PATIENTS_PER_CHW = 400
PANEL_RATE = {"high": 0.8, "moderate": 0.35, "low": 0.08, "unscreened": 0.05}
APPOINTMENT_RATE = 0.4
PHONE_RATE = 0.92
INTERPRETER_RATE = 0.75
CHW_NAMES = ("Alvarez", "Baptiste", "Nguyen", "Pereira", "Okafor", "Santos", "Chen", "Medeiros")


def chw_ids(center: str, patients: int) -> list[str]:
    return [f"{center}-chw{k + 1}" for k in range(max(1, patients // PATIENTS_PER_CHW))]


def chw_resources(center: str, patients: int, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Practitioner + PractitionerRole (NUCC 172V00000X) for each CHW of ``center``."""
    out: list[dict[str, Any]] = []
    for k, pid in enumerate(chw_ids(center, patients)):
        out.append(
            {
                "resourceType": "Practitioner",
                "id": pid,
                "active": True,
                "name": [{"family": CHW_NAMES[k % len(CHW_NAMES)], "given": ["CHW"]}],
            }
        )
        out.append(
            {
                "resourceType": "PractitionerRole",
                "id": f"{pid}-role",
                "active": True,
                "practitioner": {"reference": f"Practitioner/{pid}"},
                "organization": {"reference": f"Organization/{center}"},
                "location": [{"reference": f"Location/{sites[k % len(sites)]['id']}"}],
                "code": [
                    {"coding": [{"system": NUCC, "code": CHW_TAXONOMY, "display": "Community Health Worker"}]}
                ],
            }
        )
    return out


def add_contact(patient: dict[str, Any], rng: random.Random, language: str) -> None:
    """A phone number (fictional 555-01xx) and, for most non-English speakers, interpreter required."""
    if rng.random() < PHONE_RATE:
        area = rng.choice(("617", "508", "413", "978"))
        patient["telecom"] = [
            {"system": "phone", "value": f"({area}) 555-01{rng.randint(0, 99):02d}", "use": "mobile"}
        ]
    if language != "English" and rng.random() < INTERPRETER_RATE:
        patient.setdefault("extension", []).append({"url": INTERPRETER_EXT, "valueBoolean": True})


def program_resources(
    chart: Chart,
    rng: random.Random,
    *,
    chws: list[str],
    sdoh_risk: str,
    site_ref: str,
    period_end: date,
) -> None:
    """Appointment, CHW panel membership (CareTeam) and outreach Communications for one patient."""
    if rng.random() < APPOINTMENT_RATE:
        day = period_end + timedelta(days=rng.randint(1, 60))
        hour = rng.randint(8, 16)
        chart.add(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": ts(day, hour),
                "end": ts(day, hour, 30),
                "participant": [
                    {"actor": chart.subject, "status": "accepted"},
                    {"actor": {"reference": site_ref}, "status": "accepted"},
                ],
            }
        )
    if rng.random() >= PANEL_RATE.get(sdoh_risk, 0.05):
        return
    chw = rng.choice(chws)
    since = period_end - timedelta(days=rng.randint(60, 300))
    role = {"coding": [{"system": NUCC, "code": CHW_TAXONOMY, "display": "Community Health Worker"}]}
    chart.add(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": chart.subject,
            "participant": [
                {
                    "role": [role],
                    "member": {"reference": f"Practitioner/{chw}"},
                    "period": {"start": since.isoformat()},
                }
            ],
        }
    )
    day = since
    for _ in range(rng.randint(0, 4)):
        day = day + timedelta(days=rng.randint(1, 40))
        if day > period_end:
            break
        channel = rng.choice(CHANNELS)
        reached = channel in ("home-visit", "in-clinic") or rng.random() < 0.55
        comm: dict[str, Any] = {
            "resourceType": "Communication",
            "status": "completed" if reached else "not-done",
            "category": [{"coding": [OUTREACH_CATEGORY]}],
            "medium": [{"coding": [{"system": CHANNEL_SYSTEM, "code": channel}]}],
            "subject": chart.subject,
            "sender": {"reference": f"Practitioner/{chw}"},
            "recipient": [chart.subject],
            "sent": ts(day, rng.randint(9, 17)),
        }
        if not reached:
            comm["statusReason"] = {"coding": [{"system": OUTREACH_SYSTEM, "code": rng.choice(NOT_REACHED)}]}
        chart.add(comm)
