"""CMS155 Weight Assessment and Counseling for Nutrition and Physical Activity for Children/Adolescents
(CMS155FHIRWgtAssessCounseling 1.0.000). UDS Table 6B Line 12.

Patients 3-17 at the end of the Measurement Period with a qualifying visit in it; three rates: BMI
percentile + height + weight recorded (Group_1), nutrition counseling (Group_2), physical-activity
counseling (Group_3), each stratified by age 3-11 / 12-17. Read side by side with
``../shared/ecqm/input/cql/CMS155FHIRWgtAssessCounseling.cql``.

The vital-sign retrieves (``[USCoreBodyHeightProfile]``, ``[USCoreBodyWeightProfile]``,
``[USCorePediatricBMIforAgeObservationProfile]``) carry no code filter in the ELM; the profile is what
selects the Observations. The test cases show the profile *does* filter (a body-weight Observation in the
period does not count as a BMI percentile), and real EHR data rarely tags ``meta.profile``, so the profile
is applied through the LOINC code each US Core profile fixes (8302-2, 29463-7, 59576-9).
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    code_in,
    during_day_of_mp,
    has_code,
    is_intervention_performed,
    is_observation_performed,
    performed_encounters,
    prevalence_overlaps_day,
    table,
    verified,
)

LOINC = "http://loinc.org"
BODY_HEIGHT = "8302-2"  # US Core body height profile's fixed code
BODY_WEIGHT = "29463-7"  # US Core body weight
PEDIATRIC_BMI_PERCENTILE = "59576-9"  # US Core pediatric BMI-for-age percentile

POPS = ("initial-population", "denominator", "denominator-exclusion", "numerator")
STRATIFIERS = ("Stratification 1", "Stratification 2")
# The Measure resource's stratum descriptions (age at the end of the Measurement Period).
STRATIFIER_LABELS = ("Age 3-11", "Age 12-17")

MEASURE = Measure(
    name="CMS155FHIRWgtAssessCounseling",
    cms_id="CMS155",
    version="1.0.000",
    title="Weight Assessment and Counseling for Nutrition and Physical Activity for Children/Adolescents",
    care_gap="Record BMI percentile and counsel on nutrition and physical activity.",
    groups=(
        Group(
            "Group_1", POPS, STRATIFIERS, "BMI percentile, height and weight documented",
            STRATIFIER_LABELS,
        ),
        Group("Group_2", POPS, STRATIFIERS, "Counseling for nutrition", STRATIFIER_LABELS),
        Group("Group_3", POPS, STRATIFIERS, "Counseling for physical activity", STRATIFIER_LABELS),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 12",),
    steward="National Committee for Quality Assurance",
    description="Percentage of patients 3-17 years of age who had an outpatient visit with a primary care "
    "physician or OB/GYN and who had evidence of BMI percentile documentation, counseling for nutrition "
    "and counseling for physical activity during the measurement period.",
)

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Preventive Care Services Individual Counseling",
    "Preventive Care, Established Office Visit, 0 to 17",
    "Preventive Care Services, Initial Office Visit, 0 to 17",
    "Preventive Care Services Group Counseling",
    "Home Healthcare Services",
    "Telephone Visits",
)


def _effective_during_mp(o: str, ctx: Context) -> str:
    """``<o>.effective.toInterval() during day of "Measurement Period"`` (dateTime, instant or Period)."""
    start = f"coalesce({o}.effective_datetime, {o}.effective_instant, {o}.effective_period_start)"
    end = f"coalesce({o}.effective_datetime, {o}.effective_instant, {o}.effective_period_end)"
    return during_day_of_mp(start, end, ctx.period)


def _vital_sign(ctx: Context, code: str) -> str:
    """A US Core vital-sign profile retrieve ``.isObservation...()`` with a value, effective during the
    Measurement Period: ``SELECT center, patient_id``."""
    return f"""
  SELECT o.center, o.patient_id
  FROM {table("Observation")} o
  WHERE {has_code("observation_code", "o", LOINC, code)}
    AND {is_observation_performed("o")}
    AND {_effective_during_mp("o", ctx)}
    AND o.value_quantity_value IS NOT NULL"""


def _counseling(ctx: Context, valueset: str) -> str:
    """``exists ([Procedure: <valueset>]).isInterventionPerformed() where performed.toInterval() during
    day of "Measurement Period"``: ``SELECT center, patient_id``."""
    p = "p"
    start = f"coalesce({p}.performed_datetime, {p}.performed_period_start)"
    end = f"coalesce({p}.performed_datetime, {p}.performed_period_end)"
    return f"""
  SELECT p.center, p.patient_id
  FROM {table("Procedure")} p
  WHERE {code_in("Procedure", "p", valueset)}
    AND {is_intervention_performed("p")}
    AND {during_day_of_mp(start, end, ctx.period)}"""

POPULATIONS = tuple(
    Populations(
        denominator_exclusion="denominator_exclusions",
        numerator=f"numerator_{n}",
        group=f"Group_{n}",
        strata=True,
    )
    for n in (1, 2, 3)
)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    age = age_at_end("p.birth_date", mp)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS)

    return f"""
WITH
-- CQL: define "Qualifying Encounters"  (union of 7 encounter value sets).isEncounterPerformed()
--   where ValidEncounters.period during day of "Measurement Period"
qualifying_encounters AS ({performed_encounters(encounter_types, mp)}
),
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from end of "Measurement Period") in Interval[3, 17] and exists "Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id,
         -- CQL: define "Stratification 1" (age 3-11) / define "Stratification 2" (age 12-17)
         list_filter([CASE WHEN {age} BETWEEN 3 AND 11 THEN 'Stratification 1' END,
                      CASE WHEN {age} BETWEEN 12 AND 17 THEN 'Stratification 2' END],
                     lambda s: s IS NOT NULL) AS strata
  FROM {ctx.patients()} p
  WHERE {age} BETWEEN 3 AND 17
    AND EXISTS (SELECT 1 FROM qualifying_encounters q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Pregnancy Diagnosis Which Overlaps Measurement Period"
--   ([ConditionProblemsHealthConcerns: "Pregnancy"] union [ConditionEncounterDiagnosis: "Pregnancy"])
--   .verified()
--   where PregnancyDiag.prevalenceInterval() overlaps "Measurement Period"
pregnancy_diagnosis_which_overlaps_measurement_period AS (
  SELECT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", "Pregnancy")}
    AND {verified("c")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
),
-- CQL: define "Denominator Exclusions"
--   Hospice."Has Hospice Services" or exists "Pregnancy Diagnosis Which Overlaps Measurement Period"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION
  SELECT center, patient_id FROM pregnancy_diagnosis_which_overlaps_measurement_period
),
-- CQL: define "BMI Percentile in Measurement Period"
--   ([USCorePediatricBMIforAgeObservationProfile]).isObservationPediatricBMI() ... and value is not null
bmi_percentile_in_measurement_period AS ({_vital_sign(ctx, PEDIATRIC_BMI_PERCENTILE)}
),
-- CQL: define "Height in Measurement Period"  ([USCoreBodyHeightProfile]).isObservationBodyHeight()
height_in_measurement_period AS ({_vital_sign(ctx, BODY_HEIGHT)}
),
-- CQL: define "Weight in Measurement Period"  ([USCoreBodyWeightProfile]).isObservationBodyWeight()
weight_in_measurement_period AS ({_vital_sign(ctx, BODY_WEIGHT)}
),
-- CQL: define "Numerator 2"  [Procedure: "Counseling for Nutrition"] performed during day of MP
numerator_2 AS ({_counseling(ctx, "Counseling for Nutrition")}
),
-- CQL: define "Numerator 3"  [Procedure: "Counseling for Physical Activity"] performed during day of MP
numerator_3 AS ({_counseling(ctx, "Counseling for Physical Activity")}
),
-- CQL: define "Numerator 1": BMI percentile and height and weight in the Measurement Period
numerator_1 AS (
  SELECT center, patient_id FROM bmi_percentile_in_measurement_period
  INTERSECT SELECT center, patient_id FROM height_in_measurement_period
  INTERSECT SELECT center, patient_id FROM weight_in_measurement_period
)
"""
