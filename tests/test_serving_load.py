"""The load test, short: users read while two real `chc-equity ingest` run; no failure, no mixed state.

The full version (20 users, 8 loads) is ``benchmarks/loadtest.py``; figures in benchmarks/README.md.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path

import pytest

from browser.webseed import NORTH, build_warehouse

REPO = Path(__file__).resolve().parents[1]


def _loadtest():
    spec = importlib.util.spec_from_file_location("loadtest", REPO / "benchmarks" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_reads_during_loads_never_fail_and_match_one_snapshot(tmp_path: Path, monkeypatch) -> None:
    from chc_equity.synth import generate, load_config
    from chc_equity.web.authstore import AuthStore, auth_path
    from chc_equity.web.roles import Role

    lt = _loadtest()
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    warehouse = build_warehouse(tmp_path / "wh.duckdb")  # two centers with measure results, aggregates
    AuthStore(auth_path(warehouse)).add_user("loadtest", lt.PASSWORD, Role.NETWORK_ADMIN, None)
    summary = generate(
        tmp_path / "net", centers=2, patients=40, seed=3, period_end=date(2026, 12, 31), cfg=load_config()
    )
    bundles = [tmp_path / "net" / c["id"] for c in summary["centers"]]
    outcome = lt.run(
        tmp_path,
        users=3,
        loads=2,
        refresh=False,  # the measures of this fixture are plain rows: nothing to re-run
        deadline_s=60,
        network=(warehouse, bundles),
        center=NORTH,
        measure="CMS130",
    )
    print(lt.report(outcome, 3))
    assert outcome.problems == []
    assert [rc for _c, _s, rc in outcome.loads] == [0, 0]
    seqs = {s.seq for s in outcome.responses}
    assert len(outcome.responses) > 20 and max(seqs) == 3  # the two loads' snapshots, after the first
    kinds = {s.kind for s in outcome.responses}
    assert {"overview", "measure", "gaps", "centers"} <= kinds
