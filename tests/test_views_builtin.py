"""Built-in ViewDefinitions: valid, compilable, and correct on the eCQM and Synthea test data.

The measure stage reads only the flat tables, so these tests pin concrete values the eCQMs depend on
(birth dates, race codes, BP components, not-done reasons ...) for specific public test resources.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from chc_equity.views.build import BUILTIN_VIEWS, build_views, center_filter, quote_literal
from chc_equity.warehouse import FLAT_SCHEMA, connect_memory
from conftest import shared_dir

SQL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = {
    r[0].lower()
    for r in duckdb.sql(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category <> 'unreserved'"
    ).fetchall()
}
MAIN_TABLES = {
    "Patient": "patient",
    "Encounter": "encounter",
    "Condition": "condition",
    "Observation": "observation",
    "Procedure": "procedure",
    "MedicationRequest": "medication_request",
    "Immunization": "immunization",
    "DiagnosticReport": "diagnostic_report",
    "Coverage": "coverage",
    "ServiceRequest": "service_request",
    "Task": "task",
    "AllergyIntolerance": "allergy_intolerance",
    "DeviceRequest": "device_request",
    "Claim": "claim",
    "Location": "location",
    "Organization": "organization",
    "Practitioner": "practitioner",
    "Medication": "medication",
    "AdverseEvent": "adverse_event",
}


# ----------------------------------------------------------------------------- definition shape
def _columns(selects: list[dict[str, Any]]) -> Iterator[str]:
    """Output column names in order; a unionAll contributes its first branch (all branches must match)."""
    for sel in selects:
        for col in sel.get("column", []):
            yield col["name"]
        yield from _columns(sel.get("select", []))
        if sel.get("unionAll"):
            yield from _columns(sel["unionAll"][:1])


def _union_branches_match(selects: list[dict[str, Any]]) -> bool:
    for sel in selects:
        branches = sel.get("unionAll", [])
        if branches and len({tuple(_columns([b])) for b in branches}) != 1:
            return False
        if not _union_branches_match(sel.get("select", []) + branches):
            return False
    return True


@pytest.mark.parametrize("name", sorted(BUILTIN_VIEWS))
def test_definition_is_valid_view_definition(name: str) -> None:
    view = BUILTIN_VIEWS[name]
    assert view["resourceType"] == "ViewDefinition"
    assert view["name"] == name and SQL_NAME.match(name)
    assert view["status"] == "active"
    assert re.match(r"^[A-Z][A-Za-z]+$", view["resource"])
    assert view["select"], "a view needs at least one select"
    cols = list(_columns(view["select"]))
    assert cols[0] == "id", "every table starts with the resource id"
    assert len(cols) == len(set(cols)), f"duplicate columns in {name}: {cols}"
    assert "center" not in cols, "center is the passthrough column added by the compiler"
    for col in cols:
        assert SQL_NAME.match(col), col
        assert col not in RESERVED, f"{name}.{col} is a reserved SQL word"
    assert _union_branches_match(view["select"])


@pytest.mark.parametrize("name", sorted(BUILTIN_VIEWS))
def test_definition_compiles(name: str) -> None:
    compiler = pytest.importorskip("chc_equity.views.compiler", reason="views compiler not available")
    sql = compiler.compile_view(BUILTIN_VIEWS[name], passthrough=("center",))
    con = connect_memory()
    cols = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0").description]
    assert cols == ["center", *_columns(BUILTIN_VIEWS[name]["select"])]


def test_center_filter_quotes() -> None:
    assert quote_literal("o'hara") == "'o''hara'"
    assert center_filter(["a", "b'c"]) == "center IN ('a', 'b''c')"
    with pytest.raises(ValueError):
        center_filter([])


def test_docs_cover_every_table_and_column() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "views.md").read_text(encoding="utf-8")
    for name, view in BUILTIN_VIEWS.items():
        assert f"### {name}" in doc, f"docs/views.md lacks table {name}"
        section = doc.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for col in _columns(view["select"]):
            assert f"| `{col}` |" in section, f"docs/views.md lacks {name}.{col}"


# ----------------------------------------------------------------------------- loading test data
def _resolve_refs(node: Any, urls: dict[str, str]) -> Any:
    """Rewrite Bundle-internal references (urn:uuid:..., absolute fullUrls) to Type/id."""
    if isinstance(node, dict):
        out = {k: _resolve_refs(v, urls) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in urls:
            out["reference"] = urls[ref]
        return out
    if isinstance(node, list):
        return [_resolve_refs(v, urls) for v in node]
    return node


def _bundle_resources(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    entries = [e for e in bundle.get("entry", []) if "resource" in e]
    urls = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in entries
        if "fullUrl" in e
    }
    for e in entries:
        yield _resolve_refs(e["resource"], urls)


def _load(con: duckdb.DuckDBPyConnection, center: str, resources: Iterable[dict[str, Any]]) -> None:
    """Upsert resources into the raw table (last one wins), as a stand-in for the ingest stage."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for res in resources:
        latest[(res["resourceType"], res["id"])] = res
    table = pa.table(
        {
            "center": [center] * len(latest),
            "type": [k[0] for k in latest],
            "id": [k[1] for k in latest],
            "resource": [json.dumps(r) for r in latest.values()],
        }
    )
    con.register("incoming", table)
    con.execute("DELETE FROM resources WHERE center = ?", [center])
    con.execute(
        "INSERT INTO resources (center, type, id, resource) SELECT center, type, id, resource FROM incoming"
    )
    con.unregister("incoming")


def _ecqm_centers() -> dict[str, list[dict[str, Any]]]:
    """One center per measure (test cases reuse ids across measures, like separate health centers)."""
    centers: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(shared_dir("ecqm", "tests").glob("*/*/*.json")):
        measure = path.parts[-3].split("FHIR")[0]
        bundle = json.loads(path.read_text(encoding="utf-8"))
        centers.setdefault(measure, []).extend(
            r for r in _bundle_resources(bundle) if r["resourceType"] != "MeasureReport"
        )
    return centers


def _synthea_bundles() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(shared_dir("synthea", "ma-bundles").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            out.extend(_bundle_resources(json.load(fh)))
    return out


def _synthea_bulk() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(shared_dir("synthea", "bulk-ndjson", "10-patients").glob("*.ndjson")):
        if path.name.startswith("log"):
            continue
        out.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return out


@pytest.fixture(scope="module")
def built() -> duckdb.DuckDBPyConnection:
    pytest.importorskip("chc_equity.views.compiler", reason="views compiler not available")
    con = connect_memory()
    for center, resources in _ecqm_centers().items():
        _load(con, center, resources)
    _load(con, "synthea", _synthea_bundles())
    _load(con, "synthea-bulk", _synthea_bulk())
    counts = build_views(con)
    assert set(counts) == set(BUILTIN_VIEWS)
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    rows = con.execute(sql, params or []).fetchall()
    assert len(rows) == 1, f"expected one row, got {rows}"
    return rows[0]


def _codes(con: duckdb.DuckDBPyConnection, table: str, center: str, rid: str) -> set[tuple[str, str]]:
    rows = con.execute(
        f"SELECT system, code FROM {FLAT_SCHEMA}.{table} WHERE center = ? AND id = ?", [center, rid]
    )
    return set(rows.fetchall())


@pytest.mark.shared
# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize(("rtype", "table"), sorted(MAIN_TABLES.items()))
def test_each_resource_exactly_once_in_main_table(
    built: duckdb.DuckDBPyConnection, rtype: str, table: str
) -> None:
    raw = _one(built, "SELECT count(*) FROM resources WHERE type = ?", [rtype])[0]
    flat, distinct = _one(built, f"SELECT count(*), count(DISTINCT (center, id)) FROM {FLAT_SCHEMA}.{table}")
    assert raw > 0, f"no {rtype} in the test data"
    assert flat == distinct == raw
    missing = _one(
        built,
        f"""
        SELECT count(*) FROM resources r ANTI JOIN {FLAT_SCHEMA}.{table} f
            ON r.center = f.center AND r.id = f.id
        WHERE r.type = ?""",
        [rtype],
    )[0]
    assert missing == 0


@pytest.mark.shared
def test_patient_demographics(built: duckdb.DuckDBPyConnection) -> None:
    row = _one(
        built,
        f"""SELECT birth_date, gender, sex, race_omb_code, race_text, ethnicity_omb_code
        FROM {FLAT_SCHEMA}.patient WHERE center = 'CMS117' AND id = '0fb6a95c-22f0-478b-b643-831b3500656a'""",
    )
    assert row == ("2024-01-01", "unknown", "248152002", "2028-9", "Asian", "2135-2")
    race = built.execute(f"""SELECT category, code, text FROM {FLAT_SCHEMA}.patient_race
        WHERE center = 'CMS117' AND id = '0fb6a95c-22f0-478b-b643-831b3500656a'
        ORDER BY category""").fetchall()
    assert race == [("detailed", "1653-5", "Asian"), ("ombCategory", "2028-9", "Asian")]
    eth = built.execute(f"""SELECT category, code FROM {FLAT_SCHEMA}.patient_ethnicity
        WHERE center = 'CMS117' AND id = '0fb6a95c-22f0-478b-b643-831b3500656a'
        ORDER BY category""").fetchall()
    assert eth == [("detailed", "2180-8"), ("ombCategory", "2135-2")]

    row = _one(
        built,
        f"""SELECT birth_date, gender, birth_sex, gender_identity_system, gender_identity_code
        FROM {FLAT_SCHEMA}.patient WHERE center = 'CMS314' AND id = '23dd9286-8299-4fa0-8edf-2dc19e966deb'""",
    )
    assert row == ("1987-05-25", "male", "F", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "ASKU")

    row = _one(
        built,
        f"""SELECT deceased_datetime, deceased_boolean FROM {FLAT_SCHEMA}.patient
        WHERE center = 'CMS349' AND id = '18ad99cd-c0b1-48c9-ab0b-bb3ab66e1c18'""",
    )
    assert row == ("2026-06-01T00:00:00.000+00:00", None)


@pytest.mark.shared
def test_synthea_patient_language_and_address(built: duckdb.DuckDBPyConnection) -> None:
    row = _one(
        built,
        f"""SELECT birth_date, birth_sex, race_omb_code, preferred_language_code, first_language_code,
            postal_code FROM {FLAT_SCHEMA}.patient
        WHERE center = 'synthea' AND id = 'd67a0cff-8f7e-46f7-bb99-577a6623e59a'""",
    )
    assert row == ("1944-11-28", "M", "2106-3", None, "en-US", "02649")


@pytest.mark.shared
def test_blood_pressure_components(built: duckdb.DuckDBPyConnection) -> None:
    oid = "66756883-fb5d-49bc-b6c0-1c484453ba3b"
    row = _one(
        built,
        f"""SELECT o.status, o.effective_datetime, o.encounter_id, e.class_code
        FROM {FLAT_SCHEMA}.observation o
        JOIN {FLAT_SCHEMA}.encounter e ON e.center = o.center AND e.id = o.encounter_id
        WHERE o.center = 'CMS165' AND o.id = ?""",
        [oid],
    )
    assert row[:3] == ("final", "2026-01-02T00:00:00.000+00:00", "d5c74726-837e-4e9a-9347-2dcf126dfa74-1")
    assert _codes(built, "observation_code", "CMS165", oid) == {("http://loinc.org", "85354-9")}
    assert ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs") in _codes(
        built, "observation_category", "CMS165", oid
    )
    comps = dict(
        built.execute(
            f"""SELECT code, value_quantity_value FROM {FLAT_SCHEMA}.observation_component
        WHERE center = 'CMS165' AND id = ? AND code_system = 'http://loinc.org'""",
            [oid],
        ).fetchall()
    )
    assert comps == {"8480-6": 139, "8462-4": 89}
    unit = _one(
        built,
        f"""SELECT DISTINCT value_quantity_code FROM {FLAT_SCHEMA}.observation_component
        WHERE center = 'CMS165' AND id = ?""",
        [oid],
    )[0]
    assert unit == "mm[Hg]"


@pytest.mark.shared
def test_synthea_observation_values(built: duckdb.DuckDBPyConnection) -> None:
    comps = dict(
        built.execute(f"""SELECT code, round(value_quantity_value, 2) FROM {FLAT_SCHEMA}.observation_component
        WHERE center = 'synthea' AND id = '4edade61-bf65-477f-8f67-42eeac9dc1f8'""").fetchall()
    )
    assert comps == {"8480-6": pytest.approx(115.18), "8462-4": pytest.approx(80.03)}
    row = _one(
        built,
        f"""SELECT value_integer, effective_period_start FROM {FLAT_SCHEMA}.observation
        WHERE center = 'CMS124' AND id = '757ec91a-6481-48be-9fbd-4f880ff91dde'""",
    )
    assert row == (1, "2026-12-31T00:00:00.000+00:00")


@pytest.mark.shared
def test_not_done_reasons(built: duckdb.DuckDBPyConnection) -> None:
    oid = "8689226f-f0bc-467b-91a3-7612080b7864"
    assert _one(
        built, f"SELECT status FROM {FLAT_SCHEMA}.observation WHERE center = 'CMS22' AND id = ?", [oid]
    ) == ("cancelled",)
    row = _one(
        built,
        f"""SELECT source, system, code FROM {FLAT_SCHEMA}.observation_not_done_reason
        WHERE center = 'CMS22' AND id = ?""",
        [oid],
    )
    assert row == ("qicore-notDoneReason", "http://snomed.info/sct", "183932001")

    sid = "bf1a86d0-65f3-4325-884f-627eaf9930a9"
    row = _one(
        built,
        f"""SELECT do_not_perform, status, intent, authored_on FROM {FLAT_SCHEMA}.service_request
        WHERE center = 'CMS22' AND id = ?""",
        [sid],
    )
    assert row == (True, "completed", "order", "2026-01-01T08:01:00.000Z")
    assert _codes(built, "service_request_do_not_perform_reason", "CMS22", sid) == {
        ("http://snomed.info/sct", "1296859006")
    }

    row = _one(
        built,
        f"""SELECT do_not_perform, status FROM {FLAT_SCHEMA}.device_request
        WHERE center = 'CMS122' AND id = '2d18a935-82b8-40b2-b352-f03515dd8822'""",
    )
    assert row == (False, "completed")


@pytest.mark.shared
def test_medication_request_duration_inputs(built: duckdb.DuckDBPyConnection) -> None:
    mid = "6ec8cd68-7c6f-4f18-ae2f-d4ebd787ca19"
    row = _one(
        built,
        f"""SELECT status, intent, authored_on, expected_supply_duration_value, expected_supply_duration_code
        FROM {FLAT_SCHEMA}.medication_request WHERE center = 'CMS138' AND id = ?""",
        [mid],
    )
    assert row == ("active", "order", "2025-07-01T00:00:00.000+00:00", 90, "d")
    assert _codes(built, "medication_request_medication_code", "CMS138", mid) == {
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "1232585")
    }
    row = _one(
        built,
        f"""SELECT bounds_period_start, bounds_period_end FROM {FLAT_SCHEMA}.medication_request_dosage
        WHERE center = 'CMS138' AND id = ?""",
        [mid],
    )
    assert row == ("2026-01-01T00:00:00.000+00:00", "2026-03-31T23:59:59.000+00:00")
    task = _one(
        built,
        f"""SELECT t.status, t.focus_id, c.code FROM {FLAT_SCHEMA}.task t
        JOIN {FLAT_SCHEMA}.task_code c USING (center, id) WHERE t.center = 'CMS138'""",
    )
    assert task == ("rejected", mid, "fulfill")

    row = _one(
        built,
        f"""SELECT r.medication_id, m.code FROM {FLAT_SCHEMA}.medication_request r
        JOIN {FLAT_SCHEMA}.medication_code m ON m.center = r.center AND m.id = r.medication_id
        WHERE r.center = 'CMS165' AND r.id = '1cfbb1ef-fe70-4501-b25a-a91b204df14f'""",
    )
    assert row[0] == "63369663-8430-4c47-841a-49b7d8945518"


@pytest.mark.shared
def test_condition_choice_types(built: duckdb.DuckDBPyConnection) -> None:
    row = _one(
        built,
        f"""SELECT clinical_status_code, abatement_period_start, abatement_period_end, onset_datetime
        FROM {FLAT_SCHEMA}.condition
        WHERE center = 'CMS347' AND id = 'e249c25e-c3b4-49ea-9b68-eaa4c227a55f'""",
    )
    assert row == ("inactive", None, "2025-12-31T08:00:00.000+00:00", None)
    assert _codes(built, "condition_category", "CMS347", "e249c25e-c3b4-49ea-9b68-eaa4c227a55f") == {
        ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern")
    }


@pytest.mark.shared
def test_bulk_encounter_locations(built: duckdb.DuckDBPyConnection) -> None:
    """Synthea bulk data uses conditional references (Location?identifier=...): no key, raw text kept."""
    n_enc, n_loc, n_keyed, n_raw = _one(
        built,
        f"""SELECT count(DISTINCT e.id), count(*), count(l.location_id), count(l.location_reference)
        FROM {FLAT_SCHEMA}.encounter e JOIN {FLAT_SCHEMA}.encounter_location l USING (center, id)
        WHERE center = 'synthea-bulk'""",
    )
    assert n_enc > 0 and n_loc >= n_enc
    assert n_keyed == 0 and n_raw == n_loc


@pytest.mark.shared
def test_child_rows_reference_parents(built: duckdb.DuckDBPyConnection) -> None:
    """Every child-table row belongs to a row of the main table of the same resource type."""
    for name, view in BUILTIN_VIEWS.items():
        main = MAIN_TABLES.get(view["resource"])
        if main is None or main == name:
            continue
        orphans = _one(
            built,
            f"""SELECT count(*) FROM {FLAT_SCHEMA}.{name} c
            ANTI JOIN {FLAT_SCHEMA}.{main} m ON m.center = c.center AND m.id = c.id""",
        )[0]
        assert orphans == 0, name


@pytest.mark.shared
def test_build_one_center_leaves_others(built: duckdb.DuckDBPyConnection) -> None:
    con = built
    before = dict(
        con.execute(f"SELECT center, count(*) FROM {FLAT_SCHEMA}.observation GROUP BY center").fetchall()
    )
    other = con.execute(
        f"SELECT * FROM {FLAT_SCHEMA}.observation WHERE center = 'CMS165' ORDER BY id"
    ).fetchall()
    con.execute(
        "DELETE FROM resources WHERE center = 'CMS22' AND type = 'Observation' "
        "AND id = '8689226f-f0bc-467b-91a3-7612080b7864'"
    )
    counts = build_views(con, centers=["CMS22"], names=["observation", "observation_not_done_reason"])
    assert counts["observation"] == before["CMS22"] - 1
    after = dict(
        con.execute(f"SELECT center, count(*) FROM {FLAT_SCHEMA}.observation GROUP BY center").fetchall()
    )
    assert after == before | {"CMS22": before["CMS22"] - 1}
    assert (
        con.execute(f"SELECT * FROM {FLAT_SCHEMA}.observation WHERE center = 'CMS165' ORDER BY id").fetchall()
        == other
    )
    gone = con.execute(
        f"SELECT count(*) FROM {FLAT_SCHEMA}.observation_not_done_reason "
        "WHERE id = '8689226f-f0bc-467b-91a3-7612080b7864'"
    ).fetchone()
    assert gone == (0,)


def test_build_creates_missing_table_for_centers() -> None:
    pytest.importorskip("chc_equity.views.compiler", reason="views compiler not available")
    con = connect_memory()
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1990-02-03", "gender": "female"}
    _load(con, "a", [patient])
    _load(con, "b", [patient | {"birthDate": "1991-01-01"}])
    assert build_views(con, centers=["a"], names=["patient"]) == {"patient": 1}
    assert con.execute(f"SELECT center, birth_date FROM {FLAT_SCHEMA}.patient").fetchall() == [
        ("a", "1990-02-03")
    ]
    assert build_views(con, centers=["b"], names=["patient"]) == {"patient": 1}
    rows = con.execute(f"SELECT center, birth_date FROM {FLAT_SCHEMA}.patient ORDER BY center").fetchall()
    assert rows == [("a", "1990-02-03"), ("b", "1991-01-01")]
    with pytest.raises(KeyError):
        build_views(con, names=["no_such_view"])


# ----------------------------------------------------------------------------- synthetic resources
# Types and elements the public test data lacks (dispenses, not-done administrations, questionnaires
# ...): small hand-written resources so that every such path is exercised against real SQL.
SNOMED = "http://snomed.info/sct"
DECLINED = {"coding": [{"system": SNOMED, "code": "105480006", "display": "Refusal of treatment by patient"}]}
SYNTHETIC: list[dict[str, Any]] = [
    {
        "resourceType": "MedicationDispense",
        "id": "md1",
        "status": "declined",
        "medicationReference": {"reference": "Medication/m1"},
        "subject": {"reference": "Patient/p1"},
        "statusReasonCodeableConcept": DECLINED,
        "authorizingPrescription": [{"reference": "MedicationRequest/r1"}],
        "quantity": {"value": 30, "unit": "tablet"},
        "daysSupply": {"value": 30, "system": "http://unitsofmeasure.org", "code": "d"},
        "whenHandedOver": "2026-03-01",
        "dosageInstruction": [
            {
                "timing": {
                    "repeat": {
                        "frequency": 2,
                        "period": 1,
                        "periodUnit": "d",
                        "timeOfDay": ["08:00:00", "20:00:00"],
                        "when": ["MORN", "EVE"],
                    }
                },
                "doseAndRate": [{"doseRange": {"low": {"value": 1}, "high": {"value": 2, "unit": "tablet"}}}],
            }
        ],
    },
    {
        "resourceType": "MedicationAdministration",
        "id": "ma1",
        "status": "not-done",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]
        },
        "subject": {"reference": "Patient/p1"},
        "context": {"reference": "Encounter/e1"},
        "statusReason": [DECLINED],
        "effectivePeriod": {"start": "2026-02-01T10:00:00Z", "end": "2026-02-01T10:05:00Z"},
        "dosage": {"dose": {"value": 5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}},
    },
    {
        "resourceType": "Communication",
        "id": "c1",
        "status": "not-done",
        "subject": {"reference": "Patient/p1"},
        "statusReason": DECLINED,
        "sent": "2026-04-01T09:00:00Z",
        "category": [{"coding": [{"system": SNOMED, "code": "371530004"}]}],
    },
    {
        "resourceType": "Immunization",
        "id": "i1",
        "status": "not-done",
        "patient": {"reference": "Patient/p1"},
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}]},
        "statusReason": DECLINED,
        "occurrenceString": "childhood",
    },
    {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "not-done",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "171207006"}]},
        "statusReason": DECLINED,
        "performedString": "unknown",
    },
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "cancelled",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "44249-1"}]},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/event-statusReason",
                "valueCodeableConcept": DECLINED,
            }
        ],
        "effectiveInstant": "2026-01-05T10:00:00.000Z",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "44250-9"}]},
                "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA6568-5"}]},
            }
        ],
    },
    {
        "resourceType": "Condition",
        "id": "cd1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "44054006"}]},
        "onsetAge": {"value": 40, "unit": "a"},
        "abatementBoolean": False,
    },
    {
        "resourceType": "Coverage",
        "id": "cv1",
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"reference": "Organization/org1", "display": "State Medicaid"}],
        "class": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}
                    ]
                },
                "value": "MCD-1",
                "name": "Medicaid plan",
            }
        ],
    },
    {
        "resourceType": "QuestionnaireResponse",
        "id": "q1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-05-01",
        "item": [
            {
                "linkId": "housing",
                "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA31993-1"}}],
            },
            {
                "linkId": "group",
                "item": [
                    {"linkId": "income", "answer": [{"valueDecimal": 1234.5}]},
                    {"linkId": "stress", "answer": [{"valueInteger": 3}, {"valueBoolean": True}]},
                ],
            },
        ],
    },
]


@pytest.fixture(scope="module")
def synthetic() -> duckdb.DuckDBPyConnection:
    pytest.importorskip("chc_equity.views.compiler", reason="views compiler not available")
    con = connect_memory()
    _load(con, "s", SYNTHETIC)
    build_views(con)
    return con


def test_synthetic_dispense_and_administration(synthetic: duckdb.DuckDBPyConnection) -> None:
    con = synthetic
    row = _one(
        con,
        f"""SELECT status, medication_id, authorizing_prescription_id, quantity_value, days_supply_value,
        days_supply_code, when_handed_over FROM {FLAT_SCHEMA}.medication_dispense""",
    )
    assert row == ("declined", "m1", "r1", 30, 30, "d", "2026-03-01")
    assert _codes(con, "medication_dispense_status_reason", "s", "md1") == {(SNOMED, "105480006")}
    row = _one(
        con,
        f"""SELECT frequency, period, period_unit, time_of_day, when_codes, dose_range_low_value,
        dose_range_high_value FROM {FLAT_SCHEMA}.medication_dispense_dosage""",
    )
    assert row == (2, 1, "d", "08:00:00,20:00:00", "MORN,EVE", 1, 2)
    row = _one(
        con,
        f"""SELECT status, encounter_id, effective_period_start, dose_value, dose_code
        FROM {FLAT_SCHEMA}.medication_administration""",
    )
    assert row == ("not-done", "e1", "2026-02-01T10:00:00Z", 5, "mg")
    assert _codes(con, "medication_administration_status_reason", "s", "ma1") == {(SNOMED, "105480006")}
    assert _codes(con, "medication_administration_medication_code", "s", "ma1") == {
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "197361")
    }


def test_synthetic_not_done_reasons(synthetic: duckdb.DuckDBPyConnection) -> None:
    con = synthetic
    for table, rid in [
        ("communication_status_reason", "c1"),
        ("immunization_status_reason", "i1"),
        ("procedure_status_reason", "pr1"),
    ]:
        assert _codes(con, table, "s", rid) == {(SNOMED, "105480006")}, table
    assert _one(con, f"SELECT source, code FROM {FLAT_SCHEMA}.observation_not_done_reason") == (
        "event-statusReason",
        "105480006",
    )
    assert _one(con, f"SELECT status, sent FROM {FLAT_SCHEMA}.communication") == (
        "not-done",
        "2026-04-01T09:00:00Z",
    )
    assert _one(con, f"SELECT occurrence_string FROM {FLAT_SCHEMA}.immunization") == ("childhood",)
    assert _one(con, f"SELECT performed_string FROM {FLAT_SCHEMA}.procedure") == ("unknown",)
    assert _one(con, f"SELECT effective_instant FROM {FLAT_SCHEMA}.observation") == (
        "2026-01-05T10:00:00.000Z",
    )
    assert _one(con, f"SELECT code, value_code FROM {FLAT_SCHEMA}.observation_component") == (
        "44250-9",
        "LA6568-5",
    )


def test_synthetic_condition_coverage_questionnaire(synthetic: duckdb.DuckDBPyConnection) -> None:
    con = synthetic
    assert _one(
        con, f"SELECT onset_age_value, onset_age_unit, abatement_boolean FROM {FLAT_SCHEMA}.condition"
    ) == (40, "a", False)
    assert _one(con, f"SELECT payor_id, payor_reference, payor_display FROM {FLAT_SCHEMA}.coverage") == (
        "org1",
        "Organization/org1",
        "State Medicaid",
    )
    assert _one(con, f"SELECT type_code, value, name FROM {FLAT_SCHEMA}.coverage_class") == (
        "plan",
        "MCD-1",
        "Medicaid plan",
    )
    rows = con.execute(f"""SELECT link_id, answer_code, answer_decimal, answer_integer, answer_boolean
        FROM {FLAT_SCHEMA}.questionnaire_response_item
        ORDER BY link_id, answer_integer NULLS LAST""").fetchall()
    assert rows == [
        ("housing", "LA31993-1", None, None, None),
        ("income", None, 1234.5, None, None),
        ("stress", None, None, 3, None),
        ("stress", None, None, None, True),
    ]


def test_cli_views_build(warehouse: Path) -> None:
    pytest.importorskip("chc_equity.views.compiler", reason="views compiler not available")
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app
    from chc_equity.warehouse import connect

    con = connect(warehouse)
    _load(con, "a", SYNTHETIC)
    _load(con, "b", SYNTHETIC[:1])
    con.close()
    _register()
    runner = CliRunner()
    result = runner.invoke(app, ["views", "build", "--warehouse", str(warehouse)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "flat.medication_dispense" in result.output and f"{len(BUILTIN_VIEWS)} tables" in result.output
    result = runner.invoke(app, ["views", "build", "--warehouse", str(warehouse), "--center", "b"])
    assert result.exit_code == 0, result.output
    con = connect(warehouse, read_only=True)
    rows = con.execute(
        f"SELECT center, count(*) FROM {FLAT_SCHEMA}.medication_dispense GROUP BY 1 ORDER BY 1"
    )
    assert rows.fetchall() == [("a", 1), ("b", 1)]
    con.close()
