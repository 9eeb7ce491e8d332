"""Load test (issue 12): users keep reading while center loads run back to back; nothing fails or mixes.

Local only, bounded: builds a generated network (a few centers loaded, measures run, aggregates
precomputed), starts the real app (``chc-equity serve`` in a uvicorn subprocess), runs ``--users``
threads (httpx) that request the overview, a measure page, a care-gap list and the centers list over and
over, while ``--loads`` real ``chc-equity ingest`` subprocesses load one more center each, back to back.

It prints requests, failures (anything but HTTP 200 with an ``X-Data-Version``), p50/p95 latency and CPU
seconds, then checks consistency: for every snapshot seq a response carried, the expected numbers are
computed from that snapshot file directly (plain SQL, not the app's code) and compared with the response.
A user's seq never goes backwards. Exit status 1 on any failure or inconsistency.

    python benchmarks/loadtest.py                       # 20 users, 8 loads (figures: benchmarks/README.md)
    python benchmarks/loadtest.py --users 3 --loads 2 --no-refresh   # what tests/test_serving_load.py runs
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import httpx

PASSWORD = "loadtest-horse-battery-staple"
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
MEASURE = "CMS122"
CLI = [
    sys.executable,
    "-c",
    "import sys; from chc_equity.cli import main; sys.argv[0] = 'chc-equity'; main()",
]


@dataclass
class Seen:
    """One response: what was asked, how it went, which snapshot answered."""

    kind: str
    url: str
    status: int
    seq: int | None
    seconds: float
    body: object = None


@dataclass
class Outcome:
    responses: list[Seen] = field(default_factory=list)
    loads: list[tuple[str, float, int]] = field(default_factory=list)  # center, wall s, exit status
    load_cpu: list[float] = field(default_factory=list)  # CPU s of each load's process (DuckDB threads too)
    loads_wanted: int = 0
    loads_wall_s: float | None = None  # start of the first load to the end of the last; None: not all done
    deadline_s: float = 0.0
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the run
    problems: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


# -- the network ---------------------------------------------------------------------------------------
def build_network(folder: Path, *, centers: int, patients: int, base: int) -> tuple[Path, list[Path]]:
    """Generate ``centers`` centers; load the first ``base`` and run every measure on them (in-process,
    as a `chc-equity ingest` + `measures run` would). Returns the warehouse and the bundles left to load."""
    from chc_equity.cli.ingest import views_after_load, views_screen
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import all_measures
    from chc_equity.network import precompute
    from chc_equity.refresh import finish_pending
    from chc_equity.synth import generate, load_config
    from chc_equity.warehouse import writing
    from chc_equity.web.authstore import AuthStore, auth_path
    from chc_equity.web.roles import Role

    summary = generate(
        folder / "net", centers=centers, patients=patients, seed=12, period_end=PERIOD[1], cfg=load_config()
    )
    ids = [c["id"] for c in summary["centers"]]
    warehouse = folder / "wh.duckdb"
    with writing(warehouse) as con:
        for center in ids[:base]:
            load(con, [folder / "net" / center], center, after_load=views_after_load(), screen=views_screen())
        finish_pending(con)
        run_measures(con, all_measures(), period_start=PERIOD[0], period_end=PERIOD[1])
        precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    AuthStore(auth_path(warehouse)).add_user("loadtest", PASSWORD, Role.NETWORK_ADMIN, None)
    return warehouse, [folder / "net" / c for c in ids[base:]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(warehouse: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--warehouse", str(warehouse), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("chc-equity serve exited at start")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chc-equity serve did not start in 60 s")


def login(client: httpx.Client) -> None:
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token, "login form lacks its CSRF field"
    client.post(
        "/login",
        data={"username": "loadtest", "password": PASSWORD, "login_csrf": token.group(1)},
        follow_redirects=False,
    )


def targets(center: str, measure: str) -> list[tuple[str, str]]:
    """(kind, url) a user cycles through: overview (page and API), measure, care-gap list, centers."""
    return [
        ("overview", "/api/overview"),
        ("measure", f"/api/measures/{measure}"),
        ("gaps", f"/api/centers/{center}/measures/{measure}/gaps"),
        ("centers", "/api/centers"),
        ("page", "/"),
        ("page", f"/measures/{measure}"),
    ]


def user(url: str, plan: list[tuple[str, str]], stop: threading.Event, out: list[Seen], offset: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        login(client)
        i = offset
        while not stop.is_set():
            kind, path = plan[i % len(plan)]
            i += 1
            started = time.perf_counter()
            try:
                r = client.get(path)
            except httpx.HTTPError as exc:
                out.append(Seen(kind, path, 0, None, time.perf_counter() - started, repr(exc)))
                continue
            seconds = time.perf_counter() - started
            version = r.headers.get("X-Data-Version")
            body = r.json() if kind != "page" and r.status_code == 200 else None
            out.append(Seen(kind, path, r.status_code, int(version) if version else None, seconds, body))


def run_loads(bundles: list[Path], warehouse: Path, env: dict[str, str], refresh: bool, out: Outcome) -> None:
    """`chc-equity ingest` of each bundle, one after another: (center, seconds, exit status) into
    ``out.loads``, each one's CPU seconds into ``out.load_cpu`` (the server, the other child, is reaped
    only after the run, so the children's usage grows by this load's alone)."""
    first = time.perf_counter()
    for bundle in bundles:
        started = time.perf_counter()
        cpu = _children_cpu()
        args = [*CLI, "ingest", str(bundle), "--center", bundle.name, "--warehouse", str(warehouse)]
        proc = subprocess.run(
            [*args, *([] if refresh else ["--no-refresh"])], env=env, capture_output=True, text=True
        )
        out.load_cpu.append(_children_cpu() - cpu)
        out.loads.append((bundle.name, time.perf_counter() - started, proc.returncode))
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-2000:])
    out.loads_wall_s = time.perf_counter() - first


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- consistency -------------------------------------------------------------------------------------
def expected(snapshot: Path, center: str, measure: str) -> dict[str, object]:
    """What each API answer must hold in the state of ``snapshot``: plain SQL on the snapshot file."""
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        end = con.execute("SELECT max(period_end) FROM agg_runs").fetchone()[0]
        cells = con.execute(
            "SELECT center, measure, group_id, denominator, numerator FROM agg_measure WHERE period_end = ?",
            [end],
        ).fetchall()
        one = con.execute(
            "SELECT center, measure, group_id, denominator, numerator FROM agg_measure "
            "WHERE period_end = ? AND cms_id = ?",
            [end, measure],
        ).fetchall()
        gaps = con.execute(
            """
            SELECT count(*) FROM measure_results r
              JOIN (SELECT DISTINCT measure, group_id, inverse FROM agg_measure
                     WHERE cms_id = ? AND period_end = ?) m USING (measure, group_id)
             WHERE r.center = ? AND r.period_end = ? AND r.denominator AND NOT r.denominator_exclusion
               AND NOT r.denominator_exception AND (r.numerator = m.inverse)
            """,
            [measure, end, center, end],
        ).fetchone()[0]
        loads = dict(con.execute("SELECT center, count(*) FROM loads GROUP BY ALL").fetchall())
        resources = dict(con.execute("SELECT center, sum(n) FROM resource_counts GROUP BY ALL").fetchall())
    finally:
        con.close()
    return {
        "overview": sorted(cells),
        "measure": sorted(one),
        "gaps": int(gaps),
        "centers": sorted((c, loads[c], int(resources.get(c, 0))) for c in loads),
    }


def observed(kind: str, body: dict) -> object:
    if kind in ("overview", "measure"):
        return sorted(
            (c["center"], c["measure"], c["group_id"], c["denominator"], c["numerator"])
            for c in body["cells"]
        )
    if kind == "gaps":
        return len(body["gaps"])
    return sorted((c["center"], c["loads"], c["resources"]) for c in body)


def check(outcome: Outcome, serving: Path, center: str, measure: str, by_user: list[list[Seen]]) -> None:
    cache: dict[int, dict[str, object]] = {}
    for seen in outcome.responses:
        if seen.status != 200 or seen.seq is None:
            continue  # counted as failures already
        if seen.seq not in cache:
            path = serving / f"{seen.seq:08d}.duckdb"
            if not path.exists():
                outcome.problems.append(f"seq {seen.seq} answered but its snapshot file is gone")
                cache[seen.seq] = {}
                continue
            cache[seen.seq] = expected(path, center, measure)
        want = cache[seen.seq].get(seen.kind)
        if seen.kind != "page" and want is not None and observed(seen.kind, seen.body) != want:
            outcome.problems.append(f"{seen.url} at seq {seen.seq} differs from that snapshot")
    for i, responses in enumerate(by_user):
        seqs = [s.seq for s in responses if s.seq is not None]
        if any(b < a for a, b in zip(seqs, seqs[1:], strict=False)):
            outcome.problems.append(f"user {i} saw the data version go backwards")


# -- the run -----------------------------------------------------------------------------------------
def run(
    folder: Path,
    *,
    users: int = 20,
    loads: int = 8,
    patients_per_center: int = 100,
    base: int = 2,
    refresh: bool = True,
    deadline_s: float = 120.0,
    network: tuple[Path, list[Path]] | None = None,
    center: str = "c01",
    measure: str = MEASURE,
) -> Outcome:
    """The whole test in ``folder``; ``network`` reuses an already built (warehouse, bundles), whose
    warehouse has a network admin ``loadtest`` (:data:`PASSWORD`). Users read ``center``'s care gaps of
    ``measure``."""
    env = {**os.environ, "CHC_EQUITY_SERVING_KEEP": "100000", "PYTHONUNBUFFERED": "1"}
    os.environ["CHC_EQUITY_SERVING_KEEP"] = "100000"
    centers = base + loads
    warehouse, bundles = network or build_network(
        folder, centers=centers, patients=patients_per_center * centers, base=base
    )
    outcome = Outcome(loads_wanted=min(loads, len(bundles)), deadline_s=deadline_s)
    load_before = os.getloadavg()[0]
    import psutil

    server, url = start_server(warehouse, env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    stop = threading.Event()
    by_user: list[list[Seen]] = [[] for _ in range(users)]
    threads = [
        threading.Thread(target=user, args=(url, targets(center, measure), stop, by_user[i], i), daemon=True)
        for i in range(users)
    ]
    try:
        for t in threads:
            t.start()
        loader = threading.Thread(
            target=run_loads,
            args=(bundles[:loads], warehouse, env, refresh, outcome),
            daemon=True,
        )
        loader.start()
        loader.join(timeout=deadline_s)
        if loader.is_alive():
            outcome.problems.append(f"the loads did not finish within {deadline_s:.0f} s")
        time.sleep(1.0)  # a moment of reads after the last publish
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server_cpu = psutil.Process(server.pid).cpu_times()
        outcome.cpu["server"] = server_cpu.user + server_cpu.system
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    outcome.wall_s = time.perf_counter() - started
    outcome.load_average = (load_before, os.getloadavg()[0])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    # children waited for during the run: the loads (the server is reaped after; its CPU is from psutil)
    loads_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    outcome.cpu["loads"] = max(0.0, loads_cpu - outcome.cpu["server"])
    outcome.cpu["clients"] = (self_after.ru_utime - self_before.ru_utime) + (
        self_after.ru_stime - self_before.ru_stime
    )
    outcome.responses = [s for responses in by_user for s in responses]
    for seen in outcome.responses:
        if seen.status != 200 or seen.seq is None:
            outcome.problems.append(f"{seen.url}: HTTP {seen.status}, data version {seen.seq}")
    outcome.problems.extend(f"load of {c} exited {rc}" for c, _s, rc in outcome.loads if rc != 0)
    from chc_equity.serving import serving_dir

    check(outcome, serving_dir(warehouse.resolve()), center, measure, by_user)
    return outcome


def report(outcome: Outcome, users: int) -> str:
    times = sorted(s.seconds for s in outcome.responses) or [0.0]
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    seqs = sorted({s.seq for s in outcome.responses if s.seq is not None})
    failed = sum(1 for s in outcome.responses if s.status != 200 or s.seq is None)
    by_kind: dict[str, int] = defaultdict(int)
    for s in outcome.responses:
        by_kind[s.kind] += 1
    loads = ", ".join(
        f"{c} {s:.1f}s/{cpu:.1f}cpu" for (c, s, _), cpu in zip(outcome.loads, outcome.load_cpu, strict=False)
    )
    first, last = (seqs[0], seqs[-1]) if seqs else ("-", "-")
    inconsistent = sum(1 for p in outcome.problems if "differs" in p or "backwards" in p)
    done = sum(1 for _c, _s, rc in outcome.loads if rc == 0)
    in_time = outcome.loads_wall_s is not None and outcome.loads_wall_s <= outcome.deadline_s
    per_load = statistics.mean(outcome.load_cpu) if outcome.load_cpu else 0.0
    all_in_time = in_time and done == outcome.loads_wanted
    lines = [
        f"users {users}, loads {len(outcome.loads)} ({loads})",
        f"loads done: {done} of {outcome.loads_wanted}, "
        + (
            f"back to back in {outcome.loads_wall_s:.1f} s"
            if outcome.loads_wall_s is not None
            else f"still running at the {outcome.deadline_s:.0f} s bound"
        )
        + f" (bound {outcome.deadline_s:.0f} s: {'within' if all_in_time else 'MISSED'}); "
        f"CPU s per load {per_load:.2f} (min {min(outcome.load_cpu, default=0):.2f}, "
        f"max {max(outcome.load_cpu, default=0):.2f})",
        f"load average (1 min) {outcome.load_average[0]:.1f} before, {outcome.load_average[1]:.1f} after; "
        f"cpus {os.cpu_count()}",
        f"wall {outcome.wall_s:.1f} s; requests {len(outcome.responses)} "
        f"({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items()))}); failures {failed}",
        f"latency p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms",
        f"CPU s: server {outcome.cpu.get('server', 0):.1f}, loads {outcome.cpu.get('loads', 0):.1f}, "
        f"clients {outcome.cpu.get('clients', 0):.1f}",
        f"data versions seen: {first} .. {last} ({len(seqs)} distinct); inconsistencies: {inconsistent}",
        f"must-show: failed requests {failed}, p95 {p95 * 1000:.0f} ms, inconsistencies {inconsistent}, "
        f"loads {done}/{outcome.loads_wanted} within {outcome.deadline_s:.0f} s: "
        + ("PASS" if not outcome.problems and all_in_time else "FAIL"),
    ]
    lines += [f"PROBLEM: {p}" for p in outcome.problems[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--loads", type=int, default=8)
    parser.add_argument("--patients-per-center", type=int, default=100)
    parser.add_argument("--refresh", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds for the loads (bound)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chc-loadtest-") as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        outcome = run(
            folder,
            users=args.users,
            loads=args.loads,
            patients_per_center=args.patients_per_center,
            refresh=args.refresh,
            deadline_s=args.deadline,
        )
        print(f"network built and test run in {time.perf_counter() - t:.1f} s (cpus: {os.cpu_count()})")
        print(report(outcome, args.users))
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
