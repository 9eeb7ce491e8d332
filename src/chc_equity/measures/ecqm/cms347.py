"""CMS347 Statin Therapy for the Prevention and Treatment of Cardiovascular Disease
(CMS347FHIRStatinPreventionTxCVD 1.0.000). UDS Table 6B line 17a.

Four risk groups (clinical ASCVD; LDL >= 190 mg/dL or familial hypercholesterolemia at 20-75; diabetes at
40-75; 10-year CVD risk >= 20 % at 40-75), each with a qualifying visit in the Measurement Period; the
numerator is a statin ordered in, or active during, the period. Read side by side with
``../shared/ecqm/input/cql/CMS347FHIRStatinPreventionTxCVD.cql``.

Semantics established on the official test cases:

- ``[MedicationRequest: "<statin VS>"]`` matches ``medicationCodeableConcept`` *or* the code of a
  referenced Medication (the ELM expands the retrieve into both); ``[MedicationNotRequested: X]`` is a
  MedicationRequest with ``doNotPerform = true`` matching ``medicationCodeableConcept`` only, and the
  plain ``[MedicationRequest]`` retrieve leaves those out (DENEXCEP*MedicalReason* cases: a completed
  doNotPerform statin order in the period is not a numerator hit).
- A condition neither active nor abated overlaps nothing (DENEXPop2Fail-RhabdomyolysisStatusInactive).
- Profile retrieves add no category filter (``vocabulary/retrieve.py``; in these test cases category and
  profile always agree, so they neither confirm nor refute it).
- ``value as Quantity >= 190 'mg/dL'`` compares UCUM-convertible units (FHIRHelpers.ToQuantity takes the
  UCUM ``code``, else the ``unit``, else '1'); a quantity with a comparator is not comparable.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import cmd, hospice, palliative
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_start,
    choice_overlaps_day,
    code_in,
    code_is,
    during_day_of_mp,
    in_valueset,
    onset_start,
    point_during_day,
    prevalence_overlaps_day,
    table,
    verified,
    vs,
)
from chc_equity.terminology import valueset_url

_POPULATIONS = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "numerator",
    "denominator-exception",
)
LIBRARY = "CMS347FHIRStatinPreventionTxCVD"

# What each population is, in a reader's words (the CQL's "Initial Population n" definitions below)
_GROUP_TITLES = (
    "Population 1: clinical ASCVD",
    "Population 2: LDL-C >= 190 mg/dL or familial hypercholesterolemia, ages 20-75",
    "Population 3: diabetes, ages 40-75",
    "Population 4: 10-year CVD risk >= 20 %, ages 40-75",
)
MEASURE = Measure(
    name="CMS347FHIRStatinPreventionTxCVD",
    cms_id="CMS347",
    version="1.0.000",
    title="Statin Therapy for the Prevention and Treatment of Cardiovascular Disease",
    care_gap="Prescribe or document active statin therapy (or a documented exception).",
    groups=tuple(Group(f"Group_{n}", _POPULATIONS, title=t) for n, t in enumerate(_GROUP_TITLES, start=1)),
    improvement_notation="increase",
    uds=("Table 6B Line 17a",),
    steward="Centers for Medicare & Medicaid Services (CMS)",
    description="Percentage of high-risk patients aged 20 years and older who were prescribed or were on "
    "statin therapy during the measurement period (four risk groups).",
)

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
NSTEMI = "I22.2"  # Subsequent non-ST elevation (NSTEMI) myocardial infarction
CVD_RISK_CODES = ("99055-6", "79423-0")  # Cardiovascular disease 10Y risk [Likelihood] (generic, Goff 2013)

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Annual Wellness Visit",
    "Office Visit",
    "Outpatient Consultation",
    "Outpatient Encounters for Preventive Care",
    "Preventive Care Services Established Office Visit, 18 and Up",
    "Preventive Care Services Individual Counseling",
    "Preventive Care Services Initial Office Visit, 18 and Up",
    "Preventive Care Services Other",
    "Telemedicine Services",
)
ASCVD_DIAGNOSIS_VALUESETS = (
    "Myocardial Infarction",
    "Cerebrovascular Disease Stroke or TIA",
    "Atherosclerosis and Peripheral Arterial Disease",
    "Ischemic Heart Disease or Other Related Diagnoses",
    "Stable and Unstable Angina",
)
ASCVD_PROCEDURE_VALUESETS = ("PCI", "CABG Surgeries", "Carotid Intervention", "CABG or PCI Procedure")
STATIN_VALUESETS = (
    "Low Intensity Statin Therapy",
    "Moderate Intensity Statin Therapy",
    "High Intensity Statin Therapy",
)
EXCEPTION_DIAGNOSIS_VALUESETS = (
    "Hepatitis A",
    "Hepatitis B",
    "Liver Disease",
    "Statin Associated Muscle Symptoms",
    "End Stage Renal Disease",
)

# UCUM units convertible to the unit the CQL compares against, with their factor to that unit.
TO_MG_PER_DL = {"mg/dL": 1.0, "g/dL": 1000.0, "g/L": 100.0, "mg/L": 0.1, "ug/dL": 0.001, "mg/mL": 100.0}
TO_PERCENT = {"%": 1.0, "1": 100.0}


def quantity_as(o: str, factors: dict[str, float]) -> str:
    """``<o>.value as Quantity`` in the target unit of ``factors`` (null when not a convertible quantity).

    FHIRHelpers.ToQuantity reads ``Coalesce(code, unit, '1')`` as the UCUM unit when the system is UCUM
    or absent, and refuses a quantity with a comparator.
    """
    unit = f"coalesce({o}.value_quantity_code, {o}.value_quantity_unit, '1')"
    cases = " ".join(f"WHEN '{u}' THEN {f!r}" for u, f in factors.items())
    return (
        f"(CASE WHEN {o}.value_quantity_comparator IS NULL "
        f"AND coalesce({o}.value_quantity_system, '{UCUM}') = '{UCUM}' "
        f"THEN {o}.value_quantity_value * (CASE {unit} {cases} END) END)"
    )


def vs_url(name: str) -> str:
    """The canonical URL of a value set as this measure's CQL declares it (names alone can be ambiguous:
    two "Hepatitis B" value sets exist)."""
    return valueset_url(name, library=LIBRARY)


def retrieve(resource: str, alias: str, *valuesets: str) -> str:
    """``[<resource>: "A"] union [<resource>: "B"] ...``: the row's code is in any of the value sets."""
    return "(" + " OR ".join(code_in(resource, alias, vs_url(v)) for v in valuesets) + ")"


def statin_request(m: str) -> str:
    """``[MedicationRequest: <statin VS>]`` (x3, union): the medication CodeableConcept, or the code of the
    referenced Medication, is in one of the statin value sets (the ELM's medication-reference expansion)."""
    listed = ", ".join(vs(vs_url(v)) for v in STATIN_VALUESETS)
    return (
        f"({retrieve('MedicationRequest', m, *STATIN_VALUESETS)} OR EXISTS (SELECT 1 "
        f"FROM flat.medication_code mc_ JOIN valueset_codes v_ "
        f"ON v_.system = mc_.system AND v_.code = mc_.code "
        f"WHERE mc_.center = {m}.center AND mc_.id = {m}.medication_id AND v_.valueset IN ({listed})))"
    )


def _has(cte: str) -> str:
    """The patient ``p`` has a row in the per-patient CTE ``cte`` (CQL ``exists "<definition>"``)."""
    return f"EXISTS (SELECT 1 FROM {cte} x WHERE x.center = p.center AND x.patient_id = p.id)"


POPULATIONS = tuple(
    Populations(
        initial_population=f"initial_population_{n}",
        denominator_exclusion="denominator_exclusions",
        denominator_exception="denominator_exceptions",
        numerator="numerator",
        group=f"Group_{n}",
    )
    for n in (1, 2, 3, 4)
)


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``)."""
    mp = ctx.period
    lo, hi = mp.start_date, mp.end_date
    has_hospice = ctx.shared(hospice.has_hospice_services)
    request_period = ctx.shared(cmd.medication_request_period)
    has_palliative = ctx.shared(palliative.has_palliative_care_in_the_measurement_period)
    conditions = (
        f"{table('Condition')} c JOIN {ctx.patients()} pt ON pt.center = c.center AND pt.id = c.patient_id"
    )
    prevalence_overlaps_mp = prevalence_overlaps_day("c", "pt.birth_date", lo, hi)
    # prevalenceInterval() starts on or before day of end of MP: a missing onset is a closed null start,
    # i.e. the beginning of time.
    prevalence_starts_by_end = f"coalesce({onset_start('c', 'pt.birth_date')} <= {hi}, TRUE)"
    ldl_unknown_start = "coalesce(o.effective_datetime, o.effective_instant, o.effective_period_start)"
    return f"""
WITH
-- CQL: define "Qualifying Encounter During Day of Measurement Period"
qualifying_encounter AS (
  SELECT e.center, e.patient_id, e.id, e.period_start, e.period_end
  FROM {table("Encounter")} e
  WHERE {retrieve("Encounter", "e", *QUALIFYING_ENCOUNTER_VALUESETS)}
    AND {during_day_of_mp("e.period_start", "e.period_end", mp)}
    AND e.status = 'finished'
),
-- CQL: define "ASCVD Diagnosis or Procedure before End of Measurement Period"
ascvd_diagnosis_or_procedure AS (
  SELECT c.center, c.patient_id FROM {conditions}
  WHERE ({retrieve("Condition", "c", *ASCVD_DIAGNOSIS_VALUESETS)}
         OR {code_is("Condition", "c", ICD10CM, NSTEMI)})
    AND {prevalence_starts_by_end}
    AND {verified("c")}                                     -- isVerified()
  UNION
  SELECT p.center, p.patient_id FROM {table("Procedure")} p
  WHERE {retrieve("Procedure", "p", *ASCVD_PROCEDURE_VALUESETS)}
    AND fhir_date(coalesce(p.performed_datetime, p.performed_period_start)) <= {hi}
    AND p.status = 'completed'
),
-- CQL: define "LDL Result Greater Than or Equal To 190"
ldl_result_ge_190 AS (
  SELECT o.center, o.patient_id FROM {table("Observation")} o
  WHERE {retrieve("Observation", "o", "LDL Cholesterol")}
    AND {quantity_as("o", TO_MG_PER_DL)} >= 190
    AND fhir_date({ldl_unknown_start}) <= {hi}
    AND o.status IN ('final', 'amended', 'corrected', 'appended')
),
-- CQL: define "Hypercholesterolemia Diagnosis"
hypercholesterolemia_diagnosis AS (
  SELECT c.center, c.patient_id FROM {conditions}
  WHERE {retrieve("Condition", "c", "Familial Hypercholesterolemia")}
    AND {prevalence_starts_by_end}
    AND {verified("c")}
),
-- CQL: define "Has Diabetes Diagnosis"
has_diabetes_diagnosis AS (
  SELECT c.center, c.patient_id FROM {conditions}
  WHERE {retrieve("Condition", "c", "Diabetes")} AND {prevalence_overlaps_mp} AND {verified("c")}
),
-- CQL: define "Ten Year CVD Risk is High"
ten_year_cvd_risk_is_high AS (
  SELECT o.center, o.patient_id FROM {table("Observation")} o
  WHERE ({" OR ".join(code_is("Observation", "o", LOINC, code) for code in CVD_RISK_CODES)})
    AND {quantity_as("o", TO_PERCENT)} >= 20
    AND (CASE WHEN coalesce(o.effective_datetime, o.effective_instant) IS NOT NULL
              THEN fhir_date(coalesce(o.effective_datetime, o.effective_instant)) BETWEEN {lo} AND {hi}
              ELSE {during_day_of_mp("o.effective_period_start", "o.effective_period_end", mp)} END)
    AND o.status IN ('final', 'amended', 'corrected')
),
-- CQL: define "Denominator Exclusions"  (breastfeeding or rhabdomyolysis: problem list or encounter dx)
denominator_exclusions AS (
  SELECT c.center, c.patient_id FROM {conditions}
  WHERE ({retrieve("Condition", "c", "Breastfeeding")} OR {retrieve("Condition", "c", "Rhabdomyolysis")})
    AND {prevalence_overlaps_mp} AND {verified("c")}
),
-- CQL: define "Has Allergy to Statin"
has_allergy_to_statin AS (
  SELECT a.center, a.patient_id FROM {table("AllergyIntolerance")} a
  WHERE {retrieve("AllergyIntolerance", "a", "Statin Allergen")}
    AND {choice_overlaps_day("a", "onset", lo, hi)}
    AND a.clinical_status_system = '{ALLERGY_CLINICAL}' AND a.clinical_status_code = 'active'
),
-- CQL: define "Has Hepatitis or Liver Disease Diagnosis", "Has Statin Associated Muscle Symptoms",
--      "Has ESRD Diagnosis" (problem-list conditions prevalent during the Measurement Period)
exception_diagnoses AS (
  SELECT c.center, c.patient_id FROM {conditions}
  WHERE {retrieve("Condition", "c", *EXCEPTION_DIAGNOSIS_VALUESETS)}
    AND {prevalence_overlaps_mp} AND {verified("c")}
),
-- CQL: define "Has Adverse Reaction to Statin"
has_adverse_reaction_to_statin AS (
  SELECT ae.center, ae.patient_id FROM flat.adverse_event ae
  WHERE {in_valueset("adverse_event_event", "ae", vs_url("Statin Allergen"))}
    AND fhir_date(coalesce(ae.date, ae.recorded_date)) BETWEEN {lo} AND {hi}
),
-- CQL: define "Has Medical Reason for Not Ordering Statin Therapy"  ([MedicationNotRequested] = doNotPerform)
has_medical_reason_for_not_ordering_statin AS (
  SELECT m.center, m.patient_id FROM {table("MedicationRequest")} m
  JOIN qualifying_encounter q ON q.center = m.center AND q.patient_id = m.patient_id
  WHERE m.do_not_perform
    AND {retrieve("MedicationRequest", "m", *STATIN_VALUESETS)}
    AND fhir_date(m.authored_on) BETWEEN fhir_date(q.period_start) AND fhir_date(q.period_end)
    AND m.status IN ('active', 'completed')
    AND {in_valueset("medication_request_reason_code", "m", vs_url("Medical Reason"))}
),
-- CQL: define "Denominator Exceptions"
denominator_exceptions AS (
  SELECT center, patient_id FROM has_allergy_to_statin
  UNION SELECT center, patient_id FROM {has_hospice}               -- Hospice."Has Hospice Services"
  UNION SELECT center, patient_id FROM {has_palliative}  -- PalliativeCare."Has Palliative Care in the MP"
  UNION SELECT center, patient_id FROM exception_diagnoses
  UNION SELECT center, patient_id FROM has_adverse_reaction_to_statin
  UNION SELECT center, patient_id FROM has_medical_reason_for_not_ordering_statin
),
-- CQL: define "Statin Therapy Ordered during Measurement Period"
statin_therapy_ordered AS (
  SELECT m.center, m.patient_id FROM {table("MedicationRequest")} m
  WHERE {statin_request("m")} AND m.do_not_perform IS NOT TRUE
    AND {point_during_day("m.authored_on", lo, hi)}
    AND m.status IN ('active', 'completed')
    AND m.intent IN ('order', 'original-order', 'reflex-order', 'filter-order', 'instance-order')
),
-- CQL: define "Medication Active during the Measurement Period"  (CMD medicationRequestPeriod())
medication_active AS (
  SELECT m.center, m.patient_id FROM {table("MedicationRequest")} m
  JOIN {request_period} rp ON rp.center = m.center AND rp.id = m.id
  WHERE {statin_request("m")} AND m.do_not_perform IS NOT TRUE
    AND rp.period_start <= {hi} AND rp.period_end >= {lo}
    AND m.status IN ('active', 'completed')
),
-- CQL: define "Numerator"
numerator AS (
  SELECT center, patient_id FROM statin_therapy_ordered
  UNION SELECT center, patient_id FROM medication_active
),
patient_flags AS (
  SELECT p.center, p.id AS patient_id,
         {_has("qualifying_encounter")} AS enc,
         {_has("ascvd_diagnosis_or_procedure")} AS ascvd,
         {_has("ldl_result_ge_190")} AS ldl,
         {_has("hypercholesterolemia_diagnosis")} AS fh,
         {_has("has_diabetes_diagnosis")} AS diabetes,
         {_has("ten_year_cvd_risk_is_high")} AS cvd_risk,
         {age_at_start("p.birth_date", mp)} AS age
  FROM {ctx.patients()} p
),
-- CQL: define "Initial Population 1"
initial_population_1 AS (SELECT center, patient_id FROM patient_flags WHERE ascvd AND enc),
-- CQL: define "Initial Population 2": "Patients Aged 20 to 75 with LDL Cholesterol Result Greater than or
--   Equal to 190 or Hypercholesterolemia without ASCVD" (the age test is "Patients Aged 20 to 75 at Start
--   of Measurement Period")
initial_population_2 AS (
  SELECT center, patient_id FROM patient_flags
  WHERE age BETWEEN 20 AND 75 AND (ldl OR fh) AND NOT ascvd AND enc
),
-- CQL: define "Initial Population 3": "Patients Aged 40 to 75 Years with Diabetes without ASCVD or LDL
--   Greater than 190 or Hypercholesterolemia"
initial_population_3 AS (
  SELECT center, patient_id FROM patient_flags
  WHERE age BETWEEN 40 AND 75 AND diabetes AND NOT ascvd AND NOT ldl AND NOT fh AND enc
),
-- CQL: define "Initial Population 4": "Patients Age 40 to 75 Years and have a 10 Year CVD Risk of High
--   without ASCVD and High LDL and Diabetes"
initial_population_4 AS (
  SELECT center, patient_id FROM patient_flags
  WHERE age BETWEEN 40 AND 75 AND cvd_risk AND NOT (ascvd OR fh OR ldl OR diabetes) AND enc
)
-- CQL: define "Denominator 1", "Denominator 2", "Denominator 3", "Denominator 4": each its group's
--   initial population
"""
