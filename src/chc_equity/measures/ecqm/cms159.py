"""CMS159 Depression Remission at Twelve Months (CMS159FHIRDepRemissionat12Months 1.0.000).
UDS Table 6B line 21a.

Patients 12+ with major depression or dysthymia and a PHQ-9 / PHQ-9M score > 9 (the index assessment,
within 7 days before or during a depression visit that ended between 14 and 2 months before the
Measurement Period) whose last PHQ-9 in the 12 months +/- 60 days after the index scores < 5. Read side
by side with ``../shared/ecqm/input/cql/CMS159FHIRDepRemissionat12Months.cql``.

The timing is per patient (anchored on the index assessment), so unlike most measures the hospice and
palliative exclusions are this measure's own definitions over
``Interval[start of "Denominator Identification Period", end of "Measure Assessment Period"]``.

Semantics established on the official test cases:

- the PHQ-9 value is read ``as Integer`` (valueInteger; a Quantity is not a score);
- ``[ServiceRequest: X]`` excludes ``doNotPerform = true`` (that is ServiceNotRequested);
- ``Patient.deceased`` is read as a dateTime (``deceasedBoolean`` alone never "occurs").
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    abatement_end,
    choice_overlaps_day,
    code_in,
    code_is,
    has_code,
    is_active,
    onset_start,
    period_overlaps_day,
    point_during_day,
    prevalence_overlaps_day,
    table,
    verified,
)
from chc_equity.terminology import valueset_url

LIBRARY = "CMS159FHIRDepRemissionat12Months"
STRATA = ("Stratification 1", "Stratification 2")
# The Measure resource's stratum descriptions (age at the index depression assessment).
STRATA_LABELS = ("Age 12-17", "Age 18+")

MEASURE = Measure(
    name=LIBRARY,
    cms_id="CMS159",
    version="1.0.000",
    title="Depression Remission at Twelve Months",
    care_gap=(
        "PHQ-9 >9 at the index visit: reassess with PHQ-9 at 12 months (+/- 60 days) and adjust "
        "treatment."
    ),
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator"),
            stratifiers=STRATA,
            stratifier_labels=STRATA_LABELS,
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 21a",),
    steward="Minnesota Community Measurement",
    description="Percentage of patients aged 12 years and older with major depression or dysthymia who "
    "reached remission (PHQ-9/PHQ-9M score < 5) twelve months (+/- 60 days) after an index event.",
)

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DISCHARGE_TO_HOME_FOR_HOSPICE = "428361000124107"
DISCHARGE_TO_FACILITY_FOR_HOSPICE = "428371000124100"
HOSPICE_CARE_MDS = "45755-6"  # Hospice care [Minimum Data Set]
FACIT_PAL = "71007-9"  # Functional Assessment of Chronic Illness Therapy - Palliative Care Questionnaire
YES = "373066001"  # Yes (qualifier value)
ASSESSED = "('final', 'amended', 'corrected')"
MENTAL_HEALTH_VALUESETS = (
    "Bipolar Disorder",
    "Personality Disorder Emotionally Labile",
    "Schizophrenia or Psychotic Disorder",
    "Pervasive Developmental Disorder",
)


def vs_url(name: str) -> str:
    """The canonical URL of a value set as this measure's CQL declares it."""
    return valueset_url(name, library=LIBRARY)


def retrieve(resource: str, alias: str, *valuesets: str) -> str:
    """``[<resource>: "A"] union [<resource>: "B"] ...``: the row's code is in any of the value sets
    (profile retrieves add no category filter, see ``vocabulary/retrieve.py``)."""
    return "(" + " OR ".join(code_in(resource, alias, vs_url(v)) for v in valuesets) + ")"


def effective_start(o: str) -> str:
    """``start of <o>.effective.toInterval()`` as FHIR text (a Period without a start has none)."""
    return f"coalesce({o}.effective_datetime, {o}.effective_instant, {o}.effective_period_start)"

POPULATIONS = (Populations.of("denominator_exclusion", "numerator", strata=True),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    phq9 = code_in("Observation", "o", vs_url("PHQ 9 and PHQ 9M Tools"))
    # Interval[start of "Measurement Period" - 14 months, start of "Measurement Period" - 2 months ): at day
    # precision the open end is the day before.
    dip_lo = f"CAST({mp.start_date} - INTERVAL 14 MONTH AS DATE)"
    dip_hi = f"CAST({mp.start_date} - INTERVAL 2 MONTH - INTERVAL 1 DAY AS DATE)"
    # Interval[start of "Denominator Identification Period", end of "Measure Assessment Period"]
    lo, hi = "w.lo", "w.hi"
    age = "years_between(fhir_date(p.birth_date), CAST(m.index_ts AS DATE))"  # at the index assessment
    window = "JOIN exclusion_window w ON w.center = {a}.center AND w.patient_id = {a}.patient_id"
    conditions = (
        f"{table('Condition')} c JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id"
    )
    return f"""
WITH
-- CQL: define "Depression Assessments Greater Than 9"
depression_assessments_gt_9 AS (
  SELECT o.center, o.patient_id, o.id, fhir_ts({effective_start("o")}) AS start_ts,
         o.effective_datetime, o.effective_instant, o.effective_period_start, o.effective_period_end
  FROM {table("Observation")} o
  WHERE {phq9}
    AND o.value_integer > 9                                        -- value as Integer
    AND o.status IN {ASSESSED}
),
-- CQL: define "Depression Diagnoses"  (major depression or dysthymia, problem list or encounter dx)
depression_diagnoses AS (
  SELECT c.center, c.patient_id, c.id,
         {onset_start("c", "pt.birth_date")} AS onset_start,
         {abatement_end("c", "pt.birth_date")} AS abatement_end,
         {is_active("c")} AS active,
         fhir_ts(coalesce(c.onset_datetime, c.onset_period_start)) AS onset_ts,
         fhir_ts(coalesce(c.abatement_datetime, c.abatement_period_end)) AS abatement_ts
  FROM {conditions}
  WHERE {retrieve("Condition", "c", "Major Depression Including Remission", "Dysthymia")}
    AND {verified("c")}                                     -- isVerified()
),
-- CQL: define "Depression Encounter"
depression_encounter AS (
  SELECT e.center, e.patient_id, e.id, e.period_start, e.period_end
  FROM {table("Encounter")} e
  WHERE {retrieve("Encounter", "e", "Contact or Office Visit")}
    AND EXISTS (
      -- ValidEncounter.period overlaps Depression.prevalenceInterval()  (no precision: instants)
      SELECT 1 FROM depression_diagnoses d
      WHERE d.center = e.center AND d.patient_id = e.patient_id
        AND (d.active OR d.abatement_ts IS NOT NULL)                -- an unknown end overlaps nothing
        AND (d.abatement_ts IS NULL OR e.period_start IS NULL OR fhir_ts(e.period_start) <= d.abatement_ts)
        AND (d.onset_ts IS NULL OR e.period_end IS NULL OR fhir_ts(e.period_end) >= d.onset_ts)
    )
    -- ends during day of CQL define "Denominator Identification Period" (14 to 2 months before the MP)
    AND {point_during_day('e.period_end', dip_lo, dip_hi)}
    AND e.status = 'finished'
),
-- CQL: define "Index Depression Assessment"  (the first qualifying score > 9)
index_depression_assessment AS (
  SELECT a.center, a.patient_id, min(a.start_ts) AS index_ts
  FROM depression_assessments_gt_9 a
  WHERE EXISTS (
    -- effective.toInterval() during day of Interval[start of encounter - 7 days, end of encounter]
    SELECT 1 FROM depression_encounter de
    WHERE de.center = a.center AND de.patient_id = a.patient_id
      AND fhir_date(coalesce(a.effective_datetime, a.effective_instant, a.effective_period_start))
          >= fhir_date(de.period_start) - INTERVAL 7 DAY
      AND fhir_date(coalesce(a.effective_datetime, a.effective_instant, a.effective_period_end))
          <= fhir_date(de.period_end)
  )
  GROUP BY a.center, a.patient_id
),
-- CQL: define "Measure Assessment Period"  (12 months after the index assessment, +/- 60 days)
measure_assessment_period AS (
  SELECT center, patient_id, index_ts,
         CAST(CAST(index_ts AS DATE) + INTERVAL 12 MONTH - INTERVAL 60 DAY AS DATE) AS map_lo,
         CAST(CAST(index_ts AS DATE) + INTERVAL 12 MONTH + INTERVAL 60 DAY AS DATE) AS map_hi
  FROM index_depression_assessment
),
exclusion_window AS (
  SELECT center, patient_id, {dip_lo} AS lo, map_hi AS hi FROM measure_assessment_period
),
-- CQL: define "Has Hospice Services prior to or during the Measure Assessment Period"
has_hospice_services AS (
  SELECT e.center, e.patient_id FROM {table("Encounter")} e {window.format(a="e")}
  WHERE {retrieve("Encounter", "e", "Encounter Inpatient")}
    AND ({has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_HOME_FOR_HOSPICE)}
         OR {has_code("encounter_discharge_disposition", "e", SNOMED, DISCHARGE_TO_FACILITY_FOR_HOSPICE)})
    AND {point_during_day('e.period_end', lo, hi)}
    AND e.status = 'finished'
  UNION
  SELECT e.center, e.patient_id FROM {table("Encounter")} e {window.format(a="e")}
  WHERE {retrieve("Encounter", "e", "Hospice Encounter")}
    AND {period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
    AND e.status NOT IN ('cancelled', 'entered-in-error', 'unknown')
  UNION
  SELECT o.center, o.patient_id FROM {table("Observation")} o {window.format(a="o")}
  WHERE {code_is("Observation", "o", LOINC, HOSPICE_CARE_MDS)}
    AND {has_code("observation_value_code", "o", SNOMED, YES)}
    AND {choice_overlaps_day("o", "effective", lo, hi, instant=True)}
    AND o.status IN {ASSESSED}
  UNION
  SELECT s.center, s.patient_id FROM {table("ServiceRequest")} s {window.format(a="s")}
  WHERE {retrieve("ServiceRequest", "s", "Hospice Care Ambulatory")}
    AND s.do_not_perform IS NOT TRUE                               -- not ServiceNotRequested
    AND {point_during_day('s.authored_on', lo, hi)}
    AND s.status IN ('active', 'completed')
    AND s.intent IN ('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')
  UNION
  SELECT p.center, p.patient_id FROM {table("Procedure")} p {window.format(a="p")}
  WHERE {retrieve("Procedure", "p", "Hospice Care Ambulatory")}
    AND {choice_overlaps_day("p", "performed", lo, hi)}
    AND p.status NOT IN ('not-done', 'entered-in-error', 'unknown')
  UNION
  SELECT c.center, c.patient_id FROM {conditions} {window.format(a="c")}
  WHERE {retrieve("Condition", "c", "Hospice Diagnosis")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
    AND {verified("c")}
),
-- CQL: define "Has Palliative Care prior to or during the Measure Assessment Period"
has_palliative_care AS (
  SELECT o.center, o.patient_id FROM {table("Observation")} o {window.format(a="o")}
  WHERE {code_is("Observation", "o", LOINC, FACIT_PAL)}
    AND {choice_overlaps_day("o", "effective", lo, hi, instant=True)}
    AND o.status IN {ASSESSED}
  UNION
  SELECT c.center, c.patient_id FROM {conditions} {window.format(a="c")}
  WHERE {retrieve("Condition", "c", "Palliative Care Diagnosis")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
    AND {verified("c")}
  UNION
  SELECT e.center, e.patient_id FROM {table("Encounter")} e {window.format(a="e")}
  WHERE {retrieve("Encounter", "e", "Palliative Care Encounter")}
    AND {period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
    AND e.status = 'finished'
  UNION
  SELECT p.center, p.patient_id FROM {table("Procedure")} p {window.format(a="p")}
  WHERE {retrieve("Procedure", "p", "Palliative Care Intervention")}
    AND {choice_overlaps_day("p", "performed", lo, hi)}
    AND p.status NOT IN ('not-done', 'entered-in-error', 'unknown')
),
-- CQL: define "Has Mental Health Disorder Diagnoses"
has_mental_health_disorder_diagnoses AS (
  SELECT c.center, c.patient_id FROM {conditions}
  JOIN measure_assessment_period m ON m.center = c.center AND m.patient_id = c.patient_id
  WHERE {retrieve("Condition", "c", *MENTAL_HEALTH_VALUESETS)}
    -- start of prevalenceInterval() on or before day of end of MAP (a missing onset: beginning of time)
    AND coalesce({onset_start("c", "pt.birth_date")} <= m.map_hi, TRUE)
    AND {verified("c")}
),
-- CQL: define "Patient Expired"  (Patient.deceased as dateTime on or before day of end of MAP)
patient_expired AS (
  SELECT p.center, p.id AS patient_id FROM {ctx.patients()} p
  JOIN measure_assessment_period m ON m.center = p.center AND m.patient_id = p.id
  WHERE fhir_date(p.deceased_datetime) <= m.map_hi
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM has_hospice_services
  UNION SELECT center, patient_id FROM has_palliative_care
  UNION SELECT center, patient_id FROM patient_expired
  UNION SELECT center, patient_id FROM has_mental_health_disorder_diagnoses
),
-- CQL: define "Numerator"  (Last PHQ-9 / PHQ-9M whose start falls in the MAP, by start; its value < 5)
last_assessment AS (
  SELECT o.center, o.patient_id,
         -- a null value on the last assessment makes the comparison null, so arg_max_null
         arg_max_null(o.value_integer, fhir_ts({effective_start("o")})) AS value
  FROM {table("Observation")} o
  JOIN measure_assessment_period m ON m.center = o.center AND m.patient_id = o.patient_id
  WHERE {phq9}
    AND fhir_date({effective_start("o")}) BETWEEN m.map_lo AND m.map_hi
    AND o.status IN {ASSESSED}
  GROUP BY o.center, o.patient_id
),
-- CQL: define "Initial Population"  (age >= 12 at the index assessment)
initial_population AS (
  SELECT p.center, p.id AS patient_id,
         CASE WHEN {age} BETWEEN 12 AND 17 THEN ['Stratification 1']    -- CQL: define "Stratification 1"
              WHEN {age} >= 18 THEN ['Stratification 2'] END AS strata  -- CQL: define "Stratification 2"
  FROM {ctx.patients()} p
  JOIN measure_assessment_period m ON m.center = p.center AND m.patient_id = p.id
  WHERE {age} >= 12
),
-- CQL: define "Numerator": the last assessment's value < 5
numerator AS (SELECT center, patient_id FROM last_assessment WHERE value < 5)
"""
