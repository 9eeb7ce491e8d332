"""Measures declare their populations; the engine writes the one population SELECT (issue 23)."""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from chc_equity.measures.populations import Populations, population_select
from chc_equity.measures.registry import MODULES, all_measures

ECQM = Path(__file__).resolve().parents[1] / "src" / "chc_equity" / "measures" / "ecqm"
MIN_RUN = 6

# Runs of >= 6 identical lines still shared by two measure files, each to be folded into a shared
# helper (or accepted as declarative data) in a later step. The test fails when a new shared run
# appears *and* when one listed here is gone (then delete it here): the list can only shrink.
KNOWN_SHARED_RUNS = {
    ("cms122.py", "cms131.py"),  # both diabetes measures' CQL has the same "Initial Population"
    ("cms125.py", "cms130.py"),  # the library defines both read, and the age expression
    ("cms125.py", "cms130.py", "cms74.py"),  # Group(...) metadata with stratifiers
    ("cms138.py", "cms69.py"),  # eff_start / eff_end / perf_start / perf_end choice helpers
    ("cms2.py", "cms69.py"),  # Group(...) metadata with a denominator exception
    ("cms2.py", "cms69.py"),  # Group(...) metadata
    ("cms74.py", "cms75.py"),  # both CQLs' identical "Qualifying Encounters", quoted; the logic is one call
}


def _code_lines(path: Path) -> list[str]:
    """The file's lines, stripped, with import statements blanked (imports are not logic)."""
    text = path.read_text()
    lines = [line.strip() for line in text.splitlines()]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for n in range(node.lineno - 1, node.end_lineno):
                lines[n] = ""
    return lines


def shared_runs(paths: list[Path], n: int = MIN_RUN) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Files sharing a run of ``n`` identical non-blank lines -> one such run."""
    where: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for path in paths:
        lines = _code_lines(path)
        for i in range(len(lines) - n + 1):
            window = tuple(lines[i : i + n])
            if all(window):
                where[window].add(path.name)
    found: dict[tuple[str, ...], tuple[str, ...]] = {}
    for window, names in where.items():
        if len(names) > 1:
            found.setdefault(tuple(sorted(names)), window)
    return found


def test_no_new_run_of_six_identical_lines_in_two_measure_files() -> None:
    found = shared_runs(sorted(ECQM.glob("cms*.py")))
    new = {k: v for k, v in found.items() if k not in KNOWN_SHARED_RUNS}
    assert not new, "measure files repeat each other; share a helper instead:\n" + "\n".join(
        f"{k}: {' / '.join(v)}" for k, v in new.items()
    )
    gone = KNOWN_SHARED_RUNS - set(found)
    assert not gone, f"no longer shared, remove from KNOWN_SHARED_RUNS: {sorted(gone)}"


def test_shared_runs_finds_a_copied_block(tmp_path: Path) -> None:
    block = "\n".join(f"x{i} = {i}" for i in range(MIN_RUN)) + "\n"
    (tmp_path / "a.py").write_text("import os\n" + block)
    (tmp_path / "b.py").write_text("y = 0\n" + block)
    (tmp_path / "c.py").write_text(block.replace("x3", "z3"))
    assert list(shared_runs(sorted(tmp_path.glob("*.py")))) == [("a.py", "b.py")]


@pytest.mark.parametrize("name", MODULES)
def test_measure_declares_populations_and_builds_no_population_select(name: str) -> None:
    module = importlib.import_module(f"chc_equity.measures.ecqm.{name}")
    assert not hasattr(module, "criteria"), f"{name} writes its own criteria query"
    source = (ECQM / f"{name}.py").read_text()
    assert not re.search(r"\bAS (initial_population|denominator_exception|numerator_exclusion)\b", source)
    groups = {g.id: g for g in module.MEASURE.groups}
    assert [p.group for p in module.POPULATIONS] == list(groups), "one declaration per group, in order"
    for p in module.POPULATIONS:
        declared = {"initial-population", "denominator"} | {
            code for code, field in (
                ("denominator-exclusion", p.denominator_exclusion),
                ("denominator-exception", p.denominator_exception),
                ("numerator", p.numerator),
                ("numerator-exclusion", p.numerator_exclusion),
            ) if field is not None
        }
        assert declared == set(groups[p.group].populations), (name, p.group)
        assert p.strata == bool(groups[p.group].stratifiers), (name, p.group)


def test_every_registered_measure_is_declared() -> None:
    assert all(m.criteria.__name__.startswith("criteria_of_") for m in all_measures())


@pytest.mark.parametrize("basis", ["boolean", "Encounter"])
def test_population_select_is_membership_in_the_named_defines(basis: str) -> None:
    """Subjects are the initial population's rows; each population is 'the subject is in that define'."""
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE ip AS SELECT * FROM (VALUES ('c', 'p1', 'e1', ['S1']), ('c', 'p2', 'e2', NULL), "
            "('d', 'p1', 'e3', NULL)) t(center, patient_id, id, strata)"
        )
        con.execute(  # a duplicate row, and a subject of another center
            "CREATE TABLE num AS SELECT * FROM (VALUES ('c', 'p1', 'e1'), ('c', 'p1', 'e1'), "
            "('x', 'p2', 'e2')) t(center, patient_id, id)"
        )
        con.execute("CREATE TABLE den AS SELECT * FROM (VALUES ('d', 'p1', 'e3')) t(center, patient_id, id)")
        groups = (
            Populations(initial_population="ip", numerator="num", strata=True),
            Populations(initial_population="ip", denominator="den", group="Group_2"),
        )
        rows = con.execute(
            "SELECT group_id, center, patient_id, subject_id, initial_population, denominator, "
            f"denominator_exclusion, numerator, strata FROM ({population_select(groups, basis)}) ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    e = basis == "Encounter"
    assert rows == [
        ("Group_1", "c", "p1", "e1" if e else "p1", True, True, False, True, ["S1"]),
        ("Group_1", "c", "p2", "e2" if e else "p2", True, True, False, False, None),
        ("Group_1", "d", "p1", "e3" if e else "p1", True, True, False, False, None),
        ("Group_2", "c", "p1", "e1" if e else "p1", True, False, False, False, None),
        ("Group_2", "c", "p2", "e2" if e else "p2", True, False, False, False, None),
        ("Group_2", "d", "p1", "e3" if e else "p1", True, True, False, False, None),
    ]
