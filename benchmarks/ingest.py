"""Ingest benchmark: DuckDB's raw ``read_json`` scan vs our ingest (+ views) over the same files.

    python benchmarks/ingest.py                      # ../shared/synthea/ma-bundles
    python benchmarks/ingest.py PATH...              # any files / directories
    python benchmarks/ingest.py --generate-gb 1      # a generated ~1 GB NDJSON (peak-RAM check)
    python benchmarks/ingest.py --baseline ../old/src  # also run another checkout's code, same files

Each side runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. The raw scan is
``CREATE TEMP TABLE AS SELECT * FROM read_json(files)`` -- every value parsed and materialized, which is
the honest floor for "read these files into DuckDB". Ours is what ``chc-equity ingest`` does:
``chc_equity.ingest.load`` into a fresh file warehouse with the views screen, and
``chc_equity.views.build.refresh_touched`` as ``after_load``. Both are reported in wall seconds and
CPU seconds (the machine is shared, so CPU is the steadier figure), with the load average noted.
Targets: ours <= 1.3x the raw scan; peak RSS <= 2 GB ingesting 1 GB NDJSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "synthea" / "ma-bundles"

# Both children report wall seconds and CPU seconds (user + system, all threads of the process) of
# the measured step alone, not interpreter start-up or imports.
SCAN_CHILD = """
import json, resource, sys, time, duckdb
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
files, tmp = json.loads(sys.argv[1]), sys.argv[2]
con = duckdb.connect(tmp + "/scan.duckdb")
t, c = time.perf_counter(), cpu()
con.execute("CREATE TEMP TABLE scan AS SELECT * FROM read_json($f, maximum_object_size = 268435456)",
            {"f": files})
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": cpu() - c,
                  "rows": con.execute("SELECT count(*) FROM scan").fetchone()[0],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# What `chc-equity ingest` does: the views screen per resource, then the views refresh of the
# touched resources inside the load's transaction.
INGEST_CHILD = """
import json, resource, sys, time
from chc_equity.ingest import load
from chc_equity.ingest.store import TOUCHED
from chc_equity.warehouse import connect
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
files, tmp = json.loads(sys.argv[1]), sys.argv[2]
views_s, views_cpu, ingest_rss = [], [], []
try:
    if sys.argv[3] == "no-views":
        raise ImportError("views disabled by --no-views")
    from chc_equity.views.build import refresh_touched
    from chc_equity.views.shape import builtin_screen
    screen = builtin_screen()
    def after(con, center):
        ingest_rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        t0, c0 = time.perf_counter(), cpu()
        refresh_touched(con, center, TOUCHED)
        views_s.append(time.perf_counter() - t0)
        views_cpu.append(cpu() - c0)
    views = True
except ImportError:
    after, views, screen = None, False, None
con = connect(tmp + "/ingest.duckdb")
t, c = time.perf_counter(), cpu()
r = load(con, files, "bench", after_load=after, screen=screen)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_s": cpu() - c, "loaded": r.loaded,
                  "quarantined": r.quarantined, "views": views, "views_s": sum(views_s),
                  "views_cpu_s": sum(views_cpu), "peak_rss_mb": rss,
                  "ingest_peak_rss_mb": ingest_rss[0] if ingest_rss else rss}))
"""


def _run(code: str, files: list[str], tmp: str, mode: str = "views", src: Path | None = None) -> dict:
    argv = [sys.executable, "-c", code, json.dumps(files), tmp, mode]
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    for stale in Path(tmp).glob("ingest.duckdb*"):
        stale.unlink()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _files(paths: list[Path]) -> list[str]:
    from chc_equity.ingest.sources import discover

    return [str(p) for p in discover(paths)]


def generate_ndjson(target: Path, gigabytes: float) -> Path:
    """Write ~``gigabytes`` of Synthea-like NDJSON (templates from the shared bundles, unique ids)."""
    templates = _templates()
    limit = int(gigabytes * (1 << 30))
    written, n = 0, 0
    with target.open("wb") as fh:
        while written < limit:
            for tpl in templates:
                tpl["id"] = f"g{n}"
                line = orjson.dumps(tpl) + b"\n"
                fh.write(line)
                written += len(line)
                n += 1
    return target


def _templates() -> list[dict]:
    import gzip

    bundles = sorted(DEFAULT_INPUT.glob("*.json.gz"))[:3]
    if bundles:
        return [e["resource"] for b in bundles for e in orjson.loads(gzip.open(b).read())["entry"]]
    return [
        {
            "resourceType": "Observation",
            "id": "x",
            "status": "final",
            "code": {"text": "demo"},
            "effectiveDateTime": "2024-01-02T03:04:05Z",
            "valueQuantity": {"value": 1.5, "unit": "mg"},
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--generate-gb", type=float, help="benchmark a generated NDJSON of this many GB")
    parser.add_argument("--no-views", action="store_true", help="time ingest alone")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the src/ folder of another checkout: its ingest runs too, on the same files, right after ours",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chc-bench-") as tmp:
        if args.generate_gb:
            paths = [generate_ndjson(Path(tmp) / "Generated.ndjson", args.generate_gb)]
        else:
            paths = args.paths or [DEFAULT_INPUT]
        files = _files(paths)
        size = sum(Path(f).stat().st_size for f in files)
        print(f"input: {len(files)} files, {size / 1e6:,.1f} MB on disk")
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        mode = "no-views" if args.no_views else "views"
        scan = _run(SCAN_CHILD, files, tmp)
        runs = [("", _run(INGEST_CHILD, files, tmp, mode))]
        if args.baseline:
            runs.append((f"[baseline {args.baseline}] ", _run(INGEST_CHILD, files, tmp, mode, args.baseline)))
    print(f"load average before: {load_before}, after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"duckdb read_json scan: {scan['seconds']:7.2f} s wall, {scan['cpu_s']:7.2f} s CPU  "
        f"({scan['rows']:,} rows, peak RSS {scan['peak_rss_mb']:,.0f} MB)"
    )
    for prefix, ours in runs:
        _report(prefix, scan, ours)


def _report(prefix: str, scan: dict, ours: dict) -> None:
    label = prefix + (
        "ingest + views" if ours["views"] else "ingest only (--no-views, or chc_equity.views.build missing)"
    )
    print(
        f"{label}: {ours['seconds']:7.2f} s wall, {ours['cpu_s']:7.2f} s CPU  ({ours['loaded']:,} resources, "
        f"{ours['quarantined']:,} quarantined, peak RSS {ours['peak_rss_mb']:,.0f} MB)"
    )
    if ours["views"]:
        alone, alone_cpu = ours["seconds"] - ours["views_s"], ours["cpu_s"] - ours["views_cpu_s"]
        print(
            f"  of which views: {ours['views_s']:.2f} s wall, {ours['views_cpu_s']:.2f} s CPU; ingest alone: "
            f"{alone:.2f} s wall, {alone_cpu:.2f} s CPU "
            f"(peak RSS before views {ours['ingest_peak_rss_mb']:,.0f} MB)"
        )
    print(
        f"{prefix}ratio ours / scan: {ours['seconds'] / scan['seconds']:.2f}x wall, "
        f"{ours['cpu_s'] / scan['cpu_s']:.2f}x CPU (target <= 1.3x)"
    )


if __name__ == "__main__":
    main()
