"""CMS117 Childhood Immunization Status (CMS117FHIRChildImmunStatus 1.0.000). UDS Table 6B Line 10.

Children who turn 2 during the Measurement Period, with a qualifying visit in it, who received every
recommended vaccine series by their second birthday (DTaP x4, IPV x3, MMR x1, Hib x3-4, HepB x3, VZV x1,
PCV x4, HepA x1, RV x2-3, influenza x2) or have a condition that stands in for a series (anaphylaxis to
the vaccine, or having had the disease). Read side by side with
``../shared/ecqm/input/cql/CMS117FHIRChildImmunStatus.cql``.

How the CQL maps to SQL:

- every "<Antigen> Immunizations or Procedures" define returns *dates* (``date from ...earliest()``) of
  administered Immunizations / performed Procedures in an age window; it becomes rows of
  ``vaccination_dates(define, dose_date)``. Each is written out below by :data:`VACCINATION_DEFINES`.
- "Four DTaP Vaccinations" (4 aliases, each ``1 day or more after`` the previous) holds exactly when
  there are 4 distinct dates, so the N-dose defines are ``count(DISTINCT dose_date) >= N``.
- every "... Numerator Inclusion Conditions" / exclusion define is a verified Condition whose prevalence
  starts during the first two years of life; they become booleans of ``condition_indicators``.
- all of that is dated from the birth date, not the period: it is the shared define
  :func:`child_facts`, computed once per run for every child 2 at the end of some period of the run;
  :func:`defines` adds what reads the period (the initial population, hospice).
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.populations import Populations
from chc_equity.measures.vocabulary import (
    age_at_end,
    code_in,
    code_is,
    day,
    earliest,
    is_immunization_administered,
    is_procedure_performed,
    performed_encounters,
    prevalence_starts_during_day,
    table,
    verified,
)
from chc_equity.terminology import valueset_url

LIBRARY = "CMS117FHIRChildImmunStatus"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10 = "http://www.cms.gov/Medicare/Coding/ICD10"

MEASURE = Measure(
    name="CMS117FHIRChildImmunStatus",
    cms_id="CMS117",
    version="1.0.000",
    title="Childhood Immunization Status",
    care_gap=(
        "Complete the vaccine series due by the 2nd birthday (DTaP, IPV, MMR, HiB, HepB, VZV, PCV, "
        "HepA, RV, flu)."
    ),
    groups=(Group("Group_1", ("initial-population", "denominator", "denominator-exclusion", "numerator")),),
    improvement_notation="increase",
    uds=("Table 6B Line 10",),
    steward="National Committee for Quality Assurance",
    description="Percentage of children 2 years of age who had four diphtheria, tetanus and acellular "
    "pertussis (DTaP); three polio (IPV), one measles, mumps and rubella (MMR); three or four H influenza "
    "type B (HiB); three hepatitis B (Hep B); one chicken pox (VZV); four pneumococcal conjugate (PCV); one "
    "hepatitis A (Hep A); two or three rotavirus (RV); and two influenza (flu) vaccines by their second "
    "birthday.",
)

# Age windows (columns of the patient_dates CTE), as the CQL names them.
WINDOWS: dict[str, tuple[str, str]] = {
    "Vaccine Administration Interval - 42 Days up to 2 Years Old": (
        "d.birth_plus_42_days",
        "d.second_birthday",
    ),
    "Vaccine Administration Interval - 180 Days up to 2 Years Old": (
        "d.birth_plus_180_days",
        "d.second_birthday",
    ),
    "First Two Years": ("d.birth", "d.second_birthday"),
    "Date of First Birthday to Date of Second Birthday": ("d.first_birthday", "d.second_birthday"),
    "Interval[Date of Second Birthday, Date of Second Birthday]": ("d.second_birthday", "d.second_birthday"),
    "Interval[Patient.birthDate, Patient.birthDate + 7 days]": ("d.birth", "d.birth_plus_7_days"),
}

# CQL define -> (Immunization vaccineCode value set or direct CVX code, Procedure value set or direct
# code, age window). ``None`` where the define has no such branch.
Code = tuple[str, str]  # (system, code): a CQL direct code
VACCINATION_DEFINES: dict[str, tuple[str | Code | None, str | Code | None, str]] = {
    "DTaP Immunizations or Procedures": (
        "DTaP Vaccine",
        "DTaP Vaccine Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "Polio Immunizations or Procedures": (
        "Inactivated Polio Vaccine (IPV)",
        "Inactivated Polio Vaccine (IPV) Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "One MMR Vaccination": (
        "Measles, Mumps and Rubella (MMR) Vaccine",
        "Measles, Mumps and Rubella (MMR) Vaccine Administered",
        "Date of First Birthday to Date of Second Birthday",
    ),
    "Hib 3 Dose Immunizations or Procedures": (
        "Hib Vaccine (3 dose schedule)",
        "Hib Vaccine (3 dose schedule) Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "Hib 4 Dose Immunizations or Procedures": (
        "Hib Vaccine (4 dose schedule)",
        "Hib Vaccine (4 dose schedule) Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "Hepatitis B Immunizations or Procedures": (
        "Hepatitis B Vaccine",
        "Hepatitis B Vaccine Administered",
        "First Two Years",
    ),
    "NewBorn Vaccine Requirement": (
        # "Introduction of Serum, Toxoid and Vaccine into Muscle, Percutaneous Approach"
        None,
        (ICD10, "3E0234Z"),
        "Interval[Patient.birthDate, Patient.birthDate + 7 days]",
    ),
    "One Chicken Pox Vaccination": (
        "Varicella Zoster Vaccine (VZV)",
        "Varicella Zoster Vaccine (VZV) Administered",
        "Date of First Birthday to Date of Second Birthday",
    ),
    "Pneumococcal Conjugate Immunizations or Procedures": (
        "Pneumococcal Conjugate Vaccine",
        "Pneumococcal Conjugate Vaccine Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "One Hepatitis A Vaccinations": (
        "Hepatitis A Vaccine",
        "Hepatitis A Vaccine Administered",
        "Date of First Birthday to Date of Second Birthday",
    ),
    "Rotavirus 2 Dose Immunizations or Procedures": (
        (CVX, "119"),  # "rotavirus, live, monovalent vaccine"
        "Rotavirus Vaccine (2 dose schedule) Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "Rotavirus 3 Dose Immunizations or Procedures": (
        "Rotavirus Vaccine (3 dose schedule)",
        "Rotavirus Vaccine (3 dose schedule) Administered",
        "Vaccine Administration Interval - 42 Days up to 2 Years Old",
    ),
    "Influenza Immunizations or Procedures": (
        "Child Influenza Vaccine",
        "Child Influenza Vaccine Administered",
        "Vaccine Administration Interval - 180 Days up to 2 Years Old",
    ),
    "LAIV Vaccinations": (
        "Influenza Virus LAIV Vaccine",
        "Influenza Virus LAIV Vaccine Administered",
        "Interval[Date of Second Birthday, Date of Second Birthday]",
    ),
}

# CQL define -> Condition codes (value set names or direct SNOMED codes). Each define is
# ``([ConditionEncounterDiagnosis: X] union [ConditionProblemsHealthConcerns: X] ...).verified()
#   where date from start of prevalenceInterval() during day of "First Two Years"``.
CONDITION_DEFINES: dict[str, tuple[str | Code, ...]] = {
    # Denominator exclusions
    "Has Severe Combined Immunodeficiency": ("Severe Combined Immunodeficiency",),
    "Has Immunodeficiency": ("Disorders of the Immune System",),
    "Has HIV": ("HIV",),
    "Has Lymphoreticular Cancer, Multiple Myeloma or Leukemia": (
        "Malignant Neoplasm of Lymphatic and Hematopoietic Tissue",
    ),
    "Has Intussusception": ("Intussusception",),
    # Numerator inclusion conditions
    "DTaP Numerator Inclusion Conditions": (
        "Anaphylactic Reaction to DTaP Vaccine",
        "Encephalitis Due to Diphtheria, Tetanus or Pertussis Vaccine",
    ),
    "Polio Numerator Inclusion Conditions": ((SNOMED, "471321000124106"),),
    "MMR Numerator Inclusion Conditions": ((SNOMED, "471331000124109"),),
    "Measles Indicators": ("Measles",),  # CQL: [ConditionEncounterDiagnosis: "Measles"] twice
    "Mumps Indicators": ("Mumps",),
    "Rubella Indicators": ("Rubella",),
    "Hib Numerator Inclusion Conditions": ((SNOMED, "433621000124101"),),
    "Hepatitis B Numerator Inclusion Conditions": ((SNOMED, "428321000124101"), "Hepatitis B"),
    "Varicella Zoster Numerator Inclusion Conditions": ("Varicella Zoster", (SNOMED, "471341000124104")),
    "Pneumococcal Conjugate Numerator Inclusion Conditions": ((SNOMED, "471141000124102"),),
    "Hepatitis A Numerator Inclusion Conditions": ("Hepatitis A", (SNOMED, "471311000124103")),
    "Rotavirus Numerator Inclusion Conditions": ((SNOMED, "428331000124103"),),
    "Influenza Numerator Inclusion Conditions": ((SNOMED, "471361000124100"),),
}

QUALIFYING_ENCOUNTER_VALUESETS = (
    "Office Visit",
    "Home Healthcare Services",
    "Preventive Care, Established Office Visit, 0 to 17",
    "Preventive Care Services, Initial Office Visit, 0 to 17",
    "Virtual Encounter",
    "Telephone Visits",
)
OFFICE_VISIT_99211 = (CPT, "99211")  # established patient visit that may not require a physician


def col(define: str) -> str:
    """SQL column name of a CQL define: "Has HIV" -> has_hiv."""
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in define)
    return "_".join(part for part in out.split("_") if part)


def _code_test(resource: str, alias: str, code: str | Code) -> str:
    """The retrieve filter for a direct code or a value set named as in this measure's CQL (names such
    as "Hepatitis B" are shared by other VSAC value sets, so they are resolved within this library)."""
    if isinstance(code, tuple):
        return code_is(resource, alias, *code)
    return code_in(resource, alias, valueset_url(code, library=LIBRARY))


def _vaccination_dates(define: str) -> str:
    """One "... Immunizations or Procedures" define as ``SELECT center, patient_id, define, dose_date``."""
    immunization, procedure, window = VACCINATION_DEFINES[define]
    lo, hi = WINDOWS[window]
    branches = []
    if immunization is not None:
        when = "fhir_date(i.occurrence_datetime)"  # date from occurrence.earliest()
        branches.append(f"""
  SELECT i.center, i.patient_id, '{define}' AS define, {when} AS dose_date
  FROM {table("Immunization")} i JOIN patient_dates d ON d.center = i.center AND d.patient_id = i.patient_id
  WHERE {_code_test("Immunization", "i", immunization)}
    AND {is_immunization_administered("i")}
    AND {when} BETWEEN {lo} AND {hi}""")
    if procedure is not None:
        performed = earliest("p", "performed")
        when = f"fhir_date({performed})"  # date from performed.earliest()
        branches.append(f"""
  SELECT p.center, p.patient_id, '{define}' AS define, {when} AS dose_date
  FROM {table("Procedure")} p JOIN patient_dates d ON d.center = p.center AND d.patient_id = p.patient_id
  WHERE {_code_test("Procedure", "p", procedure)}
    AND {is_procedure_performed("p")}
    AND {when} BETWEEN {lo} AND {hi}""")
    return f'  -- CQL: define "{define}"' + "\n  UNION ALL".join(branches)


def _condition_flag(define: str) -> str:
    codes = " OR ".join(_code_test("Condition", "c", code) for code in CONDITION_DEFINES[define])
    return f'bool_or({codes}) AS {col(define)},  -- CQL: define "{define}"'


POPULATIONS = (Populations.of("denominator_exclusion", "numerator"),)


def child_facts(ctx: Context) -> str:
    """Numerator and the condition exclusions of every child who turns 2 by the end of a period of the
    run (``ctx.period.ends``: a single-period run's children aged 2 at its end), one row each.

    Everything here is dated from the birth date (vaccines and conditions by the second birthday), none
    of it from the Measurement Period: the period decides only who is in the initial population (aged 2
    at its end, a qualifying visit in it) and hospice (:func:`defines`). A shared define, materialized
    once per run, so a series computes a child's vaccines once, not once for each of the 12 rolling
    periods that end in the child's third year.
    """
    ends = ctx.period.ends

    def age_at(end: str) -> str:
        return f"years_between({day('p.birth_date')}, {end})"  # as age_at_end, for any day

    vaccinations = "\n  UNION ALL\n".join(_vaccination_dates(d) for d in VACCINATION_DEFINES)
    condition_flags = "\n         ".join(_condition_flag(d) for d in CONDITION_DEFINES)
    two_lo, two_hi = WINDOWS["First Two Years"]

    def doses(*defines: str) -> str:
        """Distinct dose dates of the union of these defines (CQL "Count(distinct(... return date))")."""
        listed = ", ".join(f"'{d}'" for d in defines)
        return f"count(DISTINCT v.dose_date) FILTER (WHERE v.define IN ({listed}))"

    def flag(define: str) -> str:
        return f"coalesce(ci.{col(define)}, FALSE)"

    return f"""
WITH
-- the children AgeInYearsAt(date from end of "Measurement Period") = 2 for some period of the run (the
--   age in whole years rises by one at each birthday: 2 at some day from the first end to the last)
children AS (
  SELECT p.center, p.id AS patient_id, p.birth_date
  FROM {ctx.patients()} p
  WHERE {age_at(ends.start_date)} <= 2 AND {age_at(ends.end_date)} >= 2
),
-- CQL: define "Date of First Birthday" / "Date of Second Birthday" and the vaccine administration intervals
--   "Vaccine Administration Interval - 42 Days up to 2 Years Old", "Vaccine Administration Interval - 180
--   Days up to 2 Years Old" and "Date of First Birthday to Date of Second Birthday" (birth_plus_42_days,
--   birth_plus_180_days, first_birthday .. second_birthday)
patient_dates AS (
  SELECT center, patient_id,
         fhir_date(birth_date) AS birth,
         CAST(fhir_date(birth_date) + INTERVAL 1 YEAR AS DATE) AS first_birthday,
         CAST(fhir_date(birth_date) + INTERVAL 2 YEAR AS DATE) AS second_birthday,
         CAST(fhir_date(birth_date) + INTERVAL 7 DAY AS DATE) AS birth_plus_7_days,
         CAST(fhir_date(birth_date) + INTERVAL 42 DAY AS DATE) AS birth_plus_42_days,
         CAST(fhir_date(birth_date) + INTERVAL 180 DAY AS DATE) AS birth_plus_180_days
  FROM children
),
-- Every "<Antigen> Immunizations or Procedures" define: the dates of doses in its age window
vaccination_dates AS (
{vaccinations}
),
-- CQL: the dose-count defines ("Four DTaP Vaccinations" = 4 doses on distinct days, ...): "Three Polio
--   Vaccinations", "Three Hepatitis B Vaccinations", "Four Pneumococcal Conjugate Vaccinations", "Two
--   Influenza Vaccinations"; "Hib 3 or 4 Dose Immunizations" and "Rotavirus 2 or 3 Dose Immunizations"
--   are the unions counted by the "Has Appropriate Number of ..." columns
vaccination_counts AS (
  SELECT v.center, v.patient_id,
         {doses("DTaP Immunizations or Procedures")} >= 4 AS four_dtap_vaccinations,
         {doses("Polio Immunizations or Procedures")} >= 3 AS three_polio_vaccinations,
         {doses("One MMR Vaccination")} >= 1 AS one_mmr_vaccination,
         -- CQL: define "Has Appropriate Number of Hib Immunizations": 4 dates when any 4-dose-schedule
         -- vaccine was given, else 3
         {doses("Hib 3 Dose Immunizations or Procedures", "Hib 4 Dose Immunizations or Procedures")}
           >= CASE WHEN {doses("Hib 4 Dose Immunizations or Procedures")} > 0 THEN 4 ELSE 3 END
           AS has_appropriate_number_of_hib_immunizations,
         {doses("Hepatitis B Immunizations or Procedures")} >= 3 AS three_hepatitis_b_vaccinations,
         {doses("One Chicken Pox Vaccination")} >= 1 AS one_chicken_pox_vaccination,
         {doses("Pneumococcal Conjugate Immunizations or Procedures")} >= 4
           AS four_pneumococcal_conjugate_vaccinations,
         {doses("One Hepatitis A Vaccinations")} >= 1 AS one_hepatitis_a_vaccinations,
         -- CQL: define "Has Appropriate Number of Rotavirus Immunizations": 3 dates when any 3-dose-schedule
         -- vaccine was given, else 2
         {
        doses("Rotavirus 2 Dose Immunizations or Procedures", "Rotavirus 3 Dose Immunizations or Procedures")
    }
           >= CASE WHEN {doses("Rotavirus 3 Dose Immunizations or Procedures")} > 0 THEN 3 ELSE 2 END
           AS has_appropriate_number_of_rotavirus_immunizations,
         {doses("Influenza Immunizations or Procedures")} >= 2 AS two_influenza_vaccinations,
         -- CQL: define "Two Influenza Vaccinations Including One LAIV Vaccination"
         {doses("LAIV Vaccinations")} >= 1 AND {doses("Influenza Immunizations or Procedures")} >= 1
           AS two_influenza_vaccinations_including_one_laiv_vaccination
  FROM vaccination_dates v
  GROUP BY v.center, v.patient_id
),
-- CQL: define "Meets HepB Vaccination Requirement"
--   two Hepatitis B doses on distinct days, both 1 day or more after a "NewBorn Vaccine Requirement" dose
meets_hepb_vaccination_requirement AS (
  SELECT DISTINCT n.center, n.patient_id
  FROM vaccination_dates n
  WHERE n.define = 'NewBorn Vaccine Requirement'
    AND (SELECT count(DISTINCT b.dose_date) FROM vaccination_dates b
         WHERE b.center = n.center AND b.patient_id = n.patient_id
           AND b.define = 'Hepatitis B Immunizations or Procedures' AND b.dose_date > n.dose_date) >= 2
),
-- The Condition defines: verified Conditions whose prevalence starts during day of "First Two Years"
condition_indicators AS (
  SELECT c.center, c.patient_id,
         {condition_flags}
  FROM {table("Condition")} c
  JOIN children ip ON ip.center = c.center AND ip.patient_id = c.patient_id
  JOIN patient_dates d ON d.center = c.center AND d.patient_id = c.patient_id
  WHERE {verified("c")}
    AND {prevalence_starts_during_day("c", "ip.birth_date", two_lo, two_hi)}
  GROUP BY c.center, c.patient_id
),
patient_criteria AS (
  SELECT ip.center, ip.patient_id, ip.birth_date,
         -- CQL: define "Denominator Exclusions" but for Hospice."Has Hospice Services" (see defines)
         {flag("Has Severe Combined Immunodeficiency")}
           OR {flag("Has Immunodeficiency")}
           OR {flag("Has HIV")}
           OR {flag("Has Lymphoreticular Cancer, Multiple Myeloma or Leukemia")}
           OR {flag("Has Intussusception")} AS denominator_exclusion,
         -- CQL: define "Numerator"
         (coalesce(vc.four_dtap_vaccinations, FALSE) OR {flag("DTaP Numerator Inclusion Conditions")})
         AND (coalesce(vc.three_polio_vaccinations, FALSE) OR {flag("Polio Numerator Inclusion Conditions")})
         AND (coalesce(vc.one_mmr_vaccination, FALSE) OR {flag("MMR Numerator Inclusion Conditions")}
              OR ({flag("Measles Indicators")} AND {flag("Mumps Indicators")}
                  AND {flag("Rubella Indicators")}))
         AND (coalesce(vc.has_appropriate_number_of_hib_immunizations, FALSE)
              OR {flag("Hib Numerator Inclusion Conditions")})
         AND (coalesce(vc.three_hepatitis_b_vaccinations, FALSE) OR hepb.patient_id IS NOT NULL
              OR {flag("Hepatitis B Numerator Inclusion Conditions")})
         AND (coalesce(vc.one_chicken_pox_vaccination, FALSE)
              OR {flag("Varicella Zoster Numerator Inclusion Conditions")})
         AND (coalesce(vc.four_pneumococcal_conjugate_vaccinations, FALSE)
              OR {flag("Pneumococcal Conjugate Numerator Inclusion Conditions")})
         AND (coalesce(vc.one_hepatitis_a_vaccinations, FALSE)
              OR {flag("Hepatitis A Numerator Inclusion Conditions")})
         AND (coalesce(vc.has_appropriate_number_of_rotavirus_immunizations, FALSE)
              OR {flag("Rotavirus Numerator Inclusion Conditions")})
         AND (coalesce(vc.two_influenza_vaccinations, FALSE)
              OR coalesce(vc.two_influenza_vaccinations_including_one_laiv_vaccination, FALSE)
              OR {flag("Influenza Numerator Inclusion Conditions")}) AS numerator
  FROM children ip
  LEFT JOIN vaccination_counts vc ON vc.center = ip.center AND vc.patient_id = ip.patient_id
  LEFT JOIN meets_hepb_vaccination_requirement hepb
         ON hepb.center = ip.center AND hepb.patient_id = ip.patient_id
  LEFT JOIN condition_indicators ci ON ci.center = ip.center AND ci.patient_id = ip.patient_id
)
SELECT * FROM patient_criteria
"""


def defines(ctx: Context) -> str:
    """The CQL defines of this measure, one named relation each (populations: ``POPULATIONS``).

    What a child's result does not take from the period comes from :func:`child_facts` (the child's
    row there: the same vaccines and conditions whatever the period); here is what does.
    """
    mp = ctx.period
    has_hospice = ctx.shared(hospice.has_hospice_services)
    facts = ctx.shared(child_facts)
    encounter_types = " OR ".join(
        [_code_test("Encounter", "e", v) for v in QUALIFYING_ENCOUNTER_VALUESETS]
        + [code_is("Encounter", "e", *OFFICE_VISIT_99211)]
    )
    return f"""
WITH
-- CQL: define "Qualifying Encounters"  (7 encounter kinds).isEncounterPerformed()
--   where ValidEncounters.period during day of "Measurement Period"
qualifying_encounters AS ({performed_encounters(encounter_types, mp)}
),
-- CQL: define "Initial Population"
--   AgeInYearsAt(date from end of "Measurement Period") = 2 and exists "Qualifying Encounters"
initial_population AS (
  SELECT f.* FROM {facts} f
  WHERE {age_at_end("f.birth_date", mp)} = 2
    AND EXISTS (SELECT 1 FROM qualifying_encounters q
                WHERE q.center = f.center AND q.patient_id = f.patient_id)
),
-- CQL: define "Denominator Exclusions" (the conditions computed per child in child_facts)
denominator_exclusions AS (
  SELECT center, patient_id FROM initial_population ip
  WHERE denominator_exclusion
     OR EXISTS (SELECT 1 FROM {has_hospice} h WHERE h.center = ip.center AND h.patient_id = ip.patient_id)
),
-- CQL: define "Numerator" (computed per child in child_facts)
numerator AS (SELECT center, patient_id FROM initial_population WHERE numerator)
"""
