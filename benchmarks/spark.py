"""DuckDB (embedded) vs Spark local[2] on the same generated network: seconds, CPU, peak RSS, stages.

    python benchmarks/spark.py --patients 20000            # both engines, then the row-for-row check
    python benchmarks/spark.py --patients 1000000 --engine spark --master 'local[2]'

Each engine runs in its own subprocess, so its CPU seconds (this process's children) and peak RSS (the
sum over the process tree -- Spark is a JVM plus Python workers -- sampled every 0.5 s) are its own.
Spark's shuffle volume (bytes written by the two shuffles) and the compute stage's task time per
partition are read from Spark's status REST API. The network is generated once per size under
``--work`` and reused. ``--compare`` (on by default when both run) checks every table row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import psutil

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))


def _network(work: Path, patients: int, centers: int) -> Path:
    from chc_equity.synth import generate, load_config

    root = work / f"net-{patients}-{centers}"
    if not (root / "centers.json").exists():
        t = time.perf_counter()
        generate(
            root, centers=centers, patients=patients, seed=19, period_end=PERIOD[1], cfg=load_config(None)
        )
        print(f"generated {patients:,} patients in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return root


def _duckdb(root: Path, out: Path) -> dict:
    from chc_equity.spark.compare import embedded_equity, embedded_run
    from chc_equity.spark.pipeline import equity_dimensions, resolve_inputs

    stages: dict[str, float] = {}
    clock = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - clock[0], 2)
        clock[0] = now

    inputs = resolve_inputs([str(root)])
    path = out / "embedded.duckdb"
    path.unlink(missing_ok=True)
    con = embedded_run(inputs, period_start=PERIOD[0], period_end=PERIOD[1], path=path, on_stage=stage)
    embedded_equity(con, equity_dimensions(), period_start=PERIOD[0], period_end=PERIOD[1])
    stage("equity")
    con.close()
    return {"stages": stages}


def _spark(root: Path, out: Path, master: str, partitions: int) -> dict:
    import urllib.request

    from chc_equity.spark.pipeline import resolve_inputs, run, session

    t = time.perf_counter()
    spark = session(master, shuffle_partitions=partitions, conf={"spark.driver.memory": "2g"})
    started = time.perf_counter() - t
    result = run(
        spark,
        resolve_inputs([str(root)]),
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        output=str(out / "spark"),
    )
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?details=false"
    stages = json.loads(urllib.request.urlopen(url).read())
    shuffle = sum(s.get("shuffleWriteBytes", 0) for s in stages)
    compute = max(stages, key=lambda s: s.get("executorRunTime", 0))
    spark.stop()
    return {
        "stages": {"session": round(started, 2), **result.stage_seconds},
        "shuffle_write_bytes": shuffle,
        "partitions": partitions,
        "longest_stage": {
            "name": compute.get("name"),
            "tasks": compute.get("numTasks"),
            "task_seconds": compute.get("executorRunTime", 0) / 1000,
        },
        "rows": {k: v for k, v in result.rows.items() if not k.startswith("flat.")},
    }


def _child(args: argparse.Namespace) -> None:
    out = Path(args.work) / f"out-{args.patients}"
    out.mkdir(parents=True, exist_ok=True)
    root = _network(Path(args.work), args.patients, args.centers)
    figures = (
        _duckdb(root, out) if args.child == "duckdb" else _spark(root, out, args.master, args.partitions)
    )
    print(json.dumps(figures))


def _measure(cmd: list[str]) -> dict:
    """Run ``cmd``; wall, CPU and peak RSS of its whole process tree, and its JSON result.

    CPU: the larger of what the reaped children report and the sum over every process seen in the tree
    (its last sample), because Spark's JVM and Python workers are not reaped through the child; a
    worker that lives less than 0.5 s can be missed, so Spark's figure is if anything low."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0]
    cpu_seen: dict[int, float] = {}

    def sample() -> None:
        while proc.poll() is None:
            try:
                root = psutil.Process(proc.pid)
                tree = [root, *root.children(recursive=True)]
                rss = 0
                for p in tree:
                    try:
                        rss += p.memory_info().rss
                        c = p.cpu_times()
                        cpu_seen[p.pid] = c.user + c.system
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, _ = proc.communicate()
    thread.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{cmd} failed with {proc.returncode}")
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(time.perf_counter() - t, 1),
        "cpu_s": round(max(reaped, sum(cpu_seen.values())), 1),
        "peak_rss_mib": round(peak[0] / 2**20),
        **json.loads(stdout.strip().splitlines()[-1]),
    }


def per_partition(work: Path, patients: int) -> dict:
    """What one Spark compute task does, timed alone: the embedded warehouse's resources (all of the
    network's N patients, one thread) through ``tasks.compute_tables``, and the same with no patient
    (the fixed cost per partition). CPU seconds by ``time.process_time``; JSON bytes = what each of the
    two shuffles carries per resource (the parse -> winner shuffle carries every occurrence)."""
    import duckdb

    from chc_equity.spark import tasks

    source = duckdb.connect(str(work / f"out-{patients}" / "embedded.duckdb"), read_only=True)
    rows = source.sql(
        "SELECT center, type, id, last_updated, source_file, source_pos, load_id, "
        "CAST(resource AS VARCHAR) AS resource FROM resources"
    ).to_arrow_table()
    json_bytes = source.execute("SELECT sum(strlen(CAST(resource AS VARCHAR))) FROM resources").fetchone()[0]
    source.close()
    glob = rows.filter(pa_isin(rows["type"], sorted(tasks.global_types())))
    out = {"patients": patients, "resources": rows.num_rows, "json_bytes": int(json_bytes)}
    for name, table in (("fixed", glob), ("all", rows)):
        con = tasks._warehouse(threads=1)
        tasks._insert_resources(con, table)
        t, c = time.perf_counter(), time.process_time()
        for _ in tasks.compute_tables(con, PERIOD[0], PERIOD[1], tasks.patient_tables()):
            pass
        out[f"{name}_cpu_s"] = round(time.process_time() - c, 2)
        out[f"{name}_wall_s"] = round(time.perf_counter() - t, 2)
        con.close()
    return out


def pa_isin(column, values):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.is_in(column, value_set=pa.array(values))


def _compare(work: Path, patients: int) -> dict:
    from chc_equity.equity.stratify import EquityRow, EquitySummaryRow
    from chc_equity.spark.compare import differences, embedded_equity, read_rows
    from chc_equity.spark.pipeline import equity_dimensions
    from chc_equity.spark.tasks import all_tables
    from chc_equity.warehouse import connect

    out = work / f"out-{patients}"
    con = connect(out / "embedded.duckdb", read_only=True)
    diffs = {t: d for t in all_tables() if (d := differences(con, t, out / "spark")) != (0, 0)}
    rows, summaries = embedded_equity(con, equity_dimensions(), period_start=PERIOD[0], period_end=PERIOD[1])
    con.close()
    return {
        "tables_compared": len(all_tables()),
        "tables_differing": diffs,
        "equity_equal": read_rows(out / "spark", "equity", EquityRow) == rows,
        "equity_summary_equal": read_rows(out / "spark", "equity_summary", EquitySummaryRow) == summaries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--centers", type=int, default=8)
    parser.add_argument("--engine", choices=("both", "duckdb", "spark"), default="both")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--work", default="out/bench-spark")
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument(
        "--per-partition",
        action="store_true",
        help="time one compute task's work alone (after a DuckDB run)",
    )
    parser.add_argument("--child", choices=("duckdb", "spark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.per_partition:
        print(json.dumps(per_partition(work, args.patients), indent=2))
        return
    _network(work, args.patients, args.centers)
    base = [sys.executable, __file__, "--patients", str(args.patients), "--centers", str(args.centers)]
    base += ["--work", str(work), "--master", args.master, "--partitions", str(args.partitions)]
    report: dict = {"patients": args.patients, "centers": args.centers, "load": os.getloadavg()}
    engines = ("duckdb", "spark") if args.engine == "both" else (args.engine,)
    for engine in engines:
        report[engine] = _measure([*base, "--child", engine])
        print(json.dumps({engine: report[engine]}, indent=2), flush=True)
    if args.engine == "both" and not args.no_compare:
        report["identical"] = _compare(work, args.patients)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
