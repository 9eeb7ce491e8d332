"""A load refreshes only the flat rows of the resources it touched, and that equals a full rebuild.

Several loads into a real file warehouse (a generated network, split into parts, then updates that
change codes, values, array lengths and ``where``-filtered fields, then resource types not seen
before), each refreshing the views the way ``chc-equity ingest`` does; afterwards every ``flat.*``
table must equal, row for row, both ``build_views`` from scratch and each view's plain compiled
SQL (which re-parses every resource: no staging), so staging cannot hide a difference either.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chc_equity.ingest import load
from chc_equity.ingest.store import TOUCHED
from chc_equity.synth import generate, load_config
from chc_equity.views.build import (
    BUILTIN_VIEWS,
    PASSTHROUGH,
    _key_column,
    build_views,
    expected_columns,
    refresh_touched,
)
from chc_equity.views.compiler import compile_view
from chc_equity.views.shape import builtin_screen
from chc_equity.warehouse import connect, connect_memory
from test_views_builtin import SYNTHETIC

NEWER = "2099-01-01T00:00:00Z"


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


def _read(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        f.stem: [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line]
        for f in sorted(folder.glob("*.ndjson"))
    }


def _updated(resource: dict[str, Any], k: int) -> dict[str, Any]:
    """A newer version that changes what the views read: codes, values, array lengths, status."""
    r = copy.deepcopy(resource)
    r.setdefault("meta", {})["lastUpdated"] = NEWER
    rtype = r["resourceType"]
    if rtype == "Observation":
        if "valueQuantity" in r:
            r["valueQuantity"]["value"] = 1000 + k
        if "code" in r and r["code"].get("coding"):
            r["code"]["coding"].append({"system": "http://example.org/extra", "code": f"x{k}"})
        r["status"] = "amended" if k % 2 else "entered-in-error"
        r.pop("component", None)
    elif rtype == "Patient":
        r["gender"] = "other"
        r["name"] = [{"family": f"Changed{k}", "given": ["A", "B"]}]
        r.pop("extension", None)
    elif rtype == "Encounter":
        r["status"] = "cancelled"
        r["type"] = []
    elif rtype == "Condition":
        r.pop("onsetDateTime", None)
        r["onsetString"] = "childhood"
    return r


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, list]:
    folder = tmp_path_factory.mktemp("incremental")
    generate(
        folder / "net", centers=2, patients=120, seed=5, period_end=date(2026, 12, 31), cfg=load_config()
    )
    con = connect(folder / "wh.duckdb")
    screen = builtin_screen()
    refreshed: list[dict[str, int]] = []

    def after(c: duckdb.DuckDBPyConnection, center: str) -> None:
        refreshed.append(refresh_touched(c, center, TOUCHED))

    def ingest(center: str, name: str, resources: list[dict[str, Any]]) -> None:
        path = _ndjson(folder / f"{name}.ndjson", resources)
        result = load(con, [path], center, after_load=after, screen=screen)
        assert result.quarantined == 0, name

    c1 = _read(folder / "net" / "c01")
    c2 = _read(folder / "net" / "c02")
    # c01 in two halves (each type split), c02 whole: the second half must not disturb the first.
    ingest("c01", "c01-part1", [r for rs in c1.values() for r in rs[: len(rs) // 2]])
    ingest("c01", "c01-part2", [r for rs in c1.values() for r in rs[len(rs) // 2 :]])
    ingest("c02", "c02-all", [r for rs in c2.values() for r in rs])
    # Updates (and unchanged re-sends) across types in c01; the same ids in c02 stay as they were.
    changed = [
        _updated(r, k)
        for t in ("Observation", "Patient", "Encounter", "Condition")
        for k, r in enumerate(c1[t][:7])
    ]
    ingest("c01", "c01-updates", changed + c1["Procedure"][:5])
    # A flat table that went missing (e.g. a view added by an upgrade) is rebuilt whole by the next
    # load, even one that does not touch its type.
    con.execute("DROP TABLE flat.encounter_type")
    # Types this warehouse has not seen yet, into c02.
    ingest("c02", "c02-new-types", copy.deepcopy(SYNTHETIC))
    # Deletions (as a Bulk Data pull applies them inside the load): removed from `resources` and
    # listed in TOUCHED, their flat rows go too.
    gone = [("Observation", c2["Observation"][0]["id"]), ("Patient", c2["Patient"][1]["id"])]

    def delete_then_refresh(c: duckdb.DuckDBPyConnection, center: str) -> None:
        for rtype, rid in gone:
            c.execute("DELETE FROM resources WHERE center = ? AND type = ? AND id = ?", [center, rtype, rid])
            c.execute(f"INSERT INTO {TOUCHED} VALUES (?, ?)", [rtype, rid])
        after(c, center)

    path = _ndjson(folder / "c02-delete.ndjson", [_updated(c2["Encounter"][0], 7)])
    load(con, [path], "c02", after_load=delete_then_refresh, screen=screen)
    # Only Observations: only Observation views may run.
    ingest("c01", "c01-obs", [_updated(r, 100 + k) for k, r in enumerate(c1["Observation"][10:13])])
    return con, refreshed


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM ({sql})").fetchall(), key=repr)


def test_refresh_runs_only_views_of_touched_types(incremental) -> None:
    _, refreshed = incremental
    obs_views = {n for n, v in BUILTIN_VIEWS.items() if v["resource"] == "Observation"}
    assert set(refreshed[-1]) == obs_views
    assert sum(refreshed[-1].values()) > 0
    # the update load also re-sent unchanged Procedures: not touched, so not re-run
    assert not any(BUILTIN_VIEWS[n]["resource"] == "Procedure" for n in refreshed[3])


def test_every_flat_table_equals_a_full_rebuild(incremental) -> None:
    con, _ = incremental
    names = sorted(BUILTIN_VIEWS)
    before = {n: _rows(con, f'SELECT * FROM flat."{n}"') for n in names}
    described = {n: con.execute(f'DESCRIBE flat."{n}"').fetchall() for n in names}
    assert sum(len(rows) for rows in before.values()) > 1000
    assert any(before[n] for n in ("medication_dispense", "questionnaire_response_item"))
    assert {c for c, *_ in before["encounter_type"]} == {"c01", "c02"}
    con.begin()
    build_views(con)
    try:
        for n in names:
            assert con.execute(f'DESCRIBE flat."{n}"').fetchall() == described[n], n
            assert _rows(con, f'SELECT * FROM flat."{n}"') == before[n], n
            # the unstaged SQL (each view parses the JSON itself) agrees too
            plain = compile_view(BUILTIN_VIEWS[n], passthrough=PASSTHROUGH)
            assert _rows(con, plain) == before[n], n
    finally:
        con.rollback()


def test_updated_rows_replace_old_ones(incremental) -> None:
    con, _ = incremental
    rows = con.execute(
        "SELECT center, count(*) FILTER (gender = 'other') FROM flat.patient GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [("c01", 7), ("c02", 0)]
    deleted = con.execute(
        "SELECT count(*) FROM flat.observation o JOIN resources r ON r.center = o.center AND r.id = o.id "
        "AND r.type = 'Observation' WHERE o.center = 'c02'"
    ).fetchone()
    assert deleted == con.execute("SELECT count(*) FROM flat.observation WHERE center = 'c02'").fetchone()
    dupes = con.execute("SELECT count(*) - count(DISTINCT (center, id)) FROM flat.observation").fetchone()
    assert dupes == (0,)


def test_every_builtin_view_has_a_resource_key_column() -> None:
    """Without one, a load would fall back to rebuilding the center's rows of that view."""
    assert [n for n, v in BUILTIN_VIEWS.items() if _key_column(v) is None] == []


def test_static_column_types_match_what_the_sql_produces() -> None:
    """Tables of absent types are created from the static types, and a table whose types differ is
    rebuilt: both need the static types to be exactly what the compiled SQL yields."""
    con = connect_memory()
    for name, view in BUILTIN_VIEWS.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE t AS {compile_view(view, passthrough=PASSTHROUGH)}")
        described = tuple((c, t) for c, t, *_ in con.execute("DESCRIBE t").fetchall())
        assert described == expected_columns(name), name
