"""Publishing in proportion to the change: a snapshot written over a copy of the previous one (only the
changed centers' rows and changed tables rewritten) equals a snapshot written whole from the same
warehouse, through a sequence of changes of every kind a command makes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from browser.webseed import NORTH, SOUTH, build_warehouse
from chc_equity import serving
from chc_equity.warehouse import writing
from tabledump import differences, dump

META = f"main.{serving.META}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("delta") / "wh.duckdb")


def _meta(snap: serving.Snapshot) -> tuple:
    con = duckdb.connect(str(snap.path), read_only=True)
    try:
        return con.execute(f"SELECT seq, base_seq, fingerprint FROM {serving.META}").fetchone()
    finally:
        con.close()


def _whole(warehouse: Path, folder: Path) -> serving.Snapshot:
    """The same warehouse published from scratch (a copy without a serving folder)."""
    folder.mkdir()
    alone = folder / "wh.duckdb"
    shutil.copy(warehouse, alone)
    return serving.publish_from_file(alone)


def _patient(con: duckdb.DuckDBPyConnection, center: str, pid: str) -> None:
    body = {"resourceType": "Patient", "id": pid, "name": [{"family": "Delta", "given": ["Ann"]}]}
    con.execute(
        "INSERT INTO resources VALUES (?, 'Patient', ?, now(), 'delta.ndjson', '1', 9, ?)",
        [center, pid, json.dumps(body)],
    )


# Each step is what a command does to the warehouse before it publishes.
STEPS: list[tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    ("one center's flat rows change", lambda c: c.execute(
        "UPDATE flat.patient SET birth_sex = 'unknown' WHERE center = ? AND id = (SELECT min(id) FROM "
        "flat.patient WHERE center = ?)", [NORTH, NORTH])),
    ("a new Patient resource: resource_counts and patient_contact of one center", lambda c: _patient(
        c, SOUTH, "delta-p1")),
    ("a center's measure results deleted, a new load row", lambda c: c.execute(
        f"DELETE FROM measure_results WHERE center = '{SOUTH}'; INSERT INTO loads SELECT 9, center, "
        "started_at, finished_at, duration_s, files, 1, 1, 0, 0, 0, 'ok' FROM loads WHERE load_id = 2")),
    ("a reject with no center", lambda c: c.execute(
        "INSERT INTO rejects VALUES (9, NULL, 'x.ndjson', '1', 'Patient', NULL, NULL, 'malformed-json', "
        "NULL, '{')")),
    ("a table gains a column", lambda c: c.execute("ALTER TABLE flat.patient ADD COLUMN note VARCHAR")),
    ("a table without a center column changes", lambda c: c.execute(
        "UPDATE agg_runs SET computed_at = computed_at + INTERVAL 1 DAY")),
    ("a table dropped, a center's rows emptied", lambda c: c.execute(
        f"DROP TABLE flat.encounter; DELETE FROM flat.patient WHERE center = '{NORTH}'")),
    ("nothing changed", lambda c: None),
]  # fmt: skip


def test_a_snapshot_published_over_a_copy_equals_one_written_whole(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    previous = serving.publish_from_file(path)
    assert _meta(previous)[1] is None  # the first one is written whole
    for i, (what, change) in enumerate(STEPS):
        with writing(path) as con:
            change(con)
        snap = serving.current(path)
        whole = _whole(path, tmp_path / f"whole-{i}")
        seq, base, fingerprint = _meta(snap)
        assert (seq, base) == (previous.seq + 1, previous.seq), what  # written over a copy of the last
        assert fingerprint == _meta(whole)[2], what
        got, want = dump(snap.path), dump(whole.path)
        got.pop(META), want.pop(META)
        assert differences(got, want) == [], what
        previous = snap


def test_a_snapshot_grown_past_its_bound_is_written_whole(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows rewritten in a copy leave free blocks behind: once the file outgrows GROWTH times the
    snapshot its chain started from, the next one is written whole again (compacted)."""
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    serving.publish_from_file(path)
    with writing(path) as con:
        _patient(con, NORTH, "delta-p2")
    assert _meta(serving.current(path))[1] is not None
    monkeypatch.setattr(serving, "GROWTH", 0.5)
    with writing(path) as con:
        _patient(con, NORTH, "delta-p3")
    assert _meta(serving.current(path))[1] is None


def test_only_the_changed_centers_rows_are_rewritten(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proportional, not just equal: after a change to one center's flat rows, the publish rewrites that
    center's rows of that table and nothing else (the real copy runs; the calls are only recorded)."""
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    serving.publish_from_file(path)
    calls: list[tuple] = []
    real = serving._replace

    def recorded(con, key, centers, *, create):
        calls.append((key, centers, create))
        return real(con, key, centers, create=create)

    monkeypatch.setattr(serving, "_replace", recorded)
    with writing(path) as con:
        con.execute("UPDATE flat.patient SET birth_sex = 'unknown' WHERE center = ?", [NORTH])
    assert calls == [(("flat", "patient"), [NORTH], False)]
    calls.clear()
    with writing(path) as con:
        _patient(con, SOUTH, "delta-p4")  # the raw layer: its two summaries of that center
    assert sorted(calls) == [
        (("main", "patient_contact"), [SOUTH], False),
        (("main", "resource_counts"), [SOUTH], False),
    ]
