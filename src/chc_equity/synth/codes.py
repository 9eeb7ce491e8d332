"""Curated code table: the few codes per clinical concept that the generator writes.

The generator must not read ``../shared`` at run time, so every code it emits is listed here with the
eCQM value set (OID) it is meant to hit. ``tests/test_synth_codes.py`` checks each (system, code) against
that value set's expansion in ../shared, so a code that drifts out of its value set fails a test instead
of silently dropping patients out of a measure.
"""

from __future__ import annotations

from typing import NamedTuple

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
CDT = "http://www.ada.org/cdt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SOPT = "https://nahdo.org/sopt"  # PHVS Source of Payment Typology, OID 2.16.840.1.113883.3.221.5
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
US_CORE_CAT = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
SDOH_CAT = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"


class Code(NamedTuple):
    """One coding plus the value set OID it must belong to (None: a direct-reference code or no VS)."""

    system: str
    code: str
    display: str
    valueset: str | None = None

    def coding(self) -> dict[str, str]:
        """FHIR Coding dict (system, code, display)."""
        return {"system": self.system, "code": self.code, "display": self.display}

    def concept(self) -> dict[str, list[dict[str, str]]]:
        """FHIR CodeableConcept with this single coding."""
        return {"coding": [self.coding()]}


_VS = "2.16.840.1.113883.3.464.1003."

# concept -> Code. Keys are what clinical.py asks for; keep them stable (truth/docs refer to them).
CODES: dict[str, Code] = {
    # --- encounters
    "office_visit": Code(CPT, "99213", "Office/outpatient visit, established, low MDM", _VS + "101.12.1001"),
    "office_visit_new": Code(CPT, "99203", "Office/outpatient visit, new, low MDM", _VS + "101.12.1001"),
    "preventive_18_39": Code(CPT, "99395", "Periodic preventive medicine, 18-39 years", _VS + "101.12.1025"),
    "preventive_40_64": Code(CPT, "99396", "Periodic preventive medicine, 40-64 years", _VS + "101.12.1025"),
    "preventive_65_up": Code(
        CPT, "99397", "Periodic preventive medicine, 65 years and older", _VS + "101.12.1025"
    ),
    "preventive_1_4": Code(CPT, "99392", "Periodic preventive medicine, 1-4 years", _VS + "101.12.1024"),
    "preventive_5_11": Code(CPT, "99393", "Periodic preventive medicine, 5-11 years", _VS + "101.12.1024"),
    "preventive_12_17": Code(CPT, "99394", "Periodic preventive medicine, 12-17 years", _VS + "101.12.1024"),
    "annual_wellness": Code(
        HCPCS, "G0438", "Annual wellness visit, initial", "2.16.840.1.113883.3.526.3.1240"
    ),
    "dental_eval": Code(CDT, "D0120", "periodic oral evaluation - established patient", _VS + "125.12.1003"),
    "hospice_encounter": Code(SNOMED, "305336008", "Admission to hospice (procedure)", _VS + "1003"),
    # CHW services: Community Health Integration (HCPCS G0019) -- deliberately in no eCQM value set.
    "chw_visit": Code(HCPCS, "G0019", "Community health integration services, first 60 minutes"),
    # --- conditions
    "diabetes": Code(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", _VS + "103.12.1001"),
    "hypertension": Code(SNOMED, "59621000", "Essential hypertension (disorder)", _VS + "104.12.1011"),
    "ischemic_heart_disease": Code(
        SNOMED, "414545008", "Ischemic heart disease (disorder)", "2.16.840.1.113762.1.4.1047.46"
    ),
    "hiv": Code(SNOMED, "86406008", "Human immunodeficiency virus infection (disorder)", _VS + "120.12.1003"),
    "depression_dx": Code(
        ICD10CM,
        "F32.1",
        "Major depressive disorder, single episode, moderate",
        "2.16.840.113883.3.67.1.101.3.2444",
    ),
    "mdd_active": Code(
        SNOMED, "370143000", "Major depressive disorder (disorder)", "2.16.840.1.113883.3.526.3.1491"
    ),
    "dental_caries": Code(SNOMED, "80967001", "Dental caries (disorder)", _VS + "125.12.1004"),
    "pregnancy": Code(SNOMED, "77386006", "Pregnancy (finding)", "2.16.840.1.113883.3.526.3.378"),
    # --- labs / results
    "ldl": Code(
        LOINC,
        "2089-1",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
        "2.16.840.1.113883.3.526.3.1573",
    ),
    "hba1c": Code(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", _VS + "198.12.1013"),
    "egfr": Code(
        LOINC,
        "62238-1",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma "
        "or Blood by Creatinine-based formula (CKD-EPI)",
        "2.16.840.1.113883.3.6929.3.1000",
    ),
    "uacr": Code(
        LOINC, "9318-7", "Albumin/Creatinine [Mass Ratio] in Urine", "2.16.840.1.113883.3.6929.3.1007"
    ),
    "pap": Code(
        LOINC, "10524-7", "Microscopic observation [Identifier] in Cervix by Cyto stain", _VS + "108.12.1017"
    ),
    "hpv": Code(
        LOINC,
        "21440-3",
        "Human papilloma virus 16+18+31+33+35+45+51+52+56 DNA [Presence] in Cervix",
        _VS + "110.12.1059",
    ),
    "mammogram": Code(LOINC, "24606-6", "MG Breast Screening", _VS + "108.12.1018"),
    "fobt": Code(LOINC, "2335-8", "Hemoglobin.gastrointestinal [Presence] in Stool", _VS + "198.12.1011"),
    "colonoscopy": Code(SNOMED, "73761001", "Colonoscopy (procedure)", _VS + "108.12.1020"),
    "retinal_exam": Code(SNOMED, "410451008", "Indirect ophthalmoscopy (procedure)", _VS + "115.12.1088"),
    "hiv_test": Code(
        LOINC, "75622-1", "HIV 1 and 2 tests - Meaningful Use set", "2.16.840.1.113762.1.4.1056.50"
    ),
    "hiv_viral_load": Code(
        LOINC,
        "10351-5",
        "HIV 1 RNA [Units/volume] (viral load) in Serum or Plasma by Probe with amplification",
        "2.16.840.1.113762.1.4.1248.377",
    ),
    "falls_screening": Code(LOINC, "52552-7", "Falls in the past year", _VS + "118.12.1028"),
    "phq9": Code(
        LOINC,
        "44261-6",
        "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        "2.16.840.1.113883.3.67.1.101.1.263",
    ),
    # direct-reference codes used by the CQL (no value set)
    "adult_dep_screen": Code(LOINC, "73832-8", "Adult depression screening assessment"),
    "adolescent_dep_screen": Code(LOINC, "73831-0", "Adolescent depression screening assessment"),
    "dep_screen_negative": Code(SNOMED, "428171000124102", "Depression screening negative (finding)"),
    "suicide_risk_assessment": Code(SNOMED, "225337009", "Suicide risk assessment (procedure)"),
    "bp_panel": Code(LOINC, "85354-9", "Blood pressure panel with all children optional"),
    "systolic": Code(LOINC, "8480-6", "Systolic blood pressure"),
    "diastolic": Code(LOINC, "8462-4", "Diastolic blood pressure"),
    "bmi": Code(LOINC, "39156-5", "Body mass index (BMI) [Ratio]"),
    "bmi_percentile": Code(LOINC, "59576-9", "Body mass index (BMI) [Percentile] Per age and sex"),
    "body_height": Code(LOINC, "8302-2", "Body height"),
    "body_weight": Code(LOINC, "29463-7", "Body weight"),
    "smoking_status": Code(LOINC, "72166-2", "Tobacco smoking status"),
    "yes": Code(SNOMED, "373066001", "Yes (qualifier value)"),
    "no": Code(SNOMED, "373067005", "No (qualifier value)"),
    # --- tobacco
    "tobacco_non_user": Code(SNOMED, "8392000", "Non-smoker (finding)", "2.16.840.1.113883.3.526.3.1189"),
    "tobacco_user": Code(SNOMED, "110483000", "Tobacco user (finding)", "2.16.840.1.113883.3.526.3.1170"),
    "tobacco_counseling": Code(
        SNOMED, "225323000", "Smoking cessation education (procedure)", "2.16.840.1.113883.3.526.3.509"
    ),
    # --- child weight counseling (CMS155)
    "nutrition_counseling": Code(SNOMED, "11816003", "Diet education (procedure)", _VS + "195.12.1003"),
    "activity_counseling": Code(SNOMED, "304507003", "Exercise education (procedure)", _VS + "118.12.1035"),
    # --- dental
    "fluoride_varnish": Code(CDT, "D1206", "topical application of fluoride varnish", _VS + "125.12.1002"),
    # --- medications
    "statin_moderate": Code(
        RXNORM, "617310", "atorvastatin 20 MG Oral Tablet", "2.16.840.1.113883.3.526.3.1575"
    ),
    # --- childhood immunizations (CVX) for CMS117
    "vax_dtap": Code(CVX, "20", "DTaP", _VS + "196.12.1214"),
    "vax_ipv": Code(CVX, "10", "IPV", _VS + "196.12.1219"),
    "vax_mmr": Code(CVX, "03", "MMR", _VS + "196.12.1224"),
    "vax_hib": Code(CVX, "49", "Hib (PRP-OMP)", _VS + "110.12.1083"),
    "vax_hepb": Code(CVX, "08", "Hep B, adolescent or pediatric", _VS + "196.12.1216"),
    "vax_vzv": Code(CVX, "21", "varicella", _VS + "196.12.1170"),
    "vax_pcv": Code(CVX, "133", "Pneumococcal conjugate PCV 13", _VS + "196.12.1221"),
    "vax_hepa": Code(CVX, "83", "Hep A, ped/adol, 2 dose", _VS + "196.12.1215"),
    "vax_rota": Code(CVX, "119", "rotavirus, monovalent"),  # direct-reference code in CMS117
    "vax_flu": Code(
        CVX, "150", "Influenza, injectable, quadrivalent, preservative free", _VS + "196.12.1218"
    ),
}


def code(concept: str) -> Code:
    """Look up a curated code; KeyError names the missing concept."""
    return CODES[concept]
