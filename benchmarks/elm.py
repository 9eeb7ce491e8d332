"""Benchmark measures compiled from their ELM against the hand-written ones on one synthetic warehouse.

    python benchmarks/elm.py [--patients 100000] [--centers 10] [--threads 2] [--measure CMS124 ...]
                             [--package ../shared/ecqm] [--warehouse FILE] [--rebuild]

Uses (or builds) the cached warehouse of ``benchmarks/measures.py`` (or ``--warehouse``), then on a
copy runs, for every measure of the package that is hand-written too and that the compiler supports:
the hand-written measures (``run_measures``), then the compiled ones (``elm.run.run_compiled_measures``),
both writing ``measure_results``. Prints wall and CPU seconds per measure and in total, the ratio
compiled / hand-written (target <= 2x), compilation time (Python, ELM -> SQL), and patients x measures
per second against the reference CQL engine's published per-patient time (one patient at a time:
~10 ms per tiny test patient, 150-700 ms per realistic patient per measure, issue 18).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measures import CACHE, build_warehouse  # noqa: E402  (benchmarks/measures.py, run as a script)

from chc_equity.measures.elm.crosscheck import both  # noqa: E402
from chc_equity.measures.elm.run import compile_package, run_compiled_measures  # noqa: E402
from chc_equity.measures.engine import run_measures  # noqa: E402
from chc_equity.measures.registry import find  # noqa: E402
from chc_equity.measures.vocabulary import Period  # noqa: E402

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))
REPO = Path(__file__).resolve().parents[1]
REFERENCE_MS = (150.0, 700.0)  # reference engine, ms per realistic patient per measure
REFERENCE_TINY_MS = 10.0


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Clock:
    """Wall and CPU seconds per measure from an ``on_measure`` callback (the time since the last one)."""

    def __init__(self) -> None:
        self.per: dict[str, tuple[float, float]] = {}
        self.reset()

    def reset(self) -> None:
        self._wall, self._cpu = time.perf_counter(), cpu()

    def __call__(self, m, _seconds: float) -> None:
        wall, used = time.perf_counter(), cpu()
        self.per[m.name] = (wall - self._wall, used - self._cpu)
        self._wall, self._cpu = wall, used

    def total(self) -> tuple[float, float]:
        return sum(w for w, _ in self.per.values()), sum(c for _, c in self.per.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--centers", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--package", type=Path, default=REPO.parent / "shared" / "ecqm")
    ap.add_argument("--measure", action="append", help="CMS id or Measure name; repeatable")
    ap.add_argument(
        "--warehouse", type=Path, help="a built warehouse (default: benchmarks/measures.py's cache)"
    )
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()

    path = args.warehouse or CACHE / f"p{args.patients}_c{args.centers}.duckdb"
    if args.rebuild or not path.exists():
        build_warehouse(path, args.patients, args.centers)

    t0, c0 = time.perf_counter(), cpu()
    compiled, failed = compile_package(args.package, both(args.package, args.measure), PERIOD)
    compile_wall, compile_cpu = time.perf_counter() - t0, cpu() - c0
    for name, message in failed.items():
        print(f"{name}: not compiled ({message})")
    names = [c.measure.name for c in compiled]

    work = path.with_name(f"elm_run_{os.getpid()}.duckdb")
    shutil.copyfile(path, work)
    try:
        con = duckdb.connect(str(work))
        con.execute(f"SET threads = {args.threads}")
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        n = con.execute("SELECT count(*) FROM flat.patient").fetchone()[0]
        load_before = os.getloadavg()[0]
        hand, comp = Clock(), Clock()
        run_measures(con, find(names), period_start=PERIOD.start, period_end=PERIOD.end, on_measure=hand)
        comp.reset()
        run_compiled_measures(
            con, compiled, period_start=PERIOD.start, period_end=PERIOD.end, on_measure=comp
        )
        load_after = os.getloadavg()[0]
        con.close()
    finally:
        work.unlink(missing_ok=True)
        work.with_suffix(".duckdb.wal").unlink(missing_ok=True)

    print(f"{'measure':36} {'hand wall':>9} {'hand CPU':>9} {'ELM wall':>9} {'ELM CPU':>9} {'CPU ratio':>9}")
    for name in names:
        (hw, hc), (cw, cc) = hand.per[name], comp.per[name]
        print(f"{name:36} {hw:9.1f} {hc:9.1f} {cw:9.1f} {cc:9.1f} {cc / hc if hc else float('nan'):9.2f}")
    (hw, hc), (cw, cc) = hand.total(), comp.total()
    rate = n * len(names) / cw if cw else float("nan")
    cpu_rate = n * len(names) / cc if cc else float("nan")
    print(
        f"patients={n} measures={len(names)} threads={args.threads} "
        f"hand-written wall={hw:.1f} s CPU={hc:.1f} s; compiled wall={cw:.1f} s CPU={cc:.1f} s "
        f"(CPU ratio {cc / hc:.2f}x, wall ratio {cw / hw:.2f}x); compile {compile_wall:.1f} s wall "
        f"{compile_cpu:.1f} CPU-s; compiled patient x measures/s={rate:,.0f} (per CPU-s {cpu_rate:,.0f}) vs "
        f"reference engine {1000 / REFERENCE_MS[1]:.1f}-{1000 / REFERENCE_MS[0]:.1f} per core "
        f"({1000 / REFERENCE_TINY_MS:.0f} for tiny test patients); "
        f"loadavg_1m before={load_before:.2f} after={load_after:.2f} cpus={os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
