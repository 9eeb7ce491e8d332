"""CQL library ``Hospice`` (6.18.000): ``"Has Hospice Services"``, shared by most denominator exclusions.

Every function returns ``SELECT center, patient_id`` of the patients meeting the definition; measures
use it through ``ctx.shared(hospice.has_hospice_services)``.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.vocabulary import (
    choice_overlaps_day,
    code_in,
    code_is,
    has_code,
    is_assessment_performed,
    is_encounter_performed,
    is_intervention_order,
    is_intervention_performed,
    period_overlaps_day,
    point_during_day,
    prevalence_overlaps_day,
    table,
    verified,
)

LIB = "Hospice"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DISCHARGE_TO_HOME_FOR_HOSPICE = "428361000124107"
DISCHARGE_TO_FACILITY_FOR_HOSPICE = "428371000124100"
HOSPICE_CARE_MDS = "45755-6"  # Hospice care [Minimum Data Set]
YES = "373066001"  # Yes (qualifier value)


def has_hospice_services(ctx: Context) -> str:
    """``define "Has Hospice Services"``: any of six kinds of hospice evidence in the Measurement Period."""
    lo, hi = ctx.period.start_date, ctx.period.end_date
    return f"""
-- CQL (Hospice): define "Has Hospice Services"
-- inpatient encounter discharged to hospice, ending during the Measurement Period
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.666.5.307")}  -- "Encounter Inpatient"
  AND {is_encounter_performed("e")}
  AND ({has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_HOME_FOR_HOSPICE)}
       OR {has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_FACILITY_FOR_HOSPICE)})
  AND {point_during_day('e.period_end', lo, hi)}
UNION
-- hospice encounter overlapping the Measurement Period
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.464.1003.1003")}  -- "Hospice Encounter"
  AND {is_encounter_performed("e")}
  AND {period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
UNION
-- hospice care assessment answered "Yes"
SELECT o.center, o.patient_id FROM {table("Observation")} o
WHERE {code_is("Observation", "o", LOINC, HOSPICE_CARE_MDS)}
  AND {is_assessment_performed("o")}
  AND {has_code("observation_value_code", "o", SNOMED, YES)}
  AND {choice_overlaps_day("o", "effective", lo, hi, instant=True)}
UNION
-- hospice care ordered
SELECT s.center, s.patient_id FROM {table("ServiceRequest")} s
WHERE {code_in("ServiceRequest", "s", "2.16.840.1.113883.3.526.3.1584")}  -- "Hospice Care Ambulatory"
  AND {is_intervention_order("s")}
  AND {point_during_day('s.authored_on', lo, hi)}
UNION
-- hospice care performed
SELECT p.center, p.patient_id FROM {table("Procedure")} p
WHERE {code_in("Procedure", "p", "2.16.840.1.113883.3.526.3.1584")}  -- "Hospice Care Ambulatory"
  AND {is_intervention_performed("p")}
  AND {choice_overlaps_day("p", "performed", lo, hi)}
UNION
-- hospice diagnosis (problem list or encounter diagnosis) prevalent during the Measurement Period
SELECT c.center, c.patient_id FROM {table("Condition")} c
JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.464.1003.1165")}  -- "Hospice Diagnosis"
  AND {verified("c")}
  AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
"""
