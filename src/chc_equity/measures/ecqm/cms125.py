"""CMS125 Breast Cancer Screening (CMS125FHIRBreastCancerScreen 1.0.000).

Women 42-74 at the end of the Measurement Period with a qualifying outpatient visit who had a mammogram
between October 1 two years before the period and its end. Read side by side with
``../shared/ecqm/input/cql/CMS125FHIRBreastCancerScreen.cql``. UDS Table 6B Line 11a.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import adult_outpatient, frailty, hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    choice_end,
    choice_ends_during_day,
    code_in,
    has_code,
    is_diagnostic_study_performed,
    is_procedure_performed,
    onset_start,
    table,
    verified,
)

STRATIFIERS = ("Stratification 1", "Stratification 2")
# The Measure resource's stratum descriptions (age at the end of the Measurement Period).
STRATIFIER_LABELS = ("Age 42-51", "Age 52-74")

MEASURE = Measure(
    name="CMS125FHIRBreastCancerScreen",
    cms_id="CMS125",
    version="1.0.000",
    title="Breast Cancer Screening",
    care_gap="Order a screening mammogram (none in the 27 months before the period end).",
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator"),
            stratifiers=STRATIFIERS,
            stratifier_labels=STRATIFIER_LABELS,
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 11a",),
    steward="National Committee for Quality Assurance",
    description="Percentage of women 40-74 years of age who had a mammogram to screen for breast cancer in "
    "the 27 months prior to the end of the Measurement Period.",
)

FEMALE = "248152002"  # code "Female (finding)" (SNOMED CT), compared with the us-core-sex valueCode
SNOMED = "http://snomed.info/sct"
RIGHT = "24028007"  # code "Right (qualifier value)"
LEFT = "7771000"  # code "Left (qualifier value)"


def _mastectomy_diagnosis(ctx: Context, valueset: str, laterality: str | None) -> str:
    """The "... Mastectomy Diagnosis" definitions: conditions in ``valueset`` (plus, for one side,
    "Unilateral Mastectomy, Unspecified Laterality" with that bodySite), verified, whose
    prevalenceInterval() starts on or before end of "Measurement Period"."""
    codes = code_in("Condition", "c", valueset)
    if laterality:
        codes = (
            f"({codes} OR ({code_in('Condition', 'c', 'Unilateral Mastectomy, Unspecified Laterality')} "
            f"AND {has_code('condition_body_site', 'c', SNOMED, laterality)}))"
        )
    return f"""
  SELECT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  WHERE {codes}
    AND {verified("c")}
    -- a missing onset start is the minimum DateTime (closed null boundary): always on or before
    AND coalesce({onset_start("c", "ip.birth_date")} <= {ctx.period.end_date}, TRUE)"""


def _mastectomy_procedure(ctx: Context, valueset: str) -> str:
    """The "... Mastectomy Procedure" definitions: performed procedures in ``valueset`` whose
    performed.toInterval() ends on or before end of "Measurement Period"."""
    return f"""
  SELECT pr.center, pr.patient_id
  FROM {table("Procedure")} pr
  WHERE {code_in("Procedure", "pr", valueset)}
    AND {is_procedure_performed("pr")}
    AND fhir_ts({choice_end("pr", "performed")}) <= {ctx.period.end_ts}"""

POPULATIONS = (Populations.of("denominator_exclusion", "numerator", strata=True),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    qualifying = ctx.shared(adult_outpatient.qualifying_encounters)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    has_palliative = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    frail = ctx.shared(frailty.is_age_66_or_older_with_advanced_illness_and_frailty)
    nursing_home = ctx.shared(frailty.is_age_66_or_older_living_long_term_in_a_nursing_home)
    age = f"years_between(fhir_date(p.birth_date), {mp.end_date})"
    october_1 = f"make_date(year({mp.start_date}) - 2, 10, 1)"

    return f"""
WITH
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from end of "Measurement Period") in Interval[42, 74]
--   and Patient.sex = '248152002' and exists AdultOutpatientEncounters."Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date,
         -- CQL: define "Stratification 1" / "Stratification 2" (age at end of MP 42-51, 52-74)
         list_filter([CASE WHEN {age} BETWEEN 42 AND 51 THEN 'Stratification 1' END,
                      CASE WHEN {age} BETWEEN 52 AND 74 THEN 'Stratification 2' END],
                     lambda s: s IS NOT NULL) AS strata
  FROM {ctx.patients()} p
  WHERE {age} BETWEEN 42 AND 74
    AND p.sex = '{FEMALE}'
    AND EXISTS (SELECT 1 FROM {qualifying} q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Right Mastectomy Diagnosis"
right_mastectomy_diagnosis AS ({_mastectomy_diagnosis(ctx, "Status Post Right Mastectomy", RIGHT)}
),
-- CQL: define "Right Mastectomy Procedure"
right_mastectomy_procedure AS ({_mastectomy_procedure(ctx, "Unilateral Mastectomy Right")}
),
-- CQL: define "Left Mastectomy Diagnosis"
left_mastectomy_diagnosis AS ({_mastectomy_diagnosis(ctx, "Status Post Left Mastectomy", LEFT)}
),
-- CQL: define "Left Mastectomy Procedure"
left_mastectomy_procedure AS ({_mastectomy_procedure(ctx, "Unilateral Mastectomy Left")}
),
-- CQL: define "Bilateral Mastectomy Diagnosis"
bilateral_mastectomy_diagnosis AS ({_mastectomy_diagnosis(ctx, "History of bilateral mastectomy", None)}
),
-- CQL: define "Bilateral Mastectomy Procedure"
bilateral_mastectomy_procedure AS ({_mastectomy_procedure(ctx, "Bilateral Mastectomy")}
),
-- CQL: define "Numerator"
--   exists ([ObservationClinicalResult: "Mammography"]).isDiagnosticStudyPerformed() Mammogram
--     where effective.toInterval() ends during day of
--       Interval["October 1 Two Years Prior to the Measurement Period", end of "Measurement Period"]
numerator AS (
  SELECT o.center, o.patient_id
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", "Mammography")}
    AND {is_diagnostic_study_performed("o")}
    AND {choice_ends_during_day("o", "effective", october_1, mp.end_date, instant=True)}
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  -- (right mastectomy diagnosis or procedure) and (left mastectomy diagnosis or procedure)
  UNION ((SELECT center, patient_id FROM right_mastectomy_diagnosis
          UNION SELECT center, patient_id FROM right_mastectomy_procedure)
         INTERSECT
         (SELECT center, patient_id FROM left_mastectomy_diagnosis
          UNION SELECT center, patient_id FROM left_mastectomy_procedure))
  UNION SELECT center, patient_id FROM bilateral_mastectomy_diagnosis
  UNION SELECT center, patient_id FROM bilateral_mastectomy_procedure
  UNION SELECT center, patient_id FROM {frail}
  UNION SELECT center, patient_id FROM {nursing_home}
  UNION SELECT center, patient_id FROM {has_palliative}
)
"""
