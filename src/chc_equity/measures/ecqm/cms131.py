"""CMS131 Diabetes: Eye Exam (CMS131FHIRDiabetesEyeExam 1.0.000).

Patients 18-75 with diabetes who had a retinal or dilated eye exam (in the Measurement Period, or the
year before it when they have no retinopathy), an autonomous AI eye exam, or retinopathy severity
findings. Read side by side with ``../shared/ecqm/input/cql/CMS131FHIRDiabetesEyeExam.cql``.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import adult_outpatient, frailty, hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    choice_during_day,
    code_in,
    code_is,
    conditions_overlapping_day,
    has_code,
    in_valueset,
    is_physical_exam_performed,
    mp_and_year_before,
    performed_encounters,
    prevalence_overlaps_day,
    prevalence_starts_on_or_before_day,
    table,
    verified,
)

MEASURE = Measure(
    name="CMS131FHIRDiabetesEyeExam",
    cms_id="CMS131",
    version="1.0.000",
    title="Diabetes: Eye Exam",
    care_gap="Refer for a retinal or dilated eye exam (or AI retinopathy screening).",
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="increase",
    steward="National Committee for Quality Assurance",
    description="Patients 18-75 years of age with diabetes and an active diagnosis of retinopathy who had a "
    "retinal exam during the measurement period, or without retinopathy who had one during the measurement "
    "period or the year prior.",
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ANOPHTHALMOS_OF_BILATERAL_EYES = "15665641000119103"
AUTONOMOUS_AI_EYE_EXAM = "105914-6"
LEFT_EYE_SEVERITY = "71490-7"
RIGHT_EYE_SEVERITY = "71491-5"
NO_APPARENT_RETINOPATHY = "LA18643-9"
RETINAL_OR_DILATED_EYE_EXAM = "2.16.840.1.113883.3.464.1003.115.12.1088"
DIABETIC_RETINOPATHY_SEVERITY_LEVEL = "2.16.840.1.113883.3.464.1003.1266"

ENCOUNTER_VALUE_SETS = {
    **adult_outpatient.OUTPATIENT_VISITS,
    "Ophthalmological Services": "2.16.840.1.113883.3.526.3.1285",
    **adult_outpatient.TELEPHONE_VISITS,
}


def _exam(name: str, code_filter: str, window: tuple[str, str], extra: str = "") -> str:
    """A CTE over ``[ObservationClinicalResult: X].isPhysicalExamPerformed()`` whose effective interval
    lies during day of ``window``; ``extra`` adds the value test."""
    lo, hi = window
    return f"""{name} AS (
  SELECT DISTINCT o.center, o.patient_id FROM {table("Observation")} o
  WHERE {code_filter}
    AND {is_physical_exam_performed("o")}{extra}
    AND {choice_during_day("o", "effective", lo, hi, instant=True)}
)"""

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    mp_and_year_prior = mp_and_year_before(mp)
    year_prior = (f"({mp.start_date} - INTERVAL 1 YEAR)::DATE", f"({mp.end_date} - INTERVAL 1 YEAR)::DATE")
    has_hospice = ctx.shared(hospice.has_hospice_services)
    frail = ctx.shared(frailty.is_age_66_or_older_with_advanced_illness_and_frailty)
    nursing_home = ctx.shared(frailty.is_age_66_or_older_living_long_term_in_a_nursing_home)
    palliative_care = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    encounter_types = "\n       OR ".join(
        f"{code_in('Encounter', 'e', oid)}  -- \"{name}\"" for name, oid in ENCOUNTER_VALUE_SETS.items()
    )
    retinal_exam = code_in("Observation", "o", RETINAL_OR_DILATED_EYE_EXAM)
    left = code_is("Observation", "o", LOINC, LEFT_EYE_SEVERITY)
    right = code_is("Observation", "o", LOINC, RIGHT_EYE_SEVERITY)
    no_retinopathy = f"\n    AND {has_code('observation_value_code', 'o', LOINC, NO_APPARENT_RETINOPATHY)}"
    severity = f"\n    AND {in_valueset('observation_value_code', 'o', DIABETIC_RETINOPATHY_SEVERITY_LEVEL)}"
    autonomous_result = (
        "\n    AND "
        + in_valueset("observation_value_code", "o", "2.16.840.1.113883.3.464.1004.2616")
        + "  -- value as Concept in \"Autonomous Eye Exam Result or Finding\""
    )
    return f"""
WITH
-- CQL: define "Qualifying Encounters"
qualifying_encounters AS ({performed_encounters(encounter_types, mp)}
),
-- CQL: [ConditionEncounterDiagnosis: "Diabetes"].verified() overlapping day of the Measurement Period
diabetes_dx AS (  -- "Diabetes"
  {conditions_overlapping_day("2.16.840.1.113883.3.464.1003.103.12.1001", ctx.patients(), lo, hi)}
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
  WHERE {age_at_end("p.birth_date", mp)} BETWEEN 18 AND 75
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM qualifying_encounters)
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM diabetes_dx)
),
-- CQL: define "Bilateral Absence of Eyes"
bilateral_absence_of_eyes AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_is("Condition", "c", SNOMED, ANOPHTHALMOS_OF_BILATERAL_EYES)}
    AND {verified("c")}
    AND {prevalence_starts_on_or_before_day("c", "pt.birth_date", hi)}
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM {frail}
  UNION SELECT center, patient_id FROM {nursing_home}
  UNION SELECT center, patient_id FROM {palliative_care}
  UNION SELECT center, patient_id FROM bilateral_absence_of_eyes
),
-- CQL: define "Autonomous Eye Exam in Measurement Period"
{_exam("autonomous_eye_exam_in_measurement_period",
       code_is("Observation", "o", LOINC, AUTONOMOUS_AI_EYE_EXAM), (lo, hi), autonomous_result)},
-- CQL: define "Retinal Exam in Measurement Period"
{_exam("retinal_exam_in_measurement_period", retinal_exam, (lo, hi))},
-- CQL: define "Retinal Exam in Measurement Period or Year Prior"
{_exam("retinal_exam_in_measurement_period_or_year_prior", retinal_exam, mp_and_year_prior)},
-- CQL: define "Diabetic Retinopathy Overlapping Measurement Period"
diabetic_retinopathy_overlapping_measurement_period AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.526.3.327")}  -- "Diabetic Retinopathy"
    AND {verified("c")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
),
-- CQL: define "Has Left Eye No Retinopathy in Year Prior"
{_exam("has_left_eye_no_retinopathy_in_year_prior", left, year_prior, no_retinopathy)},
-- CQL: define "Has Left Eye Retinopathy"
{_exam("has_left_eye_retinopathy", left, (lo, hi), severity)},
-- CQL: define "Has Right Eye No Retinopathy in Year Prior"
{_exam("has_right_eye_no_retinopathy_in_year_prior", right, year_prior, no_retinopathy)},
-- CQL: define "Has Right Eye Retinopathy"
{_exam("has_right_eye_retinopathy", right, (lo, hi), severity)},
-- CQL: define "Numerator"
numerator AS (
  SELECT ip.center, ip.patient_id FROM initial_population ip
  LEFT JOIN diabetic_retinopathy_overlapping_measurement_period dr USING (center, patient_id)
  LEFT JOIN retinal_exam_in_measurement_period re USING (center, patient_id)
  LEFT JOIN retinal_exam_in_measurement_period_or_year_prior rey USING (center, patient_id)
  LEFT JOIN autonomous_eye_exam_in_measurement_period ae USING (center, patient_id)
  LEFT JOIN has_left_eye_retinopathy lr USING (center, patient_id)
  LEFT JOIN has_right_eye_retinopathy rr USING (center, patient_id)
  LEFT JOIN has_left_eye_no_retinopathy_in_year_prior lnr USING (center, patient_id)
  LEFT JOIN has_right_eye_no_retinopathy_in_year_prior rnr USING (center, patient_id)
  WHERE (dr.patient_id IS NOT NULL AND re.patient_id IS NOT NULL)
     OR (dr.patient_id IS NULL AND rey.patient_id IS NOT NULL)
     OR ae.patient_id IS NOT NULL
     -- "Retinal Exam Finding with Retinopathy Severity Level in Measurement Period"
     OR (lr.patient_id IS NOT NULL AND rr.patient_id IS NOT NULL)
     OR (lr.patient_id IS NOT NULL AND rnr.patient_id IS NOT NULL)
     OR (rr.patient_id IS NOT NULL AND lnr.patient_id IS NOT NULL)
     -- "Retinal Exam Finding with No Retinopathy Severity Level in Year Prior"
     OR (lnr.patient_id IS NOT NULL AND rnr.patient_id IS NOT NULL)
)
"""
