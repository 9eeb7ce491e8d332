"""Benchmark cost in proportion to the change: adding 100 resources to one center vs the full pipeline.

    python benchmarks/incremental.py [--patients 100000] [--centers 10] [--resources 100] [--keep DIR]
    python benchmarks/incremental.py --keep DIR --reuse [--seed 2]   # only steps 3-4, on DIR's network

1. Generates a synthetic network (``chc_equity.synth``; not timed as part of the pipeline).
2. Full pipeline, as a user runs it: ``chc-equity ingest`` of every center, then ``chc-equity measures
   run`` for the period (all 21 eCQMs, then the web aggregates with the patient attributes). Wall and CPU
   seconds (CPU of the child processes: DuckDB's threads included).
3. Adds ``--resources`` new Observations (copies of existing ones, new ids, same patients) to one center
   with ``chc-equity ingest`` -- which refreshes the views of the touched resources, the measures and
   patient attributes of the touched patients, and the aggregates once. Wall and CPU seconds, and the
   ratio to step 2 (issue 12 target: <= 5 %).
4. The same increment again on an untouched copy, in-process, timing each part: load + views,
   measures, patient attributes, aggregates (``finish_pending``'s steps), so a miss can be explained.

With ``--keep DIR`` the full pipeline's warehouse and figures stay in DIR (``full.json``); ``--reuse``
then skips steps 1-2 (about 3 minutes of CPU at 100k) and runs the increment on a scratch copy of that
warehouse and its serving snapshots, after republishing them with the code under test (so two versions
of the code can be compared side by side on one network: run it once per ``PYTHONPATH``). ``--seed``
picks other Observations (new ids each seed).

Prints one ``key=value`` line per figure; benchmarks/README.md keeps the latest ones with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from chc_equity.serving import publish_from_file, serving_dir
from chc_equity.synth import generate, load_config

PERIOD = ("2026-01-01", "2026-12-31")
CLI = [sys.executable, "-c", "from chc_equity.cli import main; main()"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(*args: str) -> tuple[float, float]:
    """Run one `chc-equity` command; returns (wall s, CPU s)."""
    cpu, wall = _children_cpu(), time.perf_counter()
    subprocess.run([*CLI, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - wall, _children_cpu() - cpu


def _new_observations(folder: Path, out: Path, n: int, seed: int) -> None:
    """``n`` copies of the center's Observations with new ids: new data for existing patients."""
    lines = (folder / "Observation.ndjson").read_bytes().splitlines()
    rng = random.Random(seed)
    with out.open("wb") as fh:
        for i, line in enumerate(rng.sample(lines, n)):
            obs = orjson.loads(line)
            obs["id"] = f"{obs['id']}-bench{i}" if seed == 1 else f"{obs['id']}-bench{seed}x{i}"
            fh.write(orjson.dumps(obs) + b"\n")


def _breakdown(db: Path, increment: Path, center: str) -> dict[str, tuple[float, float]]:
    """The increment in-process, each part timed (wall s, CPU s of this process, all threads)."""
    from chc_equity.cli.ingest import views_after_load, views_screen
    from chc_equity.ingest import load
    from chc_equity.refresh import finish_pending
    from chc_equity.warehouse import connect

    parts: dict[str, tuple[float, float]] = {}
    con = connect(db)
    wall, cpu = time.perf_counter(), time.process_time()
    load(con, [increment], center, after_load=views_after_load(), screen=views_screen())
    parts["load+views"] = (time.perf_counter() - wall, time.process_time() - cpu)
    marks: list[tuple[str, float, float]] = []

    def step(text: str) -> None:
        name = "measures" if "measures" in text else "attributes" if "attributes" in text else "aggregates"
        marks.append((name, time.perf_counter(), time.process_time()))

    wall, cpu = time.perf_counter(), time.process_time()
    done = finish_pending(con, on_step=step)
    end = (time.perf_counter(), time.process_time())
    con.close()
    marks.append(("end", *end))
    parts["scope"] = (marks[0][1] - wall, marks[0][2] - cpu)  # reading pending rows, building the subjects
    for (name, w0, c0), (_, w1, c1) in zip(marks, marks[1:], strict=False):
        w, c = parts.get(name, (0.0, 0.0))
        parts[name] = (w + w1 - w0, c + c1 - c0)
    parts["patients"] = (float(done.patients or 0), 0.0)
    return parts


def _full_pipeline(root: Path, db: Path, patients: int, n_centers: int) -> dict[str, object]:
    """Steps 1-2: generate the network, then ingest every center and run the measures, as a user does."""
    t0 = time.perf_counter()
    summary = generate(
        root / "net", centers=n_centers, patients=patients, seed=2026,
        period_end=date.fromisoformat(PERIOD[1]), cfg=load_config(None, disparities=True), gz=False,
    )  # fmt: skip
    centers = [c["id"] for c in summary["centers"]]
    print(f"generate_s={time.perf_counter() - t0:.1f} patients={patients} centers={len(centers)}")
    db.unlink(missing_ok=True)
    shutil.rmtree(serving_dir(db), ignore_errors=True)
    ingest = [0.0, 0.0]
    for center in centers:
        w, c = _cli("ingest", str(root / "net" / center), "--center", center, "--warehouse", str(db))
        ingest[0] += w
        ingest[1] += c
    print(f"full_ingest_wall_s={ingest[0]:.1f} full_ingest_cpu_s={ingest[1]:.1f}")
    w, c = _cli("measures", "run", "--period-start", PERIOD[0], "--period-end", PERIOD[1],
                "--warehouse", str(db))  # fmt: skip
    print(f"full_measures_and_aggregates_wall_s={w:.1f} cpu_s={c:.1f}")
    return {"wall_s": ingest[0] + w, "cpu_s": ingest[1] + c, "centers": centers, "patients": patients,
            "ingest": ingest, "measures": [w, c]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--centers", type=int, default=10)
    ap.add_argument("--resources", type=int, default=100)
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    ap.add_argument("--reuse", action="store_true", help="reuse --keep's network and full-pipeline figures")
    ap.add_argument("--seed", type=int, default=1, help="which Observations the increment copies")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="chc_bench_incremental_"))
    root.mkdir(parents=True, exist_ok=True)
    if args.reuse and not (root / "full.json").exists():
        ap.error(f"--reuse needs {root / 'full.json'} from an earlier run with --keep {root}")
    load_before = os.getloadavg()
    try:
        db = root / "w.duckdb"
        if args.reuse:
            full_run = json.loads((root / "full.json").read_text())
        else:
            full_run = _full_pipeline(root, db, args.patients, args.centers)
            (root / "full.json").write_text(json.dumps(full_run))
        full, centers = (full_run["wall_s"], full_run["cpu_s"]), full_run["centers"]
        print(f"full_pipeline_wall_s={full[0]:.1f} full_pipeline_cpu_s={full[1]:.1f} reused={args.reuse}")

        center = centers[0]
        increment = root / f"increment-{args.resources}-{args.seed}.ndjson"
        _new_observations(root / "net" / center, increment, args.resources, seed=args.seed)
        work = root / "scratch"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        target = work / db.name
        shutil.copyfile(db, target)
        shutil.copytree(serving_dir(db), serving_dir(target))
        if args.reuse:  # the last publish of the full pipeline, with this code (not timed)
            publish_from_file(target)
        copy = work / "copy.duckdb"
        shutil.copyfile(target, copy)  # the breakdown starts from the same state
        shutil.copytree(serving_dir(target), serving_dir(copy))
        w, c = _cli("ingest", str(increment), "--center", center, "--warehouse", str(target))
        print(
            f"increment_resources={args.resources} increment_wall_s={w:.1f} increment_cpu_s={c:.1f} "
            f"ratio_wall={w / full[0]:.2%} ratio_cpu={c / full[1]:.2%} (target <= 5 %)"
        )
        parts = _breakdown(copy, increment, center)
        print(
            "breakdown (in-process, wall/CPU s): "
            + ", ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in parts.items() if k != "patients")
            + f"; patients re-run {parts['patients'][0]:.0f}"
        )
        wall, cpu = time.perf_counter(), time.process_time()
        publish_from_file(copy)  # what the CLI's publish costs at this size (whole or over a copy)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"publish (in-process, wall/CPU s): {wall:.2f}/{cpu:.2f}")
        print(f"warehouse_mb={db.stat().st_size / 2**20:,.0f}")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        load_after = os.getloadavg()
        print(
            f"loadavg_1m_before={load_before[0]:.2f} after={load_after[0]:.2f} cpus={os.cpu_count()} "
            f"python={sys.version.split()[0]}"
        )
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
