"""Equity step benchmark: 21 measures x 6 dimensions on a 100k-patient warehouse (target <= 10 s).

Times only the equity step (attributes + counts + statistics + suppression), on a warehouse whose
measure_results are already computed. Each warehouse is generated once and cached under /tmp (separate
from the measures benchmark's); the cache name carries the size, seed and a hash of the planted rules, so
a changed default config builds a fresh one. ``--detection`` also reports planted-disparity detection
against truth.json (with the analytic expected detection, tests/test_equity_stratify.py), pooled over
``--seeds``; ``--no-disparities`` builds null networks and reports the false-alarm rate instead.

    .venv/bin/python benchmarks/equity.py [--patients 100000] [--seeds 1,2,3] [--detection] [--no-disparities]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.equity.attributes import build_patient_attributes
from chc_equity.equity.stratify import equity_tables
from chc_equity.measures.registry import all_measures
from chc_equity.synth import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_equity_stratify import build_network, detection, expected_power  # noqa: E402  (same pipeline)

PS, PE = date(2026, 1, 1), date(2026, 12, 31)
DIMS = ["race_ethnicity", "language", "income", "insurance", "sdoh_risk", "center"]
CENTERS = 8


def warehouse(patients: int, seed: int, disparities: bool) -> Path:
    """Cached warehouse folder for this size, seed and planted-rule set (built on first use)."""
    rules = json.dumps(load_config(None, disparities=disparities)["multipliers"], sort_keys=True)
    tag = hashlib.sha1(rules.encode()).hexdigest()[:8] if disparities else "null"
    folder = Path(f"/tmp/chc_equity_bench_equity_{patients // 1000}k_s{seed}_{tag}")
    if not (folder / "w.duckdb").exists():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build_network(folder, patients=patients, seed=seed, disparities=disparities, centers=CENTERS)
        print(f"built {folder} in {time.perf_counter() - started:.0f} s")
    return folder


def time_equity_step(path: Path) -> None:
    con = duckdb.connect(str(path))
    started = time.perf_counter()
    build_patient_attributes(con, period_start=PS, period_end=PE)
    attrs = time.perf_counter() - started
    for dim in DIMS:
        equity_tables(con, None, [dim], period_start=PS, period_end=PE)
    total = time.perf_counter() - started
    con.close()
    print(f"equity step: {total:.2f} s ({attrs:.2f} s attributes), 21 measures x {len(DIMS)} dims")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--seeds", default="1", help="comma-separated generator seeds")
    ap.add_argument("--detection", action="store_true")
    ap.add_argument("--no-disparities", action="store_true", help="null networks: report false alarms")
    args = ap.parse_args()
    disparities = not args.no_disparities
    inverse = frozenset(m.measure.cms_id for m in all_measures() if m.measure.inverse)
    pooled = dict(planted=0, detected=0, expected=0.0, compared=0, flagged=0)
    for seed in (int(s) for s in args.seeds.split(",")):
        folder = warehouse(args.patients, seed, disparities)
        print(f"seed {seed}, {args.patients:,} patients, {CENTERS} centers:")
        time_equity_step(folder / "w.duckdb")
        if not (args.detection or args.no_disparities):
            continue
        res = detection(folder / "w.duckdb", folder / "net" / "truth.json")
        truth = json.loads((folder / "net" / "truth.json").read_text())["measures"]
        power = expected_power(truth, inverse=inverse)
        res["expected"] = round(sum(power.values()), 2)
        res["min_cell_power"] = round(min(power.values()), 4) if power else None
        print(json.dumps(res))
        for k in pooled:
            pooled[k] += res[k]
    if args.detection and disparities and pooled["planted"]:
        print(
            f"pooled: {pooled['detected']}/{pooled['planted']} planted cells flagged "
            f"({pooled['detected'] / pooled['planted']:.1%}; expected >= {pooled['expected']:.1f}); "
            f"non-planted strata flagged {pooled['flagged']}/{pooled['compared']}"
        )
    if args.no_disparities and pooled["compared"]:
        print(
            f"pooled false alarms: {pooled['flagged']}/{pooled['compared']} strata "
            f"({pooled['flagged'] / pooled['compared']:.1%})"
        )


if __name__ == "__main__":
    main()
