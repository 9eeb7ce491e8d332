"""Issue 11 (items 1, 2, 3, 12) through the real CLI and a real DuckDB file: no input aborts a load.

The per-kind corpus is tests/test_ingest_malformed.py; here: the issue's repro end to end, the
views screen agreeing with the compiled view SQL, the size limit's option / env var and a 1M-element
record at the default limit, skipped directory entries, FIFOs, and one-line warehouse errors.
"""

from __future__ import annotations

import os
import sys

import orjson
import pytest
from typer.testing import CliRunner

import chc_equity.cli.ingest  # noqa: F401 - registers the commands
from chc_equity.cli import app
from chc_equity.ingest import load
from chc_equity.views.build import BUILTIN_VIEWS, PASSTHROUGH
from chc_equity.views.compiler import compile_view
from chc_equity.views.shape import builtin_screen
from chc_equity.warehouse import connect, connect_memory

runner = CliRunner(env={"COLUMNS": "250"})


def _ingest(*args: str, env: dict | None = None):
    return runner.invoke(app, ["ingest", *args, "--no-refresh"], env=env)


def test_wrong_shape_patient_is_quarantined_and_the_rest_loads(tmp_path) -> None:
    """The issue's repro: one good and one ``"gender": ["male", "female"]`` Patient."""
    (tmp_path / "p.ndjson").write_bytes(
        b'{"resourceType":"Patient","id":"good","gender":"male"}\n'
        b'{"resourceType":"Patient","id":"bad","gender":["male","female"]}\n'
    )
    db = tmp_path / "w.duckdb"
    result = _ingest(str(tmp_path / "p.ndjson"), "--center", "c", "--warehouse", str(db))
    assert result.exit_code == 0, result.output
    con = connect(db, read_only=True)
    assert con.execute("SELECT id FROM resources").fetchall() == [("good",)]
    assert con.execute("SELECT id, gender FROM flat.patient").fetchall() == [("good", "male")]
    assert con.execute("SELECT resource_id, reason, field FROM rejects").fetchall() == [
        ("bad", "wrong-shape", "Patient.gender")
    ]
    assert con.execute("SELECT resources_read, inserted, quarantined FROM loads").fetchall() == [(2, 1, 1)]


# Replacement values for every element a built-in view reads: the screen must reject a resource
# exactly when the compiled view SQL would raise on it (never less: a load would abort; never more:
# good data would be quarantined).
_MUTANTS = (["a", "b"], "yes", {"a": 1}, [{"x": 1}, {"x": 2}], True)
_BASES = {
    "Patient": {
        "gender": "f",
        "active": True,
        "deceasedBoolean": False,
        "communication": [{"preferred": True}],
    },
    "Encounter": {"status": "finished", "subject": {"reference": "Patient/p"}, "class": {"code": "AMB"}},
    "Observation": {"status": "final", "valueBoolean": True, "code": {"coding": [{"code": "1"}]}},
    "Condition": {"subject": {"reference": "Patient/p"}, "onsetString": "x", "category": [{"text": "c"}]},
    "Coverage": {"payor": [{"reference": "Organization/o"}], "class": [{"value": "v"}]},
    "MedicationRequest": {"medicationCodeableConcept": {"coding": [{"code": "1"}]}, "doNotPerform": False},
}


def _mutants() -> list[dict]:
    out = []
    for rtype, base in _BASES.items():
        for key in base:
            for value in _MUTANTS:
                out.append({"resourceType": rtype, "id": f"m{len(out)}", **base, key: value})
    return out


def test_screen_agrees_with_the_compiled_views() -> None:
    screen = builtin_screen()
    con = connect_memory()
    views = {name: compile_view(v, passthrough=PASSTHROUGH) for name, v in BUILTIN_VIEWS.items()}
    disagreements = []
    for resource in _mutants():
        con.execute("DELETE FROM resources")
        con.execute(
            "INSERT INTO resources (center, type, id, resource) VALUES ('c', ?, ?, ?)",
            [resource["resourceType"], resource["id"], orjson.dumps(resource).decode()],
        )
        failed = False
        for name, sql in views.items():
            if BUILTIN_VIEWS[name]["resource"] != resource["resourceType"]:
                continue
            try:
                con.execute(sql).fetchall()  # every column: count(*) would skip them
            except Exception:  # noqa: BLE001 - any run-time error of a view is what we look for
                failed = True
                break
        screened = screen(resource["resourceType"], resource) is not None
        if failed != screened:
            disagreements.append((resource, failed, screened))
    assert disagreements == []
    assert sum(screen(r["resourceType"], r) is not None for r in _mutants()) > 10  # the test has teeth


def test_size_limit_option_and_env_var(tmp_path) -> None:
    line = orjson.dumps({"resourceType": "Patient", "id": "big", "text": {"div": "x" * 3000}})
    (tmp_path / "a.ndjson").write_bytes(line + b"\n" + b'{"resourceType":"Patient","id":"ok"}\n')
    for args, env in (
        (["--max-record-mb", "0.002"], None),
        ([], {"CHC_EQUITY_MAX_RECORD_MB": "0.002"}),
    ):
        db = tmp_path / f"w{len(args)}.duckdb"
        result = _ingest(str(tmp_path / "a.ndjson"), "--center", "c", "--warehouse", str(db), *args, env=env)
        assert result.exit_code == 0, result.output
        con = connect(db, read_only=True)
        row = con.execute("SELECT source_pos, reason, raw, detail FROM rejects").fetchone()
        assert row[:3] == ("line 1", "too-large", None)
        assert "bytes 0-" in row[3]
        assert con.execute("SELECT id FROM resources").fetchall() == [("ok",)]
        con.close()


def test_million_element_array_is_quarantined_at_the_default_limit(tmp_path) -> None:
    """The issue's 34 MB record (a 1M-element array) never reaches DuckDB at the default limit."""
    big = (
        b'{"resourceType":"Patient","id":"big","identifier":['
        + b",".join([b'{"value":"123456789012345678901234"}'] * 1_000_000)
        + b"]}"
    )
    path = tmp_path / "a.ndjson"
    path.write_bytes(
        b'{"resourceType":"Patient","id":"ok"}\n' + big + b"\n" + b'{"resourceType":"Patient","id":"ok2"}\n'
    )
    con = connect_memory()
    result = load(con, [path], "c", screen=builtin_screen())
    assert (result.loaded, result.quarantined) == (2, 1)
    assert con.execute("SELECT reason, source_pos FROM rejects").fetchall() == [("too-large", "line 2")]


def test_directory_reports_what_it_skips(tmp_path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b'{"resourceType":"Patient","id":"ok"}\n')
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "b.ndjson.bz2").write_bytes(b"BZh")
    (tmp_path / "gone.ndjson").symlink_to(tmp_path / "missing.ndjson")
    os.mkfifo(tmp_path / "pipe.ndjson")
    db = tmp_path / "w.duckdb"
    result = _ingest(str(tmp_path), "--center", "c", "--warehouse", str(db))
    assert result.exit_code == 0, result.output
    assert "4 files skipped" in result.output
    for name in ("notes.txt", "b.ndjson.bz2", "gone.ndjson", "pipe.ndjson"):
        assert name in result.output


def test_fifo_given_directly_is_refused_without_hanging(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.ndjson")
    db = tmp_path / "w.duckdb"
    result = _ingest(str(tmp_path / "pipe.ndjson"), "--center", "c", "--warehouse", str(db))
    assert result.exit_code == 2
    assert "not a regular file" in result.output
    assert not db.exists()  # refused before the warehouse was opened (no write lock taken)


def _warehouse_cases(tmp_path) -> dict:
    (tmp_path / "dir.duckdb").mkdir()
    (tmp_path / "text.duckdb").write_text("this is not a database\n" * 100)
    return {
        "a directory": tmp_path / "dir.duckdb",
        "a missing directory": tmp_path / "nowhere" / "w.duckdb",
        "not a DuckDB file": tmp_path / "text.duckdb",
    }


def test_bad_warehouse_paths_give_one_line(tmp_path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b'{"resourceType":"Patient","id":"ok"}\n')
    for why, path in _warehouse_cases(tmp_path).items():
        result = _ingest(str(tmp_path / "a.ndjson"), "--center", "c", "--warehouse", str(path))
        assert result.exit_code == 2, (why, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: cannot open warehouse"), (why, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only files: the check cannot fail as root")
def test_read_only_warehouse_gives_one_line(tmp_path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b'{"resourceType":"Patient","id":"ok"}\n')
    db = tmp_path / "w.duckdb"
    connect(db).close()
    db.chmod(0o444)
    result = _ingest(str(tmp_path / "a.ndjson"), "--center", "c", "--warehouse", str(db))
    assert result.exit_code == 2 and "read-only" in result.output


def test_read_only_warehouse_via_read_only_directory_as_root(tmp_path) -> None:
    """As root, a missing warehouse in a directory we cannot create files in still fails cleanly:
    a path under a regular file is never creatable, whoever runs it."""
    (tmp_path / "a.ndjson").write_bytes(b'{"resourceType":"Patient","id":"ok"}\n')
    (tmp_path / "file").write_text("x")
    result = _ingest(
        str(tmp_path / "a.ndjson"), "--center", "c", "--warehouse", str(tmp_path / "file" / "w.duckdb")
    )
    assert result.exit_code == 2 and result.output.startswith("error: cannot open warehouse"), result.output
    assert sys.exc_info() == (None, None, None)
