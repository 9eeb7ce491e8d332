"""Benchmark the measure engine: all implemented eCQMs over a synthetic network.

    python benchmarks/measures.py [--patients 100000] [--centers 10] [--threads 2] [--rebuild]

Generates the network with ``chc_equity.synth`` and ingests it (views built per center) into a cached
warehouse under /tmp, so reruns time only the measures. Then times ``run_measures`` alone, each measure
separately (the engine's ``on_measure`` callback), and samples peak RSS in a thread while it runs.

Target: 21 measures x 100k patients in <= 60 s on 2 cores with <= 4 GB RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import psutil

from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
CACHE = Path(tempfile.gettempdir()) / "chc_equity_bench_measures"


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds in a daemon thread; ``peak`` in bytes.

    getrusage's ru_maxrss would include the ingest that built the cached warehouse when it runs in the
    same process; sampling measures only the window we time.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def build_warehouse(path: Path, patients: int, centers: int) -> None:
    """Generate the network into a temp dir and ingest every center (views per center) into ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        t0 = time.perf_counter()
        summary = generate(
            Path(tmp),
            centers=centers,
            patients=patients,
            seed=2026,
            period_end=PERIOD[1],
            cfg=load_config(None, disparities=True),
            gz=False,
        )
        print(f"generated {patients} patients in {time.perf_counter() - t0:.0f} s")
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        con = connect(partial)
        t0 = time.perf_counter()
        for center in (c["id"] for c in summary["centers"]):
            load(con, [Path(tmp) / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
        con.execute("CHECKPOINT")
        con.close()
        shutil.move(partial, path)
        print(f"ingested {centers} centers in {time.perf_counter() - t0:.0f} s -> {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--centers", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (the target is for 2 cores)")
    ap.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit while measures run")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the cached warehouse")
    ap.add_argument("--build-only", action="store_true", help="build the cached warehouse and stop")
    args = ap.parse_args()

    path = CACHE / f"p{args.patients}_c{args.centers}.duckdb"
    if args.rebuild or not path.exists():
        build_warehouse(path, args.patients, args.centers)
    if args.build_only:
        return

    # Time a copy so every run starts from the same warehouse (no results from an earlier run).
    work = path.with_name("run.duckdb")
    shutil.copyfile(path, work)
    con = duckdb.connect(str(work))
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    n_patients = con.execute("SELECT count(*) FROM flat.patient").fetchone()[0]
    modules = all_measures()
    per_measure: dict[str, float] = {}

    load_before = os.getloadavg()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        written = run_measures(
            con,
            modules,
            period_start=PERIOD[0],
            period_end=PERIOD[1],
            on_measure=lambda m, s: per_measure.__setitem__(m.cms_id, s),
        )
        seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    con.close()
    work.unlink(missing_ok=True)

    print("per measure (s): " + ", ".join(f"{k} {v:.2f}" for k, v in per_measure.items()))
    print(f"slowest: {', '.join(k for k, _ in sorted(per_measure.items(), key=lambda kv: -kv[1])[:5])}")
    print(
        f"patients={n_patients} measures={len(modules)} threads={args.threads} seconds={seconds:.1f} "
        f"patient_measures_per_s={n_patients * len(modules) / seconds:,.0f} "
        f"rows_written={sum(written.values())} peak_rss_mb={rss.peak / 2**20:,.0f} "
        f"loadavg_1m_before={load_before[0]:.2f} after={load_after[0]:.2f} cpus={os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
