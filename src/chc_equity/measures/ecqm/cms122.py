"""CMS122 Diabetes: Glycemic Status Assessment Greater Than 9% (CMS122FHIRDiabetesAssessGT9Pct 1.0.000).

Inverse measure: the numerator is *poor* control (most recent HbA1c / GMI > 9 %, a result without a
value, or no test at all). Read side by side with
``../shared/ecqm/input/cql/CMS122FHIRDiabetesAssessGT9Pct.cql``; one CTE per CQL definition.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import adult_outpatient, frailty, hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    code_in,
    code_is,
    conditions_overlapping_day,
    has_code,
    is_laboratory_test_performed,
    latest,
    observation_has_value,
    performed_encounters,
    point_during_day,
    table,
)

MEASURE = Measure(
    name="CMS122FHIRDiabetesAssessGT9Pct",
    cms_id="CMS122",
    version="1.0.000",
    title="Diabetes: Glycemic Status Assessment Greater Than 9%",
    care_gap="Most recent HbA1c/GMI is above 9 % or missing: order an HbA1c and review diabetes management.",
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="decrease",
    uds=("Table 7 Line 3f",),
    steward="National Committee for Quality Assurance",
    description="Patients 18-75 years of age with diabetes whose most recent glycemic status assessment "
    "(HbA1c or GMI) during the measurement period was > 9.0%, or who had none.",
)

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
GLUCOSE_MANAGEMENT_INDICATOR = "97506-0"

# Encounter value sets of "Qualifying Encounters" (name -> OID as declared in the CQL).
ENCOUNTER_VALUE_SETS = {
    **adult_outpatient.OUTPATIENT_VISITS,
    "Nutrition Services": "2.16.840.1.113883.3.464.1003.1006",
    **adult_outpatient.TELEPHONE_VISITS,
}
# Medical nutrition therapy direct codes (E.type ~ code).
NUTRITION_CODES = ((CPT, "97802"), (CPT, "97803"), (CPT, "97804"), (HCPCS, "G0270"), (HCPCS, "G0271"))

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    has_hospice = ctx.shared(hospice.has_hospice_services)
    nursing_home = ctx.shared(frailty.is_age_66_or_older_living_long_term_in_a_nursing_home)
    frail = ctx.shared(frailty.is_age_66_or_older_with_advanced_illness_and_frailty)
    palliative_care = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    encounter_types = "\n       OR ".join(
        [f"{code_in('Encounter', 'e', oid)}  -- \"{name}\"" for name, oid in ENCOUNTER_VALUE_SETS.items()]
        + [has_code("encounter_type", "e", system, code) for system, code in NUTRITION_CODES]
    )
    effective_latest = latest("o", "effective", instant=True)
    return f"""
WITH
-- CQL: define "Qualifying Encounters"
qualifying_encounters AS ({performed_encounters(encounter_types, mp)}
),
-- CQL: [ConditionEncounterDiagnosis: "Diabetes"].verified() overlapping the Measurement Period
diabetes_diagnosis AS (  -- "Diabetes"
  {conditions_overlapping_day("2.16.840.1.113883.3.464.1003.103.12.1001", ctx.patients(), lo, hi)}
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
  WHERE {age_at_end("p.birth_date", mp)} BETWEEN 18 AND 75
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM qualifying_encounters)
    AND (p.center, p.id) IN (SELECT (center, patient_id) FROM diabetes_diagnosis)
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM {nursing_home}
  UNION SELECT center, patient_id FROM {frail}
  UNION SELECT center, patient_id FROM {palliative_care}
),
-- CQL: define "Glycemic Status Assessment"
glycemic_status_assessment AS (
  SELECT o.center, o.patient_id, o.id, fhir_date({effective_latest}) AS on_day,
         o.value_quantity_value AS value,  -- value as Quantity
         coalesce(o.value_quantity_code, o.value_quantity_unit) AS unit,
         {observation_has_value("o")} AS has_value
  FROM {table("Observation")} o
  WHERE ({code_in("Observation", "o", "2.16.840.1.113883.3.464.1003.198.12.1013")}  -- "HbA1c Laboratory Test"
         OR {code_is("Observation", "o", LOINC, GLUCOSE_MANAGEMENT_INDICATOR)})
    AND {is_laboratory_test_performed("o")}
    AND {point_during_day(effective_latest, lo, hi)}
),
-- CQL: define "Most Recent Glycemic Status Date"
most_recent_glycemic_status_date AS (
  SELECT center, patient_id, max(on_day) AS on_day FROM glycemic_status_assessment GROUP BY center, patient_id
),
-- CQL: define "Lowest Glycemic Status Assessment Reading on Most Recent Day"
-- Sorted by `value as Quantity` ascending, nulls first: a reading without a Quantity (no value, or a
-- value of another type) is the "lowest"; "Without Result" then asks whether it has no value at all.
lowest_reading_on_most_recent_day AS (
  SELECT g.center, g.patient_id,
         bool_or(g.value IS NULL) AS lowest_not_a_quantity,
         bool_or(NOT g.has_value) AS without_result,
         arg_min(g.value, g.value) AS value, arg_min(g.unit, g.value) AS unit
  FROM glycemic_status_assessment g
  JOIN most_recent_glycemic_status_date d
    ON d.center = g.center AND d.patient_id = g.patient_id AND d.on_day = g.on_day
  GROUP BY g.center, g.patient_id
),
-- CQL: define "Numerator"
--   "Has Most Recent Glycemic Status Assessment Without Result"
--   or "Has Most Recent Elevated Glycemic Status Assessment" (value > 9 '%')
--   or "Has No Record Of Glycemic Status Assessment"
numerator AS (
  SELECT center, patient_id FROM lowest_reading_on_most_recent_day
  WHERE without_result OR (NOT lowest_not_a_quantity AND unit = '%' AND value > 9)
  UNION
  SELECT p.center, p.id FROM {ctx.patients()} p
  WHERE (p.center, p.id) NOT IN (SELECT (center, patient_id) FROM glycemic_status_assessment)
)
"""
