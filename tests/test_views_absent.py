"""Views skipped because no staged resource has the element they iterate (views.absent): which views
qualify, and that skipping gives exactly what running them gives (including their errors)."""

from __future__ import annotations

import json

import duckdb
import pytest

from chc_equity.views.absent import required_keys
from chc_equity.views.build import BUILTIN_VIEWS, STAGE, _group, _productive, _stage, build_views
from chc_equity.views.compiler import compile_view
from chc_equity.warehouse import FLAT_SCHEMA, connect_memory


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("condition_body_site", {"bodySite"}),
        ("observation_component", {"component"}),
        ("observation_value_code", {"value", "valueCodeableConcept"}),
        ("service_request_do_not_perform_reason", {"extension"}),
        ("encounter_discharge_disposition", {"hospitalization"}),
        ("patient", None),  # one row per resource: never empty
        ("patient_race", None),  # unionAll
        ("practitioner_role", None),  # forEachOrNull keeps the resource
        ("questionnaire_response_item", None),  # repeat
    ],
)
def test_required_keys_of_builtin_views(name: str, keys: set[str] | None) -> None:
    got = required_keys(BUILTIN_VIEWS[name])
    assert (set(got) if got is not None else None) == keys


def _view(select: list, **extra: object) -> dict:
    return {"resource": "Condition", "select": select, **extra}


ID = {"column": [{"name": "id", "path": "getResourceKey()"}]}


@pytest.mark.parametrize(
    "view",
    [
        _view(
            [ID, {"forEach": "code.coding", "column": [{"name": "c", "path": "code"}]}], where=[{"path": "x"}]
        ),
        _view(
            [
                {"column": [{"name": "s", "path": "status"}]},
                {"forEach": "code", "column": [{"name": "c", "path": "text"}]},
            ]
        ),
        _view([ID, {"forEach": "iif(a, b, c)", "column": [{"name": "c", "path": "code"}]}]),
        _view(
            [
                ID,
                {"forEach": "a", "column": [{"name": "c", "path": "x"}]},
                {"forEach": "b", "column": [{"name": "d", "path": "x"}]},
            ]
        ),
        _view([ID, {"forEach": "extension(%url)", "column": [{"name": "c", "path": "code"}]}]),
    ],
    ids=["view-where", "other-column", "iif", "two-forEach", "computed-url"],
)
def test_shapes_it_cannot_vouch_for(view: dict) -> None:
    assert required_keys(view) is None


def _load(con: duckdb.DuckDBPyConnection, resources: list[dict]) -> None:
    con.executemany(
        "INSERT INTO resources (center, type, id, resource) VALUES ('c1', ?, ?, ?)",
        [[r["resourceType"], r["id"], json.dumps(r)] for r in resources],
    )


CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}


def test_absent_element_skips_the_view_and_equals_running_it() -> None:
    con = connect_memory()
    _load(con, [{"resourceType": "Condition", "id": f"c{k}", "code": CODE} for k in range(3)])
    names = ["condition_body_site", "condition_code"]
    group = _group("Condition", tuple(names))
    assert _stage(con, group, "TRUE") == 3
    assert _productive(con, group, names) == {"condition_code"}
    con.execute(f"DROP TABLE {STAGE}")

    build_views(con, names=names)
    for name in names:
        direct = con.execute(compile_view(BUILTIN_VIEWS[name], passthrough=("center",))).fetchall()
        built = con.execute(f'SELECT * FROM "{FLAT_SCHEMA}"."{name}"').fetchall()
        assert sorted(built) == sorted(direct)
    assert con.execute(f'SELECT count(*) FROM "{FLAT_SCHEMA}".condition_code').fetchone() == (3,)
    assert con.execute(f'SELECT count(*) FROM "{FLAT_SCHEMA}".condition_body_site').fetchone() == (0,)

    # The element arrives in one resource: the view runs again, for that center's rows.
    _load(con, [{"resourceType": "Condition", "id": "c9", "code": CODE, "bodySite": [CODE]}])
    build_views(con, centers=["c1"], names=names)
    assert con.execute(f'SELECT id, code FROM "{FLAT_SCHEMA}".condition_body_site').fetchall() == [
        ("c9", "44054006")
    ]


def test_a_view_that_would_raise_is_not_skipped() -> None:
    """``value.ofType(CodeableConcept)`` on a plain ``value`` raises: the view must still run."""
    con = connect_memory()
    _load(con, [{"resourceType": "Observation", "id": "o1", "status": "final", "code": CODE, "value": CODE}])
    with pytest.raises(duckdb.Error, match="not a choice element"):
        build_views(con, names=["observation_value_code"])
