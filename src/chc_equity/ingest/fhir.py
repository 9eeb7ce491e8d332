"""FHIR R4 (4.0.1) rules that ingest enforces: resource types, ids, and dates in indexed fields.

Only what later stages rely on is checked: a resource must have a known type and a valid id (they
form the warehouse key), and every date that views/measures index must be a real calendar date in
FHIR's lexical form. Everything else is stored as-is; full profile validation is not ingest's job.
The checks are pure functions so the malformed-input corpus can pin them exactly.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

# FHIR R4 4.0.1 resource types (https://hl7.org/fhir/R4/resourcelist.html).
RESOURCE_TYPES: frozenset[str] = frozenset(
    [
        "Account",
        "ActivityDefinition",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "Binary",
        "BiologicallyDerivedProduct",
        "BodyStructure",
        "Bundle",
        "CapabilityStatement",
        "CarePlan",
        "CareTeam",
        "CatalogEntry",
        "ChargeItem",
        "ChargeItemDefinition",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "CodeSystem",
        "Communication",
        "CommunicationRequest",
        "CompartmentDefinition",
        "Composition",
        "ConceptMap",
        "Condition",
        "Consent",
        "Contract",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "Device",
        "DeviceDefinition",
        "DeviceMetric",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "EffectEvidenceSynthesis",
        "Encounter",
        "Endpoint",
        "EnrollmentRequest",
        "EnrollmentResponse",
        "EpisodeOfCare",
        "EventDefinition",
        "Evidence",
        "EvidenceVariable",
        "ExampleScenario",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "GraphDefinition",
        "Group",
        "GuidanceResponse",
        "HealthcareService",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "ImplementationGuide",
        "InsurancePlan",
        "Invoice",
        "Library",
        "Linkage",
        "List",
        "Location",
        "Measure",
        "MeasureReport",
        "Media",
        "Medication",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationKnowledge",
        "MedicationRequest",
        "MedicationStatement",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "MessageDefinition",
        "MessageHeader",
        "MolecularSequence",
        "NamingSystem",
        "NutritionOrder",
        "Observation",
        "ObservationDefinition",
        "OperationDefinition",
        "OperationOutcome",
        "Organization",
        "OrganizationAffiliation",
        "Parameters",
        "Patient",
        "PaymentNotice",
        "PaymentReconciliation",
        "Person",
        "PlanDefinition",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "Questionnaire",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchDefinition",
        "ResearchElementDefinition",
        "ResearchStudy",
        "ResearchSubject",
        "RiskAssessment",
        "RiskEvidenceSynthesis",
        "Schedule",
        "SearchParameter",
        "ServiceRequest",
        "Slot",
        "Specimen",
        "SpecimenDefinition",
        "StructureDefinition",
        "StructureMap",
        "Subscription",
        "Substance",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
        "SupplyDelivery",
        "SupplyRequest",
        "Task",
        "TerminologyCapabilities",
        "TestReport",
        "TestScript",
        "ValueSet",
        "VerificationResult",
        "VisionPrescription",
    ]
)

# https://hl7.org/fhir/R4/datatypes.html#id
ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")

# Lexical forms from https://hl7.org/fhir/R4/datatypes.html (date, dateTime, instant). R4 requires a
# timezone whenever a time is given. Calendar validity (2023-02-30) is checked separately.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DATE_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
DATETIME_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T{_TIME}{_TZ})?)?)?")
INSTANT_RE = re.compile(rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_TZ}")
_PATTERNS = {"date": DATE_RE, "dateTime": DATETIME_RE, "instant": INSTANT_RE}

# The one list of date fields that later stages index, per resource type ("*": every type).
# Paths are dotted; a choice element appears once per date-typed choice (onsetDateTime, onsetPeriod...).
_PERIOD = ("start", "end")


def _period(name: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{name}.{part}", "dateTime") for part in _PERIOD)


INDEXED_DATE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "*": (("meta.lastUpdated", "instant"),),
    "Patient": (("birthDate", "date"), ("deceasedDateTime", "dateTime")),
    "Encounter": _period("period"),
    "Condition": (
        ("onsetDateTime", "dateTime"),
        *_period("onsetPeriod"),
        ("abatementDateTime", "dateTime"),
        *_period("abatementPeriod"),
        ("recordedDate", "dateTime"),
    ),
    "Observation": (
        ("effectiveDateTime", "dateTime"),
        *_period("effectivePeriod"),
        ("effectiveInstant", "instant"),
        ("issued", "instant"),
    ),
    "DiagnosticReport": (
        ("effectiveDateTime", "dateTime"),
        *_period("effectivePeriod"),
        ("issued", "instant"),
    ),
    "Procedure": (("performedDateTime", "dateTime"), *_period("performedPeriod")),
    "MedicationRequest": (("authoredOn", "dateTime"),),
    "MedicationAdministration": (("effectiveDateTime", "dateTime"), *_period("effectivePeriod")),
    "MedicationDispense": (("whenPrepared", "dateTime"), ("whenHandedOver", "dateTime")),
    "MedicationStatement": (
        ("effectiveDateTime", "dateTime"),
        *_period("effectivePeriod"),
        ("dateAsserted", "dateTime"),
    ),
    "Immunization": (("occurrenceDateTime", "dateTime"), ("recorded", "dateTime")),
    "AllergyIntolerance": (("onsetDateTime", "dateTime"), ("recordedDate", "dateTime")),
    "Coverage": _period("period"),
    "ServiceRequest": (
        ("authoredOn", "dateTime"),
        ("occurrenceDateTime", "dateTime"),
        *_period("occurrencePeriod"),
    ),
    "DeviceRequest": (
        ("authoredOn", "dateTime"),
        ("occurrenceDateTime", "dateTime"),
        *_period("occurrencePeriod"),
    ),
    "CarePlan": _period("period"),
    "EpisodeOfCare": _period("period"),
    "Claim": (("created", "dateTime"), *_period("billablePeriod")),
    "ExplanationOfBenefit": (("created", "dateTime"), *_period("billablePeriod")),
    "QuestionnaireResponse": (("authored", "dateTime"),),
    "AdverseEvent": (("date", "dateTime"), ("detected", "dateTime"), ("recordedDate", "dateTime")),
    "Communication": (("sent", "dateTime"), ("received", "dateTime")),
    "Task": (("authoredOn", "dateTime"), *_period("executionPeriod")),
    "MeasureReport": (("date", "dateTime"), *_period("period")),
}


def date_error(value: object, kind: str) -> str | None:
    """Why ``value`` is not a valid FHIR ``kind`` (date/dateTime/instant), or None when it is.

    The message never contains the value itself: rejects are listed without raw data by default.
    """
    if not isinstance(value, str):
        return f"not a string ({kind} expected)"
    if _PATTERNS[kind].fullmatch(value) is None:
        return f"not a FHIR {kind}"
    if len(value) >= 10:  # year-month-day present: the regex allows 31 in every month
        year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
        if day > calendar.monthrange(year, month)[1]:
            return f"not a calendar date ({kind})"
    return None


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def instant_micros(value: str) -> int:
    """Microseconds since the Unix epoch for an already-validated FHIR instant.

    Computed with integers (no float rounding) so equal instants compare equal; fractions beyond
    microseconds are truncated and a leap second (:60) rolls into the next second, as POSIX does.
    """
    days = date(int(value[0:4]), int(value[5:7]), int(value[8:10])).toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])
    rest = value[19:]
    micros = 0
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789"))
        micros = int((rest[1:digits] + "000000")[:6])
        rest = rest[digits:]
    if rest != "Z":
        sign = 1 if rest[0] == "+" else -1
        seconds -= sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
    return seconds * 1_000_000 + micros
