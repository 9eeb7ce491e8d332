"""CMS74 Primary Caries Prevention Intervention as Offered by Dentists
(CMS74FHIRDentalCariesPrevention 1.0.000).

Children 1-20 at the start of the Measurement Period with a clinical oral evaluation during it, who
received fluoride varnish on at least two distinct days in the period. Read side by side with
``../shared/ecqm/input/cql/CMS74FHIRDentalCariesPrevention.cql``. Not a UDS Table 6B line (UDS counts
fluoride as a dental service in Table 5); kept for the dental dashboard.

Stratifiers: the Measure resource's three stratifiers all point at "Initial Population" (a MADiE export
quirk); their descriptions, and the CQL, say age 1-5 / 6-12 / 13-20, which is what "Stratification 1..3"
implement here.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_start,
    choice_end,
    choice_ends_during_day,
    code_in,
    is_procedure_performed,
    performed_encounters,
    table,
)

STRATIFIERS = ("Stratification 1", "Stratification 2", "Stratification 3")
# The Measure resource's stratum descriptions (age at the start of the Measurement Period). Its
# stratifier criteria all name "Initial Population" (a MADiE export slip); the CQL library defines
# "Stratification 1/2/3" as these age bands, which is what we evaluate.
STRATIFIER_LABELS = ("Age 1-5", "Age 6-12", "Age 13-20")

MEASURE = Measure(
    name="CMS74FHIRDentalCariesPrevention",
    cms_id="CMS74",
    version="1.0.000",
    title="Primary Caries Prevention Intervention as Offered by Dentists",
    care_gap="Apply fluoride varnish (two applications in the period).",
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator"),
            stratifiers=STRATIFIERS,
            stratifier_labels=STRATIFIER_LABELS,
        ),
    ),
    improvement_notation="increase",
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Percentage of children, 1-20 years of age, who received a fluoride varnish application "
    "during the measurement period (at least two, on different days).",
)

POPULATIONS = (Populations.of("denominator_exclusion", "numerator", strata=True),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    age = age_at_start("p.birth_date", mp)
    has_hospice = ctx.shared(hospice.has_hospice_services)
    return f"""
WITH
-- CQL: define "Qualifying Encounters"
--   ([Encounter: "Clinical Oral Evaluation"]).isEncounterPerformed() during day of "Measurement Period"
qualifying_encounters AS ({performed_encounters(code_in("Encounter", "e", "Clinical Oral Evaluation"), mp)}
),
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from start of "Measurement Period") in Interval[1, 20]
--   and exists "Qualifying Encounters"
initial_population AS (
  SELECT p.center, p.id AS patient_id,
         -- CQL: define "Stratification 1" / "Stratification 2" / "Stratification 3" (age 1-5, 6-12, 13-20)
         list_filter([CASE WHEN {age} BETWEEN 1 AND 5 THEN 'Stratification 1' END,
                      CASE WHEN {age} BETWEEN 6 AND 12 THEN 'Stratification 2' END,
                      CASE WHEN {age} BETWEEN 13 AND 20 THEN 'Stratification 3' END],
                     lambda s: s IS NOT NULL) AS strata
  FROM {ctx.patients()} p
  WHERE {age} BETWEEN 1 AND 20
    AND EXISTS (SELECT 1 FROM qualifying_encounters q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Numerator"
--   Count(([Procedure: "Fluoride Varnish Application for Children"]).isProcedurePerformed() F
--     where F.performed.toInterval() ends during day of "Measurement Period"
--     return distinct date from end of F.performed.toInterval()) >= 2
numerator AS (
  SELECT f.center, f.patient_id
  FROM {table("Procedure")} f
  WHERE {code_in("Procedure", "f", "Fluoride Varnish Application for Children")}
    AND {is_procedure_performed("f")}
    AND {choice_ends_during_day("f", "performed", lo, hi)}
  GROUP BY f.center, f.patient_id
  HAVING count(DISTINCT fhir_date({choice_end("f", "performed")})) >= 2
),
-- CQL: define "Denominator Exclusions": Hospice."Has Hospice Services"
denominator_exclusions AS (SELECT center, patient_id FROM {has_hospice})
"""
