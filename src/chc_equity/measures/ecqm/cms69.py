"""CMS69 Preventive Care and Screening: Body Mass Index (BMI) Screening and Follow-Up Plan
(CMS69FHIRPCSBMIScreenAndFollowUp 1.0.000).

Patients 18+ at an in-person BMI encounter whose BMI was documented in the period and, when outside
normal, who had a follow-up plan. UDS Table 6B line 13. Read side by side with
``../shared/ecqm/input/cql/CMS69FHIRPCSBMIScreenAndFollowUp.cql``.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    abatement_end,
    choice_end,
    choice_overlaps_day,
    code_in,
    code_is,
    condition_problem_or_health_concern,
    during_day_of,
    during_day_of_mp,
    has_code,
    in_valueset,
    is_active,
    is_observation_performed,
    medication_not_requested,
    medication_requested,
    observation_cancelled,
    onset_start,
    point_during_day,
    prevalence_overlaps_day,
    service_not_requested,
    service_requested,
    us_core_observation,
)

MEASURE = Measure(
    name="CMS69FHIRPCSBMIScreenAndFollowUp",
    cms_id="CMS69",
    version="1.0.000",
    title="Preventive Care and Screening: Body Mass Index (BMI) Screening and Follow-Up Plan",
    care_gap="Record BMI at a visit in the period; if outside the normal range, document a follow-up plan.",
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator",
             "denominator-exception"),
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 13",),
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Patients aged 18 years and older with a BMI documented during the current encounter or "
    "within the measurement period, and who had a follow-up plan documented if the most recent BMI was "
    "outside of normal parameters.",
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
BMI_RATIO = "39156-5"  # "Body mass index (BMI) [Ratio]", the US Core BMI profile's code
HEALTH_CONCERN_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"


def _onset_on_or_before(c: str, birth: str, day: str) -> str:
    """``<c>.prevalenceInterval() starts before or on day of <day>``.

    A missing onset makes the closed interval start at the minimum date, so it always starts before.
    """
    return f"coalesce({onset_start(c, birth)} <= {day}, TRUE)"


def _not_ended_before(c: str, birth: str, day: str) -> str:
    """``not ( <c>.prevalenceInterval() ends before day of <day> )``.

    Active: the end is the abatement end, unbounded when absent. Not active with an abatement: that
    abatement. Not active without one: ``Interval[onset, null)`` has an unknown end, the comparison is
    null and so is its negation, which a ``where`` treats as false.
    """
    end = abatement_end(c, birth)
    return (
        f"(CASE WHEN {is_active(c)} THEN coalesce({end} >= {day}, TRUE) "
        f"WHEN {end} IS NOT NULL THEN {end} >= {day} ELSE FALSE END)"
    )

POPULATIONS = (Populations.of("denominator_exclusion", "denominator_exception", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    has_hospice = ctx.shared(hospice.has_hospice_services)
    has_palliative = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    bmi_value = "o.value_quantity_value"
    bmi_unit = "coalesce(o.value_quantity_code, o.value_quantity_unit)"
    eff_start = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant)"
    eff_end = "coalesce(o.effective_datetime, o.effective_period_end, o.effective_instant)"
    perf_start = "coalesce(pr.performed_datetime, pr.performed_period_start)"
    perf_end = "coalesce(pr.performed_datetime, pr.performed_period_end)"
    return f"""
WITH
patient AS (SELECT p.center, p.id AS patient_id, p.birth_date FROM {ctx.patients()} p),
-- CQL: define "Qualifying Encounter During Day Of Measurement Period"
qualifying_encounter AS (
  SELECT e.center, e.patient_id, e.id, e.period_start
  FROM flat.encounter e
  WHERE {code_in('Encounter', 'e', 'Encounter to Evaluate BMI')}
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
    AND NOT coalesce(e.class_system = '{ACT_CODE}' AND e.class_code = 'VR', FALSE)   -- class !~ "virtual"
    AND e.status = 'finished'
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT DISTINCT p.center, p.patient_id, p.birth_date
  FROM patient p JOIN qualifying_encounter q ON q.center = p.center AND q.patient_id = p.patient_id
  WHERE years_between(fhir_date(p.birth_date), fhir_date(q.period_start)) >= 18
),
-- CQL: define "BMI During Measurement Period"  [USCoreBMIProfile].isObservationBMI()
bmi_during_measurement_period AS (
  SELECT o.center, o.patient_id, {bmi_value} AS bmi
  FROM flat.observation o
  WHERE {us_core_observation('o', 'us-core-bmi')}
    AND {is_observation_performed('o')}
    AND {bmi_unit} = 'kg/m2' AND {bmi_value} > 0
    AND {during_day_of(eff_start, eff_end, lo, hi)}
),
-- CQL: define "Has Normal BMI", with "Documented High BMI During Measurement Period" and
--   "Documented Low BMI During Measurement Period" (any_high / any_low)
bmi_class AS (
  SELECT center, patient_id,
         bool_or(bmi >= 18.5 AND bmi < 25) AS any_normal,
         bool_or(bmi >= 25) AS any_high,                          -- "Documented High BMI ..."
         bool_or(bmi < 18.5) AS any_low                           -- "Documented Low BMI ..."
  FROM bmi_during_measurement_period GROUP BY center, patient_id
),
-- [ConditionProblemsHealthConcerns: "Overweight or Obese"] union [ConditionEncounterDiagnosis: ...]
overweight_or_obese AS (
  SELECT c.*, p.birth_date FROM flat.condition c
  JOIN patient p ON p.center = c.center AND p.patient_id = c.patient_id
  WHERE {code_in('Condition', 'c', 'Overweight or Obese')}
),
-- [ConditionProblemsHealthConcerns: "Underweight"] union [ConditionEncounterDiagnosis: "Underweight"]
underweight AS (
  SELECT c.*, p.birth_date FROM flat.condition c
  JOIN patient p ON p.center = c.center AND p.patient_id = c.patient_id
  WHERE {code_in('Condition', 'c', 'Underweight')}
),
-- ServiceRequest / MedicationRequest orders, with their reasonCode table
orders AS (
  SELECT s.center, s.patient_id, s.id, s.authored_on, 'ServiceRequest' AS kind,
         {code_in('ServiceRequest', 's', 'Follow Up for Above Normal BMI')}
           OR {code_in('ServiceRequest', 's', 'Referrals Where Weight Assessment May Occur')} AS for_high,
         {code_in('ServiceRequest', 's', 'Follow Up for Below Normal BMI')}
           OR {code_in('ServiceRequest', 's', 'Referrals Where Weight Assessment May Occur')} AS for_low,
         {in_valueset('service_request_reason_code', 's', 'Overweight or Obese')} AS reason_high,
         {in_valueset('service_request_reason_code', 's', 'Underweight')} AS reason_low
  FROM flat.service_request s WHERE {service_requested('s')}
  UNION ALL
  SELECT m.center, m.patient_id, m.id, m.authored_on, 'MedicationRequest',
         {code_in('MedicationRequest', 'm', 'Medications for Above Normal BMI')},
         {code_in('MedicationRequest', 'm', 'Medications for Below Normal BMI')},
         {in_valueset('medication_request_reason_code', 'm', 'Overweight or Obese')},
         {in_valueset('medication_request_reason_code', 'm', 'Underweight')}
  FROM flat.medication_request m WHERE {medication_requested('m')}
),
-- CQL: define "High BMI Interventions Ordered"
high_bmi_interventions_ordered AS (
  SELECT o.center, o.patient_id, fhir_date(o.authored_on) AS start_day FROM orders o
  WHERE o.for_high
    AND (o.reason_high
         OR EXISTS (SELECT 1 FROM overweight_or_obese c
                    WHERE c.center = o.center AND c.patient_id = o.patient_id
                    AND {_onset_on_or_before('c', 'c.birth_date', 'fhir_date(o.authored_on)')}))
),
-- CQL: define "High BMI Interventions Performed"
high_bmi_interventions_performed AS (
  SELECT pr.center, pr.patient_id, fhir_date({perf_start}) AS start_day FROM flat.procedure pr
  WHERE {code_in('Procedure', 'pr', 'Follow Up for Above Normal BMI')}
    AND ({in_valueset('procedure_reason_code', 'pr', 'Overweight or Obese')}
         OR EXISTS (SELECT 1 FROM overweight_or_obese c
                    WHERE c.center = pr.center AND c.patient_id = pr.patient_id
                      AND {condition_problem_or_health_concern('c')}   -- [ConditionProblemsHealthConcerns]
                      AND {_onset_on_or_before('c', 'c.birth_date', f'fhir_date({perf_start})')}
                      AND {_not_ended_before('c', 'c.birth_date', f'fhir_date({perf_start})')}))
),
-- CQL: define "Low BMI Interventions Ordered"
low_bmi_interventions_ordered AS (
  SELECT o.center, o.patient_id, fhir_date(o.authored_on) AS start_day FROM orders o
  WHERE o.for_low
    AND (o.reason_low
         OR EXISTS (SELECT 1 FROM underweight c
                    WHERE c.center = o.center AND c.patient_id = o.patient_id
                    AND {_onset_on_or_before('c', 'c.birth_date', 'fhir_date(o.authored_on)')}
                    AND {point_during_day('o.authored_on', lo, hi)}))
),
-- CQL: define "Low BMI Interventions Performed"
low_bmi_interventions_performed AS (
  SELECT pr.center, pr.patient_id, fhir_date({perf_start}) AS start_day FROM flat.procedure pr
  WHERE {code_in('Procedure', 'pr', 'Follow Up for Below Normal BMI')}
    AND (({in_valueset('procedure_reason_code', 'pr', 'Underweight')} AND pr.status = 'completed')
         OR EXISTS (SELECT 1 FROM underweight c
                    WHERE c.center = pr.center AND c.patient_id = pr.patient_id
                      AND {condition_problem_or_health_concern('c')}   -- [ConditionProblemsHealthConcerns]
                      AND {has_code('condition_category', 'c', HEALTH_CONCERN_SYSTEM, 'health-concern')}
                      AND {_onset_on_or_before('c', 'c.birth_date', f'fhir_date({perf_start})')}
                      AND {during_day_of(perf_start, perf_end, lo, hi)}
                      AND {_not_ended_before('c', 'c.birth_date', f'fhir_date({perf_start})')}))
),
-- CQL: define "High BMI And Follow Up Provided" / "Low BMI And Follow Up Provided"
--   Coalesce(performed.toInterval(), authoredOn.toInterval()) starts during day of "Measurement Period"
follow_up AS (
  SELECT b.center, b.patient_id,
         b.any_high AND EXISTS (
           SELECT 1 FROM (SELECT * FROM high_bmi_interventions_ordered
                          UNION ALL SELECT * FROM high_bmi_interventions_performed) i
           WHERE i.center = b.center AND i.patient_id = b.patient_id AND i.start_day BETWEEN {lo} AND {hi}
         ) AS high_followed_up,
         b.any_low AND EXISTS (
           SELECT 1 FROM (SELECT * FROM low_bmi_interventions_ordered
                          UNION ALL SELECT * FROM low_bmi_interventions_performed) i
           WHERE i.center = b.center AND i.patient_id = b.patient_id AND i.start_day BETWEEN {lo} AND {hi}
         ) AS low_followed_up,
         b.any_normal AND NOT (b.any_high OR b.any_low) AS has_normal_bmi
  FROM bmi_class b
),
-- CQL: define "Is Pregnant During Measurement Period"
is_pregnant AS (
  SELECT c.center, c.patient_id FROM flat.condition c
  JOIN patient p ON p.center = c.center AND p.patient_id = c.patient_id
  WHERE {code_in('Condition', 'c', 'Pregnancy or Other Related Diagnoses')}
    AND {prevalence_overlaps_day('c', 'p.birth_date', lo, hi)}
  UNION
  SELECT o.center, o.patient_id FROM flat.observation o   -- [USCoreObservationPregnancyStatusProfile]
  WHERE {us_core_observation('o', 'us-core-observation-pregnancystatus')}
    AND {choice_overlaps_day('o', 'effective', lo, hi, instant=True)}
    AND o.status IN ('final', 'amended', 'corrected')
    AND {in_valueset('observation_value_code', 'o', 'Pregnancy or Other Related Diagnoses')}
),
-- CQL: define "Medical Reason For Not Documenting A Follow Up Plan For Low Or High BMI"
medical_reason_no_follow_up AS (
  SELECT s.center, s.patient_id FROM flat.service_request s         -- [ServiceNotRequested: ...]
  JOIN qualifying_encounter q ON q.center = s.center AND q.patient_id = s.patient_id
  WHERE {service_not_requested('s')}
    AND ({code_in('ServiceRequest', 's', 'Referrals Where Weight Assessment May Occur')}
         OR {code_in('ServiceRequest', 's', 'Follow Up for Above Normal BMI')}
         OR {code_in('ServiceRequest', 's', 'Follow Up for Below Normal BMI')})
    AND fhir_date(s.authored_on) = fhir_date(q.period_start)
    AND s.status = 'completed'
    AND {in_valueset('service_request_do_not_perform_reason', 's', 'Medical Reason')}
  UNION
  SELECT m.center, m.patient_id FROM flat.medication_request m      -- [MedicationNotRequested: ...]
  JOIN qualifying_encounter q ON q.center = m.center AND q.patient_id = m.patient_id
  WHERE {medication_not_requested('m')}
    AND ({code_in('MedicationRequest', 'm', 'Medications for Above Normal BMI')}
         OR {code_in('MedicationRequest', 'm', 'Medications for Below Normal BMI')})
    AND fhir_date(m.authored_on) = fhir_date(q.period_start)
    AND m.status = 'completed'
    AND {in_valueset('medication_request_reason_code', 'm', 'Medical Reason')}
),
-- CQL: define "Medical Reason Or Patient Reason For Not Performing BMI Exam"
reason_not_performing_bmi_exam AS (
  SELECT o.center, o.patient_id FROM flat.observation o             -- [ObservationCancelled: BMI]
  JOIN qualifying_encounter q ON q.center = o.center AND q.patient_id = o.patient_id
  WHERE {observation_cancelled('o')}
    AND {code_is('Observation', 'o', LOINC, BMI_RATIO)}
    AND fhir_date({choice_end('o', 'effective', instant=True)}) = fhir_date(q.period_start)
    AND ({in_valueset('observation_not_done_reason', 'o', 'Patient Declined')}
         OR {in_valueset('observation_not_done_reason', 'o', 'Medical Reason')})
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM {has_palliative}
  UNION SELECT center, patient_id FROM is_pregnant
),
-- CQL: define "Denominator Exceptions"
denominator_exceptions AS (
  SELECT center, patient_id FROM medical_reason_no_follow_up
  UNION SELECT center, patient_id FROM reason_not_performing_bmi_exam
),
-- CQL: define "Numerator": "High BMI And Follow Up Provided" or "Low BMI And Follow Up Provided" or
--   "Has Normal BMI"
numerator AS (
  SELECT center, patient_id FROM follow_up WHERE high_followed_up OR low_followed_up OR has_normal_bmi
)
"""
