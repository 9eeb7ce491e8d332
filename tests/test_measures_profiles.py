"""The profile rule, one switch (``--profiles strict|lenient``) for ``measures run`` and ``measures
evaluate``: how the official test cases differ between the two settings (computed, then compared with a
pinned list), and a warehouse run under ``strict`` leaving the warehouse's data untouched."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chc_equity.cli import app
from chc_equity.cli import measures as _measures_cli  # noqa: F401  (registers the commands)
from chc_equity.ingest.loader import load
from chc_equity.ingest.sources import discover
from chc_equity.measures import conformance
from chc_equity.measures.engine import RESULTS_TABLE, run_measures
from chc_equity.measures.evaluate import evaluate_into, population_rows
from chc_equity.measures.profiles import LEFT_OUT, SCRATCH
from chc_equity.measures.registry import all_measures, find
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from conftest import shared_dir

MEASURES = all_measures()

# (measure, test case, population, count under strict, count under lenient) for every official test
# patient whose populations differ between the two rules. Strict is what expected.csv says.
DIFFERENCES: set[tuple[str, str, str, int, int]] = {
    # the retinal exam declares a misspelled profile URL: not QI-Core, so strict leaves it out
    ("CMS131", "NUMFail-RetinalExamJan1OfYrB4MPRetinoDxJan1AfterMP", "numerator", 0, 1),
    # the Encounter, Condition and Procedure declare no profile: strict has no qualifying encounter
    ("CMS177", "IPFail-EncB4MP", "initial-population", 0, 1),
    ("CMS177", "IPFail-EncB4MP", "denominator", 0, 1),
}


def _test_cases(ecqm: Path) -> dict[tuple[str, str], str]:
    with open(ecqm / "expected.csv", newline="") as fh:
        return {(row["measure"], row["patient_id"]): row["test_case"] for row in csv.DictReader(fh)}


def test_official_cases_differ_between_the_profile_rules_as_pinned(official_cases, tmp_path: Path) -> None:
    """Run the official cases both ways. The strict run is the session's; the lenient run needs only the
    test Bundles from which strict left something out (each Bundle is its own center, so every other
    Bundle has the same input, hence the same results, under both rules)."""
    ecqm, strict = official_cases
    centers = [c for (c,) in strict.execute(f"SELECT DISTINCT center FROM {LEFT_OUT} ORDER BY 1").fetchall()]
    assert centers, "strict left nothing out of the official test cases"
    for center in centers:
        assert center.startswith("bundle:"), center
        relative = center.removeprefix("bundle:")  # <test folder>/<path of the Bundle in it>
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ecqm / "tests" / relative, tmp_path / relative)
    folders = sorted({c.removeprefix("bundle:").split("/", 1)[0] for c in centers})
    start, end = conformance.official_period(ecqm, MEASURES)
    lenient = evaluate_into(
        [tmp_path / f for f in folders], MEASURES, period_start=start, period_end=end, profiles="lenient"
    )
    names = _test_cases(ecqm)
    differences = set()
    try:
        for module in MEASURES:
            m = module.measure
            for center in centers:
                if not center.startswith(f"bundle:{conformance.test_folder(ecqm, module).name}/"):
                    continue
                ours = {
                    (r["group_id"], r["patient_id"], r["population_code"]): r["count"]
                    for r in population_rows(strict, [module], center_prefix=center)
                }
                for r in population_rows(lenient, [module], center_prefix=center):
                    key = (r["group_id"], r["patient_id"], r["population_code"])
                    if ours[key] != r["count"]:
                        case = names.get((m.name, str(r["patient_id"])), str(r["patient_id"]))
                        group = "" if r["group_id"] == "Group_1" else f" {r['group_id']}"
                        differences.add(
                            (m.cms_id, case, f"{r['population_code']}{group}", ours[key], r["count"])
                        )
    finally:
        lenient.close()
    assert differences == DIFFERENCES, sorted(differences)


# CMS177 "IPFail-EncB4MP": an MDD encounter in the period, but the Encounter, Condition and Procedure
# declare no profile; the official expected result ignores them (initial population 0).
UNTAGGED_CASE = "85e6225c-a9bb-4338-a228-297564e38c4d"
PERIOD = {"period_start": date(2026, 1, 1), "period_end": date(2026, 12, 31)}


@pytest.fixture
def untagged_warehouse(tmp_path: Path) -> Path:
    """A warehouse (file) holding the one untagged CMS177 test case, views built."""
    [folder] = shared_dir("ecqm", "tests").glob(f"CMS177*/{UNTAGGED_CASE}")
    path = tmp_path / "wh.duckdb"
    con = connect(path)
    load(con, list(discover([folder])), "c1")
    build_views(con)
    con.close()
    return path


def _initial_population(con) -> int:
    query = f"SELECT count(*) FILTER (WHERE initial_population) FROM {RESULTS_TABLE}"
    return con.execute(query).fetchone()[0]


COUNTS = "SELECT (SELECT count(*) FROM resources), (SELECT count(*) FROM flat.encounter)"


def test_a_strict_warehouse_run_leaves_the_warehouse_data_untouched(untagged_warehouse: Path) -> None:
    con = connect(untagged_warehouse)
    before = con.execute(COUNTS).fetchone()
    run_measures(con, find(["CMS177"]), **PERIOD)
    assert _initial_population(con) == 1  # lenient: the untagged encounter counts
    run_measures(con, find(["CMS177"]), **PERIOD, profiles="strict")
    assert _initial_population(con) == 0  # strict: the rows were replaced by the strict copy's
    assert con.execute(COUNTS).fetchone() == before
    databases = {name for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    assert SCRATCH not in databases
    with pytest.raises(ValueError, match="lenient"):
        run_measures(con, find(["CMS177"]), **PERIOD, profiles="strict", materialize_defines=True)
    con.close()


@pytest.mark.parametrize(("profiles", "expected"), [("strict", 0), ("lenient", 1), (None, 1)])
def test_measures_run_takes_the_profiles_switch(untagged_warehouse: Path, profiles, expected) -> None:
    args = [
        "measures",
        "run",
        "--measure",
        "CMS177",
        "--period-start",
        "2026-01-01",
        "--no-aggregates",
        "--warehouse",
        str(untagged_warehouse),
    ]
    result = CliRunner().invoke(app, args + (["--profiles", profiles] if profiles else []))
    assert result.exit_code == 0, result.output
    con = connect(untagged_warehouse, read_only=True)
    assert _initial_population(con) == expected
    con.close()


@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_both_commands_reject_an_unknown_rule(tmp_path: Path, command: str) -> None:
    args = {
        "run": ["measures", "run", "--warehouse", str(tmp_path / "wh.duckdb")],
        "evaluate": [
            "measures",
            "evaluate",
            "--input",
            str(tmp_path),
            "--period-start",
            "2026-01-01",
            "--period-end",
            "2026-12-31",
            "--output",
            str(tmp_path / "out.csv"),
        ],
    }[command]
    result = CliRunner().invoke(app, [*args, "--profiles", "loose"])
    assert result.exit_code == 2
    assert "strict, lenient" in result.output
