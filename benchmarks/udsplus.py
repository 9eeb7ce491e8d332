"""UDS+ export benchmark: ``chc-equity udsplus export``'s work for every center of a generated network
(extract + de-identify, re-link store, NDJSON + manifest with strict validation) and the warehouse-free
reader that recomputes the UDS tables from the package.

The network (generate, ingest, views, the six eCQMs the tests use) is built once in a child process and
cached under /tmp, keyed by size and seed, so the figures are the stage's alone (wall and CPU seconds per
step, peak RSS of this process).

    PYTHONPATH=src .venv/bin/python benchmarks/udsplus.py [--patients 20000] [--centers 2] [--seed 7]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

PS, PE = date(2026, 1, 1), date(2026, 12, 31)
MEASURES = ["CMS165", "CMS122", "CMS138", "CMS155", "CMS347", "CMS125"]
KEY = b"benchmark key, not a secret: 0123456789abcdef0123456789"


def build(folder: Path, patients: int, centers: int, seed: int) -> None:
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import find
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import connect

    started = time.perf_counter()
    summary = generate(
        folder / "net", centers=centers, patients=patients, seed=seed, period_end=PE, cfg=load_config()
    )
    con = connect(folder / "w.duckdb")
    for c in summary["centers"]:
        load(
            con,
            [folder / "net" / c["id"]],
            c["id"],
            after_load=lambda cn, ctr: build_views(cn, centers=[ctr]),
        )
    run_measures(con, find(MEASURES), period_start=PS, period_end=PE)
    con.close()
    shutil.rmtree(folder / "net")
    print(f"built {folder} in {time.perf_counter() - started:.0f} s")


def step(name: str, fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"  {name:<34} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--centers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build, args.patients, args.centers, args.seed)
        return
    folder = Path(f"/tmp/chc_equity_bench_udsplus_{args.patients // 1000}k_c{args.centers}_s{args.seed}")
    if not (folder / "w.duckdb").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--build", str(folder)], check=True)

    import duckdb

    from chc_equity.uds.config import UdsConfig
    from chc_equity.udsplus import relink
    from chc_equity.udsplus.extract import HealthCenter, extract
    from chc_equity.udsplus.package import Submission, write_package
    from chc_equity.udsplus.reader import tables_from_package

    hc = HealthCenter("BENCHUEI0001", "H80CS00000", "Benchmark HC", {"line": ["1 Way"], "city": "X",
                      "state": "MA", "postalCode": "02118"}, "Example", ["Pat"], "555-0100")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="chc_udsplus_bench_"))
    try:
        shutil.copyfile(folder / "w.duckdb", work / "w.duckdb")
        con = duckdb.connect(str(work / "w.duckdb"))
        centers = [
            r[0] for r in con.execute("SELECT DISTINCT center FROM flat.patient ORDER BY 1").fetchall()
        ]
        print(f"{args.patients:,} patients, {len(centers)} centers, year {PS.year}:")
        wall, cpu = time.perf_counter(), time.process_time()
        for c in centers:
            cfg = replace(UdsConfig(), age_as_of="12-31")
            ex = step(f"{c} extract", extract, con, PS.year, c, KEY, config=cfg, hc=hc)
            step(f"{c} re-link store", relink.store, con, KEY, PS.year, c, ex.id_map)
            _, violations = step(f"{c} write + validate", write_package, ex, hc, work / c, Submission())
            step(f"{c} reader (tables from NDJSON)", tables_from_package, work / c, c)
            n = sum(len(v) for v in ex.resources.values())
            pts = len(ex.resources["Patient"])
            print(f"    {pts:,} UDS patients, {n:,} resources, {len(violations)} violations")
        print(
            f"  {'total':<34} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
        )
        print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
