"""CHW worklist page latency for one large center, through the real app over HTTP (issue 13 target:
worklist page p95 <= 300 ms for a 20k-patient center).

Builds once (skipped when the warehouse exists): one synthetic center of ``--patients`` patients in
``--dir`` (default /tmp/bench_worklist) -> ingest (views) -> every measure for the year ->
network.precompute. Then: the app database next to it is filled by ``appdb import`` (CHWs, CareTeam
panels, CHW encounters and Communications as outreach), a chw user and a center-staff user are added,
the app is served by uvicorn on localhost, and ``--runs`` page requests (GET
/centers/c01/worklist with a rotation of filters, sorts and pages, 100 rows a page) are timed with an
HTTP client, after one untimed request that builds the prepared worklist (its time is printed too: it
is what the first page after a load costs). Prints p50/p95 wall time and the process CPU time per
request (server and client share this process, so the CPU figure is an upper bound for the server),
and the load average.

    python benchmarks/worklist.py --patients 20000 --runs 50
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
CENTER = "c01"


def build(folder: Path, patients: int) -> Path:
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import all_measures
    from chc_equity.network import precompute
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import connect

    warehouse = folder / "wh.duckdb"
    if warehouse.exists():
        return warehouse
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate(
        folder / "network", centers=1, patients=patients, seed=13, period_end=PERIOD[1], cfg=load_config()
    )
    print(f"generated {patients:,} patients in {time.perf_counter() - started:.0f} s", flush=True)
    building = folder / "wh.building.duckdb"
    building.unlink(missing_ok=True)
    con = connect(building)
    load(con, [folder / "network" / CENTER], CENTER, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    print(f"ingested at {time.perf_counter() - started:.0f} s", flush=True)
    run_measures(con, all_measures(), period_start=PERIOD[0], period_end=PERIOD[1])
    print(f"measures done at {time.perf_counter() - started:.0f} s", flush=True)
    precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    print(f"precomputed at {time.perf_counter() - started:.0f} s", flush=True)
    con.close()
    building.rename(warehouse)
    return warehouse


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


PASSWORD = "correct-horse-battery"
# What CHWs and staff click: the default list, filters, sorts, later pages, a search, "mine".
VARIANTS = [
    {},
    {"language": "es", "measure": "CMS122"},
    {"sort": "name", "page": "3"},
    {"priority": "high"},
    {"assigned": "no", "sort": "last_visit"},
    {"q": "son"},
    {"measure": "CMS165", "sort": "age", "reverse": "true"},
    {"assigned": "yes", "page": "2"},
]


def prepare_app_db(warehouse: Path) -> None:
    """appdb import (CHWs, panels, outreach) and two users; idempotent."""
    import duckdb

    from chc_equity.appdb import open_for_warehouse
    from chc_equity.appdb.fhir_import import import_center
    from chc_equity.web.authstore import AuthStore
    from chc_equity.web.roles import Role

    db = open_for_warehouse(warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        with db.write() as session:
            result = import_center(con, session, CENTER)
    finally:
        con.close()
    print(f"appdb import: {result}", flush=True)
    store = AuthStore(db)
    for name, role in (("bench-chw", Role.CHW), ("bench-staff", Role.CENTER_STAFF)):
        with contextlib.suppress(ValueError):  # already there from an earlier run
            store.add_user(name, PASSWORD, role, CENTER)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_worklist"))
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--user", default="bench-chw", help="bench-chw or bench-staff")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import httpx

    from browser.webseed import live_server, login
    from chc_equity.web import WebConfig, create_app

    warehouse = build(args.dir, args.patients)
    prepare_app_db(warehouse)
    app = create_app(WebConfig(warehouse=warehouse))
    url = f"/centers/{CENTER}/worklist"
    with live_server(app) as base, httpx.Client(base_url=base, timeout=600) as client:
        assert login(client, args.user, PASSWORD).status_code == 303
        started = time.perf_counter()
        first = client.get(url)
        assert first.status_code == 200, first.text[:300]
        print(f"first page (builds the prepared worklist): {time.perf_counter() - started:.2f} s")
        api = client.get(f"/api/centers/{CENTER}/worklist").json()
        print(f"{args.patients:,} patients: {api['visible']:,} on the worklist visible to {args.user}")
        print(f"load average before timing: {os.getloadavg()}")
        wall, cpu, sizes = [], [], []
        for i in range(args.runs):
            params = VARIANTS[i % len(VARIANTS)]
            t, c = time.perf_counter(), time.process_time()
            response = client.get(url, params=params)
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            assert response.status_code == 200, (params, response.status_code)
            sizes.append(len(response.content))
        print(
            f"worklist page n={args.runs} wall p50={statistics.median(wall):6.1f} "
            f"p95={percentile(wall, 0.95):6.1f} max={max(wall):6.1f} ms | "
            f"cpu p50={statistics.median(cpu):6.1f} "
            f"p95={percentile(cpu, 0.95):6.1f} ms | page {statistics.median(sizes) / 1024:.0f} KiB",
            flush=True,
        )
        t = time.perf_counter()
        export = client.get(f"{url}.csv")
        rows = export.text.count("\n") - 1
        print(f"full CSV export: {(time.perf_counter() - t) * 1000:.0f} ms, {rows:,} rows")
    print(f"load average after timing: {os.getloadavg()}")


if __name__ == "__main__":
    main()
