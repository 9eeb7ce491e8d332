"""CQL library ``Status`` (1.15.000): the NCQA status filters, as SQL predicates on one flat-table row.

Status's fluent functions filter a retrieve (``[Encounter: X].isEncounterPerformed()``); here each is
a predicate on the row alias of the retrieved resource, to be AND-ed into the retrieve's WHERE clause.
They return SQL text only, so a measure reads ``is_encounter_performed("e")`` where the CQL says
``.isEncounterPerformed()``.
"""

from __future__ import annotations

from chc_equity.measures.codes import FLAT
from chc_equity.measures.cql import sql_str

ORDER_INTENTS = "('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"


def verified(c: str) -> str:
    """``verified()``: no verification status, or confirmed / unconfirmed / provisional / differential.

    ``verificationStatus is not null implies (...)``: a status coded in another system (or with an
    unknown code such as refuted / entered-in-error) fails.
    """
    return (
        f"({c}.verification_status_code IS NULL AND {c}.verification_status_system IS NULL "
        f"OR ({c}.verification_status_system = {sql_str(VERIFICATION_SYSTEM)} "
        f"AND {c}.verification_status_code IN ('confirmed', 'unconfirmed', 'provisional', 'differential')))"
    )


def is_assessment_performed(o: str) -> str:
    """``isAssessmentPerformed()`` (ObservationScreeningAssessment): final / amended / corrected."""
    return f"({o}.status IN ('final', 'amended', 'corrected'))"


def is_laboratory_test_performed(o: str) -> str:
    """``isLaboratoryTestPerformed()``: final / amended / corrected."""
    return f"({o}.status IN ('final', 'amended', 'corrected'))"


def is_observation_performed(o: str) -> str:
    """``isObservationBP()`` / ``isObservationBMI()`` / body height / weight: final / amended / corrected."""
    return f"({o}.status IN ('final', 'amended', 'corrected'))"


def is_symptom(o: str) -> str:
    """``isSymptom()`` (SimpleObservation): preliminary / final / amended / corrected."""
    return f"({o}.status IN ('preliminary', 'final', 'amended', 'corrected'))"


def _has_category(o: str, code: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.observation_category k_ WHERE k_.center = {o}.center "
        f"AND k_.id = {o}.id AND k_.system = {sql_str(CATEGORY_SYSTEM)} AND k_.code = {sql_str(code)})"
    )


def is_physical_exam_performed(o: str) -> str:
    """``isPhysicalExamPerformed()``: final / amended / corrected with an ``exam`` category."""
    return f"({o}.status IN ('final', 'amended', 'corrected') AND {_has_category(o, 'exam')})"


def is_diagnostic_study_performed(o: str) -> str:
    """``isDiagnosticStudyPerformed()``: final / amended / corrected with an ``imaging`` category."""
    return f"({o}.status IN ('final', 'amended', 'corrected') AND {_has_category(o, 'imaging')})"


def is_observation_smoking_status(o: str) -> str:
    """``isObservationSmokingStatus()``: final only."""
    return f"({o}.status = 'final')"


def is_encounter_performed(e: str) -> str:
    """``isEncounterPerformed()``: status finished."""
    return f"({e}.status = 'finished')"


def is_intervention_performed(p: str) -> str:
    """``isInterventionPerformed()`` (Procedure): status completed."""
    return f"({p}.status = 'completed')"


def is_procedure_performed(p: str) -> str:
    """``isProcedurePerformed()``: status completed."""
    return f"({p}.status = 'completed')"


def is_immunization_administered(i: str) -> str:
    """``isImmunizationAdministered()``: status completed."""
    return f"({i}.status = 'completed')"


def _order(r: str) -> str:
    return f"({r}.status IN ('active', 'completed') AND {r}.intent IN {ORDER_INTENTS})"


def is_intervention_order(s: str) -> str:
    """``isInterventionOrder()`` (ServiceRequest): active / completed order."""
    return _order(s)


def is_diagnostic_study_order(s: str) -> str:
    """``isDiagnosticStudyOrder()`` (ServiceRequest): active / completed order."""
    return _order(s)


def is_laboratory_test_order(s: str) -> str:
    """``isLaboratoryTestOrder()`` (ServiceRequest): active / completed order."""
    return _order(s)


def is_device_order_personal_use_devices(d: str) -> str:
    """``isDeviceOrderPersonalUseDevices()`` (DeviceRequest): active / completed order."""
    return _order(d)


def is_medication_order(m: str) -> str:
    """``isMedicationOrder()`` (MedicationRequest): active / completed order."""
    return _order(m)


def is_medication_active(m: str) -> str:
    """``isMedicationActive()`` (MedicationRequest): status active (not completed) and an order intent."""
    return f"({m}.status = 'active' AND {m}.intent IN {ORDER_INTENTS})"


def is_medication_dispensed(m: str) -> str:
    """``isMedicationDispensed()``: completed / in-progress / on-hold."""
    return f"({m}.status IN ('completed', 'in-progress', 'on-hold'))"
