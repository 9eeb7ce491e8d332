"""The UDS+ IG's names: canonical URLs, profiles per resource, report-part names, code systems.

The IG (HRSA UDS+ FHIR IG, STU 2 continuous build 2.0.0) moved its canonical from
``http://hl7.org/fhir/us/uds-plus`` to ``http://fhir.org/guides/hrsa/uds-plus``; we write the current one
and the validator accepts both (the IG's "validated" examples still carry the old one).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

BASE = "http://fhir.org/guides/hrsa/uds-plus"
OLD_BASE = "http://hl7.org/fhir/us/uds-plus"
SD = f"{BASE}/StructureDefinition/"
CS = f"{BASE}/CodeSystem/"

PROFILE = {
    "Patient": SD + "de-identified-uds-plus-patient",
    "Encounter": SD + "uds-plus-encounter",
    "Location": SD + "uds-plus-location",
    "Coverage": SD + "uds-plus-coverage",
    "Condition": SD + "uds-plus-diagnosis",
    "Procedure": SD + "uds-plus-procedure",
    "Immunization": SD + "uds-plus-immunization",
    "MedicationRequest": SD + "uds-plus-medicationrequest",
    "MedicationStatement": SD + "uds-plus-medicationstatement",
    "AllergyIntolerance": SD + "uds-plus-allergyintolerance",
    "AdverseEvent": SD + "uds-plus-adverseevent",
    "ServiceRequest": SD + "uds-plus-servicerequest",
    "RelatedPerson": SD + "de-identified-uds-plus-relatedperson",
}
INCOME_PROFILE = SD + "de-identified-uds-plus-income-observation"
ORIENTATION_PROFILE = SD + "uds-plus-sexual-orientation-observation"
LAB_PROFILE = SD + "uds-plus-lab-observation"
CLINICAL_RESULT_PROFILE = SD + "uds-plus-clinical-result-observation"
OBSERVATION_PROFILE = SD + "uds-plus-observation"
REPORTING_PROFILE = SD + "uds-plus-patient-reporting-parameters"
MANIFEST_PROFILE = SD + "uds-plus-import-manifest"

# extension URLs as the profiles fix them (race/ethnicity/gender identity keep US Core's URL)
EXT_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
EXT_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
EXT_GENDER_IDENTITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity"
EXT_BIRTHSEX = SD + "uds-plus-birthsex-extension"
EXT_AGE = SD + "uds-plus-age-extension"
EXT_AG = SD + "udsplus-agriculture-worker-status"
EXT_HOUSING = SD + "uds-plus-housing-status-extension"
EXT_VETERAN = SD + "uds-plus-veteran-status-extension"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

CS_INSURANCE = CS + "uds-plus-insurance-codes"
CS_SERVICE_DELIVERY = CS + "udsplus-service-delivery-codes"
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
BCP47 = "urn:ietf:bcp:47"
INCOME_LOINC = "63058-2"
ORIENTATION_LOINC = "76690-7"

# Reporting Parameters: UDS table line -> the IG's report name (quality lines carry den/num sub-parts)
REPORT_6B = {
    "1-6": "table6B-Line1-6-Age-Of-Prenatal-Care-Patients",
    "7-9": "table6B-Line7-9-Early-Entry-Into-Prenatal-Care",
    "10": "table6B-Line10-Childhood-Immunization-Status-CMS117",
    "11": "table6B-Line11-Cervical-Cancer-Screening-CMS124",
    "11a": "table6B-Line11a-Breast-Cancer-Screening-CMS125",
    "12": "table6B-Line12-Weight-Assessment-And-Counselling-CMS155",
    "13": "table6B-Line13-Preventive-Care-And-Screening-BMI-CMS69",
    "14a": "table6B-Line14a-Preventive-Care-And-Screening-Tobacco-Use-CMS138",
    "17a": "table6B-Line17a-Statin-Therapy-CMS347",
    "18": "table6B-Line18-Ischmic-Vascular-Disease-CMS164",
    "19": "table6B-Line19-Colorectal-Cancer-Screening-CMS130",
    "20": "table6B-Line20-HIV-Linkage-To-Care",
    "20a": "table6B-Line20a-HIV-Screening-CMS349",
    "21": "table6B-Line21-Preventive-Care-And-Screening-For-Depression-CMS2",
    "21a": "table6B-Line21a-Depression-Remission-At-Twelve-Months-CMS159",
    "22": "table6B-Line22-Dental-Sealants-For-Children-CMS277",
}
REPORT_7 = {
    "0": "table7-Line0-HIV-Positive-Pregnant-Patients",
    "2": "table7-Line2-Deliveries-Performed-By-Health-Center",
    "1a-d": "table7-Line1a-d-Prenatal-Care-Patient-Deliveries",
    "CMS165": "table7-Line2a-c-Controlling-High-Blood-Pressure-CMS165",
    "CMS122": "table7-Line3a-f-HbA1c-Poor-Control-CMS122",
}
FLAG_SUFFIXES = ("den", "denexp", "denexcl", "num", "numexp", "numexcl")
FUNDING_STREAMS = ("CHC", "MHC", "HCH", "PHPC")


@cache
def rules() -> dict[str, Any]:
    """The compiled snapshots and value sets (scripts/udsplus_ig.py writes data/ig_rules.json)."""
    text = resources.files("chc_equity.udsplus.data").joinpath("ig_rules.json").read_text()
    return json.loads(text)


def canonical(url: str) -> str:
    """A profile/extension URL with the IG's old canonical base mapped to the current one."""
    return BASE + url[len(OLD_BASE) :] if url.startswith(OLD_BASE) else url
