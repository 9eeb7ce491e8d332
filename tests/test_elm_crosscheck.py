"""Compiled (from ../shared/ecqm/elm) vs hand-written measures on a small generated network: every
patient, every population; and `measures run --package` writing compiled rows into ``measure_results``
that `measures report` reads like the hand-written ones.

The network is the session's ``small_network`` (conftest: 400 patients, hand-written measures already
run), copied so the compiled rows never touch the digest test's warehouse.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import chc_equity.cli.measures  # noqa: F401 - registers the commands
from chc_equity.cli import app
from chc_equity.measures.elm.crosscheck import crosscheck
from chc_equity.measures.vocabulary import Period
from conftest import shared_dir

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))
# Compiled measures that agree with the hand-written ones on every cell of this network (the full
# 20k result and the explanation of every difference found: docs/conformance.md, "Compiled vs
# hand-written"). Small and quick ones: the check costs the compiled run of each.
AGREEING = ("CMS74", "CMS75", "CMS139", "CMS349")


@pytest.fixture(scope="module")
def network(small_network: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("elm_crosscheck") / "network.duckdb"
    shutil.copyfile(small_network, copy)
    return copy


def test_compiled_agree_with_handwritten_on_every_patient_and_population(network: Path) -> None:
    con = duckdb.connect(str(network))
    try:
        results = crosscheck(con, shared_dir("ecqm"), PERIOD, AGREEING, run_handwritten=False)
    finally:
        con.close()
    assert len(results) == len(AGREEING)
    for name, r in results.items():
        assert not r.error, f"{name}: {r.error}"
        assert r.patients == 400, name
        assert r.counts["initial-population"][0] > 0, f"{name}: an empty initial population proves nothing"
        assert r.n_differences == 0, f"{name}: {r.differences}"


def test_run_package_writes_compiled_rows_that_report_reads(network: Path, tmp_path: Path) -> None:
    """`measures run --package --measure CMS75` replaces the hand-written rows with the compiled ones
    (equal counts here), `--engine handwritten` puts the hand-written ones back, and
    `measures report --package` writes the MeasureReport from them."""
    ecqm = shared_dir("ecqm")
    query = (
        "SELECT count(*) FILTER (initial_population), count(*) FILTER (numerator), count(strata) "
        "FROM measure_results WHERE measure = 'CMS75FHIRChildrenDentalDecay'"
    )
    con = duckdb.connect(str(network), read_only=True)
    before = con.execute(query).fetchone()
    con.close()
    assert before[0] > 0
    args = ["measures", "run", "--warehouse", str(network), "--period-start", "2026-01-01", "--no-aggregates"]
    args += ["--package", str(ecqm), "--measure", "CMS75"]
    ran = CliRunner().invoke(app, args)
    assert ran.exit_code == 0, ran.output
    con = duckdb.connect(str(network), read_only=True)
    compiled = con.execute(query).fetchone()
    con.close()
    assert compiled[:2] == before[:2] and compiled[2] == 0  # compiled rows carry no strata
    back = CliRunner().invoke(app, [*args, "--engine", "handwritten"])
    assert back.exit_code == 0, back.output
    con = duckdb.connect(str(network), read_only=True)
    assert con.execute(query).fetchone() == before
    con.close()
    out = tmp_path / "reports"
    report = CliRunner().invoke(
        app,
        ["measures", "report", "--warehouse", str(network), "--package", str(ecqm), "--measure", "CMS75"]
        + ["--period-start", "2026-01-01", "--out", str(out)],
    )
    assert report.exit_code == 0, report.output
    assert len(list(out.glob("MeasureReport-CMS75-*.json"))) == 1


def test_engine_compiled_needs_a_package(network: Path) -> None:
    args = ["measures", "run", "--warehouse", str(network), "--engine", "compiled", "--no-aggregates"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "--package" in res.output
