"""CQL library ``Status`` (1.15.000): the NCQA status filters, as SQL predicates on one flat-table row.

Status's fluent functions filter a retrieve (``[Encounter: X].isEncounterPerformed()``); here each is a
predicate on the row alias of the retrieved resource, AND-ed into the retrieve's WHERE clause, so a
measure reads ``is_encounter_performed("e")`` where the CQL says ``.isEncounterPerformed()``. Only the
functions the 21 measures call are here.
"""

from __future__ import annotations

from chc_equity.measures.vocabulary.sql import FLAT, sql_str

ORDER_INTENTS = "('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
_FINAL = "('final', 'amended', 'corrected')"


def verified(c: str) -> str:
    """``verified()``::

        where C.verificationStatus is not null implies (C.verificationStatus ~ "confirmed"
          or ~ "unconfirmed" or ~ "provisional" or ~ "differential")

    A status coded in another system (or refuted / entered-in-error) fails.
    """
    return (
        f"({c}.verification_status_code IS NULL AND {c}.verification_status_system IS NULL "
        f"OR ({c}.verification_status_system = {sql_str(VERIFICATION_SYSTEM)} "
        f"AND {c}.verification_status_code IN ('confirmed', 'unconfirmed', 'provisional', 'differential')))"
    )


def is_assessment_performed(o: str) -> str:
    """``isAssessmentPerformed()``: ``where O.status in { 'final', 'amended', 'corrected' }``."""
    return f"({o}.status IN {_FINAL})"


def is_laboratory_test_performed(o: str) -> str:
    """``isLaboratoryTestPerformed()``: ``where O.status in { 'final', 'amended', 'corrected' }``."""
    return f"({o}.status IN {_FINAL})"


def is_observation_performed(o: str) -> str:
    """``isObservationBP()`` / ``isObservationBMI()`` / ``isObservationBodyHeight()`` /
    ``isObservationBodyWeight()`` / ``isObservationPediatricBMI()`` (one body, five names):
    ``where O.status in { 'final', 'amended', 'corrected' }``."""
    return f"({o}.status IN {_FINAL})"


def is_symptom(o: str) -> str:
    """``isSymptom()``: ``where O.status in { 'preliminary', 'final', 'amended', 'corrected' }``."""
    return f"({o}.status IN ('preliminary', 'final', 'amended', 'corrected'))"


def _has_category(o: str, code: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.observation_category k_ WHERE k_.center = {o}.center "
        f"AND k_.id = {o}.id AND k_.system = {sql_str(CATEGORY_SYSTEM)} AND k_.code = {sql_str(code)})"
    )


def is_physical_exam_performed(o: str) -> str:
    """``isPhysicalExamPerformed()``: ``where O.status in { 'final', 'amended', 'corrected' } and exists
    (O.category ObservationCategory where (ObservationCategory) ~ "exam")``."""
    return f"({o}.status IN {_FINAL} AND {_has_category(o, 'exam')})"


def is_diagnostic_study_performed(o: str) -> str:
    """``isDiagnosticStudyPerformed()``: ``where O.status in { 'final', 'amended', 'corrected' } and
    exists (O.category ObservationCategory where (ObservationCategory) ~ "imaging")``."""
    return f"({o}.status IN {_FINAL} AND {_has_category(o, 'imaging')})"


def is_observation_smoking_status(o: str) -> str:
    """``isObservationSmokingStatus()``: ``where O.status = 'final'``."""
    return f"({o}.status = 'final')"


def is_encounter_performed(e: str) -> str:
    """``isEncounterPerformed()``: ``where E.status = 'finished'``."""
    return f"({e}.status = 'finished')"


def is_intervention_performed(p: str) -> str:
    """``isInterventionPerformed()`` (Procedure): ``where P.status ~ 'completed'``."""
    return f"({p}.status = 'completed')"


def is_procedure_performed(p: str) -> str:
    """``isProcedurePerformed()``: ``where P.status ~ 'completed'``."""
    return f"({p}.status = 'completed')"


def is_immunization_administered(i: str) -> str:
    """``isImmunizationAdministered()``: ``where I.status ~ 'completed'``."""
    return f"({i}.status = 'completed')"


def _order(r: str) -> str:
    return f"({r}.status IN ('active', 'completed') AND {r}.intent IN {ORDER_INTENTS})"


def is_intervention_order(s: str) -> str:
    """``isInterventionOrder()`` (ServiceRequest): ``where S.status in { 'active', 'completed' } and
    S.intent in {'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order'}``."""
    return _order(s)


def is_device_order_personal_use_devices(d: str) -> str:
    """``isDeviceOrderPersonalUseDevices()`` (DeviceRequest): ``where D.status in { 'active',
    'completed' } and D.intent in {'order', 'original-order', ..., 'instance-order'}``."""
    return _order(d)


def is_medication_order(m: str) -> str:
    """``isMedicationOrder()`` (MedicationRequest): ``where M.status in { 'active', 'completed' } and
    M.intent in {'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order'}``."""
    return _order(m)


def is_medication_active(m: str) -> str:
    """``isMedicationActive()`` (MedicationRequest): ``where M.status = 'active' and M.intent in
    {'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order'}``."""
    return f"({m}.status = 'active' AND {m}.intent IN {ORDER_INTENTS})"
