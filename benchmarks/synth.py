"""Benchmark `chc-equity synth`: seconds, patients/s and peak RSS for a given size.

    python benchmarks/synth.py --patients 50000 --centers 10 [--gzip]

Target: 1M patients in <= 15 minutes on 2 cores with <= 2 GB RAM (extrapolate from 50k-100k).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from chc_equity.synth import generate, load_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=50000)
    ap.add_argument("--centers", type=int, default=10)
    ap.add_argument("--gzip", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(
            Path(tmp),
            centers=args.centers,
            patients=args.patients,
            seed=1,
            period_end=date(2026, 12, 31),
            cfg=load_config(),
            gz=args.gzip,
        )
        secs = time.perf_counter() - t0
        load_after = os.getloadavg()
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        1024 * 1024 if sys.platform == "darwin" else 1024
    )
    rate = args.patients / secs
    print(
        f"patients={args.patients} seconds={secs:.1f} patients_per_s={rate:.0f} peak_rss_mb={rss_mb:.0f} "
        f"output_mb={size / 1e6:.0f} est_1M_minutes={1e6 / rate / 60:.1f} "
        # the cores are shared: the 1/5/15-minute load averages say how much of them this run had
        f"loadavg_before={'/'.join(f'{x:.2f}' for x in load_before)} "
        f"loadavg_after={'/'.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
