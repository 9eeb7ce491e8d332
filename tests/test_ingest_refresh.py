"""After a load, `chc-equity ingest` refreshes the center's measure results and the web aggregates, so an
incremental load ends exactly where a full load + `measures run` ends; a refresh left unfinished is
finished by the next run (kills at every step: tests/test_ingest_kill.py)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

import chc_equity.cli.ingest  # noqa: F401 - registers the commands
import chc_equity.cli.measures  # noqa: F401
import chc_equity.cli.web  # noqa: F401
from chc_equity.cli import app
from chc_equity.crashpoints import crash_point
from chc_equity.synth import generate, load_config
from chc_equity.warehouse import connect

runner = CliRunner(env={"COLUMNS": "250"})
PERIOD = ("2026-01-01", "2026-12-31")
RESULTS = (
    "SELECT measure, group_id, count(*) FILTER (WHERE numerator), count(*) FILTER (WHERE denominator) "
    "FROM measure_results GROUP BY ALL ORDER BY ALL"
)
AGGREGATES = "SELECT count(*) FROM agg_measure WHERE center = 'c01'"


def _run(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def test_incremental_load_refreshes_results(tmp_path: Path) -> None:
    network = tmp_path / "net"
    generate(network, centers=1, patients=400, seed=5, period_end=date(2026, 12, 31), cfg=load_config())
    first, later = tmp_path / "first", tmp_path / "later"
    first.mkdir()
    later.mkdir()
    for f in (network / "c01").iterdir():  # lab results and vitals arrive in a second load
        shutil.copy(f, (later if f.name.startswith("Observation") else first) / f.name)

    full = tmp_path / "full.duckdb"
    _run("ingest", str(network / "c01"), "--center", "c01", "--warehouse", str(full))
    _run("measures", "run", "--period-start", PERIOD[0], "--period-end", PERIOD[1], "--warehouse", str(full))

    step = tmp_path / "step.duckdb"
    _run("ingest", str(first), "--center", "c01", "--warehouse", str(step))
    _run("measures", "run", "--period-start", PERIOD[0], "--period-end", PERIOD[1], "--warehouse", str(step))
    with connect(step) as con:
        before = con.execute(RESULTS).fetchall()
    _run("ingest", str(later), "--center", "c01", "--warehouse", str(step))

    with connect(full) as a, connect(step) as b:
        expected = a.execute(RESULTS).fetchall()
        assert b.execute(RESULTS).fetchall() == expected
        assert b.execute(AGGREGATES).fetchone()[0] == a.execute(AGGREGATES).fetchone()[0] > 0
    assert before != expected  # the observations did change the numerators


def _pending(db: Path) -> list[tuple]:
    with connect(db) as con:
        return con.execute("SELECT center, load_id FROM pending_refresh ORDER BY ALL").fetchall()


def _centers_with_results(db: Path) -> list[str]:
    with connect(db) as con:
        return [
            r[0] for r in con.execute("SELECT DISTINCT center FROM measure_results ORDER BY 1").fetchall()
        ]


def test_unfinished_refresh_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """Issue 11 item 8: the refresh is recorded with the load, so re-running the same ingest -- which
    inserts nothing -- still finishes it; so do `measures run` and `precompute`."""
    network = tmp_path / "net"
    generate(network, centers=2, patients=60, seed=7, period_end=date(2026, 12, 31), cfg=load_config())
    db = tmp_path / "w.duckdb"
    _run("ingest", str(network / "c01"), "--center", "c01", "--warehouse", str(db))
    assert _pending(db) == []  # no results derived yet: nothing to refresh, nothing left pending
    _run("measures", "run", "--period-start", PERIOD[0], "--period-end", PERIOD[1], "--warehouse", str(db))

    # --no-refresh stands in for a crash after the commit (the kill test does the real kill -9)
    _run("ingest", str(network / "c02"), "--center", "c02", "--warehouse", str(db), "--no-refresh")
    assert _pending(db) == [("c02", 2)]
    assert _centers_with_results(db) == ["c01"]
    for name, command in {
        "ingest": ["ingest", str(network / "c02"), "--center", "c02"],
        "precompute": ["precompute", "--period-start", PERIOD[0], "--period-end", PERIOD[1]],
    }.items():
        copy = tmp_path / f"{name}.duckdb"
        shutil.copy(db, copy)
        result = runner.invoke(app, [*command, "--warehouse", str(copy)])
        assert result.exit_code == 0, result.output
        if name == "ingest":
            assert "0 inserted, 0 updated" in result.output  # the case that used to skip the refresh
        assert _pending(copy) == []
        assert _centers_with_results(copy) == ["c01", "c02"]
        with connect(copy) as con:
            assert con.execute("SELECT count(*) FROM agg_measure WHERE center = 'c02'").fetchone()[0] > 0


def test_crash_point_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown crash point"):
        crash_point("load:no-such-point")
