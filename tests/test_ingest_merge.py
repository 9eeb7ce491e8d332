"""Upsert rules (lastUpdated, idempotency), loads rows and transaction atomicity."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from chc_equity.ingest import load
from chc_equity.warehouse import connect, connect_memory


def _patient(pid: str, updated: str | None = None, **extra: object) -> dict:
    res: dict = {"resourceType": "Patient", "id": pid, **extra}
    if updated is not None:
        res["meta"] = {"lastUpdated": updated}
    return res


def _ndjson(path: Path, resources: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def _stored(con, pid: str = "p1") -> dict:
    return orjson.loads(con.execute("SELECT resource FROM resources WHERE id = ?", [pid]).fetchone()[0])


def _dump(con, table: str = "resources") -> list[tuple]:
    """Full table contents, every column as text (TIMESTAMPTZ values need pytz to fetch natively)."""
    return con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {table} ORDER BY ALL").fetchall()


T1, T2 = "2024-01-01T00:00:00Z", "2024-06-01T00:00:00+02:00"


@pytest.mark.parametrize(
    ("first", "second", "expect_gender", "counts"),
    [
        (_patient("p1", T1, gender="male"), _patient("p1", T2, gender="female"), "female", (0, 1, 0)),
        (_patient("p1", T2, gender="male"), _patient("p1", T1, gender="female"), "male", (0, 0, 1)),
        (_patient("p1", T1, gender="male"), _patient("p1", T1, gender="female"), "male", (0, 0, 1)),
        (_patient("p1", None, gender="male"), _patient("p1", T1, gender="female"), "female", (0, 1, 0)),
        (_patient("p1", T1, gender="male"), _patient("p1", None, gender="female"), "female", (0, 1, 0)),
        (_patient("p1", None, gender="male"), _patient("p1", None, gender="male"), "male", (0, 0, 1)),
    ],
    ids=["newer-wins", "older-loses", "equal-keeps", "incoming-lacks-old", "existing-lacks", "same-json"],
)
def test_last_updated_rules(tmp_path: Path, first, second, expect_gender, counts) -> None:
    con = connect_memory()
    load(con, [_ndjson(tmp_path / "a.ndjson", [first])], "c")
    result = load(con, [_ndjson(tmp_path / "b.ndjson", [second])], "c")
    assert (result.inserted, result.updated, result.unchanged) == counts
    assert _stored(con)["gender"] == expect_gender
    expected_load = 2 if counts[1] else 1
    assert con.execute("SELECT load_id FROM resources").fetchone()[0] == expected_load


def test_duplicates_within_a_load(tmp_path: Path) -> None:
    """Newest lastUpdated wins, ties go to the last seen, a timestamp beats none."""
    rows = [
        _patient("a", T1, gender="male"),
        _patient("a", T2, gender="female"),
        _patient("a", T1, gender="other"),
        _patient("b", T1, gender="male"),
        _patient("b", T1, gender="female"),
        _patient("c", None, gender="male"),
        _patient("c", T1, gender="female"),
        _patient("c", None, gender="other"),
        _patient("d", None, gender="male"),
        _patient("d", None, gender="female"),
    ]
    con = connect_memory()
    result = load(con, [_ndjson(tmp_path / "p.ndjson", rows)], "c")
    assert (result.loaded, result.inserted) == (10, 4)
    assert {pid: _stored(con, pid)["gender"] for pid in "abcd"} == {
        "a": "female",
        "b": "female",
        "c": "female",
        "d": "female",
    }
    assert con.execute("SELECT source_pos FROM resources WHERE id = 'b'").fetchone() == ("line 5",)


def test_reingest_is_idempotent_and_centers_are_separate(tmp_path: Path) -> None:
    src = _ndjson(tmp_path / "Patient.ndjson", [_patient(f"p{i}", T1, gender="male") for i in range(50)])
    con = connect_memory()
    load(con, [src], "c1")
    before = _dump(con)
    again = load(con, [tmp_path], "c1")  # same file, via its directory this time
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 50)
    assert _dump(con) == before
    other = load(con, [src], "c2")
    assert other.inserted == 50
    assert con.execute("SELECT count(*) FROM resources").fetchone() == (100,)


def test_loads_row_records_the_load(tmp_path: Path) -> None:
    src = _ndjson(tmp_path / "Patient.ndjson", [_patient("p1", T1), {"resourceType": "Nope", "id": "x"}])
    con = connect_memory()
    result = load(con, [src], "c1")
    row = con.execute(
        "SELECT load_id, center, files, resources_read, inserted, updated, unchanged, quarantined, status, "
        "duration_s >= 0, finished_at >= started_at FROM loads"
    ).fetchall()
    assert row == [(1, "c1", [str(src.resolve())], 2, 1, 0, 0, 1, "quarantined", True, True)]
    assert result.load_id == 1
    assert load(con, [src], "c1").load_id == 2


def test_stored_json_is_compact_with_key_columns(tmp_path: Path) -> None:
    src = tmp_path / "Patient.ndjson"
    src.write_text(
        '{ "resourceType" : "Patient", "id" : "p1",\t'
        '"meta": {"lastUpdated": "2024-01-01T01:02:03.5+01:00"}}\n'
    )
    con = connect_memory()
    load(con, [src], "c1")
    row = con.execute(
        "SELECT type, id, strftime(last_updated AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f'), "
        "source_pos, CAST(resource AS VARCHAR) FROM resources"
    ).fetchone()
    assert row == (
        "Patient",
        "p1",
        "2024-01-01 00:02:03.500000",
        "line 1",
        '{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2024-01-01T01:02:03.5+01:00"}}',
    )


def test_exception_in_after_load_rolls_everything_back(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = connect(db)
    load(con, [_ndjson(tmp_path / "a.ndjson", [_patient("p1", T1, gender="male")])], "c")
    snapshot = [_dump(con, t) for t in ("resources", "loads", "rejects")]

    def boom(con, center: str) -> None:
        con.execute("CREATE TABLE flat.side_effect AS SELECT 1")
        raise RuntimeError("views failed")

    bad = _ndjson(tmp_path / "b.ndjson", [_patient("p1", T2, gender="female"), _patient("p2"), {"x": 1}])
    with pytest.raises(RuntimeError, match="views failed"):
        load(con, [bad], "c", after_load=boom)
    con.close()
    con = connect(db)
    assert [_dump(con, t) for t in ("resources", "loads", "rejects")] == snapshot
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'side_effect'"
    ).fetchone() == (0,)


def test_after_load_runs_inside_the_transaction(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    def hook(con, center: str) -> None:
        seen.append((center, con.execute("SELECT count(*) FROM resources").fetchone()[0]))

    con = connect_memory()
    load(con, [_ndjson(tmp_path / "a.ndjson", [_patient("p1"), _patient("p2")])], "c9", after_load=hook)
    assert seen == [("c9", 2)]


def test_missing_path_is_an_error_before_loading(tmp_path: Path) -> None:
    con = connect_memory()
    with pytest.raises(FileNotFoundError):
        load(con, [tmp_path / "nope.ndjson"], "c")
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (0,)
