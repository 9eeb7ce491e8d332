"""Unit tests for the ViewDefinition -> DuckDB SQL compiler on small inline views (no ../shared)."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from chc_equity.views.compiler import ViewDefinitionError, compile_view, view_columns
from chc_equity.views.conformance import load_resources
from chc_equity.warehouse import connect_memory

PATIENTS = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "birthDate": "1980-02",
        "active": True,
        "name": [{"use": "official", "family": "Fa", "given": ["A", "B"]}, {"family": "Fb"}],
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}],
            }
        ],
        "managingOrganization": {"reference": "Organization/o1"},
    },
    {"resourceType": "Patient", "id": "p2", "gender": "male", "deceasedBoolean": True},
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 7.25, "unit": "%"},
        "effectiveDateTime": "2024-03-01T10:00:00-05:00",
        "component": [{"valueInteger": 3}, {"valueInteger": 4}],
    },
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = connect_memory()
    load_resources(c, PATIENTS)
    return c


def run(con: duckdb.DuckDBPyConnection, view: dict[str, Any], **kw: Any) -> list[tuple]:
    return sorted(con.sql(compile_view(view, **kw)).fetchall(), key=repr)


def cols(*pairs: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"column": [{"name": n, "path": p, **extra} for n, p in pairs]}


def test_single_select_statement() -> None:
    view = {
        "resource": "Patient",
        "select": [cols(("id", "id")), {"forEach": "name", **cols(("f", "family"))}],
    }
    sql = compile_view(view, passthrough=["center"], filter_sql="center = 'x'")
    statements = duckdb.extract_statements(sql)
    assert len(statements) == 1
    assert statements[0].type == duckdb.StatementType.SELECT
    assert ";" not in sql


def test_simple_paths_types_and_passthrough(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "gender", "path": "gender", "type": "code"},
                    {"name": "birth", "path": "birthDate", "type": "date"},
                    {"name": "active", "path": "active", "type": "boolean"},
                    {
                        "name": "family",
                        "path": "name.where(use = 'official').family.first()",
                        "type": "string",
                    },
                    {"name": "given", "path": "name.given", "type": "string", "collection": True},
                    {"name": "org", "path": "managingOrganization.getReferenceKey(Organization)"},
                    {"name": "dead", "path": "deceased.ofType(boolean)", "type": "boolean"},
                ]
            }
        ],
    }
    sql = compile_view(view, passthrough=["center"])
    rel = con.sql(sql)
    assert rel.columns == ["center", "id", "gender", "birth", "active", "family", "given", "org", "dead"]
    assert [str(t) for t in rel.types][3:5] == ["VARCHAR", "BOOLEAN"]
    rows = sorted(rel.fetchall())
    assert rows == [
        ("conformance", "p1", "female", "1980-02", True, "Fa", ["A", "B"], "o1", None),
        ("conformance", "p2", "male", None, None, None, [], None, True),
    ]


def test_for_each_row_index_and_where(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Patient",
        "where": [{"path": "name.exists()"}],
        "select": [
            cols(("id", "id")),
            {"forEach": "name", **cols(("idx", "%rowIndex"), ("family", "family"))},
        ],
    }
    assert run(con, view) == [("p1", 0, "Fa"), ("p1", 1, "Fb")]


def test_for_each_or_null_and_union_all(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Patient",
        "select": [
            cols(("id", "id")),
            {
                "unionAll": [
                    {"forEachOrNull": "name", **cols(("v", "family"))},
                    {"forEach": "name.given", **cols(("v", "$this"))},
                ]
            },
        ],
    }
    assert run(con, view) == [("p1", "A"), ("p1", "B"), ("p1", "Fa"), ("p1", "Fb"), ("p2", None)]


def test_extension_oftype_first_join_exists(con: duckdb.DuckDBPyConnection) -> None:
    race = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
    view = {
        "resource": "Patient",
        "constant": [{"name": "race", "valueUri": race}],
        "select": [
            cols(
                ("id", "id"),
                ("race", "extension(%race).extension('ombCategory').value.ofType(Coding).code.first()"),
                ("given", "name.given.join(' ')"),
                ("has_name", "name.exists()"),
                ("no_ext", "extension.empty()"),
            )
        ],
    }
    assert run(con, view) == [("p1", "2106-3", "A B", True, False), ("p2", None, "", False, True)]


def test_arithmetic_and_comparison_on_observation(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    {"name": "pt", "path": "subject.getReferenceKey(Patient)"},
                    {"name": "v", "path": "value.ofType(Quantity).value", "type": "decimal"},
                    {"name": "high", "path": "value.ofType(Quantity).value > 7", "type": "boolean"},
                    {
                        "name": "sum",
                        "path": "component[0].value.ofType(integer) + component[1].value.ofType(integer)",
                    },
                    {"name": "eff", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                    {"name": "lo", "path": "effective.ofType(dateTime).lowBoundary()", "type": "dateTime"},
                ]
            }
        ],
    }
    assert run(con, view) == [
        ("p1", 7.25, True, 7, "2024-03-01T10:00:00-05:00", "2024-03-01T10:00:00.000-05:00")
    ]


def test_repeat_is_depth_first(con: duckdb.DuckDBPyConnection) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "id": "q1",
        "item": [{"linkId": "1", "item": [{"linkId": "1.1"}]}, {"linkId": "2"}],
    }
    load_resources(con, [qr])
    view = {
        "resource": "QuestionnaireResponse",
        "select": [{"repeat": ["item"], **cols(("i", "%rowIndex"), ("l", "linkId"))}],
    }
    assert con.sql(compile_view(view)).fetchall() == [(0, "1"), (1, "1.1"), (2, "2")]


def test_filter_sql_and_source(con: duckdb.DuckDBPyConnection) -> None:
    view = {"resource": "Patient", "select": [cols(("id", "id"))]}
    assert run(con, view, filter_sql="id = 'p2'") == [("p2",)]
    con.execute("CREATE TABLE other AS SELECT * FROM resources WHERE id = 'p1'")
    assert run(con, view, source="other") == [("p1",)]


def test_view_columns_reports_types() -> None:
    view = {
        "resource": "Patient",
        "select": [
            {"column": [{"name": "id", "path": "id", "type": "id"}, {"name": "n", "path": "name.count()"}]},
            {
                "forEach": "name",
                "column": [{"name": "g", "path": "given", "type": "string", "collection": True}],
            },
        ],
    }
    assert view_columns(view) == [("id", "VARCHAR"), ("n", "BIGINT"), ("g", "VARCHAR[]")]


@pytest.mark.parametrize(
    ("view", "message"),
    [
        ({"select": [cols(("id", "id"))]}, "resource:"),
        ({"resource": "Patient", "select": []}, "select:"),
        (
            {"resource": "Patient", "select": [cols(("id", "id")), cols(("x", "descendants()"))]},
            "select[1].column[0].path: unsupported function 'descendants()'",
        ),
        (
            {"resource": "Patient", "select": [{"forEach": "name.(", **cols(("a", "id"))}]},
            "select[0].forEach:",
        ),
        (
            {"resource": "Patient", "select": [cols(("a", "%nope"))]},
            "select[0].column[0].path: undefined constant %nope",
        ),
        (
            {"resource": "Patient", "select": [cols(("a", "id"), ("a", "gender"))]},
            "duplicate column name 'a'",
        ),
        ({"resource": "Patient", "select": [cols(("bad name", "id"))]}, "select[0].column[0].name"),
        ({"resource": "Patient", "select": [cols(("a", "gender ~ 'male'"))]}, "unsupported operator '~'"),
        (
            {"resource": "Patient", "select": [{"unionAll": [cols(("a", "id")), cols(("b", "id"))]}]},
            "select[0].unionAll[1]: unionAll branches must have the same columns",
        ),
        ({"resource": "Patient", "where": [{"path": "'x'"}], "select": [cols(("a", "id"))]}, "where[0].path"),
        (
            {"resource": "Patient", "constant": [{"name": "c"}], "select": [cols(("a", "id"))]},
            "constant[0]: expected exactly one value[x]",
        ),
        (
            {"resource": "Patient", "select": [{"forEach": "name", **cols(("k", "getResourceKey()"))}]},
            "select[0].column[0].path: getResourceKey() must be called on the resource",
        ),
    ],
)
def test_errors_name_the_element(view: dict[str, Any], message: str) -> None:
    with pytest.raises(ViewDefinitionError) as exc:
        compile_view(view)
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_runtime_errors_name_the_element(con: duckdb.DuckDBPyConnection) -> None:
    multi = {"resource": "Patient", "select": [cols(("family", "name.family"))]}
    with pytest.raises(duckdb.Error, match=r"select\[0\]\.column\[0\]\.path: column 'family'"):
        con.sql(compile_view(multi)).fetchall()
    not_bool = {"resource": "Patient", "where": [{"path": "gender"}], "select": [cols(("id", "id"))]}
    with pytest.raises(duckdb.Error, match=r"where\[0\]\.path: expected a boolean"):
        con.sql(compile_view(not_bool)).fetchall()


def test_fast_paths_agree_with_general_semantics() -> None:
    """Singleton shortcuts (one json_extract) must give the FHIRPath answer for every JSON shape."""
    c = connect_memory()
    load_resources(
        c,
        [
            # b is an array: first() via '$.a.b[0]'
            {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"code": "x"}, {"code": "y"}]}},
            # b is a single object (not FHIR-shaped): first() must still return it
            {"resourceType": "Condition", "id": "c2", "code": {"coding": {"code": "z"}}},
            # a is an array: the chain crosses it; key text present elsewhere must not confuse the guard
            {
                "resourceType": "Condition",
                "id": "c3",
                "code": [{"coding": [{"code": "w"}]}],
                "note": {"code": 1},
            },
            {"resourceType": "Condition", "id": "c4", "note": [{"text": '"coding" "code"'}]},
        ],
    )
    view = {
        "resource": "Condition",
        "select": [
            cols(
                ("id", "id"),
                ("first", "code.coding.first().code"),
                ("n", "code.coding.code.count()"),
                ("all", "code.coding.code.join('|')"),
            )
        ],
    }
    assert run(c, view) == [
        ("c1", "x", 2, "x|y"),
        ("c2", "z", 1, "z"),
        ("c3", "w", 1, "w"),
        ("c4", None, 0, ""),
    ]


UUID = "1f6b2c2e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("reference", "typed", "untyped"),
    [
        ("Patient/p1", "p1", "p1"),
        ("http://example.org/fhir/Patient/p1", "p1", "p1"),
        ("Patient/p1/_history/3", "p1", "p1"),
        (f"urn:uuid:{UUID}", UUID, UUID),  # bundle-internal: no type to check
        ("Organization/o1", None, "o1"),
        ("Patient?identifier=http://x|123", None, None),  # conditional reference: no key
        ("Patient?identifier=http://x.org/Patient/p9", None, None),
        ("#contained1", None, None),
    ],
)
def test_get_reference_key_forms(reference: str, typed: str | None, untyped: str | None) -> None:
    c = connect_memory()
    load_resources(c, [{"resourceType": "Encounter", "id": "e1", "subject": {"reference": reference}}])
    view = {
        "resource": "Encounter",
        "select": [cols(("typed", "subject.getReferenceKey(Patient)"), ("any", "subject.getReferenceKey()"))],
    }
    assert c.sql(compile_view(view)).fetchall() == [(typed, untyped)]


def test_multiple_references_error_unless_collection() -> None:
    c = connect_memory()
    refs = [{"reference": "Patient/a"}, {"reference": "Patient/b"}]
    load_resources(c, [{"resourceType": "Group", "id": "g1", "member": refs}])
    single = {"resource": "Group", "select": [cols(("m", "member.getReferenceKey(Patient)"))]}
    with pytest.raises(duckdb.Error, match="more than one value"):
        c.sql(compile_view(single)).fetchall()
    many = {
        "resource": "Group",
        "select": [
            {"column": [{"name": "m", "path": "member.getReferenceKey(Patient)", "collection": True}]}
        ],
    }
    assert c.sql(compile_view(many)).fetchall() == [(["a", "b"],)]
    each = {
        "resource": "Group",
        "select": [{"forEach": "member.getReferenceKey(Patient)", **cols(("m", "$this"))}],
    }
    assert sorted(c.sql(compile_view(each)).fetchall()) == [("a",), ("b",)]


def test_pipeline_nested_for_each_cross_product_and_row_index(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Patient",
        "select": [
            cols(("id", "id")),
            {
                "forEach": "name",
                **cols(("ni", "%rowIndex")),
                "select": [{"forEachOrNull": "given", **cols(("gi", "%rowIndex"), ("g", "$this"))}],
            },
            {"forEach": "extension", **cols(("ei", "%rowIndex"))},
        ],
    }
    sql = compile_view(view, passthrough=["center"])
    assert "UNNEST" in sql
    rows = sorted(con.sql(sql).fetchall())
    assert rows == [
        ("conformance", "p1", 0, 0, "A", 0),
        ("conformance", "p1", 0, 1, "B", 0),
        ("conformance", "p1", 1, 0, None, 0),
    ]


def test_of_type_on_non_choice_elements_is_never_silently_empty(con: duckdb.DuckDBPyConnection) -> None:
    prim = {
        "resource": "Patient",
        "select": [cols(("id", "id"), ("g", "gender.ofType(code)"), ("n", "gender.ofType(integer)"))],
    }
    assert run(con, prim) == [("p1", "female", None), ("p2", "male", None)]
    complex_ = {
        "resource": "Patient",
        "where": [{"path": "name.exists()"}],
        "select": [cols(("n", "name.ofType(HumanName).family"))],
    }
    with pytest.raises(duckdb.Error, match="not a choice element"):
        con.sql(compile_view(complex_)).fetchall()


def test_is_as_and_iif(con: duckdb.DuckDBPyConnection) -> None:
    view = {
        "resource": "Patient",
        "select": [
            cols(
                ("id", "id"),
                ("dead_is_bool", "deceased is boolean"),
                ("dead", "deceased as FHIR.boolean"),
                ("label", "iif(gender = 'female', 'F', 'other')"),
                ("fn", "iif(name.exists(), name.first().family)"),
            )
        ],
    }
    assert run(con, view) == [("p1", False, None, "F", "Fa"), ("p2", True, True, "other", None)]
