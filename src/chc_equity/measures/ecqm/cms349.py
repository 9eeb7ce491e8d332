"""CMS349 HIV Screening (CMS349FHIRHIVScreening 1.1.000).

Patients 15-65 at the start of the Measurement Period with a qualifying visit, ever tested for HIV
between ages 15 and 65 (before the end of the period). Read side by side with
``../shared/ecqm/input/cql/CMS349FHIRHIVScreening.cql``. UDS Table 6B Line 20a.

The measure defines its own ``isVerified()`` (QICoreCommon verification codes); it is the same test as
Status ``verified()``, so :func:`status.verified` is used.
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
    observation_has_value,
    onset_start,
    table,
    verified,
)

MEASURE = Measure(
    name="CMS349FHIRHIVScreening",
    cms_id="CMS349",
    version="1.1.000",
    title="HIV Screening",
    care_gap="Offer an HIV test (no test on record between ages 15 and 65).",
    groups=(
        Group(
            "Group_1",
            (
                "initial-population", "denominator", "denominator-exclusion", "numerator",
                "denominator-exception",
            ),
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 20a",),
    steward="Centers for Disease Control and Prevention (CDC)",
    description="Percentage of patients aged 15-65 at the start of the measurement period who were between "
    "15-65 years old when tested for human immunodeficiency virus (HIV).",
)

LOINC = "http://loinc.org"
HIV_TESTS_MU_SET = "75622-1"  # code "HIV 1 and 2 tests - Meaningful Use set"

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Preventive Care Services, Initial Office Visit, 0 to 17",
    "Preventive Care Services-Initial Office Visit, 18 and Up",
    "Preventive Care, Established Office Visit, 0 to 17",
    "Preventive Care Services - Established Office Visit, 18 and Up",
    "Office Visit",
)

POPULATIONS = (Populations.of("denominator_exclusion", "denominator_exception", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS)
    # start of HIVTest.effective.toInterval(): the dateTime (or instant), else the Period's start
    test_start = "coalesce(o.effective_datetime, o.effective_instant, o.effective_period_start)"
    return f"""
WITH
-- CQL: define "Qualifying Encounters"
--   (five encounter value sets) where period during day of "Measurement Period" and status = 'finished'
qualifying_encounters AS (
  SELECT e.center, e.patient_id, e.id
  FROM {table("Encounter")} e
  WHERE ({encounter_types})
    AND {during_day_of_mp("e.period_start", "e.period_end", mp)}
    AND e.status = 'finished'
),
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from start of "Measurement Period") in Interval[15, 65]
--   and exists "Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date, p.deceased_datetime
  FROM {ctx.patients()} p
  WHERE {age_at_start("p.birth_date", mp)} BETWEEN 15 AND 65
    AND EXISTS (SELECT 1 FROM qualifying_encounters q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Denominator Exclusions"
--   exists ([ConditionProblemsHealthConcerns | ConditionEncounterDiagnosis: "HIV"]) HIVDiagnosis
--     where prevalenceInterval() starts before day of start of "Measurement Period" and isVerified()
denominator_exclusions AS (
  SELECT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  WHERE {code_in("Condition", "c", "HIV")}
    -- a missing onset start is the minimum DateTime (closed null boundary): always before
    AND coalesce({onset_start("c", "ip.birth_date")} < {mp.start_date}, TRUE)
    AND {verified("c")}
),
-- CQL: define "Has HIV Test Performed"
--   exists ([LaboratoryResultObservation: "Human Immunodeficiency Virus (HIV) Laboratory Test Codes
--     (Ab and Ag)"] union [LaboratoryResultObservation: "HIV 1 and 2 tests - Meaningful Use set"]) HIVTest
--     where value is not null
--       and AgeInYearsAt(date from start of effective.toInterval()) in Interval[15, 65]
--       and effective.toInterval() starts before day of end of "Measurement Period"
--       and status in final / amended / corrected
--   (the retrieve and the conditions on the test alone first: they do not depend on the period)
hiv_test AS (
  SELECT o.center, o.patient_id, fhir_date({test_start}) AS test_day
  FROM {table("Observation")} o
  WHERE ({code_in("Observation", "o", "Human Immunodeficiency Virus (HIV) Laboratory Test Codes (Ab and Ag)")}
         OR {code_is("Observation", "o", LOINC, HIV_TESTS_MU_SET)})
    AND {observation_has_value("o")}
    AND o.status IN ('final', 'amended', 'corrected')
),
has_hiv_test_performed AS (
  SELECT t.center, t.patient_id
  FROM hiv_test t
  JOIN initial_population ip ON ip.center = t.center AND ip.patient_id = t.patient_id
  WHERE years_between(fhir_date(ip.birth_date), t.test_day) BETWEEN 15 AND 65
    AND t.test_day < {mp.end_date}
),
-- CQL: define "Denominator Exceptions" = "Patient Expired":
--   Patient.deceased on or before day of end of "Measurement Period" (deceasedBoolean is no DateTime)
denominator_exceptions AS (
  SELECT center, patient_id FROM initial_population ip
  WHERE coalesce(fhir_date(ip.deceased_datetime) <= {mp.end_date}, FALSE)
),
-- CQL: define "Numerator" = "Has HIV Test Performed"
numerator AS (SELECT center, patient_id FROM has_hiv_test_performed)
"""
