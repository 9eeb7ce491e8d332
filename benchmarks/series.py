"""Benchmark ``measure_series``: a 24-point rolling-12-month series of all 21 eCQMs vs one period.

    python benchmarks/series.py [--patients 20000] [--centers 4] [--points 24] [--threads 2]

Builds (or reuses) the cached synthetic warehouse of ``benchmarks/measures.py`` (seed 2026, under
/tmp/chc_equity_bench_measures), then on a fresh copy times, for the same 21 measures:

1. one period: ``run_measures`` for the last period of the series (2026-01-01..2026-12-31);
2. the series: ``measure_series`` for all ``--points`` rolling periods ending Dec 2026 (network,
   centers, and the race_ethnicity strata with ``--by race_ethnicity``).

Prints wall and CPU seconds of each and the ratio series / one period (issue 15's target: <= 3x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date

import duckdb
from measures import CACHE, build_warehouse  # benchmarks/measures.py (same folder)

from chc_equity.measures.engine import run_measures
from chc_equity.measures.model import Measure
from chc_equity.measures.registry import all_measures
from chc_equity.measures.series import measure_series, series_periods


def timed(fn) -> tuple[float, float]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--centers", type=int, default=4)
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--by", action="append", default=[], help="equity dimension(s) to stratify by")
    args = ap.parse_args()

    path = CACHE / f"p{args.patients}_c{args.centers}.duckdb"
    if not path.exists():
        build_warehouse(path, args.patients, args.centers)
    work = path.with_name("series_run.duckdb")
    shutil.copyfile(path, work)
    con = duckdb.connect(str(work))
    con.execute(f"SET threads = {args.threads}")
    modules = all_measures()
    periods = series_periods("rolling12", date(2026, 12, 31), args.points)
    last = periods[-1]
    load_before = os.getloadavg()
    one = timed(lambda: run_measures(con, modules, period_start=last.start, period_end=last.end))
    print(f"one period: wall {one[0]:.1f} s, cpu {one[1]:.1f} s (series running)", flush=True)
    per_measure: dict[str, tuple[float, float]] = {}
    cpu_mark = [time.process_time()]

    def measured(m: Measure, wall: float) -> None:
        """Wall and CPU seconds of one measure for all periods (CPU since the previous measure: the
        first one also pays for the series' setup and the shared library defines it reads)."""
        now = time.process_time()
        per_measure[m.cms_id] = (wall, now - cpu_mark[0])
        cpu_mark[0] = now
        print(f"  series {m.cms_id}: {wall:.1f} s wall, {per_measure[m.cms_id][1]:.1f} s cpu", flush=True)

    series = timed(lambda: measure_series(con, modules, periods, dimensions=args.by, on_measure=measured))
    load_after = os.getloadavg()
    rows = con.execute("SELECT count(*) FROM measure_series").fetchone()[0]
    n_patients = con.execute("SELECT count(*) FROM flat.patient").fetchone()[0]
    con.close()
    work.unlink(missing_ok=True)
    print(
        "series seconds per measure (all periods), wall / cpu: "
        + ", ".join(f"{k} {w:.1f} / {c:.1f}" for k, (w, c) in per_measure.items())
    )
    print(
        f"patients={n_patients} centers={args.centers} measures={len(modules)} points={len(periods)} "
        f"by={','.join(args.by) or '-'} threads={args.threads}\n"
        f"one period: wall {one[0]:.1f} s, cpu {one[1]:.1f} s\n"
        f"series:     wall {series[0]:.1f} s, cpu {series[1]:.1f} s, rows {rows}\n"
        f"ratio series / one period: wall {series[0] / one[0]:.1f}x, cpu {series[1] / one[1]:.1f}x "
        f"(per point {series[0] / one[0] / len(periods):.2f} of a run)\n"
        f"loadavg_1m before={load_before[0]:.2f} after={load_after[0]:.2f} cpus={os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
