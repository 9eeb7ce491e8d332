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
        ({"resource": "Patient", "select": [cols(("a", "name is HumanName"))]}, "unsupported operator 'is'"),
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
