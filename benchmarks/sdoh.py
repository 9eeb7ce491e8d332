"""Social-needs stage benchmark: ``chc-equity sdoh``'s work (patient attributes, the SQL metrics, the
organizations table, the equity strata and the suppressed export) on a generated network.

The network (generate, ingest, views) is built once in a child process and cached under /tmp, keyed by
size and seed, so the figures here -- wall and CPU seconds per step and the peak RSS of this process --
are the stage's alone. Issue 14 asks for 100k patients; on a busy shared VM pass a smaller ``--patients``.

    PYTHONPATH=src .venv/bin/python benchmarks/sdoh.py [--patients 100000] [--centers 4] [--seed 7]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PS, PE = date(2026, 1, 1), date(2026, 12, 31)


def build(folder: Path, patients: int, centers: int, seed: int) -> None:
    """Generate the network, ingest each center and build its views (run in a child process)."""
    from chc_equity.ingest import load
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import connect

    started = time.perf_counter()
    summary = generate(folder / "net", centers=centers, patients=patients, seed=seed, period_end=PE,
                       cfg=load_config())  # fmt: skip
    con = connect(folder / "w.duckdb")
    for c in summary["centers"]:
        load(
            con,
            [folder / "net" / c["id"]],
            c["id"],
            after_load=lambda cn, ctr: build_views(cn, centers=[ctr]),
        )
    con.close()
    shutil.rmtree(folder / "net")  # the NDJSON is not needed again
    print(f"built {folder} in {time.perf_counter() - started:.0f} s")


def step(name: str, fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"  {name:<28} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--centers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # child process: build the cache here
    args = ap.parse_args()
    if args.build:
        build(args.build, args.patients, args.centers, args.seed)
        return
    folder = Path(f"/tmp/chc_equity_bench_sdoh_{args.patients // 1000}k_c{args.centers}_s{args.seed}")
    if not (folder / "w.duckdb").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--build", str(folder)], check=True)

    import duckdb

    from chc_equity.equity.attributes import build_patient_attributes
    from chc_equity.sdoh import export, metrics, strata

    work = Path(tempfile.mkdtemp(prefix="chc_sdoh_bench_"))
    try:
        shutil.copyfile(folder / "w.duckdb", work / "w.duckdb")  # the stage writes tables: keep the cache
        con = duckdb.connect(str(work / "w.duckdb"))
        print(f"{args.patients:,} patients, {args.centers} centers, period {PS} to {PE}:")
        wall, cpu = time.perf_counter(), time.process_time()
        step("patient attributes", build_patient_attributes, con, period_start=PS, period_end=PE)
        step("metrics + organizations", metrics.build, con, period_start=PS, period_end=PE)
        equity = step("equity strata", strata.build, con)
        table = con.execute(f"SELECT * FROM {metrics.METRICS}").df()
        orgs = con.execute(f"SELECT * FROM {metrics.ORGANIZATIONS}").df()
        step(
            "suppressed export", lambda: export.write_outputs(
                work / "out", export.suppress_metrics(table), equity, export.suppress_organizations(orgs)
            )
        )  # fmt: skip
        n = con.execute(f"SELECT count(*), sum(screened::INT) FROM {metrics.PATIENT}").fetchone()
        refs = con.execute(f"SELECT count(DISTINCT referral_id) FROM {metrics.REFERRAL}").fetchone()[0]
        con.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  {'total':<28} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
        )
        print(f"  eligible {n[0]:,}, screened {n[1]:,}, referrals {refs:,}, {len(orgs)} organization rows")
        print(f"  peak RSS {peak:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
