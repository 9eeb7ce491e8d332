"""Build the UDS+ resources of one center and reporting year from the warehouse, de-identified.

Input: the UDS module's per-patient facts (``uds_patients``, ``uds_visits``: the UDS universe and the
category of every Table 3A/3B/4 line), the eCQM results (``measure_results``) and the flat views. Output:
resources in the IG's profiles, keyed by resource type, plus the id map for the re-link store. Each
builder keeps only elements the profile marks as supported, dates as their year, ids as keyed
pseudonyms with every reference rewritten, and never a name, telecom, identifier, address line,
narrative or free text (docs/udsplus.md lists the rules and their sources).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.registry import all_measures
from chc_equity.uds.config import UdsConfig
from chc_equity.uds.patients import PATIENTS, VISITS
from chc_equity.uds.quality import DM, HTN, LINES_6B, QualityLine, quality_flags
from chc_equity.udsplus import ig
from chc_equity.udsplus.deid import Pseudonymizer, age_on_dec31, age_quantity, deidentify_zip, year_of

Resource = dict[str, Any]
UNKNOWN_LANGUAGE = ("und", "unk", "")

# UDS Table 4 insurance category -> the IG's insurance code (Table 4 lines 7-11)
INSURANCE_CODE = {
    "none": "none-or-uninsured",
    "uninsured": "none-or-uninsured",
    "medicaid": "medicaid-title-19-21",
    "chip": "chip-medicaid",
    "dual": "dually-eligible-medicaid-medicare",
    "medicare": "medicare",
    "other_public": "other-non-chip-public-insurance",
    "other_public_chip": "other-public-insurance-chip",
    "private": "private-insurance",
}
# Table 4 income line -> the IG's income Observation value (a range in % of the poverty guideline)
INCOME_RANGE: dict[str, dict[str, Any]] = {
    "1": {"high": {"value": 100, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}},
    "2": {
        "low": {"value": 101, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        "high": {"value": 150, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    },
    "3": {
        "low": {"value": 151, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        "high": {"value": 200, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    },
    "4": {"low": {"value": 201, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}},
}
# 3B gender identity / sexual orientation lines -> the IG's codes (no code: line 25a / 18a, not recorded)
GENDER_CODE = {
    "20": (ig.SNOMED, "446151000124109"),
    "21": (ig.SNOMED, "446141000124107"),
    "22": (ig.SNOMED, "407377005"),
    "23": (ig.SNOMED, "407376001"),
    "24": (ig.SNOMED, "446131000124102"),
    "25": (ig.NULL_FLAVOR, "ASKU"),
}
ORIENTATION_CODE = {
    "13": (ig.SNOMED, "38628009"),
    "14": (ig.SNOMED, "20430005"),
    "15": (ig.SNOMED, "42035005"),
    "16": (ig.NULL_FLAVOR, "OTH"),
    "17": (ig.NULL_FLAVOR, "UNK"),
    "18": (ig.NULL_FLAVOR, "ASKU"),
}
HOUSING_CODE = {
    "17": "homeless-shelter",
    "18": "transitional",
    "19": "doubling-up",
    "20": "street",
    "21": "other",
    "21a": "permanent-supportive-housing",
    "22": "unknown",
}
AG_CODE = {"14": "migratory", "15": "seasonal", "16": "agricultural-worker-unspecified"}
OBSERVATION_SKIP = ("99500-1", "76690-7")  # carried as the income / sexual orientation Observations


@dataclass
class HealthCenter:
    """The manifest's health-center information (configuration, not warehouse data)."""

    uei: str
    grant_number: str
    name: str
    address: dict[str, Any]  # FHIR Address: line, city, state, postalCode
    contact_family: str
    contact_given: list[str]
    phone: str
    prenatal_by_referral_only: bool = False
    funding_streams: tuple[str, ...] = ("CHC",)


@dataclass
class Extract:
    """The resources of one submission and every id they replaced (for the re-link store)."""

    year: int
    center: str
    key: bytes = field(repr=False)
    resources: dict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, original id) -> pseudonym

    def __post_init__(self) -> None:
        self._pseudonymizer = Pseudonymizer(self.key, self.year, self.center)

    def ps(self, rtype: str, rid: str) -> str:
        """The pseudonym of ``rtype/rid`` (recorded for the re-link store)."""
        if (rtype, rid) not in self.ids:
            self.ids[(rtype, rid)] = self._pseudonymizer(rtype, rid)
        return self.ids[(rtype, rid)]

    @property
    def id_map(self) -> list[tuple[str, str, str]]:
        return [(rtype, rid, new) for (rtype, rid), new in self.ids.items()]

    def add(self, r: Resource) -> None:
        self.resources[r["resourceType"]].append(r)


def _coding(system: str | None, code: str | None) -> dict[str, str]:
    return {"system": system, "code": code} if system else {"code": code}  # type: ignore[dict-item]


def _concept(codings: Iterable[tuple[str | None, str | None]]) -> dict[str, Any] | None:
    cs = [_coding(s, c) for s, c in codings if c]
    return {"coding": cs} if cs else None


def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [profile]}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _codes(
    con: duckdb.DuckDBPyConnection, table: str, center: str, ids: set[str]
) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not ids:
        return out
    for rid, system, code in con.execute(
        f"SELECT id, system, code FROM flat.{table} WHERE center = ? AND code IS NOT NULL "
        "AND id IN (SELECT unnest(?::VARCHAR[])) ORDER BY id, system, code",
        [center, sorted(ids)],
    ).fetchall():
        out[rid].append((system, code))
    return out


# --- quality flags ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineFlags:
    ip: bool
    den: bool  # in the UDS denominator (after exclusions/exceptions, groups combined as 6B/7 do)
    num: bool  # meets the measure
    denexcl: bool
    denexp: bool
    numexcl: bool


def line_flags(con: duckdb.DuckDBPyConnection, year: int, center: str) -> dict[str, dict[str, LineFlags]]:
    """Report name -> patient id -> flags, for every 6B/7 line whose eCQM has results for the year.

    ``den``/``num`` are the patient's UDS counts (so den - denexcl - denexp and num - numexcl give the
    reported cells under either reading of ``den``); ``denexcl``/``denexp``/``numexcl`` mark a patient
    who met a group's denominator (numerator) but was excluded or excepted and is not counted.
    """
    uds = quality_flags(con, year)
    specs = [(s, ig.REPORT_6B[s.line]) for s in LINES_6B if s.cms_id] + [
        (QualityLine("2", "", HTN), ig.REPORT_7[HTN]),
        (QualityLine("3", "", DM), ig.REPORT_7[DM]),
    ]
    names = {m.measure.cms_id: m.measure.name for m in all_measures()}
    out: dict[str, dict[str, LineFlags]] = {}
    for spec, report in specs:
        assert spec.cms_id
        if spec.cms_id not in uds:
            continue
        group = "AND r.group_id = ?" if spec.group else ""
        raw = {
            pid: (ip, de, dx, ne)
            for pid, ip, de, dx, ne in con.execute(
                f"""
                SELECT r.patient_id, bool_or(r.initial_population),
                  bool_or(coalesce(r.denominator_exclusion, false) AND r.denominator),
                  bool_or(coalesce(r.denominator_exception, false) AND r.denominator),
                  bool_or(coalesce(r.numerator_exclusion, false) AND r.numerator)
                FROM {RESULTS_TABLE} r
                JOIN {PATIENTS} u ON u.center = r.center AND u.patient_id = r.patient_id
                WHERE r.center = ? AND r.measure = ? AND r.period_start = ? AND r.period_end = ?
                  AND r.subject_type = 'Patient' {group}
                GROUP BY ALL
                """,
                [center, names[spec.cms_id], date(year, 1, 1), date(year, 12, 31)]
                + ([spec.group] if spec.group else []),
            ).fetchall()
        }
        flags: dict[str, LineFlags] = {}
        for (c, pid), (den, met) in uds[spec.cms_id].items():
            if c != center:
                continue
            ip, de, dx, ne = raw.get(pid, (False, False, False, False))
            dexcl = bool(de) and not den
            flags[pid] = LineFlags(
                bool(ip) or den,
                den,
                met,
                dexcl,
                bool(dx) and not den and not dexcl,
                bool(ne) and den and not met,
            )
        out[report] = flags
    return out


# --- the builders -----------------------------------------------------------------------------------
def _race_extension(url: str, codes: list[tuple[str, str]], omb_set: set[str] | None) -> Resource:
    """US Core race/ethnicity shape: ombCategory + detailed codes as recorded, text from the OMB codes."""
    omb = [c for cat, c in codes if cat == "ombCategory"]
    detailed = [c for cat, c in codes if cat == "detailed"]
    parts: list[Resource] = [
        {"url": "ombCategory", "valueCoding": _coding(ig.CDCREC, c)}
        for c in omb
        if omb_set is None or c in omb_set
    ]
    if not parts and not detailed:
        parts.append({"url": "ombCategory", "valueCoding": _coding(ig.NULL_FLAVOR, "UNK")})
    parts += [{"url": "detailed", "valueCoding": _coding(ig.CDCREC, c)} for c in detailed]
    label = ",".join(omb + detailed) or "UNK"
    parts.append({"url": "text", "valueString": label})
    return {"url": url, "extension": parts}


OMB_RACE = {"1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "UNK", "ASKU"}
OMB_ETHNICITY = {"2135-2", "2186-5", "UNK", "ASKU"}


def build_patient(p: dict[str, Any], pid: str, year: int, race: list, eth: list) -> Resource:
    ext: list[Resource] = [
        _race_extension(ig.EXT_RACE, race, OMB_RACE),
        _race_extension(ig.EXT_ETHNICITY, eth, OMB_ETHNICITY),
    ]
    sex = {"Male": "M", "Female": "F"}.get(p["sex"])
    if sex:
        ext.append({"url": ig.EXT_BIRTHSEX, "valueCode": sex})
    age = age_on_dec31(p["birth"], year)
    if age is not None:
        ext.append({"url": ig.EXT_AGE, "valueQuantity": age_quantity(age)})
    if p["gender_line"] in GENDER_CODE:
        ext.append(
            {"url": ig.EXT_GENDER_IDENTITY, "valueCodeableConcept": _concept([GENDER_CODE[p["gender_line"]]])}
        )
    if p["agricultural_line"]:
        ext.append({"url": ig.EXT_AG, "valueCode": AG_CODE[p["agricultural_line"]]})
    if p["homeless_line"]:
        ext.append({"url": ig.EXT_HOUSING, "valueCode": HOUSING_CODE[p["homeless_line"]]})
    if p["veteran"] is not None:  # the warehouse always knows (False by default); a voucher person may not
        ext.append({"url": ig.EXT_VETERAN, "valueBoolean": bool(p["veteran"])})
    out: Resource = {
        "resourceType": "Patient",
        "id": pid,
        "meta": _meta(ig.PROFILE["Patient"]),
        "extension": ext,
    }
    if p["deceased_datetime"]:
        out["deceasedDateTime"] = year_of(p["deceased_datetime"])
    elif p["deceased_boolean"] is not None:
        out["deceasedBoolean"] = bool(p["deceased_boolean"])
    z = deidentify_zip(p["postal_code"], p["country"])
    address: Resource = {"postalCode": z.value}
    if z.absent_reason:
        address["_postalCode"] = {"extension": [{"url": ig.DATA_ABSENT, "valueCode": z.absent_reason}]}
    out["address"] = [address]
    lang = (p["lang"] or "").strip().lower().split("-")[0]
    if lang not in UNKNOWN_LANGUAGE and p["lep"] is not None:
        code = lang if p["lep"] else "en"  # the 3B line 12 fact: a language other than English or not
        out["communication"] = [{"language": _concept([(ig.BCP47, code)])}]
    return out


def build_income(oid: str, pid: str, line: str, year: int) -> Resource:
    out: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "meta": _meta(ig.INCOME_PROFILE),
        "status": "final",
        "code": _concept([(ig.LOINC, ig.INCOME_LOINC)]),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": str(year),
    }
    if line in INCOME_RANGE:
        out["valueRange"] = INCOME_RANGE[line]
    else:
        out["valueRange"] = {"extension": [{"url": ig.DATA_ABSENT, "valueCode": "unknown"}]}
    return out


def build_orientation(oid: str, pid: str, line: str, year: int) -> Resource:
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": _meta(ig.ORIENTATION_PROFILE),
        "status": "final",
        "code": _concept([(ig.LOINC, ig.ORIENTATION_LOINC)]),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": str(year),
        "valueCodeableConcept": _concept([ORIENTATION_CODE[line]]),
    }


def build_coverage(cid: str, pid: str, insurance: str, payor: str | None, year: int) -> Resource:
    code = INSURANCE_CODE[insurance]
    return {
        "resourceType": "Coverage",
        "id": cid,
        "meta": _meta(ig.PROFILE["Coverage"]),
        "status": "active",
        "type": _concept([(ig.CS_INSURANCE, code)]),
        "beneficiary": {"reference": f"Patient/{pid}"},
        "period": {"start": str(year), "end": str(year)},
        # self-pay (uninsured or no payer recorded): the patient pays, as FHIR Coverage.payor allows
        "payor": [
            {
                "reference": f"Organization/{payor}"
                if payor and code != "none-or-uninsured"
                else f"Patient/{pid}"
            }
        ],
    }


def reporting_parameters(
    pid: str, p: dict[str, Any], streams: str, flags: dict[str, dict[str, LineFlags]], in_3a: bool
) -> Resource:
    parts: list[Resource] = [
        {"name": "patientsByZip", "valueBoolean": True},
        {"name": "table3A", "valueBoolean": in_3a},
        {"name": "table3B", "valueBoolean": True},
        {"name": "table4", "valueBoolean": True},
        {"name": "table6A", "valueBoolean": True},
    ]
    reports = list(ig.REPORT_6B.values()) + list(ig.REPORT_7.values())
    for report in reports:
        line = flags.get(report)
        f = line.get(p["patient_id"]) if line is not None else None
        part: Resource = {"name": report, "valueBoolean": bool(f and f.ip)}
        if line is not None:  # the eCQM ran for the year: every patient carries the cross-check flags
            f = f or LineFlags(False, False, False, False, False, False)
            part["part"] = [
                {"name": f"{report}-{s}", "valueBoolean": bool(getattr(f, s, False))}
                for s in ("den", "denexcl", "denexp", "num", "numexcl")
            ]
        parts.append(part)
    return {
        "resourceType": "Parameters",
        "id": f"rp-{pid}",
        "meta": _meta(ig.REPORTING_PROFILE),
        "parameter": [
            {"name": "patientReference", "valueReference": {"reference": f"Patient/{pid}"}},
            {"name": "combinedFundingStreams", "valueString": streams},
            {"name": "reportNames", "part": parts},
        ],
    }


def funding_streams(p: dict[str, Any], center_streams: tuple[str, ...]) -> str:
    """The center's CHC grant for everyone; MHC/HCH/PHPC for the patients each program serves."""
    out = [s for s in ("CHC",) if s in center_streams]
    if "MHC" in center_streams and p["agricultural_line"]:
        out.append("MHC")
    if "HCH" in center_streams and p["homeless_line"]:
        out.append("HCH")
    if "PHPC" in center_streams and p["public_housing"]:
        out.append("PHPC")
    return ",".join(out or center_streams[:1])


# --- clinical resources from the flat views -----------------------------------------------------------
OBS_DAY = "coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant, o.issued)"


def _in_year(expr: str) -> str:
    return f"left({expr}, 4) = ?"


def _clinical(
    con: duckdb.DuckDBPyConnection, ex: Extract, pids: dict[str, str], encs: dict[str, str]
) -> None:
    """Condition, Procedure, Immunization, Observation, MedicationRequest, AllergyIntolerance,
    ServiceRequest and AdverseEvent of the UDS patients dated in the year (a Condition: active in it)."""
    c, y = ex.center, str(ex.year)
    ps = ex.ps

    def subject(row: dict[str, Any]) -> dict[str, str]:
        return {"reference": f"Patient/{pids[row['patient_id']]}"}

    def encounter(row: dict[str, Any], out: Resource) -> None:
        if row.get("encounter_id") in encs:
            out["encounter"] = {"reference": f"Encounter/{encs[row['encounter_id']]}"}

    patients = sorted(pids)
    base = "center = ? AND patient_id IN (SELECT unnest(?::VARCHAR[]))"

    # Condition (the UDS+ diagnosis profile)
    rows = _rows(
        con,
        f"""SELECT * FROM flat.condition WHERE {base}
            AND coalesce(left(coalesce(onset_datetime, onset_period_start, recorded_date), 10), '0') <= ?
            AND (abatement_datetime IS NULL OR left(abatement_datetime, 10) >= ?)
            AND coalesce(verification_status_code, '') <> 'entered-in-error' ORDER BY id""",
        [c, patients, f"{y}-12-31", f"{y}-01-01"],
    )
    ids = {r["id"] for r in rows}
    codes, cats = _codes(con, "condition_code", c, ids), _codes(con, "condition_category", c, ids)
    for r in rows:
        if not codes.get(r["id"]):
            continue
        out: Resource = {
            "resourceType": "Condition",
            "id": ps("Condition", r["id"]),
            "meta": _meta(ig.PROFILE["Condition"]),
        }
        if r["clinical_status_code"]:
            out["clinicalStatus"] = _concept([(r["clinical_status_system"], r["clinical_status_code"])])
        if r["verification_status_code"]:
            out["verificationStatus"] = _concept(
                [(r["verification_status_system"], r["verification_status_code"])]
            )
        out["category"] = [
            _concept(
                cats[r["id"]][:1]
                or [("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")]
            )
        ]
        out["code"] = _concept(codes[r["id"]])
        out["subject"] = subject(r)
        encounter(r, out)
        if year_of(r["onset_datetime"] or r["onset_period_start"]):
            out["onsetDateTime"] = year_of(r["onset_datetime"] or r["onset_period_start"])
        if year_of(r["abatement_datetime"]):
            out["abatementDateTime"] = year_of(r["abatement_datetime"])
        if year_of(r["recorded_date"]):
            out["recordedDate"] = year_of(r["recorded_date"])
        ex.add(out)

    # Procedure
    rows = _rows(
        con,
        f"SELECT * FROM flat.procedure WHERE {base} AND "
        f"{_in_year('coalesce(performed_datetime, performed_period_start, recorded)')} ORDER BY id",
        [c, patients, y],
    )
    codes = _codes(con, "procedure_code", c, {r["id"] for r in rows})
    for r in rows:
        if not codes.get(r["id"]) or not r["status"]:
            continue
        out = {
            "resourceType": "Procedure",
            "id": ps("Procedure", r["id"]),
            "meta": _meta(ig.PROFILE["Procedure"]),
            "status": r["status"],
            "code": _concept(codes[r["id"]]),
            "subject": subject(r),
        }
        encounter(r, out)
        out["performedDateTime"] = y
        ex.add(out)

    # Immunization
    rows = _rows(
        con,
        f"SELECT * FROM flat.immunization WHERE {base} AND "
        f"{_in_year('coalesce(occurrence_datetime, recorded)')} ORDER BY id",
        [c, patients, y],
    )
    codes = _codes(con, "immunization_vaccine_code", c, {r["id"] for r in rows})
    for r in rows:
        if not codes.get(r["id"]) or not r["status"]:
            continue
        out = {
            "resourceType": "Immunization",
            "id": ps("Immunization", r["id"]),
            "meta": _meta(ig.PROFILE["Immunization"]),
            "status": r["status"],
            "vaccineCode": _concept(codes[r["id"]]),
            "patient": subject(r),
            "occurrenceDateTime": y,
            "primarySource": True if r["primary_source"] is None else bool(r["primary_source"]),
        }
        ex.add(out)

    # Observation: laboratory -> lab profile; vital signs / exam -> clinical result; others -> generic
    rows = _rows(
        con,
        f"""SELECT o.*, (SELECT list(code) FROM flat.observation_code oc WHERE oc.center = o.center
                                                                        AND oc.id = o.id) AS loincs
            FROM flat.observation o WHERE o.{base} AND
            {_in_year(OBS_DAY)}
            AND coalesce(o.status, '') NOT IN ('entered-in-error', 'cancelled') ORDER BY o.id""",
        [c, patients, y],
    )
    rows = [r for r in rows if not set(r["loincs"] or []) & set(OBSERVATION_SKIP)]
    ids = {r["id"] for r in rows}
    codes, cats = _codes(con, "observation_code", c, ids), _codes(con, "observation_category", c, ids)
    values = _codes(con, "observation_value_code", c, ids)
    for r in rows:
        if not codes.get(r["id"]) or not r["status"]:
            continue
        cat_codes = {code for _, code in cats.get(r["id"], [])}
        profile = (
            ig.LAB_PROFILE
            if "laboratory" in cat_codes
            else ig.CLINICAL_RESULT_PROFILE
            if cat_codes & {"vital-signs", "exam"}
            else ig.OBSERVATION_PROFILE
        )
        out = {
            "resourceType": "Observation",
            "id": ps("Observation", r["id"]),
            "meta": _meta(profile),
            "status": r["status"],
            "category": [_concept([cc]) for cc in cats.get(r["id"], [])]
            or [_concept([("http://terminology.hl7.org/CodeSystem/observation-category", "survey")])],
            "code": _concept(codes[r["id"]]),
            "subject": subject(r),
        }
        encounter(r, out)
        out["effectiveDateTime"] = y
        if r["value_quantity_value"] is not None:
            q: Resource = {"value": r["value_quantity_value"]}
            for k in ("unit", "system", "code", "comparator"):
                if r[f"value_quantity_{k}"]:
                    q[k] = r[f"value_quantity_{k}"]
            out["valueQuantity"] = q
        elif values.get(r["id"]):
            out["valueCodeableConcept"] = _concept(values[r["id"]])
        elif r["value_boolean"] is not None:
            out["valueBoolean"] = bool(r["value_boolean"])
        elif r["value_integer"] is not None:
            out["valueInteger"] = int(r["value_integer"])
        ex.add(out)  # free-text values (valueString) are never submitted

    # MedicationRequest
    rows = _rows(
        con,
        f"SELECT * FROM flat.medication_request WHERE {base} AND {_in_year('authored_on')} ORDER BY id",
        [c, patients, y],
    )
    codes = _codes(con, "medication_request_medication_code", c, {r["id"] for r in rows})
    med_codes = _codes(con, "medication_code", c, {r["medication_id"] for r in rows if r["medication_id"]})
    for r in rows:
        med = codes.get(r["id"]) or med_codes.get(r["medication_id"] or "")
        if not med or not r["status"] or not r["intent"]:
            continue
        out = {
            "resourceType": "MedicationRequest",
            "id": ps("MedicationRequest", r["id"]),
            "meta": _meta(ig.PROFILE["MedicationRequest"]),
            "status": r["status"],
            "intent": r["intent"],
            "medicationCodeableConcept": _concept(med),
            "subject": subject(r),
        }
        encounter(r, out)
        out["authoredOn"] = y
        ex.add(out)

    # AllergyIntolerance (recorded by the end of the year)
    rows = _rows(
        con,
        f"SELECT * FROM flat.allergy_intolerance WHERE {base} AND "
        "coalesce(left(coalesce(recorded_date, onset_datetime), 10), '0') <= ? ORDER BY id",
        [c, patients, f"{y}-12-31"],
    )
    codes = _codes(con, "allergy_intolerance_code", c, {r["id"] for r in rows})
    for r in rows:
        if not codes.get(r["id"]):
            continue
        out = {
            "resourceType": "AllergyIntolerance",
            "id": ps("AllergyIntolerance", r["id"]),
            "meta": _meta(ig.PROFILE["AllergyIntolerance"]),
        }
        if r["clinical_status_code"]:
            out["clinicalStatus"] = _concept([(r["clinical_status_system"], r["clinical_status_code"])])
        if r["verification_status_code"]:
            out["verificationStatus"] = _concept(
                [(r["verification_status_system"], r["verification_status_code"])]
            )
        for k in ("type", "criticality"):
            if r[k]:
                out[k] = r[k]
        if r["category"]:
            out["category"] = [r["category"]]
        out["code"] = _concept(codes[r["id"]])
        out["patient"] = subject(r)
        if year_of(r["recorded_date"]):
            out["recordedDate"] = year_of(r["recorded_date"])
        ex.add(out)

    # ServiceRequest
    rows = _rows(
        con,
        f"SELECT * FROM flat.service_request WHERE {base} AND "
        f"{_in_year('coalesce(authored_on, occurrence_datetime, occurrence_period_start)')} ORDER BY id",
        [c, patients, y],
    )
    codes = _codes(con, "service_request_code", c, {r["id"] for r in rows})
    for r in rows:
        if not codes.get(r["id"]) or not r["status"] or not r["intent"]:
            continue
        out = {
            "resourceType": "ServiceRequest",
            "id": ps("ServiceRequest", r["id"]),
            "meta": _meta(ig.PROFILE["ServiceRequest"]),
            "status": r["status"],
            "intent": r["intent"],
            "doNotPerform": bool(r["do_not_perform"]),
            "code": _concept(codes[r["id"]]),
            "subject": subject(r),
        }
        encounter(r, out)
        out["authoredOn"] = y
        ex.add(out)

    # AdverseEvent
    rows = _rows(
        con,
        f"SELECT * FROM flat.adverse_event WHERE {base} AND {_in_year('coalesce(date, recorded_date)')} "
        "ORDER BY id",
        [c, patients, y],
    )
    codes = _codes(con, "adverse_event_event", c, {r["id"] for r in rows})
    for r in rows:
        if not codes.get(r["id"]) or not r["actuality"]:
            continue
        out = {
            "resourceType": "AdverseEvent",
            "id": ps("AdverseEvent", r["id"]),
            "meta": _meta(ig.PROFILE["AdverseEvent"]),
            "actuality": r["actuality"],
            "event": _concept(codes[r["id"]]),
            "subject": subject(r),
            "date": y,
        }
        ex.add(out)


# --- the whole extract ------------------------------------------------------------------------------
def extract(
    con: duckdb.DuckDBPyConnection,
    year: int,
    center: str,
    key: bytes,
    *,
    config: UdsConfig | None = None,
    hc: HealthCenter | None = None,
) -> Extract:
    """Every UDS+ resource of ``center``'s UDS patients for ``year`` (builds ``uds_patients`` first)."""
    from chc_equity.uds.patients import build_uds_patients

    config = config or UdsConfig()
    build_uds_patients(con, year, [center], config)
    ex = Extract(year, center, key)
    ps = ex.ps
    patients = _rows(
        con,
        f"""SELECT u.*, fp.deceased_boolean, fp.deceased_datetime, fp.postal_code,
                   coalesce(fp.preferred_language_code, fp.first_language_code) AS lang,
                   json_extract_string(r.resource, '$.address[0].country') AS country
            FROM {PATIENTS} u JOIN flat.patient fp ON fp.center = u.center AND fp.id = u.patient_id
            LEFT JOIN resources r ON r.center = u.center AND r.type = 'Patient' AND r.id = u.patient_id
            WHERE u.center = ? ORDER BY u.patient_id""",
        [center],
    )
    ids = {p["patient_id"] for p in patients}
    race: dict[str, list] = defaultdict(list)
    eth: dict[str, list] = defaultdict(list)
    for table, into in (("patient_race", race), ("patient_ethnicity", eth)):
        for pid, cat, code in con.execute(
            f"SELECT id, category, code FROM flat.{table} WHERE center = ? AND system = ? "
            "AND code IS NOT NULL ORDER BY id, category, code",
            [center, ig.CDCREC],
        ).fetchall():
            if pid in ids and (cat, code) not in into[pid]:
                into[pid].append((cat, code))
    flags = line_flags(con, year, center)
    payors = dict(
        con.execute(
            "SELECT patient_id, min(payor_id) FROM flat.coverage WHERE center = ? AND payor_id IS NOT NULL "
            "GROUP BY ALL",
            [center],
        ).fetchall()
    )
    streams = hc.funding_streams if hc else ("CHC",)
    pids: dict[str, str] = {}
    for p in patients:
        pid = pids[p["patient_id"]] = ps("Patient", p["patient_id"])
        ex.add(build_patient(p, pid, year, race[p["patient_id"]], eth[p["patient_id"]]))
        ex.add(
            build_income(ps("Observation", f"udsplus-income|{p['patient_id']}"), pid, p["income_line"], year)
        )
        if p["orientation_line"] in ORIENTATION_CODE:
            ex.add(
                build_orientation(
                    ps("Observation", f"udsplus-orientation|{p['patient_id']}"),
                    pid,
                    p["orientation_line"],
                    year,
                )
            )
        payor = payors.get(p["patient_id"])
        ex.add(
            build_coverage(
                ps("Coverage", f"udsplus-principal|{p['patient_id']}"),
                pid,
                p["insurance"],
                ps("Organization", payor) if payor else None,
                year,
            )
        )
        in_3a = p["sex"] in ("Male", "Female") and p["age"] is not None and p["age"] >= 0
        ex.add(reporting_parameters(pid, p, funding_streams(p, streams), flags, in_3a))
    encs = _encounters(con, ex, pids, patients, config)
    _clinical(con, ex, pids, encs)
    return ex


def _encounters(
    con: duckdb.DuckDBPyConnection,
    ex: Extract,
    pids: dict[str, str],
    patients: list[dict[str, Any]],
    config: UdsConfig,
) -> dict[str, str]:
    """The countable visits (``uds_visits``) as UDS+ Encounters, and the Locations they happened at."""
    c, ps = ex.center, ex.ps
    cfg = config.for_center(c)
    ages = {p["patient_id"]: age_on_dec31(p["birth"], ex.year) for p in patients}
    visits = _rows(
        con,
        f"""SELECT v.encounter_id AS id, v.patient_id, e.status, e.class_system, e.class_code,
                   e.discharge_disposition_system, e.discharge_disposition_code
            FROM {VISITS} v JOIN flat.encounter e ON e.center = v.center AND e.id = v.encounter_id
            WHERE v.center = ? ORDER BY v.encounter_id""",
        [c],
    )
    ids = {v["id"] for v in visits}
    types, reasons = _codes(con, "encounter_type", c, ids), _codes(con, "encounter_reason_code", c, ids)
    locs: dict[str, list[str]] = defaultdict(list)
    for eid, lid in con.execute(
        "SELECT id, location_id FROM flat.encounter_location WHERE center = ? AND location_id IS NOT NULL "
        "ORDER BY id, location_id",
        [c],
    ).fetchall():
        if eid in ids:
            locs[eid].append(lid)
    encs: dict[str, str] = {}
    for v in visits:
        encs[v["id"]] = ps("Encounter", v["id"])
    used = sorted({lid for lst in locs.values() for lid in lst})
    loc_ids = {lid: ps("Location", lid) for lid in used}
    for v in visits:
        out: Resource = {
            "resourceType": "Encounter",
            "id": encs[v["id"]],
            "meta": _meta(ig.PROFILE["Encounter"]),
        }
        age = ages.get(v["patient_id"])
        if age is not None:
            out["extension"] = [{"url": ig.EXT_AGE, "valueQuantity": age_quantity(age)}]
        out["status"] = v["status"]
        out["class"] = _coding(v["class_system"], v["class_code"])
        out["type"] = [_concept([t]) for t in types.get(v["id"], [])]
        out["subject"] = {"reference": f"Patient/{pids[v['patient_id']]}"}
        out["period"] = {"start": str(ex.year), "end": str(ex.year)}
        if reasons.get(v["id"]):
            out["reasonCode"] = [_concept([r]) for r in reasons[v["id"]]]
        if v["discharge_disposition_code"]:
            out["hospitalization"] = {
                "dischargeDisposition": _concept(
                    [(v["discharge_disposition_system"], v["discharge_disposition_code"])]
                )
            }
        if locs.get(v["id"]):
            out["location"] = [
                {"location": {"reference": f"Location/{loc_ids[lid]}"}} for lid in locs[v["id"]]
            ]
        if not out["type"]:
            del out["type"]
        ex.add(out)
    ltypes = _codes(con, "location_type", c, set(used))
    status = dict(con.execute("SELECT id, status FROM flat.location WHERE center = ?", [c]).fetchall())
    for lid in used:
        codings = list(ltypes.get(lid, []))
        if lid in cfg.school_based_sites and not any(code.upper() == "SCHOOL" for _, code in codings):
            codings.append((ig.ROLE_CODE, "SCHOOL"))
        if lid in cfg.public_housing_sites and not any(code == "public-housing" for _, code in codings):
            codings.append((ig.CS_SERVICE_DELIVERY, "public-housing"))
        out = {"resourceType": "Location", "id": loc_ids[lid], "meta": _meta(ig.PROFILE["Location"])}
        if status.get(lid):
            out["status"] = status[lid]
        out["name"] = f"site-{loc_ids[lid][:8]}"  # the site's own name is not needed and may locate patients
        if codings:
            out["type"] = [_concept([cd]) for cd in codings]
        ex.add(out)
    return encs
