"""CMS951 Kidney Health Evaluation (CMS951FHIRKidneyHealthEval 1.0.000).

Patients 18-85 with diabetes who had a kidney health evaluation (eGFR and a uACR, or a urine albumin
and a urine creatinine test within four days of each other) during the Measurement Period. Read side by
side with ``../shared/ecqm/input/cql/CMS951FHIRKidneyHealthEval.cql``; one CTE per CQL definition.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    VERIFICATION_SYSTEM,
    age_at_start,
    choice_during_day,
    code_in,
    during_day_of,
    in_valueset,
    observation_has_value,
    observation_value_is_quantity,
    prevalence_overlaps_before_day,
    prevalence_overlaps_day,
    table,
)

MEASURE = Measure(
    name="CMS951FHIRKidneyHealthEval",
    cms_id="CMS951",
    version="1.0.000",
    title="Kidney Health Evaluation",
    care_gap="Order both an eGFR and a urine albumin-creatinine ratio in the period.",
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="increase",
    steward="National Kidney Foundation",
    description="Patients 18-85 years of age with diabetes who received a kidney health evaluation (eGFR "
    "and uACR) during the measurement period.",
)

VERIFICATION = VERIFICATION_SYSTEM
ENCOUNTER_VALUE_SETS = {
    "Annual Wellness Visit": "2.16.840.1.113883.3.526.3.1240",
    "Home Healthcare Services": "2.16.840.1.113883.3.464.1003.101.12.1016",
    "Office Visit": "2.16.840.1.113883.3.464.1003.101.12.1001",
    "Outpatient Consultation": "2.16.840.1.113883.3.464.1003.101.12.1008",
    "Preventive Care Services Established Office Visit, 18 and Up":
        "2.16.840.1.113883.3.464.1003.101.12.1025",
    "Preventive Care Services Initial Office Visit, 18 and Up": "2.16.840.1.113883.3.464.1003.101.12.1023",
    "Telephone Visits": "2.16.840.1.113883.3.464.1003.101.12.1080",
}
CKD_STAGE_5 = "2.16.840.1.113883.3.526.3.1002"
END_STAGE_RENAL_DISEASE = "2.16.840.1.113883.3.526.3.353"
EGFR = "2.16.840.1.113883.3.6929.3.1000"
UACR = "2.16.840.1.113883.3.6929.3.1007"
URINE_ALBUMIN = "2.16.840.1.113762.1.4.1178.88"
URINE_CREATININE = "2.16.840.1.113762.1.4.1178.87"
UNDETECTABLE_LAB_RESULT_VALUE = "2.16.840.1.113762.1.4.1248.272"
PERFORMED = "('final', 'amended', 'corrected')"


def not_refuted(c: str) -> str:
    """``verificationStatus is not null implies (verificationStatus !~ refuted and !~ entered-in-error)``
    (this measure's own test, looser than Status.verified())."""
    return (
        f"({c}.verification_status_code IS NULL AND {c}.verification_status_system IS NULL "
        f"OR NOT ({c}.verification_status_system = '{VERIFICATION}' "
        f"AND {c}.verification_status_code IN ('refuted', 'entered-in-error')))"
    )


def _lab(name: str, valueset: str, lo: str, hi: str, value_test: str) -> str:
    """A CTE of ``[LaboratoryResultObservation: X]`` performed during day of the Measurement Period."""
    return f"""{name} AS (
  SELECT o.center, o.patient_id, o.id,
         fhir_ts(coalesce(o.effective_datetime, o.effective_instant, o.effective_period_start)) AS starts,
         fhir_ts(coalesce(o.effective_datetime, o.effective_instant, o.effective_period_end)) AS ends
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", valueset)}
    AND {choice_during_day("o", "effective", lo, hi, instant=True)}
    AND {value_test}
    AND o.status IN {PERFORMED}
)"""

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    has_hospice = ctx.shared(hospice.has_hospice_services)
    palliative_care = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    encounter_types = "\n       OR ".join(
        f"{code_in('Encounter', 'e', oid)}  -- \"{name}\"" for name, oid in ENCOUNTER_VALUE_SETS.items()
    )
    has_value = observation_has_value("o")
    uacr_value = (
        f"({observation_value_is_quantity('o')} "
        f"OR {in_valueset('observation_value_code', 'o', UNDETECTABLE_LAB_RESULT_VALUE)})"
    )
    return f"""
WITH
-- CQL: define "Has Active Diabetes Overlaps Start Of Measurement Period"
has_active_diabetes_overlaps_start_of_measurement_period AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.464.1003.103.12.1001")}  -- "Diabetes"
    AND {prevalence_overlaps_before_day("c", "pt.birth_date", lo, hi)}
    AND {not_refuted("c")}
),
-- CQL: define "Has Outpatient Visit During Measurement Period"
has_outpatient_visit_during_measurement_period AS (
  SELECT DISTINCT e.center, e.patient_id FROM {table("Encounter")} e
  WHERE ({encounter_types}
        )
    AND {during_day_of('e.period_start', 'e.period_end', lo, hi)}
    AND e.status = 'finished'
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
  WHERE {age_at_start("p.birth_date", mp)} BETWEEN 18 AND 85
    AND (p.center, p.id) IN
        (SELECT (center, patient_id) FROM has_active_diabetes_overlaps_start_of_measurement_period)
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM has_outpatient_visit_during_measurement_period)
),
-- CQL: define "Has CKD Stage 5 Or ESRD Diagnosis Overlaps Measurement Period"
has_ckd_stage_5_or_esrd_diagnosis_overlaps_measurement_period AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE ({code_in("Condition", "c", CKD_STAGE_5)}  -- "Chronic Kidney Disease, Stage 5"
         OR {code_in("Condition", "c", END_STAGE_RENAL_DISEASE)}  -- "End Stage Renal Disease"
        )
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
    AND {not_refuted("c")}
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM has_ckd_stage_5_or_esrd_diagnosis_overlaps_measurement_period
  UNION SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM {palliative_care}
),
-- CQL: define "Has Estimated Glomerular Filtration Rate Performed During Measurement Period"
{_lab("egfr", EGFR, lo, hi, has_value)},
-- CQL: define "Has Urine Albumin Creatinine Ratio Test Performed During Measurement Period"
{_lab("uacr", UACR, lo, hi, uacr_value)},
-- CQL: define "Urine Albumin Test Performed During The Measurement Period"
{_lab("urine_albumin_test_performed_during_the_measurement_period", URINE_ALBUMIN, lo, hi, has_value)},
-- CQL: define "Urine Creatinine Test Performed During The Measurement Period"
{_lab("urine_creatinine_test_performed_during_the_measurement_period", URINE_CREATININE, lo, hi, has_value)},
-- CQL: define "Has Urine Albumin Test And Urine Creatine Test Less Than Or Equal To Four Days Apart"
-- (albumin interval during Interval[start of creatinine - 4 days, end of creatinine + 4 days])
albumin_and_creatinine_within_four_days AS (
  SELECT DISTINCT a.center, a.patient_id
  FROM urine_albumin_test_performed_during_the_measurement_period a
  JOIN urine_creatinine_test_performed_during_the_measurement_period k
    ON k.center = a.center AND k.patient_id = a.patient_id
  WHERE a.starts >= k.starts - INTERVAL 4 DAY AND a.ends <= k.ends + INTERVAL 4 DAY
),
-- CQL: define "Kidney Panel Performed During Measurement Period"
kidney_panel_performed_during_measurement_period AS (
  SELECT center, patient_id FROM egfr
  INTERSECT
  (SELECT center, patient_id FROM uacr
   UNION SELECT center, patient_id FROM albumin_and_creatinine_within_four_days)
),
-- CQL: define "Numerator": "Kidney Panel Performed During Measurement Period"
numerator AS (SELECT center, patient_id FROM kidney_panel_performed_during_measurement_period)
"""
