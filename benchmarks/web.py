"""Web page latency at network scale: p50/p95 of the overview and measure pages.

Builds once (skipped when the warehouse exists): a synthetic network of ``--patients`` patients in
``--dir`` (default /tmp/bench_web) -> ingest (views) -> every measure for the year -> network.precompute.
Then signs in as a network analyst and times ``--requests`` GETs of each page in-process with
Starlette's TestClient (the full app: session lookup, read-only warehouse open, agg queries, Jinja, JSON
spec), printing p50/p95 per page and the load average so shared-machine noise is visible.

    python benchmarks/web.py --patients 100000 --requests 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date
from pathlib import Path

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
PASSWORD = "benchmark-password-1"


def build(folder: Path, patients: int, centers: int) -> Path:
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import all_measures
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import connect

    warehouse = folder / "wh.duckdb"
    if warehouse.exists():
        return warehouse
    building = folder / "wh.building.duckdb"
    if building.exists() and _has_results(building):  # a previous build got as far as the measures
        con = connect(building)
        _precompute(con)
        con.close()
        building.rename(warehouse)
        return warehouse
    started = time.perf_counter()
    summary = generate(
        folder / "network",
        centers=centers,
        patients=patients,
        seed=11,
        period_end=PERIOD[1],
        cfg=load_config(None, disparities=True),
        gz=False,
    )
    print(f"generated {patients:,} patients in {time.perf_counter() - started:.0f} s", flush=True)
    building.unlink(missing_ok=True)
    con = connect(building)
    for center in (c["id"] for c in summary["centers"]):
        load(
            con,
            [folder / "network" / center],
            center,
            after_load=lambda c, ctr: build_views(c, centers=[ctr]),
        )
        print(f"  ingested {center} at {time.perf_counter() - started:.0f} s", flush=True)
    run_measures(con, all_measures(), period_start=PERIOD[0], period_end=PERIOD[1])
    print(f"measures done at {time.perf_counter() - started:.0f} s", flush=True)
    _precompute(con)
    con.close()
    building.rename(warehouse)
    return warehouse


def _has_results(path: Path) -> bool:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM measure_results WHERE period_end = ?", [PERIOD[1]]).fetchone()
        return bool(row and row[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def _precompute(con) -> None:
    from chc_equity.network import precompute

    t = time.perf_counter()
    result = precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    print(
        f"precompute: {time.perf_counter() - t:.2f} s ({result.measure_rows} measure rows, "
        f"equity {result.equity_status})",
        flush=True,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_pages(warehouse: Path, requests: int) -> None:
    import re

    from fastapi.testclient import TestClient

    from chc_equity.web import WebConfig, create_app
    from chc_equity.web.authstore import AuthStore, auth_path
    from chc_equity.web.roles import Role

    store = AuthStore(auth_path(warehouse))
    if "bench" not in {u.username for u in store.list_users()}:
        store.add_user("bench", PASSWORD, Role.NETWORK_ANALYST, None)
    client = TestClient(create_app(WebConfig(warehouse=warehouse)))
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "bench", "password": PASSWORD, "login_csrf": token})
    pages = {"overview": "/", "measure CMS122": "/measures/CMS122", "measure CMS138": "/measures/CMS138"}
    print(f"load average before timing: {os.getloadavg()}")
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm-up (templates compiled, OS cache)
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200
        print(
            f"{label:16s} n={requests} p50={statistics.median(times):6.1f} ms "
            f"p95={percentile(times, 0.95):6.1f} ms max={max(times):6.1f} ms"
        )
    print(f"load average after timing: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_web"))
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--centers", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    warehouse = build(args.dir, args.patients, args.centers)
    con_size = warehouse.stat().st_size / 1e6
    print(f"warehouse {warehouse} ({con_size:,.0f} MB)")
    if not args.build_only:
        time_pages(warehouse, args.requests)


if __name__ == "__main__":
    main()
