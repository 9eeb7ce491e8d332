"""CMS75 Children Who Have Dental Decay or Cavities (CMS75FHIRChildrenDentalDecay 1.0.000).

Children 1-20 at the start of the Measurement Period with a clinical oral evaluation during it, who had
dental caries prevalent at some point in the period. An *outcome* measure: lower is better. Read side by
side with ``../shared/ecqm/input/cql/CMS75FHIRChildrenDentalDecay.cql``. Not a UDS Table 6B line; kept
for the dental dashboard (UDS counts dental services in Table 5, not this rate).
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_start,
    code_in,
    performed_encounters,
    prevalence_overlaps_day,
    table,
)

MEASURE = Measure(
    name="CMS75FHIRChildrenDentalDecay",
    cms_id="CMS75",
    version="1.0.000",
    title="Children Who Have Dental Decay or Cavities",
    care_gap="Caries recorded in the period: schedule restorative and preventive dental care.",
    groups=(
        Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),
    ),
    improvement_notation="decrease",
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Percentage of children, 1-20 years of age, who have had tooth decay or cavities during "
    "the measurement period.",
    extra={"measure_type": "outcome"},
)

POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
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
  SELECT p.center, p.id AS patient_id
  FROM {ctx.patients()} p
  WHERE {age_at_start("p.birth_date", mp)} BETWEEN 1 AND 20
    AND EXISTS (SELECT 1 FROM qualifying_encounters q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- CQL: define "Numerator"
--   exists ([ConditionProblemsHealthConcerns: "Dental Caries"] union [ConditionEncounterDiagnosis: ...])
--   where DentalCaries.prevalenceInterval() overlaps day of "Measurement Period"   (no verified() here)
numerator AS (
  SELECT DISTINCT c.center, c.patient_id
  FROM {table("Condition")} c
  JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", "Dental Caries")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
),
-- CQL: define "Denominator Exclusions": Hospice."Has Hospice Services"
denominator_exclusions AS (SELECT center, patient_id FROM {has_hospice})
"""
