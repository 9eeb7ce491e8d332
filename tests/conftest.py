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


@pytest.fixture(scope="session")
def small_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 400-patient, one-center network (seed 2026, as benchmarks/measures.py), ingested
    with its views and every hand-written measure run for 2026: the warehouse file. Built once per
    session for the measure digest and the compiled-vs-hand-written check; open it read-only, or copy
    it to change it."""
    from datetime import date

    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import all_measures
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import connect

    root = tmp_path_factory.mktemp("small_network")
    end = date(2026, 12, 31)
    summary = generate(
        root / "network",
        centers=1,
        patients=400,
        seed=2026,
        period_end=end,
        cfg=load_config(None, disparities=True),
        gz=False,
    )
    path = root / "network.duckdb"
    con = connect(path)
    try:
        for center in (c["id"] for c in summary["centers"]):
            load(
                con,
                [root / "network" / center],
                center,
                after_load=lambda c, ctr: build_views(c, centers=[ctr]),
            )
        run_measures(con, all_measures(), period_start=date(2026, 1, 1), period_end=end)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


# --- the app database's two back ends ----------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for this worker (tests/pgcluster.py); its admin URL."""
    from pgcluster import pg_cluster

    with pg_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def app_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once per app-database back end, as the CLI and web app pick it: SQLite next to the
    warehouse (no ``CHC_EQUITY_DATABASE_URL``), or a fresh PostgreSQL database named by that variable."""
    if request.param == "sqlite":
        monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    else:
        from pgcluster import new_database

        monkeypatch.setenv("CHC_EQUITY_DATABASE_URL", new_database(request.getfixturevalue("pg_admin_url")))
    return request.param
