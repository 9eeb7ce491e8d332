"""CMS124 Cervical Cancer Screening (CMS124FHIRCervicalCancerScreen 1.0.000).

Women 24-64 at the end of the Measurement Period with a qualifying visit, screened by cervical cytology
within 3 years or (age 30+ at the test) hrHPV testing within 5 years. Read side by side with
``../shared/ecqm/input/cql/CMS124FHIRCervicalCancerScreen.cql``. UDS Table 6B Line 11.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    choice_end,
    code_in,
    during_day_of_mp,
    is_encounter_performed,
    is_laboratory_test_performed,
    is_procedure_performed,
    latest,
    observation_has_value,
    onset_start,
    point_during_day,
    table,
    verified,
)

MEASURE = Measure(
    name="CMS124FHIRCervicalCancerScreen",
    cms_id="CMS124",
    version="1.0.000",
    title="Cervical Cancer Screening",
    care_gap=(
        "Order cervical cancer screening (cytology every 3 years, or HPV testing every 5 years "
        "from age 30)."
    ),
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="increase",
    uds=("Table 6B Line 11",),
    steward="National Committee for Quality Assurance",
    description="Percentage of women 21-64 years of age who were screened for cervical cancer: cytology "
    "within the last 3 years, or (age 30-64) cervical hrHPV testing within the last 5 years.",
)

FEMALE = "248152002"  # code "Female (finding)" (SNOMED CT), compared with the us-core-sex valueCode

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Home Healthcare Services",
    "Telephone Visits",
    "Virtual Encounter",
)

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    has_hospice = ctx.shared(hospice.has_hospice_services)
    has_palliative = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    encounter_types = " OR ".join(code_in("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS)
    lookback_3y = f"({mp.start_date} - INTERVAL 2 YEAR)::DATE"
    lookback_5y = f"({mp.start_date} - INTERVAL 4 YEAR)::DATE"
    effective_latest = latest("o", "effective", instant=True)
    return f"""
WITH
-- CQL: define "Qualifying Encounters"  (six encounter value sets).isEncounterPerformed()
--      where period during day of "Measurement Period"
qualifying_encounters AS (
  SELECT e.center, e.patient_id, e.id
  FROM {table('Encounter')} e
  WHERE ({encounter_types})
    AND {is_encounter_performed('e')}
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
),
-- CQL: define "Initial Population"
--      AgeInYearsAt(date from end of "Measurement Period") in Interval[24, 64]
--      and Patient.sex = '248152002' and exists "Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date
  FROM {ctx.patients()} p
  WHERE {age_at_end('p.birth_date', mp)} BETWEEN 24 AND 64
    AND p.sex = '{FEMALE}'
    AND EXISTS (SELECT 1 FROM qualifying_encounters q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Absence of Cervix"
--      [Procedure: "Hysterectomy with No Residual Cervix"].isProcedurePerformed()
--        where performed.toInterval() ends on or before end of "Measurement Period"
--      union ([ConditionProblemsHealthConcerns | ConditionEncounterDiagnosis:
--        "Congenital or Acquired Absence of Cervix"]).verified()
--        where prevalenceInterval() starts on or before end of "Measurement Period"
absence_of_cervix AS (
  SELECT pr.center, pr.patient_id
  FROM {table('Procedure')} pr
  WHERE {code_in('Procedure', 'pr', 'Hysterectomy with No Residual Cervix')}
    AND {is_procedure_performed('pr')}
    AND fhir_ts({choice_end('pr', 'performed')}) <= {mp.end_ts}
  UNION
  SELECT c.center, c.patient_id
  FROM (SELECT * FROM {table('Condition')} c
        WHERE {code_in('Condition', 'c', 'Congenital or Acquired Absence of Cervix')} AND {verified('c')}
  ) c
  -- (the retrieve's own filters in a derived table: evaluated once, not per period of a series)
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  WHERE TRUE
    -- a missing onset start is the minimum DateTime (closed null boundary): always on or before
    AND coalesce({onset_start('c', 'ip.birth_date')} <= {mp.end_date}, TRUE)
),
-- CQL: define "Cervical Cytology Within 3 Years"
--      [LaboratoryResultObservation: "Pap Test"].isLaboratoryTestPerformed()
--        where effective.latest() during day of Interval[start of MP - 2 years, end of MP]
--          and value is not null
cervical_cytology_within_3_years AS (
  SELECT o.center, o.patient_id
  FROM {table('Observation')} o
  WHERE {code_in('Observation', 'o', 'Pap Test')}
    AND {is_laboratory_test_performed('o')}
    AND {point_during_day(effective_latest, lookback_3y, mp.end_date)}
    AND {observation_has_value('o')}
),
-- CQL: define "HPV Test Within 5 Years for Women Age 30 and Older"
--      [LaboratoryResultObservation: "HPV Test"].isLaboratoryTestPerformed()
--        where AgeInYearsAt(date from effective.latest()) >= 30
--          and effective.latest() during day of Interval[start of MP - 4 years, end of MP]
--          and value is not null
hpv_test_within_5_years AS (
  SELECT o.center, o.patient_id
  FROM (SELECT * FROM {table('Observation')} o
        WHERE {code_in('Observation', 'o', 'HPV Test')} AND {is_laboratory_test_performed('o')}
          AND {observation_has_value('o')}
  ) o
  -- (the retrieve's own filters in a derived table: evaluated once, not per period of a series)
  JOIN initial_population ip ON ip.center = o.center AND ip.patient_id = o.patient_id
  WHERE years_between(fhir_date(ip.birth_date), fhir_date({effective_latest})) >= 30
    AND {point_during_day(effective_latest, lookback_5y, mp.end_date)}
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM absence_of_cervix
  UNION SELECT center, patient_id FROM {has_palliative}
),
-- CQL: define "Numerator"
numerator AS (
  SELECT center, patient_id FROM cervical_cytology_within_3_years
  UNION SELECT center, patient_id FROM hpv_test_within_5_years
)
"""
