"""CMS139 Falls: Screening for Future Fall Risk (CMS139FHIRFallRiskScreening 1.0.000).

Patients 65+ at the start of the Measurement Period with a qualifying visit, screened for future fall
risk during the period. Read side by side with ``../shared/ecqm/input/cql/CMS139FHIRFallRiskScreening.cql``.
Not a UDS Table 6B line; kept for the MIPS/primary-care dashboard.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_start,
    code_in,
    during_day_of_mp,
    is_assessment_performed,
    is_encounter_performed,
)

MEASURE = Measure(
    name="CMS139FHIRFallRiskScreening",
    cms_id="CMS139",
    version="1.0.000",
    title="Falls: Screening for Future Fall Risk",
    care_gap="Screen for future fall risk at a visit in the period.",
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator"),
        ),
    ),
    improvement_notation="increase",
    steward="National Committee for Quality Assurance",
    description="Patients 65 years of age and older who were screened for future fall risk during the "
    "measurement period.",
)

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Annual Wellness Visit",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Home Healthcare Services",
    "Ophthalmological Services",
    "Preventive Care Services Individual Counseling",
    "Discharge Services Nursing Facility",
    "Nursing Facility Visit",
    "Care Services in Long Term Residential Facility",
    "Audiology Visit",
    "Telephone Visits",
    "Virtual Encounter",
    "Physical Therapy Evaluation",
    "Occupational Therapy Evaluation",
)

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    has_hospice = ctx.shared(hospice.has_hospice_services)
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS)
    eff_start = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant)"
    eff_end = "coalesce(o.effective_datetime, o.effective_period_end, o.effective_instant)"
    return f"""
WITH
-- CQL: define "Qualifying Encounter"  (union of 15 encounter value sets).isEncounterPerformed()
qualifying_encounter AS (
  SELECT e.center, e.patient_id, e.id
  FROM flat.encounter e
  WHERE ({encounter_types})
    AND {is_encounter_performed('e')}
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id
  FROM {ctx.patients()} p
  WHERE {age_at_start('p.birth_date', mp)} >= 65
    AND EXISTS (SELECT 1 FROM qualifying_encounter q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Numerator"  [ObservationScreeningAssessment: "Falls Screening"].isAssessmentPerformed()
numerator AS (
  SELECT DISTINCT o.center, o.patient_id
  FROM flat.observation o
  WHERE {code_in('Observation', 'o', 'Falls Screening')}
    AND {is_assessment_performed('o')}
    AND {during_day_of_mp(eff_start, eff_end, mp)}
),
-- CQL: define "Denominator Exclusions": Hospice."Has Hospice Services"
denominator_exclusions AS (SELECT center, patient_id FROM {has_hospice})
"""
