"""CMS314 HIV Viral Suppression (CMS314FHIRHIVViralSuppression 1.0.000).

Patients of any age with HIV diagnosed before or in the first 90 days of the Measurement Period and a
qualifying visit in its first 240 days, whose most recent viral load test in the period is below
200 copies/mL (or coded as below threshold / not detected). Read side by side with
``../shared/ecqm/input/cql/CMS314FHIRHIVViralSuppression.cql``. Not in the UDS Table 6B notes
(``../shared/domain/uds-notes.md``); HRSA's HIV line 20 is linkage to care.

Quantity semantics follow FHIRHelpers.ToQuantity: the unit is ``coalesce(code, unit, '1')`` and the
system must be UCUM or absent; a value with a ``comparator`` (``<20``) cannot be converted (the CQL
raises an error), so it never satisfies ``< 200 '{copies}/mL'``. Units are compared as UCUM would:
annotations (``{copies}``) are unity, so ``{copies}/mL`` = ``/mL`` = ``1/mL``; ``/L`` is converted.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    code_in,
    during_day_of,
    has_code,
    is_laboratory_test_performed,
    latest,
    onset_start,
    point_during_day,
    table,
    verified,
)

MEASURE = Measure(
    name="CMS314FHIRHIVViralSuppression",
    cms_id="CMS314",
    version="1.0.000",
    title="HIV Viral Suppression",
    care_gap="Most recent HIV viral load not below 200 copies/mL: review ART adherence and linkage to care.",
    groups=(Group("Group_1", ("initial-population", "denominator", "numerator")),),
    improvement_notation="increase",
    steward="Health Resources & Services Administration",
    description="Percentage of patients, regardless of age, diagnosed with HIV prior to or during the first "
    "90 days of the measurement period, with an eligible encounter in the first 240 days of the measurement "
    "period, whose last HIV viral load test result was less than 200 copies/mL.",
)

SNOMED = "http://snomed.info/sct"
BELOW_THRESHOLD = "260988000"  # code "Below threshold level (qualifier value)"
NOT_DETECTED = "260415000"  # code "Not detected (qualifier value)"
UCUM_SYSTEMS = "('http://unitsofmeasure.org', 'http://hl7.org/fhirpath/CodeSystem/calendar-units')"

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Outpatient Consultation",
    "Annual Wellness Visit",
    "Face-to-Face Interaction",
    "Home Healthcare Services",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Preventive Care Services, Initial Office Visit, 0 to 17",
    "Preventive Care, Established Office Visit, 0 to 17",
    "Telephone Visits",
    "Preventive Care Services Other",
)


def _copies_per_ml(o: str) -> str:
    """``<o>.value`` (a Quantity) in copies/mL, or NULL when it is no comparable Quantity (see module doc)."""
    ucum = f"coalesce({o}.value_quantity_code, {o}.value_quantity_unit, '1')"
    unit = f"regexp_replace({ucum}, '\\{{[^}}]*\\}}', '', 'g')"
    return (
        f"(CASE WHEN {o}.value_quantity_value IS NULL OR {o}.value_quantity_comparator IS NOT NULL "
        f"OR coalesce({o}.value_quantity_system IN {UCUM_SYSTEMS}, TRUE) IS NOT TRUE THEN NULL "
        f"WHEN {unit} IN ('/mL', '1/mL') THEN {o}.value_quantity_value "
        f"WHEN {unit} IN ('/L', '1/L') THEN {o}.value_quantity_value / 1000 END)"
    )


POPULATIONS = (Populations(numerator="numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    # start of "Measurement Period" + 240 / + 90 days, as DATE arithmetic in SQL (DATE + INTEGER days)
    # so that the MP may be a column (a series evaluates every period at once)
    day_240 = f"({lo} + 240)"
    day_90 = f"({lo} + 90)"
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS)
    return f"""
WITH
-- CQL: define "Has Active HIV Diagnosis Before or in First 90 Days of Measurement Period"
--   exists ([ConditionProblemsHealthConcerns | ConditionEncounterDiagnosis: "HIV"]) HIVDx
--     where prevalenceInterval() starts before day of (start of "Measurement Period" + 90 days)
--       and isVerified()
has_active_hiv_diagnosis AS (
  SELECT DISTINCT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN {ctx.patients()} p ON p.center = c.center AND p.id = c.patient_id
  WHERE {code_in("Condition", "c", "HIV")}
    -- a missing onset start is the minimum DateTime (closed null boundary): always before
    AND coalesce({onset_start("c", "p.birth_date")} < {day_90}, TRUE)
    AND {verified("c")}
),
-- CQL: define "Has Qualifying Encounter During First 240 Days of Measurement Period"
--   exists (eleven encounter value sets) QualifyingEncounter
--     where period during day of Interval[start of MP, start of MP + 240 days] and status = 'finished'
has_qualifying_encounter_during_first_240_days AS (
  SELECT DISTINCT e.center, e.patient_id
  FROM {table("Encounter")} e
  WHERE ({encounter_types})
    AND {during_day_of("e.period_start", "e.period_end", lo, day_240)}
    AND e.status = 'finished'
),
-- CQL: define "Initial Population"
initial_population AS (
  SELECT d.center, d.patient_id
  FROM has_active_hiv_diagnosis d
  JOIN has_qualifying_encounter_during_first_240_days q ON q.center = d.center AND q.patient_id = d.patient_id
),
-- CQL: define "Most Recent Viral Load Test During Measurement Period"
--   Last([LaboratoryResultObservation: "HIV Viral Load Tests"] ViralLoad
--     where status in final / amended / corrected and effective.latest() during day of "Measurement Period"
--     sort by effective.earliest())
most_recent_viral_load_test AS (
  SELECT o.*
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", "HIV Viral Load Tests")}
    AND {is_laboratory_test_performed("o")}
    AND {point_during_day(latest("o", "effective", instant=True), lo, hi)}
  QUALIFY row_number() OVER (
    PARTITION BY o.center, o.patient_id
    -- Last(... sort by earliest()): the latest earliest(); ties (same instant) have no order in SQL, the
    -- highest id wins so that results are deterministic (cql-execution keeps retrieve order)
    ORDER BY fhir_ts(coalesce(o.effective_datetime, o.effective_instant, o.effective_period_start,
                              o.effective_period_end)) DESC NULLS LAST, o.id DESC) = 1
),
-- CQL: define "Numerator"
--   most recent test .value < 200 '{{copies}}/mL' or .value ~ "Below threshold level (qualifier value)"
--   or .value ~ "Not detected (qualifier value)"
numerator AS (
  SELECT m.center, m.patient_id
  FROM most_recent_viral_load_test m
  WHERE coalesce({_copies_per_ml("m")} < 200, FALSE)
     OR {has_code("observation_value_code", "m", SNOMED, BELOW_THRESHOLD)}
     OR {has_code("observation_value_code", "m", SNOMED, NOT_DETECTED)}
)
"""
