"""`kill -9` during `chc-equity ingest` never corrupts the warehouse nor leaves results stale.

1. A kill mid-load leaves the warehouse exactly as it was before that load (timing-based kill).
2. A kill at each named crash point (:data:`chc_equity.crashpoints.POINTS`), before and after the load's
   commit and all through the refresh of measure results and web aggregates: afterwards one re-run
   (`ingest` again, or `measures run` / `precompute`) leaves every table exactly equal to an
   uninterrupted run.

What "exactly equal" means (``tabledump.dump``, shared with the incremental-refresh test): every table
and view of the warehouse file, in every schema (``resources``, ``rejects``, ``loads``,
``pending_refresh``, ``pending_patients``, ``flat.*``, ``measure_results``, ``patient_attributes``,
``agg_*``, terminology ...), listed from DuckDB's catalog so a table added later is compared too; every
column cast to text and rows sorted, so row order and float formatting cannot hide or fake a difference.
Excluded are only the columns holding wall-clock time -- ``loads.started_at``, ``loads.finished_at``,
``loads.duration_s`` and ``agg_runs.computed_at`` -- which differ between any two runs. Ids are not
excluded: a load killed before its commit leaves no trace, so the re-run gets the same ``load_id``.
Table comments are not compared: ``patient_attributes`` carries its cache tag there (period and newest
load id), which records when it was built, not what it holds.

Which uninterrupted run: a kill before the commit, or a re-run that is not an ingest, must end equal to
one uninterrupted ingest. A kill after the commit followed by a second `ingest` of the same files
legitimately makes two loads (the second one inserting nothing and quarantining the same bad record
again), so it must end equal to an uninterrupted ingest run twice; its derived tables equal the
single run's all the same (checked in ``test_baselines``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import chc_equity
from chc_equity.cli import _register, app
from chc_equity.crashpoints import ENV, POINTS
from chc_equity.ingest import load
from chc_equity.synth import generate, load_config
from chc_equity.warehouse import connect
from tabledump import Dump
from tabledump import differences as _differences
from tabledump import dump as _dump

# Runs one load in a child process and prints MID once well over one staging batch is in DuckDB.
CHILD = """
import sys
from chc_equity.ingest import load
from chc_equity.warehouse import connect
seen = 0
def progress(nbytes, nresources):
    global seen
    seen += nresources
    if seen >= 60_000:
        print("MID", flush=True)
con = connect(sys.argv[1])
load(con, [sys.argv[2]], "c1", progress=progress)
print("DONE", flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_load_keeps_previous_state(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    small = tmp_path / "small" / "Patient.ndjson"
    small.parent.mkdir()
    small.write_bytes(b'{"resourceType":"Patient","id":"before","gender":"male"}\n{"bad": 1}\n')
    con = connect(db)
    load(con, [small], "c1")
    con.close()
    before = _dump(db)

    big = tmp_path / "Observation.ndjson"
    with big.open("wb") as fh:
        for i in range(400_000):
            fh.write(
                orjson.dumps(
                    {
                        "resourceType": "Observation",
                        "id": f"o{i}",
                        "status": "final",
                        "effectiveDateTime": "2024-01-02T03:04:05Z",
                    }
                )
                + b"\n"
            )
        fh.write(b'{"resourceType":"Patient","id":"before","gender":"female"}\n')
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(big)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "MID"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    assert _dump(db) == before  # every table (defined below, with the crash-point tests)
    con = connect(db)
    assert con.execute("SELECT count(*) FROM resources").fetchone() == (1,)
    con.close()


# --- kill at named crash points, then one re-run ------------------------------------------------------

_register()
runner = CliRunner(env={"COLUMNS": "250"})
PERIOD = ["--period-start", "2026-01-01", "--period-end", "2026-12-31"]
SRC = str(Path(chc_equity.__file__).resolve().parents[1])  # this checkout's code, also in the child
COMMIT = POINTS.index("load:committed")  # points from here on are after the load's commit
# Each point is re-run with `ingest`, except that the two kills inside a refresh step's own transaction
# are re-run with the other two commands that finish pending work.
RERUN = {"measures:before-commit": "measures run", "aggregates:before-commit": "precompute"}
CASES = [(point, RERUN.get(point, "ingest")) for point in POINTS]
# Tables a refresh step rewrites in one transaction: a kill inside it leaves them as they were.
STEP_TABLES = {
    "measures:before-commit": ("main.measure_results",),
    "aggregates:before-commit": ("main.agg_measure", "main.agg_funnel", "main.agg_equity", "main.agg_runs"),
}


def _cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@dataclass(frozen=True)
class World:
    """A warehouse holding c01 with its measure results, c02's input, and the two reference runs."""

    before: Path  # c01 loaded, `measures run` done: the state the killed ingest starts from
    start: Dump  # its dump
    c02: Path  # c02's files plus one bad record (so rejects are compared too)
    once: Dump  # before + one uninterrupted `ingest c02`
    twice: Dump  # ... + the same ingest again


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("kill")
    generate(root / "net", centers=2, patients=60, seed=11, period_end=date(2026, 12, 31), cfg=load_config())
    c02 = root / "c02"
    shutil.copytree(root / "net" / "c02", c02)
    (c02 / "Bad.ndjson").write_text('{"resourceType":"Patient","id":"x","birthDate":"2001-02-30"}\n')
    before = root / "before.duckdb"
    _cli("ingest", str(root / "net" / "c01"), "--center", "c01", "--warehouse", str(before))
    _cli("measures", "run", *PERIOD, "--warehouse", str(before))
    db = root / "reference.duckdb"
    shutil.copy(before, db)
    _cli("ingest", str(c02), "--center", "c02", "--warehouse", str(db))
    once = _dump(db)
    _cli("ingest", str(c02), "--center", "c02", "--warehouse", str(db))
    return World(before, _dump(before), c02, once, _dump(db))


def _derived(dump: Dump) -> Dump:
    """Everything but the load log and the quarantine (which a second load of the same files extends)."""
    # reject_counts is the serving summary view over rejects (chc_equity.serving), so it grows with them
    grows = ("main.loads", "main.rejects", "main.reject_counts")
    return {t: rows for t, rows in dump.items() if t not in grows}


def test_baselines(world: World) -> None:
    """The references are meaningful: the c02 load changed the derived tables, finished its refresh, and a
    repeated ingest changes nothing but the load log and the quarantine."""
    changed = set(_differences(world.once, world.start))
    assert {
        "main.resources",
        "main.rejects",
        "main.loads",
        "main.measure_results",
        "main.agg_measure",
        "main.agg_equity",
        "main.patient_attributes",
        "flat.patient",
    } <= changed
    assert world.once["main.pending_refresh"] == []
    assert any("c02" in row for row in world.once["main.agg_measure"])
    assert _differences(_derived(world.twice), _derived(world.once)) == []
    assert len(world.twice["main.loads"]) == len(world.once["main.loads"]) + 1
    assert len(world.twice["main.rejects"]) == 2 * len(world.once["main.rejects"]) > 0


def _rerun(command: str, db: Path, world: World) -> None:
    if command == "ingest":
        _cli("ingest", str(world.c02), "--center", "c02", "--warehouse", str(db))
    elif command == "measures run":
        _cli("measures", "run", *PERIOD, "--warehouse", str(db))
    else:
        _cli("precompute", *PERIOD, "--warehouse", str(db))


@pytest.mark.slow
@pytest.mark.parametrize(("point", "rerun"), CASES, ids=[f"{p}+{r}" for p, r in CASES])
def test_kill_at_point_then_one_rerun_equals_uninterrupted(
    world: World, tmp_path: Path, point: str, rerun: str
) -> None:
    db = tmp_path / "w.duckdb"
    shutil.copy(world.before, db)
    env = {
        **os.environ,
        ENV: point,
        "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from chc_equity.cli import main; main()",
            "ingest",
            str(world.c02),
            "--center",
            "c02",
            "--warehouse",
            str(db),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr  # it reached the point and died there
    committed = POINTS.index(point) >= COMMIT
    crashed = _dump(db)
    if not committed:  # nothing of an uncommitted load survives
        assert _differences(crashed, world.start) == []
    elif point != "refresh:cleared":  # the load survives, and so does the record of the work left
        assert crashed["main.pending_refresh"] != []
    else:  # killed after the refresh cleared its record: nothing is left to do
        assert _differences(crashed, world.once) == []
    for table in STEP_TABLES.get(point, ()):  # each refresh step is atomic
        assert crashed[table] == world.start[table], table

    _rerun(rerun, db, world)
    expected = world.twice if committed and rerun == "ingest" else world.once
    assert _differences(_dump(db), expected) == []


def test_every_crash_point_is_exercised() -> None:
    assert {p for p, _ in CASES} == set(POINTS)
    assert POINTS[COMMIT - 1] == "load:views-built"  # the last point inside the transaction
