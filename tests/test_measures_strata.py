"""Stratifiers in results and summaries, and `chc-equity measures report`, on a small synthetic network."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import chc_equity.cli.measures  # noqa: F401 - registers the commands
from chc_equity.cli import app
from chc_equity.ingest import load
from chc_equity.measures import conformance
from chc_equity.measures.engine import RESULTS_TABLE, run_measures
from chc_equity.measures.evaluate import evaluate_into
from chc_equity.measures.registry import all_measures, find
from chc_equity.measures.summary import summarize
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from conftest import shared_dir

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
STRATIFIED = [m for m in all_measures() if any(g.stratifiers for g in m.measure.groups)]
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-center, 1,500-patient synthetic network, ingested and measured; returns the warehouse path."""
    root = tmp_path_factory.mktemp("network")
    summary = generate(
        root / "data", centers=3, patients=1500, seed=11, period_end=PERIOD[1], cfg=load_config(), gz=False
    )
    path = root / "warehouse.duckdb"
    con = connect(path)
    for center in (c["id"] for c in summary["centers"]):
        load(con, [root / "data" / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    run_measures(con, all_measures(), period_start=PERIOD[0], period_end=PERIOD[1])
    con.close()
    return path


@pytest.fixture
def con(network: Path):
    connection = duckdb.connect(str(network), read_only=True)
    yield connection
    connection.close()


def test_declared_stratifiers_are_the_five_age_stratified_measures() -> None:
    assert sorted(m.measure.cms_id for m in STRATIFIED) == ["CMS125", "CMS130", "CMS155", "CMS159", "CMS74"]
    for module in STRATIFIED:
        for group in module.measure.groups:
            assert len(group.stratifier_labels) == len(group.stratifiers) > 0


def test_strata_hold_only_declared_names(con: duckdb.DuckDBPyConnection) -> None:
    declared = {(m.measure.name, g.id): set(g.stratifiers) for m in all_measures() for g in m.measure.groups}
    rows = con.execute(
        f"SELECT DISTINCT measure, group_id, unnest(strata) FROM {RESULTS_TABLE} WHERE strata IS NOT NULL"
    ).fetchall()
    assert rows, "no stratified results in the synthetic network"
    for measure, group_id, stratum in rows:
        assert stratum in declared[(measure, group_id)]


@pytest.mark.parametrize("module", STRATIFIED, ids=[m.measure.cms_id for m in STRATIFIED])
def test_age_strata_partition_the_initial_population(con: duckdb.DuckDBPyConnection, module) -> None:
    """The age bands of each stratified measure are disjoint and cover its initial population, so the
    per-stratum rows of `summarize` add up to the total row, population by population."""
    rows = summarize(con, [module.measure.name], *PERIOD, strata=True)
    assert rows
    groups = {g.id: g for g in module.measure.groups}
    totals = [r for r in rows if r.stratum is None]
    for total in totals:
        parts = [
            r for r in rows
            if r.stratum is not None and (r.group_id, r.center) == (total.group_id, total.center)
        ]
        assert [p.stratum for p in parts] == list(groups[total.group_id].stratifiers)
        for field in ("initial_population", "denominator", "denominator_exclusion", "numerator"):
            assert sum(getattr(p, field) for p in parts) == getattr(total, field), (total, field)
    assert sum(t.initial_population for t in totals) > 0


def test_cms74_strata_are_age_at_start_of_period(con: duckdb.DuckDBPyConnection) -> None:
    """CMS74's official test content cannot check its strata (see test_measures_report); check the CQL
    definitions directly: age 1-5 / 6-12 / 13-20 at the start of the Measurement Period."""
    rows = con.execute(
        f"""SELECT r.strata, CAST(p.birth_date AS DATE) FROM {RESULTS_TABLE} r
            JOIN flat.patient p ON p.center = r.center AND p.id = r.patient_id
            WHERE r.measure = 'CMS74FHIRDentalCariesPrevention'"""
    ).fetchall()
    assert rows
    start = PERIOD[0]
    for strata, birth in rows:
        age = start.year - birth.year - ((start.month, start.day) < (birth.month, birth.day))
        band = 1 if age <= 5 else 2 if age <= 12 else 3
        assert strata == [f"Stratification {band}"]


def test_cms159_strata_follow_the_official_test_case_titles() -> None:
    """CMS159 test cases name their stratum ("DENEXPopStrat2Pass-..."): age 12-17 (1) or >= 18 (2) at the
    index assessment. Every patient in the initial population is in exactly that stratum, except one
    whose title contradicts its own data ("IPPPopStrat2Pass-Patientis18": born 2008-06-24, index
    assessment 2025-06-25, so 17 years old; the CQL puts her in stratum 1)."""
    ecqm = shared_dir("ecqm")
    [module] = find(["CMS159"])
    con = evaluate_into(
        conformance.test_folder(ecqm, module), [module], period_start=PERIOD[0], period_end=PERIOD[1]
    )
    try:
        rows = con.execute(f"SELECT center, strata FROM {RESULTS_TABLE} WHERE initial_population").fetchall()
    finally:
        con.close()
    checked = 0
    for center, strata in rows:
        match = re.search(r"PopStrat(\d)", center)
        if match and "IPPPopStrat2Pass-Patientis18" not in center:
            assert strata == [f"Stratification {match.group(1)}"], center
            checked += 1
    assert checked >= 30


def test_report_cli_summary_and_individual(network: Path, tmp_path: Path) -> None:
    period = ["--period-start", "2026-01-01", "--period-end", "2026-12-31", "--warehouse", str(network)]
    out = tmp_path / "reports"
    result = runner.invoke(app, ["measures", "report", "--measure", "CMS125", "--measure", "CMS22",
                                 "--out", str(out), *period])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.json"))
    assert len(files) == 2 * 3  # measures x centers
    con = duckdb.connect(str(network), read_only=True)
    try:
        expected = {
            (s.cms_id, s.center, s.group_id, s.stratum): s
            for s in summarize(con, ["CMS125FHIRBreastCancerScreen"], *PERIOD, strata=True)
        }
        patients = con.execute(
            f"SELECT count(DISTINCT (center, patient_id)) FROM {RESULTS_TABLE} "
            "WHERE measure = 'CMS22FHIRPCSBPScreeningFollowUp'"
        ).fetchone()[0]
    finally:
        con.close()
    r4b = _fhir_model()
    for path in files:
        report = json.loads(path.read_text())
        if r4b:
            r4b.MeasureReport.model_validate(report)
        if "CMS125" not in path.name:
            continue
        center = report["reporter"]["reference"].removeprefix("Organization/")
        [group] = report["group"]
        want = expected[("CMS125", center, "Group_1", None)]
        counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
        assert counts["initial-population"] == want.initial_population
        assert counts["numerator"] == want.numerator
        assert group["measureScore"]["value"] == pytest.approx(want.rate)
        names = ("Stratification 1", "Stratification 2")
        for stratifier, name in zip(group["stratifier"], names, strict=True):
            true_stratum = stratifier["stratum"][0]["population"]
            inside = {p["code"]["coding"][0]["code"]: p["count"] for p in true_stratum}
            assert inside["denominator"] == expected[("CMS125", center, "Group_1", name)].denominator

    result = runner.invoke(app, ["measures", "report", "--measure", "CMS22", "--type", "individual",
                                 "--out", str(out), *period])
    assert result.exit_code == 0, result.output
    [ndjson] = out.glob("*.ndjson")
    lines = ndjson.read_text().splitlines()
    assert len(lines) == patients > 0
    first = json.loads(lines[0])
    assert first["type"] == "individual" and first["subject"]["reference"].startswith("Patient/")
    if r4b:
        for line in lines[:50]:
            r4b.MeasureReport.model_validate_json(line)


def test_run_cli_prints_strata_under_their_group(network: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(network, copy)
    result = runner.invoke(
        app,
        ["measures", "run", "--measure", "CMS125", "--period-start", "2026-01-01", "--warehouse", str(copy)],
    )
    assert result.exit_code == 0, result.output
    assert "Age 42-51" in result.output and "Age 52-74" in result.output


def test_report_cli_rejects_unknown_type(network: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["measures", "report", "--type", "bogus", "--out", str(tmp_path), "--warehouse", str(network)]
    )
    assert result.exit_code == 2


def _fhir_model():
    try:
        from fhir.resources.R4B import measurereport
    except ImportError:  # optional dev dependency: the structural checks above still run
        return None
    return measurereport
