"""CQL library ``AdvancedIllnessandFrailty`` (1.27.000): the frailty / advanced illness / nursing-home
denominator exclusions shared by the adult preventive and chronic-care measures.

Every function is one CQL define and returns ``SELECT center, patient_id`` of the patients meeting it.
Definitions that reuse others go through ``ctx.shared`` so each is computed once per run.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import cmd
from chc_equity.measures.vocabulary import (
    age_at_end,
    choice_end,
    choice_ends_during_day,
    choice_overlaps_day,
    code_in,
    code_is,
    has_code,
    in_valueset,
    is_assessment_performed,
    is_device_order_personal_use_devices,
    is_encounter_performed,
    is_medication_active,
    is_symptom,
    mp_and_year_before,
    period_overlaps_day,
    point_during_day,
    prevalence_overlaps_day,
    prevalence_starts_during_day,
    table,
    verified,
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
HOUSING_STATUS = "71802-3"
LIVES_IN_NURSING_HOME = "160734000"
MEDICAL_EQUIPMENT_USED = "98181-1"

ADVANCED_ILLNESS = "2.16.840.1.113883.3.464.1003.110.12.1082"
DEMENTIA_MEDICATIONS = "2.16.840.1.113883.3.464.1003.196.12.1510"
FRAILTY_DEVICE = "2.16.840.1.113883.3.464.1003.118.12.1300"
FRAILTY_DIAGNOSIS = "2.16.840.1.113883.3.464.1003.113.12.1074"
FRAILTY_ENCOUNTER = "2.16.840.1.113883.3.464.1003.101.12.1088"
FRAILTY_SYMPTOM = "2.16.840.1.113883.3.464.1003.113.12.1075"


def has_criteria_indicating_frailty(ctx: Context) -> str:
    """``define "Has Criteria Indicating Frailty"``."""
    lo, hi = ctx.period.start_date, ctx.period.end_date
    return f"""
-- CQL (AdvancedIllnessandFrailty): define "Has Criteria Indicating Frailty"
-- frailty device ordered
SELECT d.center, d.patient_id FROM {table("DeviceRequest")} d
WHERE {code_in("DeviceRequest", "d", FRAILTY_DEVICE)}  -- "Frailty Device"
  AND {is_device_order_personal_use_devices("d")}
  AND {point_during_day('d.authored_on', lo, hi)}
UNION
-- medical equipment used: a frailty device
SELECT o.center, o.patient_id FROM {table("Observation")} o
WHERE {code_is("Observation", "o", LOINC, MEDICAL_EQUIPMENT_USED)}
  AND {is_assessment_performed("o")}
  AND {in_valueset("observation_value_code", "o", FRAILTY_DEVICE)}  -- value as Concept in "Frailty Device"
  AND {choice_ends_during_day("o", "effective", lo, hi, instant=True)}
UNION
-- frailty diagnosis
SELECT c.center, c.patient_id FROM {table("Condition")} c
JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
WHERE {code_in("Condition", "c", FRAILTY_DIAGNOSIS)}  -- "Frailty Diagnosis"
  AND {verified("c")}
  AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
UNION
-- frailty encounter
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", FRAILTY_ENCOUNTER)}  -- "Frailty Encounter"
  AND {is_encounter_performed("e")}
  AND {period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
UNION
-- frailty symptom
SELECT o.center, o.patient_id FROM {table("Observation")} o
WHERE {code_in("Observation", "o", FRAILTY_SYMPTOM)}  -- "Frailty Symptom"
  AND {is_symptom("o")}
  AND {choice_overlaps_day("o", "effective", lo, hi, instant=True)}
"""


def has_advanced_illness_in_year_before_or_during_measurement_period(ctx: Context) -> str:
    """``define "Has Advanced Illness in Year Before or During Measurement Period"``: the condition's
    prevalence *starts* during the Measurement Period or the year before it."""
    lo, hi = mp_and_year_before(ctx.period)
    return f"""
-- CQL (AdvancedIllnessandFrailty): define "Has Advanced Illness in Year Before or During Measurement Period"
SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
WHERE {code_in("Condition", "c", ADVANCED_ILLNESS)}  -- "Advanced Illness"
  AND {verified("c")}
  AND {prevalence_starts_during_day("c", "pt.birth_date", lo, hi)}
"""


def has_dementia_medications_in_year_before_or_during_measurement_period(ctx: Context) -> str:
    """``define "Has Dementia Medications in Year Before or During Measurement Period"``: an active
    dementia medication order whose medicationRequestPeriod() overlaps that two-year window."""
    lo, hi = mp_and_year_before(ctx.period)
    period = ctx.shared(cmd.medication_request_period)
    return f"""
-- CQL (AdvancedIllnessandFrailty):
-- define "Has Dementia Medications in Year Before or During Measurement Period"
SELECT DISTINCT m.center, m.patient_id FROM {table("MedicationRequest")} m
JOIN {period} rp ON rp.center = m.center AND rp.id = m.id
WHERE {code_in("MedicationRequest", "m", DEMENTIA_MEDICATIONS)}  -- "Dementia Medications"
  AND {is_medication_active("m")}
  AND rp.period_start <= {hi} AND rp.period_end >= {lo}
"""


def _shared(ctx: Context) -> tuple[str, str, str]:
    return (
        ctx.shared(has_criteria_indicating_frailty),
        ctx.shared(has_advanced_illness_in_year_before_or_during_measurement_period),
        ctx.shared(has_dementia_medications_in_year_before_or_during_measurement_period),
    )


def is_age_66_or_older_with_advanced_illness_and_frailty(ctx: Context) -> str:
    """``define "Is Age 66 or Older with Advanced Illness and Frailty"``."""
    frail, illness, dementia = _shared(ctx)
    return f"""
-- CQL (AdvancedIllnessandFrailty): define "Is Age 66 or Older with Advanced Illness and Frailty"
SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
WHERE {age_at_end("p.birth_date", ctx.period)} >= 66
  AND (p.center, p.id) IN (SELECT (center, patient_id) FROM {frail})
  AND ((p.center, p.id) IN (SELECT (center, patient_id) FROM {illness})
       OR (p.center, p.id) IN (SELECT (center, patient_id) FROM {dementia}))
"""


def is_age_66_to_80_with_advanced_illness_and_frailty_or_is_age_81_or_older_with_frailty(ctx: Context) -> str:
    """``define "Is Age 66 to 80 with Advanced Illness and Frailty or Is Age 81 or Older with Frailty"``."""
    frail, illness, dementia = _shared(ctx)
    age = age_at_end("p.birth_date", ctx.period)
    return f"""
-- CQL (AdvancedIllnessandFrailty):
-- define "Is Age 66 to 80 with Advanced Illness and Frailty or Is Age 81 or Older with Frailty"
SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
WHERE (p.center, p.id) IN (SELECT (center, patient_id) FROM {frail})
  AND ({age} >= 81
       OR ({age} BETWEEN 66 AND 80
           AND ((p.center, p.id) IN (SELECT (center, patient_id) FROM {illness})
                OR (p.center, p.id) IN (SELECT (center, patient_id) FROM {dementia}))))
"""


def is_age_66_or_older_living_long_term_in_a_nursing_home(ctx: Context) -> str:
    """``define "Is Age 66 or Older Living Long Term in a Nursing Home"``: the *last* housing-status
    assessment ending on or before the end of the Measurement Period says "lives in nursing home"."""
    hi = ctx.period.end_date
    end = choice_end("o", "effective", instant=True)
    return f"""
-- CQL (AdvancedIllnessandFrailty): define "Is Age 66 or Older Living Long Term in a Nursing Home"
WITH housing_status AS (
  SELECT o.center, o.patient_id, o.id, fhir_ts({end}) AS ends
  FROM {table("Observation")} o
  WHERE {code_is("Observation", "o", LOINC, HOUSING_STATUS)}
    AND {is_assessment_performed("o")}
    AND fhir_date({end}) <= {hi}
),
last_housing_status AS (
  SELECT center, patient_id, arg_max(id, ends) AS id FROM housing_status GROUP BY center, patient_id
)
SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
JOIN last_housing_status l ON l.center = p.center AND l.patient_id = p.id
WHERE {age_at_end("p.birth_date", ctx.period)} >= 66
  AND {has_code("observation_value_code", "l", SNOMED, LIVES_IN_NURSING_HOME)}
"""
