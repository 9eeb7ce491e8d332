"""After a load, `chc-equity ingest` refreshes the center's measure results and the web aggregates, so an
incremental load ends exactly where a full load + `measures run` ends."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

import chc_equity.cli.ingest  # noqa: F401 - registers the commands
import chc_equity.cli.measures  # noqa: F401
from chc_equity.cli import app
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
