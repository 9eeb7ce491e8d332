"""``measure_results`` on a generated network is identical to the stored digest.

The digest (tests/fixtures/measures_digest.json, one SHA-256 per measure, no patient data) was taken
before the measure engine was restructured (issue 23); any change to what a measure computes changes
it. The small network runs in every test run; the 20k-patient network of the issue runs when
``CHC_EQUITY_DIGEST_20K=1`` (a few minutes on 2 cores). To accept an intended change of results,
regenerate with ``CHC_EQUITY_DIGEST_UPDATE=1`` and explain the change in the commit.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pytest

from chc_equity.ingest import load
from chc_equity.measures.digest import results_digest
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

STORED = Path(__file__).parent / "fixtures" / "measures_digest.json"
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
SIZES = {
    "p400_c1": (400, 1),
    "p20000_c4": (20_000, 4),
}


def network_digest(patients: int, centers: int, workdir: Path) -> dict[str, dict[str, object]]:
    """Generate the network (seed 2026, as benchmarks/measures.py), ingest it, run every measure."""
    src = workdir / "network"
    summary = generate(
        src,
        centers=centers,
        patients=patients,
        seed=2026,
        period_end=PERIOD[1],
        cfg=load_config(None, disparities=True),
        gz=False,
    )
    con = connect(workdir / "network.duckdb")
    try:
        for center in (c["id"] for c in summary["centers"]):
            load(con, [src / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
        run_measures(con, all_measures(), period_start=PERIOD[0], period_end=PERIOD[1])
        return results_digest(con)
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("size", list(SIZES))
def test_measure_results_match_stored_digest(size: str, request: pytest.FixtureRequest) -> None:
    if size == "p20000_c4" and os.environ.get("CHC_EQUITY_DIGEST_20K") != "1":
        pytest.skip("20k-patient digest runs only with CHC_EQUITY_DIGEST_20K=1 (minutes on 2 cores)")
    stored = json.loads(STORED.read_text())
    if size == "p400_c1":  # the session's small network (conftest), shared with the ELM cross-check
        con = duckdb.connect(str(request.getfixturevalue("small_network")), read_only=True)
        try:
            got = results_digest(con)
        finally:
            con.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            got = network_digest(*SIZES[size], Path(tmp))
    if os.environ.get("CHC_EQUITY_DIGEST_UPDATE") == "1":
        stored[size] = got
        STORED.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    want = stored.get(size, {})
    assert want, f"no stored digest for {size} in {STORED}"
    changed = {m: (want.get(m), d) for m, d in got.items() if want.get(m) != d}
    assert not changed, f"measure_results changed for {sorted(changed)}: {changed}"
    assert set(got) == set(want)
