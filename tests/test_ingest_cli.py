"""`chc-equity ingest` / `chc-equity rejects` through the Typer app."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import chc_equity.cli.ingest  # noqa: F401 - registers the commands
from chc_equity.cli import app
from chc_equity.warehouse import connect

runner = CliRunner(env={"COLUMNS": "250"})
SECRET = "Zebediah"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        '{"resourceType":"Patient","id":"p1"}\n'
        f'{{"resourceType":"Patient","id":"p2","name":[{{"given":["{SECRET}"]}}],"birthDate":"2001-02-29"}}\n'
    )
    return folder


def test_ingest_prints_table_and_exit_codes(inputs: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(inputs), "--center", "chc-a", "--warehouse", str(db)])
    assert result.exit_code == 0, result.output
    assert "Patient" in result.output and "quarantined" in result.output
    assert SECRET not in result.output
    strict = runner.invoke(
        app, ["ingest", str(inputs), "--center", "chc-a", "--warehouse", str(db), "--strict"]
    )
    assert strict.exit_code == 1
    con = connect(db)
    assert con.execute("SELECT count(*) FROM resources").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM loads").fetchone() == (2,)
    con.close()


def test_strict_passes_clean_input_and_env_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"p1"}\n')
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("CHC_EQUITY_WAREHOUSE", str(db))
    result = runner.invoke(app, ["ingest", str(tmp_path / "Patient.ndjson"), "--center", "c", "--strict"])
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_rejects_hides_raw_unless_asked(inputs: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    runner.invoke(app, ["ingest", str(inputs), "--center", "chc-a", "--warehouse", str(db)])
    listing = runner.invoke(app, ["rejects", "--warehouse", str(db), "--load", "1"])
    assert listing.exit_code == 0, listing.output
    assert "invalid-date" in listing.output and "birthDate" in listing.output
    assert SECRET not in listing.output
    raw = runner.invoke(app, ["rejects", "--warehouse", str(db), "--show-raw", "--limit", "1"])
    assert SECRET in raw.output


def test_missing_input_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "nope"), "--center", "c", "--warehouse", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 2
