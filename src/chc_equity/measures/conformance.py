"""Compare measure results with the official eCQM test cases (``../shared/ecqm``).

``expected.csv`` has one row per (test patient, group, population) with the expected count; we run
`evaluate` on the measures' test folders (all in one warehouse) and compare population membership row
by row.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.measures.engine import MeasureModule
from chc_equity.measures.evaluate import evaluate_into, population_rows


@dataclass
class MeasureConformance:
    """Agreement of one measure with its official test cases."""

    measure: str
    cases: int = 0
    compared: int = 0
    agreed: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.agreed / self.compared if self.compared else 0.0


def test_folder(ecqm_dir: Path, module: MeasureModule) -> Path:
    """The measure's test-case folder, e.g. tests/CMS122FHIR-v1.0.000-FHIR-TestCases."""
    matches = sorted((ecqm_dir / "tests").glob(f"{module.measure.cms_id}FHIR-*"))
    if len(matches) != 1:
        raise FileNotFoundError(
            f"no unique test folder for {module.measure.cms_id} under {ecqm_dir / 'tests'}"
        )
    return matches[0]


def expected_rows(ecqm_dir: Path, measure: str) -> list[dict[str, str]]:
    with open(ecqm_dir / "expected.csv", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["measure"] == measure]


def check_measure(ecqm_dir: Path, module: MeasureModule) -> MeasureConformance:
    """Evaluate one measure on its official test patients and compare every expected population."""
    return check_measures(ecqm_dir, [module])[module.measure.name]


def official_period(ecqm_dir: Path, modules: Sequence[MeasureModule]) -> tuple[date, date]:
    """The one Measurement Period of the measures' rows in ``expected.csv``."""
    periods = {
        (row["period_start"], row["period_end"])
        for m in modules
        for row in expected_rows(ecqm_dir, m.measure.name)
    }
    if len(periods) != 1:
        raise ValueError(f"expected.csv must hold exactly one measurement period, not {sorted(periods)}")
    [(start, end)] = periods
    return date.fromisoformat(start), date.fromisoformat(end)


def evaluate_official(
    ecqm_dir: Path, modules: Sequence[MeasureModule], *, profiles: str = "strict"
) -> duckdb.DuckDBPyConnection:
    """Every measure's official test folder in one in-memory warehouse (loaded and its views built once,
    every measure run once) under the given profile rule; the caller closes the connection. A measure's
    test patients are the centers ``bundle:<its folder name>/...``."""
    start, end = official_period(ecqm_dir, modules)
    folders = [test_folder(ecqm_dir, m) for m in modules]
    return evaluate_into(folders, list(modules), period_start=start, period_end=end, profiles=profiles)


def compare_official(
    con: duckdb.DuckDBPyConnection, ecqm_dir: Path, modules: Sequence[MeasureModule]
) -> dict[str, MeasureConformance]:
    """Compare each measure, on its own folder's patients in ``con`` (:func:`evaluate_official`), with
    every expected population of ``expected.csv``."""
    results = {m.measure.name: MeasureConformance(m.measure.name) for m in modules}
    for module in modules:
        name = module.measure.name
        expected = expected_rows(ecqm_dir, name)
        if expected:
            prefix = f"bundle:{test_folder(ecqm_dir, module).name}/"
            _compare(results[name], expected, population_rows(con, [module], center_prefix=prefix))
    return results


def check_measures(ecqm_dir: Path, modules: Sequence[MeasureModule]) -> dict[str, MeasureConformance]:
    """Every measure on its official test patients, all test folders in one warehouse (loaded and its
    views built once, every measure run once); each measure is compared on its own folder's patients."""
    with_cases = [m for m in modules if expected_rows(ecqm_dir, m.measure.name)]
    if not with_cases:
        return {m.measure.name: MeasureConformance(m.measure.name) for m in modules}
    con = evaluate_official(ecqm_dir, with_cases)
    try:
        return compare_official(con, ecqm_dir, modules)
    finally:
        con.close()


def _compare(
    result: MeasureConformance, expected: list[dict[str, str]], rows: list[dict[str, object]]
) -> None:
    """Count the expected rows that ``rows`` (``population_rows``) agree with; note the others."""
    actual: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in rows:
        actual[(str(row["group_id"]), str(row["patient_id"]), str(row["population_code"]))].append(
            int(row["count"])
        )
    result.cases = len({row["patient_id"] for row in expected})
    for row in expected:
        key = (row["group_id"], row["patient_id"], row["population_code"])
        result.compared += 1
        got = actual.get(key)
        want = int(row["expected_count"])
        if got is not None and len(got) == 1 and got[0] == want:
            result.agreed += 1
        else:
            result.disagreements.append(
                f"{row['test_case']} ({row['patient_id']}) {row['group_id']} {row['population_code']}: "
                f"expected {want}, got {got}"
            )
