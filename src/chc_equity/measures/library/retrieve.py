"""QI-Core 6 profile retrieves (``[ConditionEncounterDiagnosis: "X"]`` ...) as SQL row sources.

Each function returns a ``FROM``-able SQL fragment (``flat.<table> <alias> WHERE ...`` pieces are
assembled by the caller) so the semantics of a profile retrieve live in one place:

- the code filter is the ELM ``codeProperty`` of the profile (Condition.code, Observation.code,
  Encounter.type, MedicationRequest.medication[x] as CodeableConcept, ...), any coding matching;
- a plain profile retrieve adds no filter of its own: the official test cases were produced by
  fqm-execution, whose data source returns every resource of the profile's base type (no category
  filter), e.g. a Condition categorised ``problem-list-item`` is still returned by
  ``[ConditionEncounterDiagnosis: "Diabetes"]``. Profiles whose *meaning* is a constraint
  (ServiceNotRequested, MedicationNotRequested, ObservationCancelled, the US Core blood pressure ...)
  are :func:`chc_equity.measures.cql.in_profile`. The whole profile rule is stated once, in
  docs/measures.md ("Profiles").
"""

from __future__ import annotations

from chc_equity.measures.codes import FLAT, has_code, in_valueset, vs
from chc_equity.measures.cql import Period, during_day_of_mp
from chc_equity.measures.library.qicore import prevalence_overlaps_day
from chc_equity.measures.library.status import is_encounter_performed, verified

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


def table(resource: str) -> str:
    """``flat.<table>`` of a resource type."""
    return f"{FLAT}.{CODE_PATH[resource][0]}"


def code_in(resource: str, alias: str, valueset: str) -> str:
    """The retrieve's value-set filter: ``[<resource>: "<valueset>"]`` on row ``alias``.

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
    """The retrieve's direct-code filter: ``[<resource>: "<code>"]`` on row ``alias``."""
    return has_code(CODE_PATH[resource][1], alias, system, code)


def performed_encounters(types: str, mp: Period) -> str:
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
