"""CQL library ``PalliativeCare`` (1.18.000): ``"Has Palliative Care in the Measurement Period"``.

Returns ``SELECT center, patient_id``; use via
``ctx.shared(palliative.has_palliative_care_in_the_measurement_period)``.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.vocabulary import (
    choice_overlaps_day,
    code_in,
    code_is,
    is_assessment_performed,
    is_encounter_performed,
    is_intervention_performed,
    period_overlaps_day,
    prevalence_overlaps_day,
    table,
    verified,
)

LOINC = "http://loinc.org"
FACIT_PAL = "71007-9"  # Functional Assessment of Chronic Illness Therapy - Palliative Care Questionnaire


def has_palliative_care_in_the_measurement_period(ctx: Context) -> str:
    """``define "Has Palliative Care in the Measurement Period"``."""
    lo, hi = ctx.period.start_date, ctx.period.end_date
    return f"""
-- CQL (PalliativeCare): define "Has Palliative Care in the Measurement Period"
-- FACIT-Pal assessment
SELECT o.center, o.patient_id FROM {table("Observation")} o
WHERE {code_is("Observation", "o", LOINC, FACIT_PAL)}
  AND {is_assessment_performed("o")}
  AND {choice_overlaps_day("o", "effective", lo, hi, instant=True)}
UNION
-- palliative care diagnosis
SELECT c.center, c.patient_id FROM {table("Condition")} c
JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id
WHERE {code_in("Condition", "c", "2.16.840.1.113883.3.464.1003.1167")}  -- "Palliative Care Diagnosis"
  AND {verified("c")}
  AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}
UNION
-- palliative care encounter
SELECT e.center, e.patient_id FROM {table("Encounter")} e
WHERE {code_in("Encounter", "e", "2.16.840.1.113883.3.464.1003.101.12.1090")}  -- "Palliative Care Encounter"
  AND {is_encounter_performed("e")}
  AND {period_overlaps_day("e.period_start", "e.period_end", lo, hi)}
UNION
-- palliative care intervention performed
SELECT p.center, p.patient_id FROM {table("Procedure")} p
-- "Palliative Care Intervention"
WHERE {code_in("Procedure", "p", "2.16.840.1.113883.3.464.1003.198.12.1135")}
  AND {is_intervention_performed("p")}
  AND {choice_overlaps_day("p", "performed", lo, hi)}
"""
