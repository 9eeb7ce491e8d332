"""Shared test fixtures. Tests that need ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_dir(*parts: str) -> Path:
    """Path under ../shared, skipping the calling test (with the reason) when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (tests that need ../shared are skipped)")
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A fresh, empty warehouse file path in a temporary directory."""
    return tmp_path / "test.duckdb"


@pytest.fixture(scope="session")
def official_cases() -> Iterator[tuple[Path, duckdb.DuckDBPyConnection]]:
    """Every official eCQM test folder evaluated once for the whole session (strict profile rule, as
    the expected results require): ``(ecqm_dir, connection)``. Read it only; a measure's test patients
    are the centers ``bundle:<its folder name>/...``. Shared by the conformance, MeasureReport and
    profile-rule tests so the ~700 test Bundles load, and every measure runs, once."""
    from chc_equity.measures.conformance import evaluate_official
    from chc_equity.measures.registry import all_measures

    ecqm = shared_dir("ecqm")
    con = evaluate_official(ecqm, all_measures())
    yield ecqm, con
    con.close()
