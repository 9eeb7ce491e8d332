"""CMS130 Colorectal Cancer Screening (CMS130FHIRColorectalCancerScrn 1.0.000).

Adults 46-75 at the end of the Measurement Period with a qualifying outpatient visit, screened by FOBT
(this year), stool DNA with FIT (3 years), flexible sigmoidoscopy or CT colonography (5 years) or
colonoscopy (10 years). Read side by side with
``../shared/ecqm/input/cql/CMS130FHIRColorectalCancerScrn.cql``. UDS Table 6B Line 19.
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
    is_diagnostic_study_performed,
    is_laboratory_test_performed,
    is_procedure_performed,
    latest,
    observation_has_value,
    onset_start,
    point_during_day,
    table,
    verified,
)

STRATIFIERS = ("Stratification 1", "Stratification 2")
# The Measure resource's stratum descriptions (age at the end of the Measurement Period).
STRATIFIER_LABELS = ("Age 46-49", "Age 50-75")

MEASURE = Measure(
    name="CMS130FHIRColorectalCancerScrn",
    cms_id="CMS130",
    version="1.0.000",
    title="Colorectal Cancer Screening",
    care_gap=(
        "Offer colorectal cancer screening (FIT/FOBT, stool DNA, colonoscopy, CT colonography or "
        "sigmoidoscopy)."
    ),
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator"),
            stratifiers=STRATIFIERS,
            stratifier_labels=STRATIFIER_LABELS,
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 19",),
    steward="National Committee for Quality Assurance",
    description="Percentage of adults 45-75 years of age who had appropriate screening for colorectal "
    "cancer.",
)


def _years_before_start(ctx: Context, years: int) -> str:
    """``start of "Measurement Period" - <years> years`` as a DATE."""
    return f"({ctx.period.start_date} - INTERVAL {years} YEAR)::DATE"

POPULATIONS = (Populations.of("denominator_exclusion", "numerator", strata=True),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    qualifying = ctx.shared(adult_outpatient.qualifying_encounters)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    has_palliative = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    frail = ctx.shared(frailty.is_age_66_or_older_with_advanced_illness_and_frailty)
    nursing_home = ctx.shared(frailty.is_age_66_or_older_living_long_term_in_a_nursing_home)
    age = f"years_between(fhir_date(p.birth_date), {mp.end_date})"
    effective_latest = latest("o", "effective", instant=True)

    return f"""
WITH
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from end of "Measurement Period") in Interval[46, 75]
--   and exists AdultOutpatientEncounters."Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date,
         -- CQL: define "Stratification 1" / "Stratification 2" (age at end of MP 46-49, 50-75)
         list_filter([CASE WHEN {age} BETWEEN 46 AND 49 THEN 'Stratification 1' END,
                      CASE WHEN {age} BETWEEN 50 AND 75 THEN 'Stratification 2' END],
                     lambda s: s IS NOT NULL) AS strata
  FROM {ctx.patients()} p
  WHERE {age} BETWEEN 46 AND 75
    AND EXISTS (SELECT 1 FROM {qualifying} q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Malignant Neoplasm"
--   ([ConditionProblemsHealthConcerns: "Malignant Neoplasm of Colon"]
--     union [ConditionEncounterDiagnosis: "Malignant Neoplasm of Colon"]).verified()
--     where prevalenceInterval() starts on or before day of end of "Measurement Period"
malignant_neoplasm AS (
  SELECT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  WHERE {code_in("Condition", "c", "Malignant Neoplasm of Colon")}
    AND {verified("c")}
    -- a missing onset start is the minimum DateTime (closed null boundary): always on or before
    AND coalesce({onset_start("c", "ip.birth_date")} <= {hi}, TRUE)
),
-- CQL: define "Total Colectomy Performed"
--   ([Procedure: "Total Colectomy"]).isProcedurePerformed()
--     where performed.toInterval() ends on or before day of end of "Measurement Period"
total_colectomy_performed AS (
  SELECT pr.center, pr.patient_id
  FROM {table("Procedure")} pr
  WHERE {code_in("Procedure", "pr", "Total Colectomy")}
    AND {is_procedure_performed("pr")}
    AND fhir_date({choice_end("pr", "performed")}) <= {hi}
),
-- CQL: define "Fecal Occult Blood Test Performed"
--   ([LaboratoryResultObservation: "Fecal Occult Blood Test (FOBT)"]).isLaboratoryTestPerformed()
--     where value is not null and effective.latest() during day of "Measurement Period"
fecal_occult_blood_test_performed AS (
  SELECT o.center, o.patient_id
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", "Fecal Occult Blood Test (FOBT)")}
    AND {is_laboratory_test_performed("o")}
    AND {observation_has_value("o")}
    AND {point_during_day(effective_latest, lo, hi)}
),
-- CQL: define "Stool DNA with FIT Test Performed"
--   ([LaboratoryResultObservation: "sDNA FIT Test"]).isLaboratoryTestPerformed()
--     where value is not null
--       and effective.latest() during day of Interval[start of "Measurement Period" - 2 years, end of MP]
stool_dna_with_fit_test_performed AS (
  SELECT o.center, o.patient_id
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", "sDNA FIT Test")}
    AND {is_laboratory_test_performed("o")}
    AND {observation_has_value("o")}
    AND {point_during_day(effective_latest, _years_before_start(ctx, 2), hi)}
),
-- CQL: define "Flexible Sigmoidoscopy Performed"
--   ([Procedure: "Flexible Sigmoidoscopy"]).isProcedurePerformed()
--     where performed.toInterval() ends during day of Interval[start of MP - 4 years, end of MP]
flexible_sigmoidoscopy_performed AS (
  SELECT pr.center, pr.patient_id
  FROM {table("Procedure")} pr
  WHERE {code_in("Procedure", "pr", "Flexible Sigmoidoscopy")}
    AND {is_procedure_performed("pr")}
    AND {choice_ends_during_day("pr", "performed", _years_before_start(ctx, 4), hi)}
),
-- CQL: define "CT Colonography Performed"
--   ([ObservationClinicalResult: "CT Colonography"]).isDiagnosticStudyPerformed()
--     where effective.toInterval() ends during day of Interval[start of MP - 4 years, end of MP]
ct_colonography_performed AS (
  SELECT o.center, o.patient_id
  FROM {table("Observation")} o
  WHERE {code_in("Observation", "o", "CT Colonography")}
    AND {is_diagnostic_study_performed("o")}
    AND {choice_ends_during_day("o", "effective", _years_before_start(ctx, 4), hi, instant=True)}
),
-- CQL: define "Colonoscopy Performed"
--   ([Procedure: "Colonoscopy"]).isProcedurePerformed()
--     where performed.toInterval() ends during day of Interval[start of MP - 9 years, end of MP]
colonoscopy_performed AS (
  SELECT pr.center, pr.patient_id
  FROM {table("Procedure")} pr
  WHERE {code_in("Procedure", "pr", "Colonoscopy")}
    AND {is_procedure_performed("pr")}
    AND {choice_ends_during_day("pr", "performed", _years_before_start(ctx, 9), hi)}
),
-- CQL: define "Denominator Exclusions"
denominator_exclusions AS (
  SELECT center, patient_id FROM {has_hospice}
  UNION SELECT center, patient_id FROM malignant_neoplasm
  UNION SELECT center, patient_id FROM total_colectomy_performed
  UNION SELECT center, patient_id FROM {frail}
  UNION SELECT center, patient_id FROM {nursing_home}
  UNION SELECT center, patient_id FROM {has_palliative}
),
-- CQL: define "Numerator"
numerator AS (
  SELECT center, patient_id FROM fecal_occult_blood_test_performed
  UNION SELECT center, patient_id FROM stool_dna_with_fit_test_performed
  UNION SELECT center, patient_id FROM flexible_sigmoidoscopy_performed
  UNION SELECT center, patient_id FROM ct_colonography_performed
  UNION SELECT center, patient_id FROM colonoscopy_performed
)
"""
