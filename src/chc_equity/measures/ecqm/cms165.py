"""CMS165 Controlling High Blood Pressure (CMS165FHIRControllingHighBP 1.0.000).

Patients 18-85 with essential hypertension starting before or in the first six months of the
Measurement Period whose most recent blood pressure was < 140/90 mmHg. Read side by side with
``../shared/ecqm/input/cql/CMS165FHIRControllingHighBP.cql``; one CTE per CQL definition.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import adult_outpatient, frailty, hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    blood_pressure_observation,
    choice_end,
    code_in,
    is_encounter_performed,
    is_observation_performed,
    is_procedure_performed,
    latest,
    point_during_day,
    prevalence_overlaps,
    table,
    verified,
)

MEASURE = Measure(
    name="CMS165FHIRControllingHighBP",
    cms_id="CMS165",
    version="1.0.000",
    title="Controlling High Blood Pressure",
    care_gap="Most recent blood pressure not below 140/90: recheck and intensify hypertension treatment.",
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="increase",
    uds=("Table 7 Line 2c",),
    steward="National Committee for Quality Assurance",
    description="Patients 18-85 years of age who had a diagnosis of essential hypertension starting before "
    "and continuing into, or starting during the first six months of the measurement period, and whose "
    "most recent blood pressure was adequately controlled (< 140/90 mmHg) during the measurement period.",
)

LOINC = "http://loinc.org"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
ACUTE_CLASSES = "('EMER', 'IMP', 'ACUTE', 'NONAC', 'PRENC', 'SS')"

PREGNANCY_OR_RENAL = {
    "Pregnancy": "2.16.840.1.113883.3.526.3.378",
    "End Stage Renal Disease": "2.16.840.1.113883.3.526.3.353",
    "Kidney Transplant Recipient": "2.16.840.1.113883.3.464.1003.109.12.1029",
    "Chronic Kidney Disease, Stage 5": "2.16.840.1.113883.3.526.3.1002",
}


def _any_of(resource: str, alias: str, valuesets: dict[str, str]) -> str:
    return "(" + "\n      OR ".join(
        f"{code_in(resource, alias, oid)}  -- \"{name}\"" for name, oid in valuesets.items()
    ) + "\n    )"

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    encounters = ctx.shared(adult_outpatient.qualifying_encounters)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    frail = ctx.shared(
        frailty.is_age_66_to_80_with_advanced_illness_and_frailty_or_is_age_81_or_older_with_frailty
    )
    nursing_home = ctx.shared(frailty.is_age_66_or_older_living_long_term_in_a_nursing_home)
    palliative_care = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    effective_latest = latest("o", "effective", instant=True)
    first_six_months_end = f"({mp.start_ts} + INTERVAL 6 MONTH - INTERVAL 1 MILLISECOND)"
    performed_end = f"fhir_ts({choice_end('p', 'performed')})"
    disqualifying = {
        "Encounter Inpatient": "2.16.840.1.113883.3.666.5.307",
        "Emergency Department Evaluation and Management Visit": "2.16.840.1.113883.3.464.1003.101.12.1010",
    }
    return f"""
WITH
-- CQL: define "Essential Hypertension Diagnosis"
-- prevalence overlaps Interval[start of "Measurement Period", start of "Measurement Period" + 6 months)
essential_hypertension_diagnosis AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.464.1003.104.12.1011")}  -- "Essential Hypertension"
    AND {verified("c")}
    AND {prevalence_overlaps("c", "pt.birth_date", mp.start_ts, first_six_months_end)}
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
  WHERE {age_at_end("p.birth_date", mp)} BETWEEN 18 AND 85
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM essential_hypertension_diagnosis)
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM {encounters})
),
-- CQL: define "Pregnancy or Renal Diagnosis" (prevalence overlaps "Measurement Period")
pregnancy_or_renal_diagnosis AS (
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {_any_of("Condition", "c", PREGNANCY_OR_RENAL)}
    AND {verified("c")}
    AND {prevalence_overlaps("c", "pt.birth_date", mp.start_ts, mp.end_ts)}
),
-- CQL: define "End Stage Renal Disease Procedures"
end_stage_renal_disease_procedures AS (
  SELECT DISTINCT p.center, p.patient_id FROM {table("Procedure")} p
  WHERE ({code_in("Procedure", "p", "2.16.840.1.113883.3.464.1003.109.12.1012")}  -- "Kidney Transplant"
         OR {code_in("Procedure", "p", "2.16.840.1.113883.3.464.1003.109.12.1013")})  -- "Dialysis Services"
    AND {is_procedure_performed("p")}
    AND {performed_end} <= {mp.end_ts}  -- performed.toInterval() ends on or before end of MP
),
-- CQL: define "End Stage Renal Disease Encounter"
end_stage_renal_disease_encounter AS (
  SELECT DISTINCT e.center, e.patient_id FROM {table("Encounter")} e
  -- "ESRD Monthly Outpatient Services"
  WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.464.1003.109.12.1014")}
    AND {is_encounter_performed("e")}
    AND fhir_ts(e.period_start) <= {mp.end_ts}  -- period starts on or before end of MP
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM pregnancy_or_renal_diagnosis
  UNION SELECT center, patient_id FROM end_stage_renal_disease_procedures
  UNION SELECT center, patient_id FROM end_stage_renal_disease_encounter
  UNION SELECT center, patient_id FROM {frail}
  UNION SELECT center, patient_id FROM {nursing_home}
  UNION SELECT center, patient_id FROM {palliative_care}
),
-- [USCoreBloodPressureProfile].isObservationBP(), with latest() during day of the Measurement Period
blood_pressure AS (
  SELECT o.center, o.patient_id, o.id, o.encounter_id, fhir_ts({effective_latest}) AS taken_at
  FROM {table("Observation")} o
  WHERE {blood_pressure_observation("o")}
    AND {is_observation_performed("o")}
    AND {point_during_day(effective_latest, lo, hi)}
),
-- CQL: define "Qualifying Blood Pressure Reading"
qualifying_blood_pressure_reading AS (
  -- readings not taken during day of an inpatient or ED encounter ...
  SELECT b.* FROM blood_pressure b
  WHERE NOT EXISTS (
    SELECT 1 FROM {table("Encounter")} e
    WHERE e.center = b.center AND e.patient_id = b.patient_id
      AND {_any_of("Encounter", "e", disqualifying)}
      AND {is_encounter_performed("e")}
      AND CAST(b.taken_at AS DATE) >= fhir_date(e.period_start)
      AND (e.period_end IS NULL OR CAST(b.taken_at AS DATE) <= fhir_date(e.period_end))
  )
  UNION
  -- ... or whose own encounter (getEncounter()) is not of an acute class
  SELECT b.* FROM blood_pressure b
  JOIN {table("Encounter")} e ON e.center = b.center AND e.id = b.encounter_id
  WHERE e.class_code NOT IN {ACUTE_CLASSES}
),
-- CQL: define "Blood Pressure Days" / "Most Recent Blood Pressure Day"
most_recent_blood_pressure_day AS (
  SELECT center, patient_id, max(CAST(taken_at AS DATE)) AS on_day
  FROM qualifying_blood_pressure_reading GROUP BY center, patient_id
),
-- the readings of that day with their systolic / diastolic component (singleton; null when absent)
readings_on_most_recent_day AS (
  SELECT r.center, r.patient_id, r.id,
         (SELECT any_value(k.value_quantity_value) FROM flat.observation_component k
          WHERE k.center = r.center AND k.id = r.id AND k.code_system = '{LOINC}' AND k.code = '{SYSTOLIC}')
           AS systolic,
         (SELECT any_value(k.value_quantity_value) FROM flat.observation_component k
          WHERE k.center = r.center AND k.id = r.id AND k.code_system = '{LOINC}' AND k.code = '{DIASTOLIC}')
           AS diastolic
  FROM qualifying_blood_pressure_reading r
  JOIN most_recent_blood_pressure_day d
    ON d.center = r.center AND d.patient_id = r.patient_id AND d.on_day = CAST(r.taken_at AS DATE)
),
-- CQL: define "Lowest Systolic Reading on Most Recent Blood Pressure Day" and
--   "Lowest Diastolic Reading on Most Recent Blood Pressure Day"
-- (sort asc puts nulls first: one reading without the component makes the lowest reading null)
lowest_reading_on_most_recent_day AS (
  SELECT center, patient_id,
         CASE WHEN bool_and(systolic IS NOT NULL) THEN min(systolic) END AS systolic,
         CASE WHEN bool_and(diastolic IS NOT NULL) THEN min(diastolic) END AS diastolic
  FROM readings_on_most_recent_day GROUP BY center, patient_id
),
-- CQL: define "Numerator"
--   "Has Systolic Blood Pressure Less Than 140" and "Has Diastolic Blood Pressure Less Than 90"
numerator AS (
  SELECT center, patient_id FROM lowest_reading_on_most_recent_day
  WHERE systolic < 140 AND diastolic < 90
)
"""
