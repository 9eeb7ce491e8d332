"""CMS2 Preventive Care and Screening: Screening for Depression and Follow-Up Plan
(CMS2FHIRPCSDepScreenAndFollowUp 1.0.000).

Patients 12+ with a qualifying visit, screened for depression (adolescent or adult standardized tool)
on the visit date or up to 14 days before, with a follow-up plan when the screen is positive.
UDS Table 6B line 21. Read side by side with ``../shared/ecqm/input/cql/CMS2FHIRPCSDepScreenAndFollowUp.cql``.

The CQL defines each "Adolescent" definition twice (adolescent and adult screening tool, medication,
referral and follow-up value sets); here each CTE carries a ``tool`` column ('adolescent' | 'adult')
instead, so one CTE stands for the pair of CQL definitions named in its comment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from chc_equity.measures.engine import Context
from chc_equity.measures.library import cmd
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    ORDER_INTENTS,
    age_at_start,
    code_in,
    code_is,
    condition_problem_or_health_concern,
    during_day_of_mp,
    has_code,
    in_valueset,
    is_assessment_performed,
    medication_requested,
    observation_cancelled,
    observation_has_value,
    onset_start,
    service_requested,
)

MEASURE = Measure(
    name="CMS2FHIRPCSDepScreenAndFollowUp",
    cms_id="CMS2",
    version="1.0.000",
    title="Preventive Care and Screening: Screening for Depression and Follow-Up Plan",
    care_gap=(
        "Screen for depression with a standardized tool at a visit; if positive, document a "
        "follow-up plan the same day."
    ),
    groups=(
        Group(
            "Group_1",
            ("initial-population", "denominator", "denominator-exclusion", "numerator",
             "denominator-exception"),
        ),
    ),
    improvement_notation="increase",
    uds=("Table 6B Line 21",),
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Patients aged 12 years and older screened for depression on the date of a qualifying "
    "encounter or up to 14 days prior using an age-appropriate standardized tool and, if positive, with "
    "a follow-up plan documented on the date of or up to two days after the screening encounter.",
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SCREENING_DECLINED = "720834000"  # "Depression screening declined (situation)"
SCREENING_NEGATIVE = "428171000124102"  # "Depression screening negative (finding)"
SCREENING_POSITIVE = "428181000124104"  # "Depression screening positive (finding)"



class Tool(NamedTuple):
    """One screening tool and the follow-up value sets that go with it."""

    name: str  # 'adolescent' | 'adult'
    loinc: str  # "Adolescent/Adult depression screening assessment"
    meds: str
    referral: str
    follow_up: str


TOOLS = (
    Tool("adolescent", "73831-0", "Adolescent Depression Medications", "Referral for Adolescent Depression",
         "Follow Up for Adolescent Depression"),
    Tool("adult", "73832-8", "Adult Depression Medications", "Referral for Adult Depression",
         "Follow Up for Adult Depression"),
)


def _per_tool(build: Callable[[Tool], str]) -> str:
    """``build(tool)`` once per screening tool, UNION ALL-ed."""
    return "\n  UNION ALL".join(build(t) for t in TOOLS)


def _within_14_days_before(point_day: str, encounter_start: str) -> str:
    """``<point> 14 days or less on or before day of start of <encounter>.period`` (day precision)."""
    return (
        f"({point_day} BETWEEN (fhir_ts({encounter_start}) - INTERVAL 14 DAY)::DATE "
        f"AND fhir_date({encounter_start}))"
    )

POPULATIONS = (Populations.of("denominator_exclusion", "denominator_exception", "numerator"),)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    mrp = ctx.shared(cmd.medication_request_period)
    eff_start = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant)"
    eff_end = "coalesce(o.effective_datetime, o.effective_period_end, o.effective_instant)"
    screening = _per_tool(lambda t: f"""
  SELECT '{t.name}' AS tool, o.center, o.patient_id, o.id,
         fhir_ts({eff_start}) AS eff_start, fhir_ts({eff_end}) AS eff_end,
         {has_code('observation_value_code', 'o', SNOMED, SCREENING_NEGATIVE)} AS negative,
         {has_code('observation_value_code', 'o', SNOMED, SCREENING_POSITIVE)} AS positive
  FROM flat.observation o
  WHERE {code_is('Observation', 'o', LOINC, t.loinc)}
    AND {observation_has_value('o')}
    AND {is_assessment_performed('o')}""")
    medication_follow_up = _per_tool(lambda t: f"""
  SELECT DISTINCT '{t.name}' AS tool, m.center, m.patient_id, m.id,
         CAST(NULL AS TIMESTAMP) AS performed_start, fhir_ts(m.authored_on) AS authored_on
  FROM flat.medication_request m
  JOIN most_recent_depression_screening s
    ON s.center = m.center AND s.patient_id = m.patient_id AND s.tool = '{t.name}'
  JOIN qualifying_encounter q ON q.center = m.center AND q.patient_id = m.patient_id
  JOIN {mrp} mrp ON mrp.center = m.center AND mrp.id = m.id
  WHERE {code_in('MedicationRequest', 'm', t.meds)} AND {medication_requested('m')}
    AND {_within_14_days_before('CAST(s.eff_start AS DATE)', 'q.period_start')}
    -- medicationRequestPeriod() overlaps after day of QualifyingEncounter.period
    AND mrp.period_start <= fhir_date(q.period_end) AND mrp.period_end >= fhir_date(q.period_start)
    AND mrp.period_end > fhir_date(q.period_end)
    AND s.positive
    AND m.status IN ('active', 'completed')
    AND m.intent IN {ORDER_INTENTS}""")
    referral_follow_up = _per_tool(lambda t: f"""
  SELECT '{t.name}' AS tool, r.center, r.patient_id, r.id,
         CAST(NULL AS TIMESTAMP), fhir_ts(r.authored_on)
  FROM flat.service_request r
  WHERE {code_in('ServiceRequest', 'r', t.referral)} AND {service_requested('r')}
    AND r.status IN ('active', 'completed')""")
    procedure_follow_up = _per_tool(lambda t: f"""
  SELECT '{t.name}' AS tool, p.center, p.patient_id, p.id,
         fhir_ts(coalesce(p.performed_datetime, p.performed_period_start)), CAST(NULL AS TIMESTAMP)
  FROM flat.procedure p
  WHERE {code_in('Procedure', 'p', t.follow_up)} AND p.status = 'completed'""")
    cancelled = _per_tool(lambda t: f"""
  SELECT DISTINCT '{t.name}' AS tool, o.center, o.patient_id
  FROM flat.observation o
  JOIN qualifying_encounter q ON q.center = o.center AND q.patient_id = o.patient_id
  WHERE {observation_cancelled('o')}
    AND {code_is('Observation', 'o', LOINC, t.loinc)}
    AND fhir_date(o.issued) BETWEEN fhir_date(q.period_start) AND fhir_date(q.period_end)
    AND ({has_code('observation_not_done_reason', 'o', SNOMED, SCREENING_DECLINED)}
         OR {in_valueset('observation_not_done_reason', 'o', 'Medical Reason')})""")
    return f"""
WITH
-- CQL: define "Qualifying Encounter During Measurement Period"
qualifying_encounter AS (
  SELECT e.center, e.patient_id, e.id, e.period_start, e.period_end
  FROM flat.encounter e
  WHERE ({code_in('Encounter', 'e', 'Encounter to Screen for Depression')}
         OR {code_in('Encounter', 'e', 'Physical Therapy Evaluation')}
         OR {code_in('Encounter', 'e', 'Telephone Visits')})
    AND {during_day_of_mp('e.period_start', 'e.period_end', mp)}
    AND e.status = 'finished'
),
-- CQL: define "Initial Population"
--   "Patient Age 12 Years or Older at Start of Measurement Period" (the age test below)
initial_population AS (
  SELECT p.center, p.id AS patient_id, p.birth_date, {age_at_start('p.birth_date', mp)} AS age
  FROM {ctx.patients()} p
  WHERE {age_at_start('p.birth_date', mp)} >= 12
    AND EXISTS (SELECT 1 FROM qualifying_encounter q WHERE q.center = p.center AND q.patient_id = p.id)
),
-- [ObservationScreeningAssessment: "Adolescent/Adult depression screening assessment"] with a value,
-- final / amended / corrected
screening AS ({screening}
),
-- CQL: define "Has Adolescent Depression Screening" / "Has Adult Depression Screening": screenings whose
-- effective.toInterval() (its end) is 14 days or less on or before day of start of a qualifying encounter
screening_near_encounter AS (
  SELECT s.* FROM screening s
  WHERE EXISTS (SELECT 1 FROM qualifying_encounter q
                WHERE q.center = s.center AND q.patient_id = s.patient_id AND q.period_start IS NOT NULL
                  AND {_within_14_days_before('CAST(s.eff_end AS DATE)', 'q.period_start')})
),
-- CQL: define "Most Recent Adolescent Depression Screening" / "Most Recent Adult Depression Screening"
most_recent_depression_screening AS (
  SELECT * EXCLUDE (rn) FROM (
    SELECT s.*, row_number() OVER (PARTITION BY s.tool, s.center, s.patient_id
                                   ORDER BY s.eff_start DESC NULLS LAST, s.id DESC) AS rn
    FROM screening_near_encounter s
  ) WHERE rn = 1
),
-- CQL: define "Follow Up Intervention for Positive Adolescent Depression Screening"
--   and "Follow Up Intervention for Positive Adult Depression Screening" (column tool)
follow_up_intervention AS ({medication_follow_up}
  UNION ALL{referral_follow_up}
  UNION ALL{procedure_follow_up}
),
-- CQL: define "Most Recent Adolescent Depression Screening Positive and Follow Up Provided"
--   and "Most Recent Adult Depression Screening Positive and Follow Up Provided" (column tool)
positive_and_follow_up AS (
  SELECT DISTINCT s.tool, s.center, s.patient_id
  FROM most_recent_depression_screening s
  JOIN follow_up_intervention f ON f.center = s.center AND f.patient_id = s.patient_id AND f.tool = s.tool
  JOIN qualifying_encounter q ON q.center = s.center AND q.patient_id = s.patient_id
  WHERE {_within_14_days_before('CAST(s.eff_start AS DATE)', 'q.period_start')}
    AND s.positive
    AND (f.performed_start BETWEEN fhir_ts(q.period_start) AND fhir_ts(q.period_end)
         OR CAST(f.authored_on AS DATE) BETWEEN fhir_date(q.period_end)
                                            AND (fhir_ts(q.period_end) + INTERVAL 2 DAY)::DATE)
    AND CAST(coalesce(f.performed_start, f.authored_on) AS DATE) BETWEEN {mp.start_date} AND {mp.end_date}
),
-- CQL: define "Medical or Patient Reason for Not Screening Adolescent for Depression"
--   and "Medical or Patient Reason for Not Screening Adult for Depression" (column tool)
-- [ObservationCancelled: code ~ screening] issued during day of a qualifying encounter
reason_not_screening AS ({cancelled}
),
-- CQL: define "History of Bipolar Diagnosis Before Qualifying Encounter"
history_of_bipolar AS (
  SELECT DISTINCT c.center, c.patient_id
  FROM (SELECT * FROM flat.condition c
        WHERE {code_in('Condition', 'c', 'Bipolar Disorder')}
          AND {condition_problem_or_health_concern('c')}           -- [ConditionProblemsHealthConcerns]
  ) c
  -- (the retrieve's own filters in a derived table: evaluated once, not per period of a series)
  JOIN initial_population ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  JOIN qualifying_encounter q ON q.center = c.center AND q.patient_id = c.patient_id
  WHERE TRUE
    -- prevalenceInterval() starts before day of start of QualifyingEncounter.period
    AND coalesce({onset_start('c', 'ip.birth_date')} < fhir_date(q.period_start), TRUE)
),
flags AS (
  SELECT ip.center, ip.patient_id, ip.age,
         {_tool_exists('most_recent_depression_screening', 'adolescent', 'AND x.negative')}
           AS adolescent_negative,              -- "Has Most Recent Adolescent Screening Negative"
         {_tool_exists('most_recent_depression_screening', 'adult', 'AND x.negative')}
           AS adult_negative,                   -- "Has Most Recent Adult Screening Negative"
         {_tool_exists('positive_and_follow_up', 'adolescent')} AS adolescent_positive_follow_up,
         {_tool_exists('positive_and_follow_up', 'adult')} AS adult_positive_follow_up,
         {_tool_exists('screening_near_encounter', 'adolescent')} AS has_adolescent_screening,
         {_tool_exists('screening_near_encounter', 'adult')} AS has_adult_screening,
         {_tool_exists('reason_not_screening', 'adolescent')} AS adolescent_reason,
         {_tool_exists('reason_not_screening', 'adult')} AS adult_reason
  FROM initial_population ip
),
-- CQL: define "Denominator Exclusions": "History of Bipolar Diagnosis Before Qualifying Encounter"
denominator_exclusions AS (SELECT center, patient_id FROM history_of_bipolar),
-- CQL: define "Denominator Exceptions": a reason not to screen, and no screening of that age group
denominator_exceptions AS (
  SELECT center, patient_id FROM flags
  WHERE (adolescent_reason AND NOT has_adolescent_screening) OR (adult_reason AND NOT has_adult_screening)
),
-- CQL: define "Numerator"; the ages are "Patient Age 12 to 16 Years at Start of Measurement Period",
--   "Patient Age 17 Years at Start of Measurement Period" and
--   "Patient Age 18 Years or Older at Start of Measurement Period"
numerator AS (
  SELECT center, patient_id FROM flags
  WHERE (age BETWEEN 12 AND 16 AND (adolescent_negative OR adolescent_positive_follow_up))
     OR (age = 17 AND (adolescent_negative OR adolescent_positive_follow_up
                       OR adult_negative OR adult_positive_follow_up))
     OR (age >= 18 AND (adult_negative OR adult_positive_follow_up))
)
"""


def _tool_exists(cte: str, tool: str, extra: str = "") -> str:
    """``exists`` a row of ``cte`` for this patient and screening tool."""
    return (
        f"EXISTS (SELECT 1 FROM {cte} x WHERE x.center = ip.center AND x.patient_id = ip.patient_id "
        f"AND x.tool = '{tool}' {extra})"
    )
