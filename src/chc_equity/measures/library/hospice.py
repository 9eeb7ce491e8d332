"""CQL library ``Hospice`` (6.18.000): ``"Has Hospice Services"``, shared by most denominator exclusions.

Every function returns ``SELECT center, patient_id`` of the patients meeting the definition; measures
use it through ``ctx.shared(hospice.has_hospice_services)``.
"""

from __future__ import annotations

from chc_equity.measures.codes import has_code
from chc_equity.measures.engine import Context
from chc_equity.measures.library import qicore, status
from chc_equity.measures.library.retrieve import code_in, code_is, table

LIB = "Hospice"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DISCHARGE_TO_HOME_FOR_HOSPICE = "428361000124107"
DISCHARGE_TO_FACILITY_FOR_HOSPICE = "428371000124100"
HOSPICE_CARE_MDS = "45755-6"  # Hospice care [Minimum Data Set]
YES = "373066001"  # Yes (qualifier value)


def has_hospice_services(ctx: Context) -> str:
    """``define "Has Hospice Services"``: any of six kinds of hospice evidence in the Measurement Period."""
    lo, hi = qicore.mp_dates(ctx.period)
    return f"""
-- CQL (Hospice): define "Has Hospice Services"
-- inpatient encounter discharged to hospice, ending during the Measurement Period
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.666.5.307")}  -- "Encounter Inpatient"
  AND {status.is_encounter_performed("e")}
  AND ({has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_HOME_FOR_HOSPICE)}
       OR {has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_FACILITY_FOR_HOSPICE)})
  AND fhir_date(e.period_end) BETWEEN {lo} AND {hi}
UNION
-- hospice encounter overlapping the Measurement Period
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.464.1003.1003")}  -- "Hospice Encounter"
  AND {status.is_encounter_performed("e")}
  AND {qicore.period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
UNION
-- hospice care assessment answered "Yes"
SELECT o.center, o.patient_id FROM {table("Observation")} o
WHERE {code_is("Observation", "o", LOINC, HOSPICE_CARE_MDS)}
  AND {status.is_assessment_performed("o")}
  AND {has_code("observation_value_code", "o", SNOMED, YES)}
  AND {qicore.choice_overlaps_day("o", "effective", lo, hi, instant=True)}
UNION
-- hospice care ordered
SELECT s.center, s.patient_id FROM {table("ServiceRequest")} s
WHERE {code_in("ServiceRequest", "s", "2.16.840.1.113883.3.526.3.1584")}  -- "Hospice Care Ambulatory"
  AND {status.is_intervention_order("s")}
  AND fhir_date(s.authored_on) BETWEEN {lo} AND {hi}
UNION
-- hospice care performed
SELECT p.center, p.patient_id FROM {table("Procedure")} p
WHERE {code_in("Procedure", "p", "2.16.840.1.113883.3.526.3.1584")}  -- "Hospice Care Ambulatory"
  AND {status.is_intervention_performed("p")}
  AND {qicore.choice_overlaps_day("p", "performed", lo, hi)}
UNION
-- hospice diagnosis (problem list or encounter diagnosis) prevalent during the Measurement Period
SELECT c.center, c.patient_id FROM {table("Condition")} c
JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.464.1003.1165")}  -- "Hospice Diagnosis"
  AND {status.verified("c")}
  AND {qicore.prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
"""
