"""chc_equity.terminology: shipped value sets, their rebuild from truncated expansions, the DuckDB tables.

Most tests read only the package data. The consistency tests at the end rebuild from ../shared and
skip (with the reason) when it is absent.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import time
import warnings
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from chc_equity.terminology import (
    IncompleteValueSetWarning,
    codes,
    incomplete_valuesets,
    load_terminology,
    terminology,
    valueset_info,
    valueset_oid,
    valueset_url,
)
from chc_equity.terminology.build import RebuildError, build_valuesets
from chc_equity.terminology.catalog import data_fingerprint
from chc_equity.terminology.elm import (
    DirectCode,
    ValueSetDeclaration,
    direct_codes,
    parse_cql,
    used_valuesets,
    valueset_declarations,
)
from conftest import REPO, shared_dir

VSAC = "http://cts.nlm.nih.gov/fhir/ValueSet/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# The seven expansions VSAC truncated at 1,000 codes: OID -> (expected total, rebuilt exactly?)
TRUNCATED = {
    "2.16.840.1.113883.3.464.1003.108.12.1009": (1204, True),  # grouping
    "2.16.840.1.113883.3.464.1003.110.12.1082": (1997, False),  # grouping over 110.11.1151
    "2.16.840.1.113883.3.526.3.378": (1987, True),  # grouping
    "2.16.840.1.113883.3.600.1.1623": (1221, True),  # grouping
    "2.16.840.1.113883.3.464.1003.110.11.1151": (1759, False),  # compose list longer than expansion
    "2.16.840.1.113883.3.526.2.242": (1923, True),  # compose list == expansion
    "2.16.840.1.113883.3.600.1.1624": (1133, True),  # compose list == expansion
}
# Declared in CMS138's CQL, referenced by no expression, absent from the published vocabulary.
DECLARED_UNUSED_MISSING = {VSAC + "2.16.840.1.113883.3.526.3.1278"}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteValueSetWarning)
        load_terminology(connection)
    return connection


def _package_json() -> dict:
    raw = resources.files("chc_equity.terminology").joinpath("data", "terminology.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))


# --- package data -----------------------------------------------------------------------------------


def test_package_data_is_small_and_has_no_display_text() -> None:
    path = Path(str(resources.files("chc_equity.terminology").joinpath("data", "terminology.json.gz")))
    assert path.stat().st_size < 300_000

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | set().union(*(keys(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(keys(v) for v in node)) if node else set()
        return set()

    assert "display" not in keys(_package_json())


def test_valuesets_keyed_by_canonical_url_and_oid() -> None:
    term = terminology()
    assert len(term.valuesets) == 524
    for url, info in term.valuesets.items():
        assert url == VSAC + info.oid
        assert info.version and info.name


def test_truncated_expansions_rebuilt_to_expansion_total() -> None:
    for oid, (total, exact) in TRUNCATED.items():
        info = valueset_info(oid)
        assert info.expected_total == total
        assert info.complete is exact, oid
        if exact:
            assert info.code_count == total, oid
        else:  # a counted superset: the expansion plus codes that cannot be told apart offline
            assert info.code_count == total + 17, oid
    assert {i.oid for i in incomplete_valuesets()} == {o for o, (_, exact) in TRUNCATED.items() if not exact}


def test_grouping_valuesets_contain_every_code_of_every_child() -> None:
    term = terminology()
    groupings = [i for i in term.valuesets.values() if i.children]
    assert len(groupings) > 100
    for info in groupings:
        union = frozenset().union(*(term.codes[c] for c in info.children))
        assert term.codes[info.url] == union, info.oid


def test_known_memberships() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteValueSetWarning)
        assert (LOINC, "4548-4") in codes("2.16.840.1.113883.3.464.1003.198.12.1013")  # HbA1c Laboratory Test
        # N18.6 (ESRD) is beyond the first 1,000 codes of Advanced Illness; CMS165 test cases rely on it.
        assert (ICD10CM, "N18.6") in codes("2.16.840.1.113883.3.464.1003.110.12.1082")
    # Z3A.41 (41 weeks gestation) sorts after the first page of Pregnancy (ICD-10-CM); rebuilt from compose.
    assert (ICD10CM, "Z3A.41") in codes("2.16.840.1.113883.3.526.2.242")
    assert (ICD10CM, "Z3A.41") in codes("Pregnancy", library="CMS165FHIRControllingHighBP")


def test_cql_valuesets_are_shipped() -> None:
    term = terminology()
    declared = {d.url for d in term.declarations}
    measures = {d.library for d in term.declarations if d.library.startswith("CMS")}
    assert len(measures) == 21
    assert declared - set(term.valuesets) == DECLARED_UNUSED_MISSING


def test_direct_codes_shipped() -> None:
    rows = set(terminology().direct_codes)
    assert DirectCode("CMS165FHIRControllingHighBP", "Systolic blood pressure", LOINC, "8480-6") in rows
    # a code whose code system is declared in an included library
    twice = DirectCode("CumulativeMedicationDuration", "Twice a day (qualifier value)", SNOMED, "229799001")
    assert twice in rows


def test_valueset_url_lookups() -> None:
    url = VSAC + "2.16.840.1.113883.3.464.1003.198.12.1013"
    assert valueset_url("2.16.840.1.113883.3.464.1003.198.12.1013") == url
    assert valueset_url("urn:oid:2.16.840.1.113883.3.464.1003.198.12.1013") == url
    assert valueset_url(url + "|20250101") == url
    assert valueset_url("HbA1c Laboratory Test") == url
    assert valueset_oid(url) == "2.16.840.1.113883.3.464.1003.198.12.1013"
    with pytest.raises(ValueError, match="ambiguous"):
        valueset_url("Hepatitis B")  # two libraries declare different value sets under this name
    assert valueset_url("Hepatitis B", library="CMS117FHIRChildImmunStatus") == (
        VSAC + "2.16.840.1.113883.3.464.1003.110.12.1025"
    )
    with pytest.raises(KeyError):
        valueset_url("no such value set")
    with pytest.raises(KeyError):
        valueset_url("2.16.840.1.113883.3.526.3.1278")  # declared by CMS138 but not published


def test_codes_warns_for_incomplete_valueset() -> None:
    with pytest.warns(IncompleteValueSetWarning, match="2.16.840.1.113883.3.464.1003.110.11.1151"):
        members = codes("2.16.840.1.113883.3.464.1003.110.11.1151")
    assert isinstance(members, frozenset) and len(members) == 1776


# --- DuckDB ---------------------------------------------------------------------------------------


def test_duckdb_tables_load_with_unique_rows(con: duckdb.DuckDBPyConnection) -> None:
    [(total, distinct)] = con.sql(
        "SELECT count(*), count(DISTINCT (valueset, system, code)) FROM valueset_codes"
    ).fetchall()
    assert total == distinct > 25_000
    mismatched = con.sql("""
        SELECT v.valueset FROM valuesets v
        LEFT JOIN (SELECT valueset, count(*) AS n FROM valueset_codes GROUP BY valueset) c USING (valueset)
        WHERE coalesce(c.n, 0) <> v.code_count
    """).fetchall()
    assert mismatched == []
    assert con.sql("SELECT count(*) FROM valuesets WHERE NOT complete").fetchall() == [(2,)]
    [(systolic,)] = con.sql(
        "SELECT count(*) FROM direct_codes WHERE system = 'http://loinc.org' AND code = '8480-6'"
    ).fetchall()
    assert systolic >= 1
    assert con.sql("SELECT count(*) - count(DISTINCT (library, name)) FROM direct_codes").fetchall() == [(0,)]


def test_measure_style_join(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE obs AS SELECT * FROM (VALUES ('p1', 'http://loinc.org', '4548-4'), "
        "('p2', 'http://loinc.org', '8480-6')) t(pid, system, code)"
    )
    hits = con.sql(f"""
        SELECT o.pid FROM obs o JOIN valueset_codes v USING (system, code)
        WHERE v.valueset = '{VSAC}2.16.840.1.113883.3.464.1003.198.12.1013'
    """).fetchall()
    assert hits == [("p1",)]


def test_load_is_idempotent_fast_and_warns_by_name() -> None:
    connection = duckdb.connect(":memory:")
    with pytest.warns(IncompleteValueSetWarning) as record:
        load_terminology(connection)
    named = " ".join(str(w.message) for w in record)
    assert "2.16.840.1.113883.3.464.1003.110.11.1151" in named and "Advanced Illness" in named
    first = connection.sql("SELECT count(*) FROM valueset_codes").fetchall()
    start = time.perf_counter()
    load_terminology(connection, warn=False)
    assert time.perf_counter() - start < 1.0
    assert connection.sql("SELECT count(*) FROM valueset_codes").fetchall() == first



def test_current_tables_are_kept_copied_from_another_database_or_rebuilt(con) -> None:
    """Tables tagged with the shipped data's fingerprint are not rebuilt; a database without them copies
    them from an attached one that has them (a refresh's in-memory copy of the warehouse); a table whose
    tag is not the data's (older data, or hand-made) is rebuilt from the package."""
    tables = ("cql_valuesets", "direct_codes", "valueset_codes", "valuesets")
    tags = {t: c for t, c in con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall()}
    assert {t: tags.get(t) for t in tables} == dict.fromkeys(tables, data_fingerprint())
    full = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}

    con.execute("DELETE FROM valuesets WHERE complete")  # current tag: kept as it is
    load_terminology(con, warn=False)
    assert len(con.execute("SELECT * FROM valuesets").fetchall()) < len(full["valuesets"])

    con.execute("COMMENT ON TABLE valuesets IS 'hand-made'")  # not the data's: all four rebuilt
    load_terminology(con, warn=False)
    assert {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables} == full

    con.execute("ATTACH ':memory:' AS scope")
    try:
        con.execute("USE scope")
        load_terminology(con, warn=False)
        copied = {t: con.execute(f"SELECT * FROM scope.main.{t} ORDER BY ALL").fetchall() for t in tables}
        types = con.execute(
            "SELECT database_name, table_name, list(data_type ORDER BY column_index) FROM duckdb_columns() "
            "WHERE table_name IN ('valuesets', 'valueset_codes') GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.execute("USE memory")
        con.execute("DETACH scope")
    assert copied == full
    assert [t[1:] for t in types[:2]] == [t[1:] for t in types[2:]]  # same column types as the original

# --- rebuild rules on small synthetic ValueSets -------------------------------------------------------


def _vs(oid: str, page: list[str], total: int | None = None, compose: dict | None = None) -> dict:
    contains = [{"system": SNOMED, "code": c} for c in page]
    res = {"url": VSAC + oid, "name": f"VS{oid}", "title": f"VS {oid}", "version": "1",
           "identifier": [{"value": f"urn:oid:{oid}"}],
           "expansion": {"total": len(page) if total is None else total, "contains": contains}}
    if compose is not None:
        res["compose"] = compose
    return res


def _concepts(codes_: list[str]) -> dict:
    return {"include": [{"system": SNOMED, "concept": [{"code": c} for c in codes_]}]}


def _children(*oids: str) -> dict:
    return {"include": [{"valueSet": [VSAC + o]} for o in oids]}


def test_rebuild_grouping_from_children_recursively() -> None:
    built = {b.oid: b for b in build_valuesets([
        _vs("1.1", ["a", "b"]), _vs("1.2", ["c"], total=2, compose=_concepts(["c", "d"])),
        _vs("1.3", ["a"], total=4, compose=_children("1.1", "1.2")),
    ])}
    assert built["1.3"].complete and built["1.3"].codes == {(SNOMED, c) for c in "abcd"}
    assert built["1.2"].source == "compose"


def test_rebuild_fails_loudly_when_count_differs() -> None:
    with pytest.raises(RebuildError, match="expansion.total is 5"):
        build_valuesets([_vs("1.1", ["a", "b"]), _vs("1.3", ["a"], total=5, compose=_children("1.1"))])


def test_longer_compose_list_gives_counted_superset() -> None:
    # expansion is a, c, ... (sorted); 'b' is listed but provably dropped; one of d/e/f is dropped too.
    compose = _concepts(["a", "b", "c", "d", "e", "f"])
    (built,) = build_valuesets([_vs("2.1", ["a", "c"], total=4, compose=compose)])
    assert not built.complete and built.source == "compose-superset"
    assert built.codes == {(SNOMED, c) for c in "acdef"} and built.surplus == 1


def test_filter_compose_ships_page_marked_incomplete() -> None:
    is_a = {"property": "concept", "op": "is-a", "value": "x"}
    compose = {"include": [{"system": SNOMED, "filter": [is_a]}]}
    (built,) = build_valuesets([_vs("3.1", ["a"], total=3, compose=compose)])
    assert not built.complete and built.source == "truncated" and built.surplus == -2


# --- CQL / ELM parsing ------------------------------------------------------------------------------


def test_parse_cql_resolves_included_code_systems() -> None:
    common = "library Common version '1'\ncodesystem \"SNOMEDCT\": 'http://snomed.info/sct'\n"
    measure = (
        "library M version '1'\ninclude Common version '1' called C\n"
        "codesystem LOINC: 'http://loinc.org'\n"
        "valueset \"Office Visit\": 'http://cts.nlm.nih.gov/fhir/ValueSet/2.16.1'\n"
        "code \"Systolic\": '8480-6' from LOINC display 'Systolic'\n"
        "code \"Twice\": '229799001' from C.\"SNOMEDCT\"\n"
    )
    codes_, valuesets = parse_cql([common, measure])
    assert codes_ == [
        DirectCode("M", "Systolic", LOINC, "8480-6"),
        DirectCode("M", "Twice", SNOMED, "229799001"),
    ]
    assert valuesets == [ValueSetDeclaration("M", "Office Visit", "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.1")]


# --- consistency with ../shared -----------------------------------------------------------------------


def _read_dir(folder: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


@pytest.mark.shared
def test_package_data_matches_a_fresh_build_from_shared() -> None:
    ecqm = shared_dir("ecqm")
    script_path = REPO / "scripts" / "build_terminology.py"
    spec = importlib.util.spec_from_file_location("build_terminology", script_path)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    resources_ = _read_dir(ecqm / "input" / "vocabulary" / "valueset" / "external")
    libraries = {e["library"]["identifier"]["id"]: e for e in _read_dir(ecqm / "elm")}
    fresh = script.encode(build_valuesets(resources_), libraries, script.source_line(ecqm))
    stale = "package data is stale: run scripts/build_terminology.py"
    assert json.loads(json.dumps(fresh)) == _package_json(), stale


@pytest.mark.shared
def test_shared_truncated_pages_are_within_rebuilt_sets() -> None:
    folder = shared_dir("ecqm", "input", "vocabulary", "valueset", "external")
    term = terminology()
    truncated = set()
    for res in _read_dir(folder):
        page = {(c["system"], c["code"]) for c in res["expansion"].get("contains", [])}
        assert page <= term.codes[res["url"]]
        if res["expansion"]["total"] > len(page):
            truncated.add(res["url"].removeprefix(VSAC))
    assert truncated == set(TRUNCATED)


@pytest.mark.shared
def test_shared_cql_declarations_match_elm_and_unused_missing_is_unused() -> None:
    ecqm = shared_dir("ecqm")
    libraries = {e["library"]["identifier"]["id"]: e for e in _read_dir(ecqm / "elm")}
    texts = [p.read_text(encoding="utf-8") for p in sorted((ecqm / "input" / "cql").glob("*.cql"))]
    cql_codes, cql_vs = parse_cql(texts)
    assert cql_codes == direct_codes(libraries)
    assert cql_vs == valueset_declarations(libraries)
    used = {d.url for d in used_valuesets(libraries)}
    assert used <= set(terminology().valuesets)
    assert not (DECLARED_UNUSED_MISSING & used)
