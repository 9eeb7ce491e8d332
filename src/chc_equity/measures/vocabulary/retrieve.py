"""CQL retrieves as SQL: value-set and direct-code filters, QI-Core profile retrieves, and the two
retrieve-plus-filter shapes several measures share.

Codes live in child tables of the flat views (``flat.encounter_type(center, id, system, code)``, ...);
value sets in ``valueset_codes(valueset, system, code)`` (see chc_equity.terminology). A CQL
``in "Value Set"`` on a CodeableConcept is true when any of its codings is in the value set; ``~`` a
direct code is true when any coding has the same system and code (display is ignored).

The profile rule (docs/measures.md, "Profiles"):

- the code filter of a retrieve is the ELM ``codeProperty`` of the profile (Condition.code,
  Observation.code, Encounter.type, MedicationRequest.medication[x] ...), any coding matching;
- a plain profile retrieve (``[ConditionEncounterDiagnosis: "Diabetes"]``) adds no filter of its own:
  fqm-execution, which produced the official test cases, returns every resource of the base type;
- a profile whose *meaning* is a constraint (ServiceNotRequested, MedicationNotRequested,
  ObservationCancelled, the US Core blood pressure, ConditionProblemsHealthConcerns) is
  :func:`in_profile`;
- whether untagged clinical resources count at all is the run's ``--profiles`` switch
  (:mod:`chc_equity.measures.profiles`), applied before any of this SQL runs.
"""

from __future__ import annotations

from functools import cache

from chc_equity.measures.vocabulary.intervals import during_day_of_mp
from chc_equity.measures.vocabulary.prevalence import prevalence_overlaps_day
from chc_equity.measures.vocabulary.sql import FLAT, MeasurementPeriod, sql_str
from chc_equity.measures.vocabulary.status import is_encounter_performed, verified
from chc_equity.terminology import valueset_url

QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
USCORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
BP_PANEL = "85354-9"  # LOINC "Blood pressure panel with all children optional"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"

# Flat table of a resource type and the child table holding its retrieve code path.
CODE_PATH: dict[str, tuple[str, str]] = {
    "Condition": ("condition", "condition_code"),
    "Encounter": ("encounter", "encounter_type"),
    "Observation": ("observation", "observation_code"),
    "Procedure": ("procedure", "procedure_code"),
    "ServiceRequest": ("service_request", "service_request_code"),
    "DeviceRequest": ("device_request", "device_request_code"),
    "MedicationRequest": ("medication_request", "medication_request_medication_code"),
    "Immunization": ("immunization", "immunization_vaccine_code"),
    "AllergyIntolerance": ("allergy_intolerance", "allergy_intolerance_code"),
}


# --- value sets and codes -----------------------------------------------------------------------------


@cache
def vs(name_or_oid: str, library: str | None = None) -> str:
    """``valueset "Name": 'http://cts.nlm.nih.gov/fhir/ValueSet/<oid>'``: the SQL literal of a value
    set's canonical URL, looked up by CQL name, OID or URL."""
    return sql_str(valueset_url(name_or_oid, library=library))


def in_valueset(
    child: str, alias: str, valueset: str, *, system_col: str = "system", code_col: str = "code"
) -> str:
    """``<alias>.<element> in "<valueset>"``: some row of child table ``flat.<child>`` for the resource
    ``alias`` (same center and id) has a (system, code) in the value set (name, OID or URL)."""
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.{child} c_ JOIN valueset_codes v_ "
        f"ON v_.system = c_.{system_col} AND v_.code = c_.{code_col} "
        f"WHERE c_.center = {alias}.center AND c_.id = {alias}.id AND v_.valueset = {vs(valueset)})"
    )


def has_code(
    child: str, alias: str, system: str, code: str, *, system_col: str = "system", code_col: str = "code"
) -> str:
    """``<alias>.<element> ~ "<direct code>"``: some coding of the element has this system and code."""
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.{child} c_ WHERE c_.center = {alias}.center AND c_.id = {alias}.id "
        f"AND c_.{system_col} = {sql_str(system)} AND c_.{code_col} = {sql_str(code)})"
    )


# --- retrieves ------------------------------------------------------------------------------------------


def table(resource: str) -> str:
    """``[<resource>]``: the flat table a retrieve of this resource type reads (``flat.encounter``)."""
    return f"{FLAT}.{CODE_PATH[resource][0]}"


def code_in(resource: str, alias: str, valueset: str) -> str:
    """``[<resource>: "<valueset>"]``: the retrieve's value-set filter on row ``alias``.

    A MedicationRequest matches by its medicationCodeableConcept *or* by the code of the Medication its
    medicationReference points at (the official test case "DementiaMedicationRequestAsReference" expects
    the referenced Medication's code to count).
    """
    direct = in_valueset(CODE_PATH[resource][1], alias, valueset)
    if resource != "MedicationRequest":
        return direct
    referenced = (
        f"EXISTS (SELECT 1 FROM {FLAT}.medication_code mc_ JOIN valueset_codes mv_ "
        f"ON mv_.system = mc_.system AND mv_.code = mc_.code "
        f"WHERE mc_.center = {alias}.center AND mc_.id = {alias}.medication_id "
        f"AND mv_.valueset = {vs(valueset)})"
    )
    return f"({direct} OR {referenced})"


def code_is(resource: str, alias: str, system: str, code: str) -> str:
    """``[<resource>: "<code>"]`` (a direct-code retrieve): the filter on row ``alias``."""
    return has_code(CODE_PATH[resource][1], alias, system, code)


# --- profiles whose meaning is a constraint --------------------------------------------------------------


def in_profile(alias: str, profiles: tuple[str, ...], untagged: str) -> str:
    """Row ``alias`` is returned by a retrieve of a constraining profile (``[ServiceNotRequested: X]``).

    A resource that declares profiles is returned only by a retrieve of one of them (a doNotPerform
    ServiceRequest tagged qicore-servicerequest is a plain [ServiceRequest]; an Observation tagged
    qicore-simple-observation is no blood pressure even with the panel code), as in the official test
    cases. An untagged resource is judged by the profile's own constraints, ``untagged`` (doNotPerform,
    status 'cancelled', the fixed code ...). ``profiles`` are full StructureDefinition URLs (the QI-Core
    profile and its US Core parent, if any); ``alias`` needs the ``meta_profile`` column (comma-joined
    URLs) of its flat table.
    """
    urls = ", ".join(sql_str(p) for p in profiles)
    return (
        f"(CASE WHEN coalesce({alias}.meta_profile, '') = '' THEN coalesce({untagged}, FALSE) "
        f"ELSE len(list_intersect(string_split({alias}.meta_profile, ','), [{urls}])) > 0 END)"
    )


def service_requested(s: str) -> str:
    """``[ServiceRequest]`` (QI-Core ServiceRequest, a positive order: ``doNotPerform`` not true) on
    flat.service_request row ``s``."""
    return in_profile(s, (QICORE + "qicore-servicerequest",), f"NOT coalesce({s}.do_not_perform, FALSE)")


def service_not_requested(s: str) -> str:
    """``[ServiceNotRequested]`` (``doNotPerform = true``: an order recorded as not to be done)."""
    return in_profile(s, (QICORE + "qicore-servicenotrequested",), f"{s}.do_not_perform")


def medication_requested(m: str) -> str:
    """``[MedicationRequest]`` (QI-Core MedicationRequest: ``doNotPerform`` not true) on row ``m``."""
    return in_profile(m, (QICORE + "qicore-medicationrequest",), f"NOT coalesce({m}.do_not_perform, FALSE)")


def medication_not_requested(m: str) -> str:
    """``[MedicationNotRequested]`` (``doNotPerform = true``) on flat.medication_request row ``m``."""
    return in_profile(m, (QICORE + "qicore-medicationnotrequested",), f"{m}.do_not_perform")


def observation_cancelled(o: str) -> str:
    """``[ObservationCancelled]`` (``status = 'cancelled'``: an observation recorded as not done)."""
    return in_profile(o, (QICORE + "qicore-observationcancelled",), f"{o}.status = 'cancelled'")


def blood_pressure_observation(o: str) -> str:
    """``[USCoreBloodPressureProfile]`` on flat.observation row ``o``: tagged with the US Core blood
    pressure profile, or untagged with the profile's fixed code, the LOINC blood pressure panel.

    Never "every Observation": a BMI or HbA1c taken on the day of the most recent blood pressure must
    not count as a reading of that day (it has no systolic component and would null the lowest one).
    """
    return us_core_observation(o, "us-core-blood-pressure")


# US Core Observation profiles whose meaning is their fixed Observation.code (a LOINC code): a retrieve
# of one (``[USCoreBMIProfile]``, ``[USCoreBodyHeightProfile]`` ...) carries no code filter in the ELM,
# so without the profile's own constraint a height would count as a BMI percentile (official case
# CMS155 "Num1Fail-BMIObsAfterMP": only a height and a weight in the period, numerator 0).
US_CORE_OBSERVATION_CODES = {
    "us-core-blood-pressure": BP_PANEL,
    "us-core-bmi": "39156-5",
    "pediatric-bmi-for-age": "59576-9",
    "us-core-body-height": "8302-2",
    "us-core-body-weight": "29463-7",
    "us-core-body-temperature": "8310-5",
    "us-core-heart-rate": "8867-4",
    "us-core-observation-pregnancystatus": "82810-3",
}
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def us_core_observation(o: str, profile: str) -> str:
    """``[<US Core Observation profile>]`` on flat.observation row ``o`` (``profile`` is the last part
    of its URL): tagged with the profile, or untagged with the code it fixes
    (:data:`US_CORE_OBSERVATION_CODES`); the smoking status profile fixes no code, only the
    social-history category."""
    if profile == "us-core-smokingstatus":
        untagged = has_code("observation_category", o, OBSERVATION_CATEGORY, "social-history")
    else:
        untagged = has_code("observation_code", o, LOINC, US_CORE_OBSERVATION_CODES[profile])
    return in_profile(o, (USCORE + profile,), untagged)


def condition_problem_or_health_concern(c: str) -> str:
    """``[ConditionProblemsHealthConcerns]`` on flat.condition row ``c``: tagged with the QI-Core (or US
    Core) profile, or untagged with a problem-list-item / health-concern category."""
    category = (
        f"EXISTS (SELECT 1 FROM flat.condition_category k_ WHERE k_.center = {c}.center AND k_.id = {c}.id "
        f"AND ((k_.system = {sql_str(CONDITION_CATEGORY)} AND k_.code = 'problem-list-item') "
        f"OR (k_.system = {sql_str(US_CORE_CONDITION_CATEGORY)} AND k_.code = 'health-concern')))"
    )
    return in_profile(
        c,
        (
            QICORE + "qicore-condition-problems-health-concerns",
            USCORE + "us-core-condition-problems-health-concerns",
        ),
        category,
    )


# --- Observation.value ------------------------------------------------------------------------------------

_VALUE_COLUMNS = (
    "value_quantity_value",
    "value_quantity_unit",
    "value_quantity_code",
    "value_boolean",
    "value_string",
    "value_integer",
    "value_datetime",
    "value_period_start",
    "value_period_end",
    "value_code_text",
)


def observation_has_value(o: str) -> str:
    """``<o>.value is not null``: the Observation has a value of any type."""
    present = " OR ".join(f"{o}.{col} IS NOT NULL" for col in _VALUE_COLUMNS)
    return (
        f"({present} OR EXISTS (SELECT 1 FROM flat.observation_value_code v_ "
        f"WHERE v_.center = {o}.center AND v_.id = {o}.id))"
    )


def observation_value_is_quantity(o: str) -> str:
    """``<o>.value is Quantity``."""
    return (
        f"({o}.value_quantity_value IS NOT NULL OR {o}.value_quantity_unit IS NOT NULL "
        f"OR {o}.value_quantity_code IS NOT NULL)"
    )


# --- retrieve shapes shared by several measures ------------------------------------------------------------


def performed_encounters(types: str, mp: MeasurementPeriod) -> str:
    """``([Encounter: X] union [Encounter: Y] ...).isEncounterPerformed() ValidEncounter
    where ValidEncounter.period during day of "Measurement Period"`` as rows (center, patient_id, id).

    ``types`` is the SQL test of the encounter's type on alias ``e`` (the OR of the retrieves' code
    filters, :func:`code_in` / :func:`code_is`).
    """
    return f"""
  SELECT e.center, e.patient_id, e.id
  FROM {table("Encounter")} e
  WHERE ({types}
        )
    AND {is_encounter_performed("e")}
    AND {during_day_of_mp("e.period_start", "e.period_end", mp)}"""


def conditions_overlapping_day(valueset: str, patients: str, lo: str, hi: str) -> str:
    """``[Condition: X].verified() C where C.prevalenceInterval() overlaps day of Interval[lo, hi]`` as
    rows (center, patient_id), one a patient; ``patients`` is the patient relation (for birthDate, which
    an onset or abatement given as an Age needs)."""
    return f"""
  SELECT DISTINCT c.center, c.patient_id FROM {table("Condition")} c
  JOIN {patients} pt ON pt.center = c.center AND pt.id = c.patient_id
  WHERE {code_in("Condition", "c", valueset)}
    AND {verified("c")}
    AND {prevalence_overlaps_day("c", "pt.birth_date", lo, hi)}"""
