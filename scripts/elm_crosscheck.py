"""Compiled vs hand-written measures on a generated network: every patient, every population.

    python scripts/elm_crosscheck.py [--package ../shared/ecqm] [--patients 20000] [--centers 8]
                                     [--seed 2026] [--measure CMS124 ...] [--show 10] [--warehouse FILE]

Generates the network (``chc_equity.synth``) and ingests it (views per center) into a warehouse
cached under /tmp (``--warehouse`` to choose), then runs, for every measure of the package that is
also hand-written, both engines over every patient for 2026 (:mod:`chc_equity.measures.elm.crosscheck`)
and prints per measure the patients, each population's count by both engines, the number of differing
(patient, group, population) cells and the first ``--show`` of them. Exit status 1 when any compiled
measure differs. Measures the compiler does not support are listed with its message.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from chc_equity.ingest import load
from chc_equity.measures.elm.crosscheck import Agreement, crosscheck
from chc_equity.measures.vocabulary import Period
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))
REPO = Path(__file__).resolve().parents[1]


def build_network(path: Path, patients: int, centers: int, seed: int) -> None:
    """Generate ``patients`` in ``centers`` and ingest every center (views built per center)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        summary = generate(
            Path(tmp), centers=centers, patients=patients, seed=seed, period_end=PERIOD.end, cfg=load_config()
        )
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        con = connect(partial)
        for center in (c["id"] for c in summary["centers"]):
            load(con, [Path(tmp) / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
        con.execute("CHECKPOINT")
        con.close()
        shutil.move(partial, path)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, default=REPO.parent / "shared" / "ecqm")
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--centers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--measure", action="append", help="CMS id or Measure name; repeatable (default: all)")
    ap.add_argument("--show", type=int, default=10, help="differing cells to print per measure")
    ap.add_argument("--warehouse", type=Path, help="warehouse to build (if absent) and use")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--reuse-handwritten",
        action="store_true",
        help="compare with the hand-written rows measure_results already holds (an earlier run's)",
    )
    args = ap.parse_args(argv)

    path = args.warehouse or Path(tempfile.gettempdir()) / (
        f"chc_equity_elm_crosscheck/p{args.patients}_c{args.centers}_s{args.seed}.duckdb"
    )
    if not path.exists():
        t0 = time.perf_counter()
        build_network(path, args.patients, args.centers, args.seed)
        print(f"built {path} in {time.perf_counter() - t0:.0f} s")
    con = connect(path)
    con.execute(f"SET threads = {args.threads}")
    wall0, cpu0 = time.perf_counter(), cpu()
    failed = 0

    def show(r: Agreement) -> None:
        nonlocal failed
        if r.error:
            print(f"{r.measure}: {r.error}", flush=True)
            failed += 1
            return
        counts = " ".join(f"{code}={h}/{k}" for code, (h, k) in r.counts.items() if h or k)
        print(
            f"{r.measure}: {r.patients} patients, {r.n_differences} differing cells, "
            f"{r.strata_differences} subjects with other strata "
            f"(hand-written {r.seconds[0]:.1f} s {r.cpu[0]:.1f} CPU-s, compiled {r.seconds[1]:.1f} s "
            f"{r.cpu[1]:.1f} CPU-s); "
            f"hand-written/compiled {counts}",
            flush=True,
        )
        failed += r.n_differences > 0
        for d in r.differences:
            print(f"    {d[0]} {d[1]} {d[2]} {d[3]}: hand-written {d[4]}, compiled {d[5]}", flush=True)

    results = crosscheck(
        con,
        args.package,
        PERIOD,
        args.measure,
        max_differences=args.show,
        on_result=show,
        run_handwritten=not args.reuse_handwritten,
    )
    wall, used = time.perf_counter() - wall0, cpu() - cpu0
    con.close()
    for r in results.values():
        if r.error and not r.error.startswith("SQL error"):
            print(f"{r.measure}: not compiled: {r.error}")
    agreed = sum(r.agrees for r in results.values())
    compiled = sum(not r.error for r in results.values())
    print(
        f"{agreed} of {compiled} compiled measures agree with the hand-written ones on every cell "
        f"({len(results)} hand-written measures in the package); {wall:.0f} s wall, {used:.0f} CPU-s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
