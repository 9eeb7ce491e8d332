"""`measures evaluate` profile handling: strict (test content) versus lenient (production data)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from chc_equity.measures.evaluate import evaluate
from chc_equity.measures.registry import find
from conftest import shared_dir

# CMS177 "IPFail-EncB4MP": an MDD encounter in the period, but the Encounter, Condition and Procedure
# declare no profile; the official expected result ignores them (initial population 0).
UNTAGGED_CASE = "85e6225c-a9bb-4338-a228-297564e38c4d"


@pytest.fixture
def untagged_case(tmp_path: Path) -> Path:
    tests = shared_dir("ecqm", "tests")
    [folder] = tests.glob(f"CMS177*/{UNTAGGED_CASE}")
    target = tmp_path / "case"
    shutil.copytree(folder, target)
    return target


def _initial_population(rows: list[dict[str, object]]) -> int:
    [row] = [r for r in rows if r["population_code"] == "initial-population"]
    return int(row["count"])


@pytest.mark.parametrize(("profiles", "expected"), [("strict", 0), ("lenient", 1)])
def test_untagged_only_count_when_lenient(untagged_case: Path, profiles: str, expected: int) -> None:
    rows = evaluate(
        untagged_case, find(["CMS177"]), period_start=date(2026, 1, 1), period_end=date(2026, 12, 31),
        profiles=profiles,
    )
    assert _initial_population(rows) == expected


def test_unknown_profiles_mode_is_rejected(untagged_case: Path) -> None:
    with pytest.raises(ValueError, match="strict"):
        evaluate(untagged_case, [], period_start=date(2026, 1, 1), period_end=date(2026, 12, 31), profiles="")
