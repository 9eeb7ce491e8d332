"""Run compiled measures on a package's official test cases and compare with its ``expected.csv``.

A package directory (``../shared/ecqm-2025`` or ``../shared/ecqm``) holds the Measure resources
(``measure/`` or ``input/resources/measure/``), the ELM (``elm/``), the test Bundles (``tests/<measure>/``
or ``tests/<CMSnnn>FHIR-*``), ``expected.csv`` and, when it brings its own value-set expansions,
``vocabulary/`` (otherwise the shipped terminology, table ``valueset_codes``, is used).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.measures.elm.library import ElmError
from chc_equity.measures.elm.measure import (
    Compiled,
    MeasureDef,
    compile_measure,
    load_valuesets,
    run_compiled,
    run_observations,
)
from chc_equity.measures.evaluate import evaluate_into
from chc_equity.measures.model import POPULATION_COLUMNS
from chc_equity.measures.vocabulary import Period, sql_str

PACKAGE_VALUESETS = "elm_valueset_codes"


@dataclass
class ElmConformance:
    """Agreement of one compiled measure with its official test cases (or why it was not compiled)."""

    measure: str
    compared: int = 0
    agreed: int = 0
    error: str = ""
    disagreements: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.error or f"{self.agreed} / {self.compared}"


@dataclass(frozen=True)
class PackageLayout:
    root: Path

    @property
    def elm(self) -> Path:
        return self.root / "elm"

    @property
    def measures(self) -> Path:
        for candidate in (self.root / "measure", self.root / "input" / "resources" / "measure"):
            if candidate.is_dir():
                return candidate
        raise FileNotFoundError(f"no measure/ folder of Measure resources in {self.root}")

    @property
    def vocabulary(self) -> Path | None:
        path = self.root / "vocabulary"
        return path if path.is_dir() else None

    def measure_names(self) -> list[str]:
        return sorted(p.stem for p in self.measures.glob("*.json"))

    def tests(self, measure: str) -> Path:
        exact = self.root / "tests" / measure
        if exact.is_dir():
            return exact
        matches = sorted((self.root / "tests").glob(measure.split("FHIR")[0] + "FHIR-*"))
        if len(matches) != 1:
            raise FileNotFoundError(f"no unique test folder for {measure} under {self.root / 'tests'}")
        return matches[0]

    def expected(self) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = defaultdict(list)
        with open(self.root / "expected.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                out[row["measure"]].append(row)
        return out


OBSERVATION_CODES = ("measure-observation", "measure-population-observation")


def population_counts(rows: Sequence[tuple], compiled: Compiled) -> dict[tuple[str, str, str], int]:
    """(group, patient, population code) -> count, from the scored rows of :func:`run_compiled`: the
    number of the patient's subjects (itself, or its episodes) in each population."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    codes = compiled.measure.columns
    for row in rows:
        group, patient = row[2], row[7]
        for i, column in enumerate(POPULATION_COLUMNS.values()):
            counts[(group, patient, codes[column])] += int(bool(row[8 + i]))
    return counts


def observation_values(rows: Sequence[tuple]) -> dict[tuple[str, str], list[float]]:
    """(patient, observation id) -> the observed values of the patient's episodes, sorted (the
    MeasureReport numbers its observation entries per episode, in no order the rows can rebuild)."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _center, patient, _group, _subject, observation, value in rows:
        out[(patient, observation)].append(value)
    return {k: sorted(v, key=lambda x: (x is None, x or 0.0)) for k, v in out.items()}


def _same(expected: str, got: float | None) -> bool:
    """An observation count equals the value (the MeasureReport count is an integer: a fraction
    agrees with its rounding)."""
    return got is not None and round(got) == int(expected)


def compare(
    result: ElmConformance,
    expected: list[dict[str, str]],
    counts: dict,
    observations: dict[tuple[str, str], list[float]] | None = None,
) -> None:
    """Count agreement per expected row; each observation entry (one per episode) compares with the
    patient's observed values of that observation, both sorted; an observation the compiled
    measure made beyond the expected entries counts as one disagreement each."""
    observed: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    patients = set()
    for row in expected:
        patients.add(row["patient_id"])
        if row["population_code"] in OBSERVATION_CODES:
            observed[(row["patient_id"], row["population_id"].rsplit("_", 1)[0])].append(row)
            continue
        result.compared += 1
        got = counts.get((row["group_id"], row["patient_id"], row["population_code"]), 0)
        if got == int(row["expected_count"]):
            result.agreed += 1
        else:
            result.disagreements.append(
                f"{row['test_case']} ({row['patient_id']}) {row['group_id']} {row['population_code']}: "
                f"expected {row['expected_count']}, got {got}"
            )
    observations = observations or {}
    extra = {k for k in observations if k[0] in patients} - set(observed)
    for key in sorted(observed) + sorted(extra):
        rows = sorted(observed.get(key, []), key=lambda r: int(r["expected_count"]))
        values = observations.get(key, [])
        for i in range(max(len(rows), len(values))):
            result.compared += 1
            want = rows[i]["expected_count"] if i < len(rows) else None
            got = values[i] if i < len(values) else None
            if want is not None and _same(want, got):
                result.agreed += 1
                continue
            case = rows[0]["test_case"] if rows else "(no expected observation)"
            result.disagreements.append(f"{case} ({key[0]}) {key[1]}: expected {want}, got {got}")


def check_compiled(
    con: duckdb.DuckDBPyConnection,
    package: str | Path,
    measures: Sequence[str],
    center_prefix,
    valueset_table: str = "valueset_codes",
) -> dict[str, ElmConformance]:
    """Compile and run ``measures`` on the patients already in ``con`` (the centers
    ``center_prefix(measure)`` starts), compare with the package's ``expected.csv``."""
    layout = PackageLayout(Path(package))
    expected = layout.expected()
    results = {}
    for name in measures:
        result = results[name] = ElmConformance(name)
        rows = expected.get(name, [])
        if not rows:
            result.error = "no expected results"
            continue
        period = Period(
            date.fromisoformat(rows[0]["period_start"]), date.fromisoformat(rows[0]["period_end"])
        )
        try:
            measure = MeasureDef.read(layout.measures / f"{name}.json")
            compiled = compile_measure(measure, layout.elm, period, valueset_table)
            where = f"starts_with(p.center, {sql_str(center_prefix(name))})"
            scored = run_compiled(con, compiled, where)
            observed = run_observations(con, compiled)
        except ElmError as exc:
            result.error = str(exc).splitlines()[0]
            continue
        except duckdb.Error as exc:
            result.error = f"SQL error: {str(exc).splitlines()[0][:160]}"
            continue
        compare(result, rows, population_counts(scored, compiled), observation_values(observed))
    return results


def check_package(package: str | Path, measures: Sequence[str] | None = None) -> dict[str, ElmConformance]:
    """Every (or the named) measure of a package on its own official test cases, all test folders in
    one in-memory warehouse (strict profile rule, as the expected results require)."""
    layout = PackageLayout(Path(package))
    names = list(measures) if measures else layout.measure_names()
    folders: dict[str, Path] = {}
    missing: dict[str, ElmConformance] = {}
    for name in names:
        try:
            folders[name] = layout.tests(name)
        except FileNotFoundError as exc:
            missing[name] = ElmConformance(name, error=str(exc))
    # no hand-written measure runs here: each compiled measure takes its own period from expected.csv
    con = evaluate_into(
        list(folders.values()), [], period_start=date(2026, 1, 1), period_end=date(2026, 12, 31)
    )
    try:
        table = "valueset_codes"
        if layout.vocabulary is not None:
            load_valuesets(con, layout.vocabulary, PACKAGE_VALUESETS)
            table = PACKAGE_VALUESETS
        results = check_compiled(con, package, list(folders), lambda n: f"bundle:{folders[n].name}/", table)
    finally:
        con.close()
    return {n: results.get(n) or missing[n] for n in names}


def markdown_table(results: dict[str, ElmConformance]) -> str:
    """The per-measure table of docs/conformance.md ("ELM compiler")."""
    lines = ["| Measure | Populations agreed / compared |", "|---|---|"]
    for name, r in results.items():
        status = r.status.replace("|", "\\|")
        lines.append(f"| {name} | {status} |")
    return "\n".join(lines)
