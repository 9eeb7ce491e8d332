"""Code lists of the child-health stage, each with the specification it follows (docs/child.md, "Codes").

Kept as plain tuples so a reviewer can check them against the cited sources; the SQL reads them from
here only.
"""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# --- clinical referrals (ServiceRequest.code), SNOMED CT procedures of the CMS50 "Referral" value set's
# kind (VSAC 2.16.840.1.113883.3.464.1003.101.12.1046); the split into behavioral health and specialist
# is ours. A ServiceRequest categorised "Patient referral" (SNOMED 3457005) with another code counts as a
# specialist referral.
BEHAVIORAL_HEALTH = "behavioral_health"
SPECIALIST = "specialist"
REFERRAL_TYPES = (BEHAVIORAL_HEALTH, SPECIALIST)
REFERRAL_CODES: dict[str, str] = {
    "390866009": BEHAVIORAL_HEALTH,  # Referral to mental health team
    "183524004": BEHAVIORAL_HEALTH,  # Referral to psychiatry service
    "308477009": BEHAVIORAL_HEALTH,  # Referral to psychologist
    "103696004": SPECIALIST,  # Patient referral to specialist
    "306253008": SPECIALIST,  # Referral to doctor
    "183519002": SPECIALIST,  # Referral to cardiology service
}
PATIENT_REFERRAL = "3457005"  # SNOMED "Patient referral" (ServiceRequest.category)
REFERRAL_NOT_ACTIVE = ("revoked", "entered-in-error", "draft")  # never sent, withdrawn or a mistake

# --- the consultant report that closes the loop: CMS50 "Consultant Report" value set
# (VSAC 2.16.840.1.113883.3.464.1003.121.12.1006) on a completed Task whose basedOn is the referral.
CONSULTANT_REPORT: tuple[tuple[str, str], ...] = (
    (LOINC, "11488-4"),  # Consult note
    (SNOMED, "371530004"),  # Clinical consultation report
)
WINDOW_MONTHS_BEFORE_END = 2  # CMS50: the referral falls in the first 10 months of the period

# --- follow-up after an ED visit for mental illness or intentional self-harm, modelled on HEDIS FUM
# (NCQA, public measure description): ED visits (v3 ActCode EMER, or CPT 99281-99285) with a diagnosis of
# mental illness (ICD-10-CM F03-F99: FUM "Mental Illness") or intentional self-harm (X71-X83, T14.91:
# FUM "Intentional Self-Harm"), ages 6-17 on the visit day, visits from January 1 to December 1; a
# follow-up is a later (or same-day, other) finished outpatient or telehealth encounter with such a
# diagnosis within 7 / 30 days.
ED_CLASS = ("EMER",)
ED_CPT = ("99281", "99282", "99283", "99284", "99285")
INPATIENT_CLASS = ("IMP", "ACUTE", "NONAC")
OUTPATIENT_CLASS = ("AMB", "VR", "HH")
MENTAL_ILLNESS_RANGE = ("F03", "F99")  # ICD-10-CM three-character categories, inclusive
SELF_HARM_RANGE = ("X71", "X83")
SELF_HARM_CODES = ("T1491",)  # T14.91 Suicide attempt (codes written without the dot)
FUM_AGES = (6, 17)
FUM_LAST_DAY = (12, 1)  # ED visits up to December 1 of the period's year
FUM_DAYS = (7, 30)
