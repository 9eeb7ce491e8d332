"""Equity step benchmark: 21 measures x 6 dimensions on a 100k-patient warehouse (target <= 10 s).

Times only the equity step (attributes + counts + statistics + suppression), on a warehouse whose
measure_results are already computed. The warehouse is generated once and cached under /tmp
(separate from the measures benchmark's). ``--detection`` also reports planted-disparity detection
against truth.json at this size.

    .venv/bin/python benchmarks/equity.py [--patients 100000] [--detection]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.equity.attributes import build_patient_attributes
from chc_equity.equity.stratify import equity_tables

PS, PE = date(2026, 1, 1), date(2026, 12, 31)
DIMS = ["race_ethnicity", "language", "income", "insurance", "sdoh_risk", "center"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--detection", action="store_true")
    args = ap.parse_args()
    folder = Path(f"/tmp/chc_equity_bench_equity_{args.patients // 1000}k")
    if not (folder / "w.duckdb").exists():
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_equity_stratify import build_network  # same pipeline as the tests

        folder.mkdir(parents=True, exist_ok=True)
        build_network(folder, patients=args.patients, seed=1, disparities=True, centers=8)
    con = duckdb.connect(str(folder / "w.duckdb"))
    started = time.perf_counter()
    build_patient_attributes(con, period_start=PS, period_end=PE)
    attrs = time.perf_counter() - started
    n_rows = 0
    for dim in DIMS:
        rows, _ = equity_tables(con, None, [dim], period_start=PS, period_end=PE)
        n_rows += len(rows)
    total = time.perf_counter() - started
    print(
        f"equity step: {total:.2f} s ({attrs:.2f} s attributes), 21 measures x {len(DIMS)} dims"
    )
    if args.detection:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_equity_stratify import detection

        print(json.dumps(detection(folder / "w.duckdb", folder / "net" / "truth.json")))


if __name__ == "__main__":
    main()
