"""CMS22 Preventive Care and Screening: Screening for High Blood Pressure and Follow-Up Documented
(CMS22FHIRPCSBPScreeningFollowUp 1.0.000). Episode measure: the subject is the qualifying Encounter.

Encounters of patients 18+ (without diagnosed hypertension) at which blood pressure was screened and,
when elevated or hypertensive, a follow-up plan matching the reading was documented. Not a UDS Table 6B
line (UDS line 16 is CMS165, controlling high blood pressure). Read side by side with
``../shared/ecqm/input/cql/CMS22FHIRPCSBPScreeningFollowUp.cql``.

Every "Encounter with ..." definition of the CQL is a boolean column of ``encounter_reading`` (one row
per qualifying encounter), and every intervention list a CTE of (center, patient_id, authored day).
What an encounter's result does not take from the Measurement Period (its readings, the diagnosis,
the interventions and declines on its day) is the shared define :func:`encounter_facts`, computed
once per run for every encounter ending in the run's span; :func:`defines` adds what reads the period.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    ORDER_INTENTS,
    age_at_start,
    blood_pressure_observation,
    code_in,
    code_is,
    condition_problem_or_health_concern,
    in_valueset,
    medication_not_requested,
    medication_requested,
    observation_cancelled,
    onset_start,
    point_during_day,
    service_not_requested,
    service_requested,
    verified,
)

MEASURE = Measure(
    name="CMS22FHIRPCSBPScreeningFollowUp",
    cms_id="CMS22",
    version="1.0.000",
    title="Preventive Care and Screening: Screening for High Blood Pressure and Follow-Up Documented",
    care_gap="Take a blood pressure reading at the visit; if elevated, document the recommended follow-up.",
    groups=(
        Group(
            "Group_1",
            (
                "initial-population",
                "denominator",
                "denominator-exclusion",
                "numerator",
                "denominator-exception",
            ),
        ),
    ),
    basis="Encounter",
    improvement_notation="increase",
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Patient visits for patients aged 18 years and older seen during the measurement period "
    "who were screened for high blood pressure AND a recommended follow-up plan is documented, as "
    "indicated, if blood pressure is elevated or hypertensive.",
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
BP_PANEL = "85354-9"  # "Blood pressure panel with all children optional"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
EKG_12_LEAD = "34534-8"  # "12 lead EKG panel"
EKG_STUDY = "11524-6"  # "EKG study"

NON_PHARMACOLOGICAL_VALUESETS = (
    "Lifestyle Recommendation",
    "Weight Reduction Recommended",
    "Dietary Recommendations",
    "Recommendation to Increase Physical Activity",
    "Referral or Counseling for Alcohol Consumption",
)
ELEVATED_BP_FINDING = "Finding of Elevated Blood Pressure or Hypertension"
DECLINED_STATUSES = "('active', 'completed', 'on-hold')"
# [ServiceRequest] vs [ServiceNotRequested] (and the MedicationRequest pair): by declared profile, else by
# doNotPerform (see vocabulary.in_profile).
REQUESTED = service_requested("s")
NOT_REQUESTED = service_not_requested("s")
MED_REQUESTED = medication_requested("m")
MED_NOT_REQUESTED = medication_not_requested("m")
BLOOD_PRESSURE = blood_pressure_observation("o")


def _any_sr(valuesets: tuple[str, ...], codes: tuple[str, ...] = ()) -> str:
    """The code filter of ``[ServiceRequest: A] union [ServiceRequest: B] ...`` on row ``s``."""
    tests = [code_in("ServiceRequest", "s", v) for v in valuesets]
    tests += [code_is("ServiceRequest", "s", LOINC, c) for c in codes]
    return "(" + " OR ".join(tests) + ")"


def _declined(valuesets: tuple[str, ...], codes: tuple[str, ...] = ()) -> str:
    """``[ServiceNotRequested: ...] where status in {active, completed, on-hold} and reasonRefused in
    "Patient Declined"`` as the SELECT of (center, patient_id, authored day)."""
    return f"""SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day FROM flat.service_request s
  WHERE {NOT_REQUESTED} AND {_any_sr(valuesets, codes)}
    AND s.status IN {DECLINED_STATUSES}
    AND {in_valueset("service_request_do_not_perform_reason", "s", "Patient Declined")}"""


def _on_encounter_day(cte: str) -> str:
    """``with <cte> X such that X.authoredOn during day of E.period`` for encounter row ``e``."""
    return (
        f"EXISTS (SELECT 1 FROM {cte} x WHERE x.center = e.center AND x.patient_id = e.patient_id "
        f"AND x.day BETWEEN e.start_day AND e.end_day)"
    )


# Retrieves read both by the per-encounter facts and by the period's follow-up orders (one text each).
RESCREEN_6_MONTHS = f"""SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day
  FROM flat.service_request s
  WHERE {code_in("ServiceRequest", "s", "Follow Up Within 6 Months")} AND {REQUESTED}
    AND s.intent = 'order'"""
NON_PHARMACOLOGICAL = f"""SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day
  FROM flat.service_request s
  WHERE {_any_sr(NON_PHARMACOLOGICAL_VALUESETS)} AND {REQUESTED} AND s.intent IN {ORDER_INTENTS}"""

POPULATIONS = (Populations.of("denominator_exclusion", "denominator_exception", "numerator"),)


def encounter_facts(ctx: Context) -> str:
    """Everything the CQL says of a qualifying encounter that does not read the Measurement Period, for
    every encounter ending in the run's span (``ctx.period.span``: a single-period run's span is its
    period), one row each.

    An encounter's readings (its last blood pressure, the last one in the year before it), the
    hypertension diagnosis before it, and the interventions, referrals and declines authored on its
    day depend on the encounter and the patient's record only. Only three numerator branches (the
    follow-up orders authored "during day of Measurement Period") and the age at the period's start read
    the period (:func:`defines`). A shared define, materialized once per run: a series computes these
    per-encounter facts once for all its periods instead of once per period (each encounter ends in up
    to 12 rolling periods).
    """
    span = ctx.period.span
    eff_start = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant)"
    eff_end = "coalesce(o.effective_datetime, o.effective_period_end, o.effective_instant)"
    return f"""
WITH
-- [Encounter: "Encounter to Screen for Blood Pressure"] ValidEncounter where ValidEncounter.period ends
-- during day of <a period of the run> and ValidEncounter.status ~ 'finished' and ValidEncounter.class !~
-- "virtual" (the encounters of "Qualifying Encounter during Measurement Period" of every period)
span_encounter AS (
  SELECT e.center, e.patient_id, e.id,
         fhir_ts(e.period_start) AS start_ts, fhir_date(e.period_start) AS start_day,
         fhir_date(e.period_end) AS end_day
  FROM flat.encounter e
  WHERE {code_in("Encounter", "e", "Encounter to Screen for Blood Pressure")}
    AND {point_during_day("e.period_end", span.start_date, span.end_date)}  -- period ends during day of span
    AND e.status = 'finished'
    AND NOT coalesce(e.class_system = '{ACT_CODE}' AND e.class_code = 'VR', FALSE)   -- class !~ "virtual"
),
-- [USCoreBloodPressureProfile] BloodPressure where status in {{final, amended, corrected}}, with its
-- systolic and diastolic component values (mm[Hg]; another unit does not compare)
blood_pressure AS (
  SELECT o.center, o.patient_id, o.id,
         fhir_ts({eff_start}) AS eff_start, fhir_ts({eff_end}) AS eff_end,
         (SELECT max(c.value_quantity_value) FROM flat.observation_component c
          WHERE c.center = o.center AND c.id = o.id AND c.code_system = '{LOINC}' AND c.code = '{SYSTOLIC}'
            AND coalesce(c.value_quantity_code, c.value_quantity_unit) = 'mm[Hg]') AS sbp,
         (SELECT max(c.value_quantity_value) FROM flat.observation_component c
          WHERE c.center = o.center AND c.id = o.id AND c.code_system = '{LOINC}' AND c.code = '{DIASTOLIC}'
            AND coalesce(c.value_quantity_code, c.value_quantity_unit) = 'mm[Hg]') AS dbp
  FROM flat.observation o
  WHERE {BLOOD_PRESSURE}
    AND o.status IN ('final', 'amended', 'corrected')
),
-- let EncounterLastBP: Last(BloodPressure where effective ends during day of QualifyingEncounter.period
--                           sort by start of effective)
encounter_last_bp AS (
  SELECT * FROM (
    SELECT q.center, q.id AS encounter_id, b.sbp, b.dbp,
           row_number() OVER (PARTITION BY q.center, q.id
                              ORDER BY b.eff_start DESC NULLS LAST, b.id DESC) AS rn
    FROM span_encounter q
    JOIN blood_pressure b ON b.center = q.center AND b.patient_id = q.patient_id
    WHERE CAST(b.eff_end AS DATE) BETWEEN q.start_day AND q.end_day
  ) WHERE rn = 1
),
-- let EncounterLastBP: Last(BloodPressure where effective ends 1 year or less before or on start of
--                           QualifyingEncounter.period sort by start of effective)
prior_last_bp AS (
  SELECT * FROM (
    SELECT q.center, q.id AS encounter_id, b.sbp, b.dbp,
           row_number() OVER (PARTITION BY q.center, q.id
                              ORDER BY b.eff_start DESC NULLS LAST, b.id DESC) AS rn
    FROM span_encounter q
    JOIN blood_pressure b ON b.center = q.center AND b.patient_id = q.patient_id
    WHERE b.eff_end BETWEEN q.start_ts - INTERVAL 1 YEAR AND q.start_ts
  ) WHERE rn = 1
),
readings AS (
  SELECT q.*, l.sbp, l.dbp,
         -- CQL: define "Encounter with Hypertensive Reading Within Year Prior"
         coalesce(pl.sbp > 0 AND pl.dbp > 0 AND (pl.sbp >= 130 OR pl.dbp >= 80), FALSE) AS htn_year_prior
  FROM span_encounter q
  LEFT JOIN encounter_last_bp l ON l.center = q.center AND l.encounter_id = q.id
  LEFT JOIN prior_last_bp pl ON pl.center = q.center AND pl.encounter_id = q.id
),
encounter_reading AS (
  SELECT r.*,
         -- CQL: define "Encounter with Normal Blood Pressure Reading"
         coalesce(sbp >= 1 AND sbp < 120 AND dbp >= 1 AND dbp < 80, FALSE) AS normal,
         -- CQL: define "Encounter with Elevated Blood Pressure Reading SBP 120 to 129 AND DBP less than 80"
         coalesce(sbp BETWEEN 120 AND 129 AND dbp >= 1 AND dbp < 80, FALSE) AS elevated,
         -- CQL: define "Encounter with First Hypertensive Reading SBP Greater than or Equal to 130 OR
         --   DBP Greater than or Equal to 80"
         coalesce(sbp > 0 AND dbp > 0 AND (sbp >= 130 OR dbp >= 80), FALSE)
           AND NOT htn_year_prior AS first_htn,
         -- CQL: define "Encounter with Second Hypertensive Reading SBP 130 to 139 OR DBP 80 to 89"
         coalesce((sbp BETWEEN 130 AND 139 OR dbp BETWEEN 80 AND 89) AND NOT (sbp >= 140 OR dbp >= 90), FALSE)
           AND htn_year_prior AS second_130,
         -- CQL: define "Encounter with Second Hypertensive Reading SBP Greater than or Equal to 140 OR
         --   DBP Greater than or Equal to 90"
         coalesce(sbp > 0 AND dbp > 0 AND (sbp >= 140 OR dbp >= 90), FALSE) AND htn_year_prior AS second_140
  FROM readings r
),
-- CQL: define "Follow up with Rescreen Within 6 Months"
rescreen_6_months AS (
  {RESCREEN_6_MONTHS}
),
-- CQL: define "NonPharmacological Interventions"
non_pharmacological AS (
  {NON_PHARMACOLOGICAL}
),
-- CQL: define "Referral to Alternate or Primary Healthcare Professional for Hypertensive Reading"
referral AS (
  SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day FROM flat.service_request s
  WHERE {code_in("ServiceRequest", "s", "Referral to Primary Care or Alternate Provider")} AND {REQUESTED}
    AND {in_valueset("service_request_reason_code", "s", ELEVATED_BP_FINDING)}
    AND s.intent IN {ORDER_INTENTS}
),
-- declined orders ([ServiceNotRequested] / [MedicationNotRequested])
declined_referral_or_6_months AS (
  {_declined(("Referral to Primary Care or Alternate Provider", "Follow Up Within 6 Months"))}
),
declined_4_weeks_or_referral AS (
  {_declined(("Follow Up Within 4 Weeks", "Referral to Primary Care or Alternate Provider"))}
),
-- CQL: define "NonPharmacological Intervention Not Ordered"
non_pharmacological_not_ordered AS (
  {_declined(NON_PHARMACOLOGICAL_VALUESETS)}
),
-- CQL: define "Laboratory Test or ECG for Hypertension Not Ordered"
lab_or_ecg_not_ordered AS (
  {_declined(("Laboratory Tests for Hypertension",), (EKG_12_LEAD, EKG_STUDY))}
),
medication_not_requested AS (   -- [MedicationNotRequested: "Pharmacologic Therapy for Hypertension"]
  SELECT m.center, m.patient_id, fhir_date(m.authored_on) AS day FROM flat.medication_request m
  WHERE {MED_NOT_REQUESTED}
    AND {code_in("MedicationRequest", "m", "Pharmacologic Therapy for Hypertension")}
    AND m.status IN ('active', 'completed')
),
-- CQL: define "Second Hypertensive Reading SBP 130 to 139 OR DBP 80 to 89 Interventions Declined"
second_130_declined AS (
  SELECT * FROM declined_referral_or_6_months UNION ALL SELECT * FROM lab_or_ecg_not_ordered
  UNION ALL SELECT * FROM non_pharmacological_not_ordered
),
-- CQL: define "Second Hypertensive Reading SBP Greater than or Equal to 140 OR DBP Greater than or Equal
--   to 90 Interventions Declined"
second_140_declined AS (
  SELECT * FROM declined_4_weeks_or_referral UNION ALL SELECT * FROM medication_not_requested
  UNION ALL SELECT * FROM lab_or_ecg_not_ordered UNION ALL SELECT * FROM non_pharmacological_not_ordered
),
-- CQL: define "Encounter with Medical Reason for Not Obtaining or Patient Declined Blood Pressure
--   Measurement": [ObservationCancelled: code ~ BP panel | systolic | diastolic] with a patient or
--   medical reason
bp_not_obtained AS (
  SELECT o.center, o.patient_id, fhir_date(o.issued) AS day FROM flat.observation o
  WHERE {observation_cancelled("o")}
    AND ({code_is("Observation", "o", LOINC, BP_PANEL)} OR {code_is("Observation", "o", LOINC, SYSTOLIC)}
         OR {code_is("Observation", "o", LOINC, DIASTOLIC)})
    AND ({in_valueset("observation_not_done_reason", "o", "Patient Declined")}
         OR {in_valueset("observation_not_done_reason", "o", "Medical Reason")})
),
-- CQL: define "Denominator Exclusions": hypertension diagnosed on or before the encounter day
hypertension_before AS (
  SELECT DISTINCT q.center, q.id AS encounter_id
  FROM span_encounter q
  JOIN {ctx.patients()} p ON p.center = q.center AND p.id = q.patient_id
  JOIN (SELECT * FROM flat.condition c
        WHERE {code_in("Condition", "c", "Diagnosis of Hypertension")}
          AND {condition_problem_or_health_concern("c")}          -- [ConditionProblemsHealthConcerns]
          AND {verified("c")}                               -- isVerified()
  ) c ON c.center = q.center AND c.patient_id = q.patient_id
  WHERE {onset_start("c", "p.birth_date")} <= q.start_day
)
SELECT e.center, e.patient_id, e.id, e.start_day, e.end_day, e.first_htn, e.second_130, e.second_140,
       EXISTS (SELECT 1 FROM hypertension_before h
               WHERE h.center = e.center AND h.encounter_id = e.id) AS excluded,
       -- the branches of "Numerator" that do not read the period (one line each): "... Normal Blood
       --   Pressure Reading", "... Elevated ... and Interventions" (both unions), and the referral union
       --   of "First Hypertensive Reading Interventions or Referral to Alternate Professional" and of
       --   both "Encounter with Second Hypertensive Reading ... and Interventions"
       e.normal
         OR (e.elevated AND {_on_encounter_day("rescreen_6_months")}
             AND {_on_encounter_day("non_pharmacological")})
         OR (e.elevated AND {_on_encounter_day("referral")})
         OR ((e.first_htn OR e.second_130 OR e.second_140) AND {_on_encounter_day("referral")})
         AS numerator_on_day,
       -- CQL: define "Denominator Exceptions", folding "Encounter with Order for Hypertension Follow Up
       --   Declined by Patient" (the declined orders below, per reading): nothing here reads the period
       {_on_encounter_day("bp_not_obtained")}
         OR (e.elevated AND ({_on_encounter_day("declined_referral_or_6_months")}
                             OR {_on_encounter_day("non_pharmacological_not_ordered")}))
         OR (e.first_htn AND ({_on_encounter_day("declined_4_weeks_or_referral")}
                              OR {_on_encounter_day("non_pharmacological_not_ordered")}))
         OR (e.second_130 AND {_on_encounter_day("second_130_declined")})
         OR (e.second_140 AND {_on_encounter_day("second_140_declined")}) AS exception
FROM encounter_reading e
"""


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``).

    The per-encounter facts that do not read the period come from :func:`encounter_facts`; here is
    what does: the encounters of this period, the age at its start, and the follow-up orders authored
    during it.
    """
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    order = ORDER_INTENTS
    facts = ctx.shared(encounter_facts)
    return f"""
WITH
-- CQL: define "Qualifying Encounter during Measurement Period" (with the facts of each encounter)
qualifying_encounter AS (
  SELECT * FROM {facts} f
  WHERE f.end_day BETWEEN {lo} AND {hi}  -- period ends during day of MP
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT q.* FROM qualifying_encounter q
  JOIN {ctx.patients()} p ON p.center = q.center AND p.id = q.patient_id
  WHERE {age_at_start("p.birth_date", mp)} >= 18
),
-- CQL: define "Follow up with Rescreen Within 6 Months"
rescreen_6_months AS (
  {RESCREEN_6_MONTHS}
),
-- CQL: define "Laboratory Test or ECG for Hypertension"
lab_or_ecg AS (
  SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day FROM flat.service_request s
  WHERE {_any_sr(("Laboratory Tests for Hypertension",), (EKG_12_LEAD, EKG_STUDY))} AND {REQUESTED}
    AND s.intent IN {order}
),
-- CQL: define "NonPharmacological Interventions"
non_pharmacological AS (
  {NON_PHARMACOLOGICAL}
),
four_week_rescreen AS (   -- [ServiceRequest: "Follow Up Within 4 Weeks"] with an order intent
  SELECT s.center, s.patient_id, fhir_date(s.authored_on) AS day FROM flat.service_request s
  WHERE {code_in("ServiceRequest", "s", "Follow Up Within 4 Weeks")} AND {REQUESTED}
    AND s.intent IN {order}
),
in_mp AS (   -- per patient: which intervention kinds were authored during day of "Measurement Period"
  SELECT center, patient_id,
         bool_or(kind = 'lab') AS lab, bool_or(kind = 'nonpharm') AS nonpharm, bool_or(kind = 'med') AS med
  FROM (SELECT center, patient_id, day, 'lab' AS kind FROM lab_or_ecg
        UNION ALL SELECT center, patient_id, day, 'nonpharm' FROM non_pharmacological
        UNION ALL SELECT m.center, m.patient_id, fhir_date(m.authored_on), 'med'
                  FROM flat.medication_request m
                  WHERE {code_in("MedicationRequest", "m", "Pharmacologic Therapy for Hypertension")}
                    AND {MED_REQUESTED} AND m.status IN ('active', 'completed'))
  WHERE day BETWEEN {lo} AND {hi}
  GROUP BY center, patient_id
),
-- CQL: define "First Hypertensive Reading Interventions or Referral to Alternate Professional" (its
--   referral union is in encounter_facts' numerator_on_day)
first_htn_interventions AS (
  SELECT f.center, f.patient_id, f.day FROM four_week_rescreen f
  JOIN in_mp i ON i.center = f.center AND i.patient_id = f.patient_id
  WHERE f.day BETWEEN {lo} AND {hi} AND i.nonpharm
),
-- CQL: define "Second Hypertensive Reading SBP 130 to 139 OR DBP 80 to 89 and Interventions"
second_130_interventions AS (
  SELECT r.center, r.patient_id, r.day FROM rescreen_6_months r
  JOIN in_mp i ON i.center = r.center AND i.patient_id = r.patient_id
  WHERE r.day BETWEEN {lo} AND {hi} AND i.lab AND i.nonpharm
),
-- CQL: define "Second Hypertensive Reading SBP Greater than or Equal to 140 OR DBP Greater than or Equal
--   to 90 Interventions"
second_140_interventions AS (
  SELECT f.center, f.patient_id, f.day FROM four_week_rescreen f
  JOIN in_mp i ON i.center = f.center AND i.patient_id = f.patient_id
  WHERE f.day BETWEEN {lo} AND {hi} AND i.lab AND i.nonpharm AND i.med
),
-- CQL: define "Numerator": the branches that do not read the period (numerator_on_day), or a
--   hypertensive reading with the follow-up orders of this period on the encounter's day ("Encounter
--   with First Hypertensive Reading ... and Interventions", "Encounter with Second Hypertensive Reading
--   SBP 130 to 139 ... and Interventions", "... SBP Greater than or Equal to 140 ... and Interventions")
numerator AS (
  SELECT center, patient_id, id FROM initial_population WHERE numerator_on_day
  UNION ALL
  SELECT e.center, e.patient_id, e.id
  FROM (SELECT * FROM initial_population
        WHERE NOT numerator_on_day AND (first_htn OR second_130 OR second_140)) e
  WHERE (e.first_htn AND {_on_encounter_day("first_htn_interventions")})
     OR (e.second_130 AND {_on_encounter_day("second_130_interventions")})
     OR (e.second_140 AND {_on_encounter_day("second_140_interventions")})
),
-- the other population defines as relations of encounters (computed per encounter in encounter_facts)
denominator_exclusions AS (SELECT center, patient_id, id FROM initial_population WHERE excluded),
denominator_exceptions AS (SELECT center, patient_id, id FROM initial_population WHERE exception)
"""
