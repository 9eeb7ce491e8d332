"""CMS138 Preventive Care and Screening: Tobacco Use: Screening and Cessation Intervention
(CMS138FHIRTobaccoScrnCessation 1.0.000).

Three rates over patients 12+ with two office-type visits or one preventive visit in the period:
(1) screened for tobacco use, (2) tobacco users who received cessation intervention, (3) both (the rate
UDS Table 6B line 14a reports). Read side by side with
``../shared/ecqm/input/cql/CMS138FHIRTobaccoScrnCessation.cql``.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import cmd, hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    MeasurementPeriod,
    age_at_start,
    code_in,
    code_is,
    during_day_of,
    during_day_of_mp,
    has_code,
    in_valueset,
    is_encounter_performed,
    is_intervention_performed,
    is_medication_active,
    is_medication_order,
    is_observation_smoking_status,
    medication_requested,
    point_during_day,
    prevalence_starts_during_day,
    us_core_observation,
    verified,
)

POPULATION_CODES = ("initial-population", "denominator", "denominator-exclusion", "numerator")

MEASURE = Measure(
    name="CMS138FHIRTobaccoScrnCessation",
    cms_id="CMS138",
    version="1.0.000",
    title="Preventive Care and Screening: Tobacco Use: Screening and Cessation Intervention",
    care_gap="Screen for tobacco use; for users, provide cessation counseling or medication.",
    groups=(
        Group("Group_1", POPULATION_CODES, title="Screened for tobacco use"),
        Group("Group_2", POPULATION_CODES, title="Tobacco users who received cessation intervention"),
        Group("Group_3", POPULATION_CODES,
              title="Screened, and received cessation intervention if a tobacco user"),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 14a",),
    steward="National Committee for Quality Assurance",
    description="Patients aged 12 years and older who were screened for tobacco use one or more times "
    "during the measurement period and who received tobacco cessation intervention during the "
    "measurement period or in the six months prior if identified as a tobacco user.",
)

QUALIFYING_VISIT_VALUESETS = (
    "Home Healthcare Services",
    "Occupational Therapy Evaluation",
    "Office Visit",
    "Ophthalmological Services",
    "Physical Therapy Evaluation",
    "Psych Visit Diagnostic Evaluation",
    "Psych Visit Psychotherapy",
    "Psychoanalysis",
    "Speech and Hearing Evaluation",
    "Telephone Visits",
    "Virtual Encounter",
)
# "Health behavior intervention ... initial 30 minutes", "Health behavior assessment, or re-assessment ..."
QUALIFYING_VISIT_CODES = ("96158", "96156")

PREVENTIVE_VISIT_VALUESETS = (
    "Annual Wellness Visit",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Preventive Care, Established Office Visit, 0 to 17",
    "Preventive Care Services, Initial Office Visit, 0 to 17",
    "Preventive Care Services Group Counseling",
    "Preventive Care Services Individual Counseling",
    "Nutrition Services",
)
# "Unlisted preventive medicine service", "Postoperative follow-up visit ..."
PREVENTIVE_VISIT_CODES = ("99429", "99024")

CPT = "http://www.ama-assn.org/go/cpt"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def _encounter_in(valuesets: tuple[str, ...], codes: tuple[str, ...]) -> str:
    tests = [code_in("Encounter", "e", v) for v in valuesets]
    tests += [code_is("Encounter", "e", CPT, c) for c in codes]
    return "(" + " OR ".join(tests) + ")"


def six_months_before(mp: MeasurementPeriod) -> tuple[str, str]:
    """``Interval[start of "Measurement Period" - 6 months, end of "Measurement Period"]`` as DATEs."""
    return f"({mp.start_date} - INTERVAL 6 MONTH)::DATE", mp.end_date

POPULATIONS = (
    Populations(denominator_exclusion="denominator_exclusions", numerator="numerator_1", group="Group_1"),
    Populations(
        denominator="denominator_2", denominator_exclusion="denominator_exclusions", numerator="numerator_2",
        group="Group_2",
    ),
    Populations(denominator_exclusion="denominator_exclusions", numerator="numerator_3", group="Group_3"),
)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo6, hi6 = six_months_before(mp)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    mrp = ctx.shared(cmd.medication_request_period)
    eff_start = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant)"
    eff_end = "coalesce(o.effective_datetime, o.effective_period_end, o.effective_instant)"
    perf_start = "coalesce(pr.performed_datetime, pr.performed_period_start)"
    perf_end = "coalesce(pr.performed_datetime, pr.performed_period_end)"
    return f"""
WITH
-- CQL: define "Qualifying Visit During Measurement Period"
qualifying_visit AS (
  SELECT e.center, e.patient_id, e.id
  FROM flat.encounter e
  WHERE {_encounter_in(QUALIFYING_VISIT_VALUESETS, QUALIFYING_VISIT_CODES)}
    AND {is_encounter_performed('e')}
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
),
-- CQL: define "Preventive Visit During Measurement Period"
preventive_visit AS (
  SELECT e.center, e.patient_id, e.id
  FROM flat.encounter e
  WHERE {_encounter_in(PREVENTIVE_VISIT_VALUESETS, PREVENTIVE_VISIT_CODES)}
    AND {is_encounter_performed('e')}
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date
  FROM {ctx.patients()} p
  WHERE {age_at_start('p.birth_date', mp)} >= 12
    AND ((SELECT count(DISTINCT q.id) FROM qualifying_visit q
          WHERE q.center = p.center AND q.patient_id = p.id) >= 2
         OR EXISTS (SELECT 1 FROM preventive_visit v WHERE v.center = p.center AND v.patient_id = p.id))
),
-- Last([USCoreSmokingStatusProfile].isObservationSmokingStatus() during day of MP sort by start of effective)
-- The profile retrieve has no code: an untagged Observation is a smoking status by its social-history
-- category (vocabulary.us_core_observation).
most_recent_tobacco_use_screening AS (
  SELECT center, patient_id, id FROM (
    SELECT o.center, o.patient_id, o.id,
           row_number() OVER (PARTITION BY o.center, o.patient_id
                              ORDER BY fhir_ts({eff_start}) DESC, o.id DESC) AS rn
    FROM flat.observation o
    WHERE {us_core_observation('o', 'us-core-smokingstatus')}
      AND {is_observation_smoking_status('o')}
      AND {during_day_of_mp(eff_start, eff_end, mp)}
  ) WHERE rn = 1
),
-- CQL: define "Most Recent Tobacco Use Screening Indicates Tobacco Non User"
tobacco_non_user AS (
  SELECT o.center, o.patient_id FROM most_recent_tobacco_use_screening o
  WHERE {in_valueset('observation_value_code', 'o', 'Tobacco Non User')}
),
-- CQL: define "Most Recent Tobacco Use Screening Indicates Tobacco User"
tobacco_user AS (
  SELECT o.center, o.patient_id FROM most_recent_tobacco_use_screening o
  WHERE {in_valueset('observation_value_code', 'o', 'Tobacco User')}
),
-- CQL: define "Tobacco Cessation Counseling Given"
tobacco_cessation_counseling_given AS (
  SELECT pr.center, pr.patient_id
  FROM flat.procedure pr
  WHERE {code_in('Procedure', 'pr', 'Tobacco Use Cessation Counseling')}
    AND {is_intervention_performed('pr')}
    AND {during_day_of(perf_start, perf_end, lo6, hi6)}
  UNION
  SELECT c.center, c.patient_id
  FROM (SELECT * FROM flat.condition c
        WHERE {code_is('Condition', 'c', ICD10CM, 'Z71.6')} AND {verified('c')}) c
  -- (the retrieve's own filters in a derived table: evaluated once, not per period of a series)
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  WHERE {prevalence_starts_during_day('c', 'ip.birth_date', lo6, hi6)}
),
-- CQL: define "Tobacco Cessation Pharmacotherapy Ordered"
tobacco_cessation_pharmacotherapy_ordered AS (
  SELECT m.center, m.patient_id
  FROM flat.medication_request m
  WHERE {code_in('MedicationRequest', 'm', 'Tobacco Use Cessation Pharmacotherapy')}
    AND {medication_requested('m')} AND {is_medication_order('m')}
    AND {point_during_day('m.authored_on', lo6, hi6)}
    AND NOT EXISTS (
      SELECT 1 FROM flat.task t                                   -- [TaskRejected] focus references M
      WHERE t.center = m.center AND t.focus_id = m.id AND t.status = 'rejected'
        AND {has_code('task_code', 't', TASK_CODE, 'fulfill')})
),
-- CQL: define "Active Pharmacotherapy for Tobacco Cessation"
active_pharmacotherapy AS (
  SELECT m.center, m.patient_id
  FROM flat.medication_request m
  JOIN {mrp} mrp ON mrp.center = m.center AND mrp.id = m.id
  WHERE {code_in('MedicationRequest', 'm', 'Tobacco Use Cessation Pharmacotherapy')}
    AND {medication_requested('m')} AND {is_medication_active('m')}
    AND mrp.period_start >= {lo6} AND mrp.period_end <= {hi6}
),
cessation_intervention AS (
  SELECT center, patient_id FROM tobacco_cessation_counseling_given
  UNION SELECT center, patient_id FROM tobacco_cessation_pharmacotherapy_ordered
  UNION SELECT center, patient_id FROM active_pharmacotherapy
),
-- CQL: define "Denominator Exclusions": Hospice."Has Hospice Services"
denominator_exclusions AS (SELECT center, patient_id FROM {has_hospice}),
-- CQL: define "Numerator 1": "Most Recent Tobacco Use Screening Indicates Tobacco Non User" or
--   "... Tobacco User" (screened)
numerator_1 AS (
  SELECT center, patient_id FROM tobacco_non_user UNION SELECT center, patient_id FROM tobacco_user
),
-- CQL: define "Denominator 2": the tobacco users
denominator_2 AS (SELECT center, patient_id FROM tobacco_user),
-- CQL: define "Numerator 2": cessation counseling given or pharmacotherapy ordered / active
numerator_2 AS (SELECT center, patient_id FROM cessation_intervention),
-- CQL: define "Numerator 3": non users, or users who received a cessation intervention
numerator_3 AS (
  SELECT center, patient_id FROM tobacco_non_user
  UNION (SELECT center, patient_id FROM tobacco_user
         INTERSECT SELECT center, patient_id FROM cessation_intervention)
)
-- CQL: define "Denominator 1" and "Denominator 3": the initial population
"""
