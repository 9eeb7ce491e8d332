"""CMS177 Child and Adolescent Major Depressive Disorder (MDD): Suicide Risk Assessment
(CMS177FHIRChildMDDSuicideAssmt 1.0.000). An *episode* measure: the subject is the Encounter.

Visits in the Measurement Period of patients 6-16 at its start, where MDD is the visit's reason (a
reasonCode, or a reasonReference to an MDD Condition); numerator: a suicide risk assessment (Procedure
or Observation) during that visit. Read side by side with
``../shared/ecqm/input/cql/CMS177FHIRChildMDDSuicideAssmt.cql``. Not a UDS Table 6B line; kept for the
behavioral-health dashboard.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_start,
    code_in,
    code_is,
    during_day_of_mp,
    in_valueset,
    table,
)

SNOMED = "http://snomed.info/sct"
SUICIDE_RISK_ASSESSMENT = "225337009"  # "Suicide risk assessment (procedure)"

MEASURE = Measure(
    name="CMS177FHIRChildMDDSuicideAssmt",
    cms_id="CMS177",
    version="1.0.000",
    title="Child and Adolescent Major Depressive Disorder (MDD): Suicide Risk Assessment",
    care_gap="Complete a suicide risk assessment at the major depressive disorder visit.",
    groups=(Group("Group_1", ("initial-population", "denominator", "numerator")),),
    basis="Encounter",
    improvement_notation="increase",
    steward="Mathematica",
    description="Percentage of patient visits for those patients aged 6 through 16 with a diagnosis of "
    "major depressive disorder with an assessment for suicide risk.",
)

ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Outpatient Consultation",
    "Psych Visit Diagnostic Evaluation",
    "Psych Visit for Family Psychotherapy",
    "Psych Visit Psychotherapy",
    "Psychoanalysis",
    "Group Psychotherapy",
    "Telephone Visits",
)


def _during_encounter(start: str, end: str) -> str:
    """``Interval[start, end] during MDDEncounter.period`` at full precision (``m`` = the encounter).

    FHIR text columns; a closed null boundary is unbounded (the encounter's missing end reaches the end of
    time; the assessment's missing start is the beginning of time, inside only an encounter without start).
    """
    return (
        f"((m.period_start IS NULL OR coalesce(fhir_ts({start}) >= fhir_ts(m.period_start), FALSE)) "
        f"AND (m.period_end IS NULL OR coalesce(fhir_ts({end}) <= fhir_ts(m.period_end), FALSE)))"
    )

POPULATIONS = (Populations(numerator="numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in ENCOUNTER_VALUESETS)
    valid_encounter = f"""
  FROM {table("Encounter")} e
  WHERE ({encounter_types})
    AND e.status = 'finished'
    AND {during_day_of_mp("e.period_start", "e.period_end", mp)}"""
    proc_start = "coalesce(p.performed_datetime, p.performed_period_start)"
    proc_end = "coalesce(p.performed_datetime, p.performed_period_end)"
    obs_start = "coalesce(o.effective_datetime, o.effective_instant, o.effective_period_start)"
    obs_end = "coalesce(o.effective_datetime, o.effective_instant, o.effective_period_end)"
    return f"""
WITH
-- CQL: define "Encounter With Condition Major Depressive Disorder"
--   (8 encounter value sets) ValidEncounter where status = 'finished' and period during day of MP
--   and exists ([ConditionProblemsHealthConcerns | ConditionEncounterDiagnosis: "Major Depressive Disorder
--   Active"] C where ValidEncounter.reasonReference.references(C))
encounter_with_condition_major_depressive_disorder AS (
  SELECT e.center, e.patient_id, e.id, e.period_start, e.period_end{valid_encounter}
    AND EXISTS (
      SELECT 1
      FROM flat.encounter_reason_reference r
      JOIN {table("Condition")} c
        ON c.center = r.center AND c.patient_id = e.patient_id
       AND c.id = string_split(r.reference, '/')[-1]          -- QICoreCommon references(): id = tail
      WHERE r.center = e.center AND r.id = e.id
        AND {code_in("Condition", "c", "Major Depressive Disorder Active")}
    )
),
-- CQL: define "Encounter With Reason Major Depressive Disorder"
--   ... and ValidEncounter.reasonCode in "Major Depressive Disorder Active"
encounter_with_reason_major_depressive_disorder AS (
  SELECT e.center, e.patient_id, e.id, e.period_start, e.period_end{valid_encounter}
    AND {in_valueset("encounter_reason_code", "e", "Major Depressive Disorder Active")}
),
-- CQL: define "Major Depressive Disorder Encounter"  (union of the two above)
major_depressive_disorder_encounter AS (
  SELECT * FROM encounter_with_condition_major_depressive_disorder
  UNION
  SELECT * FROM encounter_with_reason_major_depressive_disorder
),
-- CQL: define "Initial Population"
--   "Major Depressive Disorder Encounter" where AgeInYearsAt(date from start of MP) between 6 and 16
initial_population AS (
  SELECT m.*
  FROM major_depressive_disorder_encounter m
  JOIN {ctx.patients()} p ON p.center = m.center AND p.id = m.patient_id
  WHERE {age_at_start("p.birth_date", mp)} >= 6 AND {age_at_start("p.birth_date", mp)} <= 16
),
-- CQL: define "Encounter With Procedure For Suicide Risk Assessment"
--   MDDEncounter with ["Procedure": "Suicide risk assessment (procedure)"] P
--   such that P.status = 'completed' and P.performed.toInterval() during MDDEncounter.period
encounter_with_procedure_for_suicide_risk_assessment AS (
  SELECT m.center, m.id
  FROM major_depressive_disorder_encounter m
  WHERE EXISTS (
    SELECT 1 FROM {table("Procedure")} p
    WHERE p.center = m.center AND p.patient_id = m.patient_id
      AND {code_is("Procedure", "p", SNOMED, SUICIDE_RISK_ASSESSMENT)}
      AND p.status = 'completed'
      AND {_during_encounter(proc_start, proc_end)}
  )
),
-- CQL: define "Encounter With Observation For Suicide Risk Assessment"
--   MDDEncounter with (["ObservationScreeningAssessment" | "ObservationClinicalResult": "Suicide risk
--   assessment (procedure)"]) O such that O.effective.toInterval() during MDDEncounter.period
--   and O.status in {{ 'final', 'corrected', 'amended' }}
encounter_with_observation_for_suicide_risk_assessment AS (
  SELECT m.center, m.id
  FROM major_depressive_disorder_encounter m
  WHERE EXISTS (
    SELECT 1 FROM {table("Observation")} o
    WHERE o.center = m.center AND o.patient_id = m.patient_id
      AND {code_is("Observation", "o", SNOMED, SUICIDE_RISK_ASSESSMENT)}
      AND o.status IN ('final', 'corrected', 'amended')
      AND {_during_encounter(obs_start, obs_end)}
  )
),
-- CQL: define "Numerator"  (union of the two above)
numerator AS (
  SELECT center, id FROM encounter_with_procedure_for_suicide_risk_assessment
  UNION
  SELECT center, id FROM encounter_with_observation_for_suicide_risk_assessment
)
"""
