"""`chc-equity vouchers ...` end to end on the fixture program (SQLite app database next to a warehouse)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chc_equity.cli import _register, app
from test_vouchers_rules import FIXTURE

runner = CliRunner(env={"COLUMNS": "200"})


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_setup_import_budget_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    _register("vouchers")
    wh = ["--warehouse", str(tmp_path / "wh.duckdb")]
    assert "8 vouchers" in _run("vouchers", "setup", str(FIXTURE / "program.json"), *wh)
    claims = str(FIXTURE / "claims_fixture.csv")
    assert "43 new lines, 0 already received, 0 rejected, 43 adjudicated" in _run(
        "vouchers", "import", claims, *wh, "--on", "2026-09-01"
    )
    assert "imported before, nothing added" in _run("vouchers", "import", claims, *wh)
    budget = _run("vouchers", "budget", *wh, "--on", "2026-09-01")
    assert "1,735.00" in budget  # the hand-computed total paid
    _run("vouchers", "report", *wh, "--year", "2026", "--out", str(tmp_path / "rep"))
    with (tmp_path / "rep" / "uds_table4_agricultural.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows == [["line", "patients"], ["migratory", ""], ["seasonal", ""], ["total", ""]]  # 5 < 11
    with (tmp_path / "rep" / "denial_reasons.csv").open() as f:
        reasons = dict(csv.reader(f))
    assert reasons.pop("reason") == "lines" and reasons.pop("total") == "25"  # 25 lines denied, by hand
    assert len(reasons) == 16 and set(reasons.values()) == {""}  # each reason: 1-3 lines, hidden

    # P-DENT's remittance: its 5 lines only (C021-C024, C026), 50.00 + 80.00 paid, reasons in words
    remit = tmp_path / "dent.csv"
    assert "P-DENT: 5 decided lines, 130.00 paid" in _run(
        "vouchers", "remittance", "--provider", "P-DENT", "--out", str(remit), *wh
    )
    with remit.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["claim_no"] for r in rows] == ["C021", "C022", "C023", "C024", "C026"]
    assert [r["reason"] for r in rows] == [
        "",
        "",
        "YEAR_UNIT_LIMIT",
        "VOUCHER_UNIT_LIMIT",
        "PROVIDER_NOT_PARTICIPATING",
    ]
    assert rows[2]["reason_text"] == "Units over the code's limit per patient and year"

    bad = tmp_path / "bad.csv"
    bad.write_text("provider_id,claim_no\nP,1\n")
    result = runner.invoke(app, ["vouchers", "import", str(bad), *wh])
    assert result.exit_code == 1 and "bad.csv: line 1: column(s) missing" in result.output
