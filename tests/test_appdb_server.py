"""Outreach records against a real `chc-equity serve` process, on SQLite and on PostgreSQL:

* 20 concurrent writers (each also retrying one POST with the same idempotency key): exactly one row
  per key, none lost, none duplicated;
* ``kill -9`` of the server while writers are busy, then a restart: every acknowledged write is there
  (once), and re-sending the writes that got no answer never duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from browser.webseed import NORTH, PASSWORD, PATIENTS, USERS, build_warehouse, free_port, login, patient_id
from chc_equity.appdb import AppDB, database_url
from chc_equity.appdb.models import Outreach, OutreachRevision
from chc_equity.web.authstore import AuthStore
from chc_equity.web.security import CSRF_HEADER
from pgcluster import new_database, pg_cluster

pytestmark = pytest.mark.slow

WRITERS = 20
PER_WRITER = 5
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[str]:
    with pg_cluster() as url:
        yield url


@dataclass
class Server:
    """A running `chc-equity serve` on one back end (both tests share it: a start costs seconds)."""

    warehouse: Path
    env: dict[str, str]
    db: AppDB
    base: str = ""
    proc: subprocess.Popen | None = None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(request.param)
    warehouse = build_warehouse(folder / "wh.duckdb", with_measures=False)
    env = {k: v for k, v in os.environ.items() if k != "CHC_EQUITY_DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    if request.param == "postgresql":
        target = env["CHC_EQUITY_DATABASE_URL"] = new_database(request.getfixturevalue("pg_admin"))
    else:
        target = database_url(warehouse).removeprefix("sqlite:///")  # the default file next to the warehouse
        assert target.endswith("wh.duckdb.app.sqlite")
    db = AppDB(target)
    store = AuthStore(db)
    for name, (role, center) in USERS.items():
        store.add_user(name, PASSWORD, role, center)
    state = Server(warehouse, env, db)
    with serve(warehouse, env) as (base, proc):
        state.base, state.proc = base, proc
        yield state
    db.dispose()


@contextmanager
def serve(warehouse: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    cmd = [sys.executable, "-c", "from chc_equity.cli import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "-w", str(warehouse)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"serve did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
                )
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _session(base: str) -> tuple[dict[str, str], dict[str, str]]:
    with httpx.Client(base_url=base) as client:
        assert login(client, "chw-north").status_code == 303
        csrf = client.get("/api/me").json()["csrf_token"]
        return dict(client.cookies), {CSRF_HEADER: csrf}


def _post(client: httpx.Client, headers: dict[str, str], key: str, i: int) -> httpx.Response:
    body = {
        "patient_id": patient_id(NORTH, i % PATIENTS[NORTH][0]),
        "contact_date": "2026-03-02",
        "channel": "phone",
        "outcome": "reached",
        "minutes": 5,
        "idempotency_key": key,
    }
    return client.post(f"/api/centers/{NORTH}/outreach", json=body, headers=headers, timeout=60)


def _rows_per_key(db: AppDB) -> dict[str, int]:
    with db.read() as s:
        rows = s.execute(select(Outreach.idempotency_key, func.count()).group_by(Outreach.idempotency_key))
        return {k: n for k, n in rows}


def test_twenty_concurrent_writers_exact_count(server: Server) -> None:
    base, db = server.base, server.db
    cookies, headers = _session(base)
    errors: list[str] = []
    start = threading.Barrier(WRITERS)

    def writer(t: int) -> None:
        with httpx.Client(base_url=base, cookies=cookies) as client:
            start.wait()
            for i in range(PER_WRITER):
                response = _post(client, headers, f"w{t}-{i}", t * PER_WRITER + i)
                if response.status_code != 201:
                    errors.append(f"w{t}-{i}: {response.status_code} {response.text[:200]}")
            retry = _post(client, headers, f"w{t}-0", t * PER_WRITER)  # a retried POST
            if retry.status_code != 200:
                errors.append(f"retry w{t}-0: {retry.status_code}")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(WRITERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert errors == []
    counts = _rows_per_key(db)
    assert len(counts) == WRITERS * PER_WRITER and set(counts.values()) == {1}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutreachRevision)) == WRITERS * PER_WRITER


def test_kill_9_during_writes_loses_no_acknowledged_write(server: Server) -> None:
    """Runs after the concurrency test, on the same server: kill -9 it mid-write, restart, check."""
    warehouse, env, db, base, proc = server.warehouse, server.env, server.db, server.base, server.proc
    assert proc is not None
    acked: set[str] = set()
    in_doubt: set[str] = set()
    lock = threading.Lock()
    cookies, headers = _session(base)
    stop = threading.Event()

    def writer(t: int) -> None:
        with httpx.Client(base_url=base, cookies=cookies) as client:
            for i in range(200):
                if stop.is_set():
                    return
                key = f"k{t}-{i}"
                try:
                    response = _post(client, headers, key, i)
                except httpx.TransportError:
                    with lock:
                        in_doubt.add(key)
                    return
                with lock:
                    (acked if response.status_code in (200, 201) else in_doubt).add(key)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(WRITERS)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 120
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-write: requests are in flight
    proc.wait()
    stop.set()
    for th in threads:
        th.join(timeout=120)
    assert len(acked) >= 60 and in_doubt, "the kill should land while writes are in flight"
    with serve(warehouse, env) as (base, _proc):  # a restart on the same database
        counts = _rows_per_key(db)
        missing = sorted(acked - counts.keys())
        assert missing == [], f"acknowledged writes lost: {missing[:5]}"
        assert set(counts.values()) == {1}
        cookies, headers = _session(base)
        with httpx.Client(base_url=base, cookies=cookies) as client:
            for key in sorted(acked)[:3] + sorted(in_doubt):  # clients retry what got no answer
                _t, i = key[1:].split("-")
                assert _post(client, headers, key, int(i)).status_code in (200, 201)
            for i in (0, 1):  # everything stored before the kill (concurrency test included) is served
                shown = client.post(
                    f"/api/centers/{NORTH}/outreach/history",
                    json={"patient_id": patient_id(NORTH, i)},
                    headers=headers,
                ).json()
                with db.read() as s:
                    stored = set(
                        s.scalars(select(Outreach.id).where(Outreach.patient_id == patient_id(NORTH, i)))
                    )
                assert {r["id"] for r in shown} == stored and len(stored) >= 2
    counts = _rows_per_key(db)
    keys = {k for k in counts if k.startswith("k")}
    assert keys == acked | in_doubt and all(counts[k] == 1 for k in keys)
