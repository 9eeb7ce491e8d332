"""Serving snapshots: the web reads only what a writer published, and writers queue instead of failing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from browser.webseed import NORTH, VISIT_DAY, add_users, build_warehouse, login, make_app
from chc_equity import serving
from chc_equity.network.precompute import AGG_TABLES
from chc_equity.warehouse import WarehouseError, connect, writing
from chc_equity.web.security import CSRF_HEADER, route_registry

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "chc_equity"
CLI = [
    sys.executable,
    "-c",
    "import sys; from chc_equity.cli import main; sys.argv[0] = 'chc-equity'; main()",
]
# Routes that do not read the serving snapshot: the UDS workbook builds from the live warehouse
# (docs/web.md, "UDS download"); the others read no warehouse data.
NOT_SNAPSHOT = {"/uds/tables.xlsx", "/logout", "/login"}
DATA_URLS = {"/", "/api/overview", "/api/centers", "/data-quality", "/measures/CMS130", "/admin/pulls"}
TOKEN = re.compile(r'(name="(?:csrf_token|login_csrf|idempotency_key)" value=")[^"]+|("csrf_token": ?")[^"]+')


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_warehouse(tmp_path_factory.mktemp("serving") / "wh.duckdb")
    add_users(path)
    return path


def _signed_in(app, user: str) -> TestClient:
    client = TestClient(app)
    assert login(client, user).status_code == 303
    return client


def _urls(app) -> list[str]:
    """Every GET route the routers declare, with this fixture's center and measure filled in."""
    urls = []
    for rule in route_registry(app):
        path = rule.path.replace("{center}", NORTH).replace("{measure}", "CMS130")
        if rule.method != "GET" or "{" in path or path in NOT_SNAPSHOT:
            continue
        urls.append(path)
    return urls


def _normal(text: str) -> str:
    return TOKEN.sub(lambda m: (m.group(1) or m.group(2)) + "X", text)


def _body(response) -> object:
    """What a response says: its text (tokens normalised), or an Excel file's cells (the file's own
    creation time, to the second, differs between two requests that straddle a second)."""
    if response.content[:2] == b"PK":
        import io

        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(response.content), read_only=True)
        return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    return _normal(response.text)


def test_every_page_answers_from_the_snapshot_alone_as_from_the_whole_warehouse(
    seeded: Path, tmp_path: Path
) -> None:
    """The serving set holds every table the web reads: each page and API call answers the same from a
    published snapshot (warehouse moved away) as from a copy of the whole warehouse."""
    published = tmp_path / "published" / "wh.duckdb"
    published.parent.mkdir()
    shutil.copy(seeded, published)
    snap = serving.publish_from_file(published)
    published.rename(published.with_name("moved.duckdb"))  # the app can only read the snapshot now
    whole = tmp_path / "whole" / "wh.duckdb"
    folder = serving.serving_dir(whole)
    folder.mkdir(parents=True)
    shutil.copy(seeded, folder / "00000001.duckdb")  # every table (summaries as views) under CURRENT
    (folder / "CURRENT").write_text("00000001.duckdb\n")
    apps = {}
    for name, path in (("snapshot", published), ("whole", whole)):
        add_users(path)
        apps[name] = make_app(path)
    urls = _urls(apps["snapshot"])
    assert "/api/overview" in urls and f"/api/centers/{NORTH}/measures/CMS130/gaps" in urls
    for user in ("admin", "staff-north", "viewer"):
        clients = {name: _signed_in(app, user) for name, app in apps.items()}
        for url in urls:
            got = {name: c.get(url, follow_redirects=False) for name, c in clients.items()}
            where = f"GET {url} as {user}"
            assert got["snapshot"].status_code == got["whole"].status_code, where
            assert got["snapshot"].status_code < 500, where
            assert _body(got["snapshot"]) == _body(got["whole"]), where
            version = got["snapshot"].headers.get("X-Data-Version")
            assert version in (None, str(snap.seq)), where  # None: a page that reads no data
            if got["snapshot"].status_code == 200 and url in DATA_URLS:
                assert version == str(snap.seq), where
        csrf = clients["snapshot"].get("/api/me").json()["csrf_token"]
        body = {"date": VISIT_DAY.isoformat()}
        posted = clients["snapshot"].post(
            f"/api/centers/{NORTH}/previsit", json=body, headers={CSRF_HEADER: csrf}
        )
        assert posted.status_code in (200, 403), user


def test_the_worklist_and_billing_read_only_serving_tables() -> None:
    """Static check for code paths the page test cannot reach with its fixture (CHW worklist, billing,
    indicators): every flat.* table named in web/, outreach/ and network/ is in the serving set, and so
    is every agg_* table."""
    flat = re.compile(r"(?:\{F\}|\{f\}|\{FLAT_SCHEMA\}|\bflat)\.([a-z_]+)")
    named = set()
    for folder in ("web", "outreach", "network"):
        for file in (SRC / folder).glob("*.py"):
            named |= set(flat.findall(file.read_text()))
    for table in re.findall(
        r'_table_exists\(con, "([a-z_]+)"', (SRC / "outreach" / "worklist.py").read_text()
    ):
        named.add(table)
    assert named, "the scan found nothing: the pattern is stale"
    assert {f"flat.{t}" for t in named} <= serving.SERVING_TABLES
    assert {f"main.{t}" for t in AGG_TABLES} <= serving.SERVING_TABLES
    assert "main.resources" not in serving.SERVING_TABLES and "main.rejects" not in serving.SERVING_TABLES


def test_a_snapshot_holds_no_raw_resource_text(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    snap = serving.publish_from_file(path)
    con = duckdb.connect(str(snap.path), read_only=True)
    try:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        }
        assert tables <= serving.SERVING_TABLES and "main.patient_contact" in tables
        dump = json.dumps(con.execute("SELECT * FROM reject_counts").fetchall(), default=str)
        assert "RAWTEXT-MUST-NOT-LEAK" not in dump and "DETAIL-MUST-NOT-LEAK" not in dump
        assert con.execute("SELECT seq, format FROM serving_meta").fetchone() == (snap.seq, serving.FORMAT)
    finally:
        con.close()


def test_publish_switches_atomically_and_keeps_the_newest(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    first = serving.publish_from_file(path)
    reader = duckdb.connect(str(first.path), read_only=True)  # a request still reading the oldest one
    try:
        for _ in range(serving.KEEP + 1):
            with writing(path) as con:
                con.execute("UPDATE loads SET status = 'reloaded' WHERE load_id = 1")
        seqs = [s.seq for s in serving.snapshots(path)]
        assert seqs == list(range(first.seq + 2, first.seq + 2 + serving.KEEP))
        assert serving.current(path).seq == seqs[-1] and not first.path.exists()
        assert reader.execute("SELECT count(*) FROM loads").fetchone()[0] == 3  # unlinked, still readable
    finally:
        reader.close()
    assert not [p for p in serving.serving_dir(path).iterdir() if p.name.startswith(".tmp-")]


def test_nothing_is_published_when_the_command_fails(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    before = serving.publish_from_file(path)
    with pytest.raises(RuntimeError), writing(path) as con:
        con.execute("DELETE FROM loads")
        raise RuntimeError("the command failed after a commit")
    assert serving.current(path) == before  # the web keeps the last complete state


def test_serve_republishes_a_warehouse_changed_without_publishing(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    shutil.copy(seeded, path)
    add_users(path)
    first = serving.publish_from_file(path)
    con = connect(path)  # library code (or an older chc-equity) writing without publishing
    con.execute("DELETE FROM loads WHERE load_id = 3")
    con.close()
    client = _signed_in(make_app(path), "admin")
    response = client.get(f"/api/centers/{NORTH}/loads")
    assert [x["load_id"] for x in response.json()] == [1]
    assert int(response.headers["X-Data-Version"]) > first.seq


# -- writers queue ------------------------------------------------------------------------------------
def _hold(warehouse: Path) -> subprocess.Popen:
    """Another process holding the warehouse (as a load does) until its stdin closes."""
    script = f"import duckdb, sys; c = duckdb.connect({str(warehouse)!r}); print(1, flush=True); input()"
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "1"
    return holder


def _bundle(folder: Path, center: str, n: int = 5) -> Path:
    folder.mkdir(parents=True)
    lines = [
        json.dumps({"resourceType": "Patient", "id": f"{center}-p{i}", "gender": "female"}) for i in range(n)
    ]
    (folder / "Patient.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def test_loads_started_together_run_one_after_another(tmp_path: Path) -> None:
    """Three `chc-equity ingest` of three centers started at once (while a fourth process holds the
    warehouse) all succeed, each waiting for the one before; the last snapshot holds all three."""
    warehouse = tmp_path / "wh.duckdb"
    connect(warehouse).close()
    holder = _hold(warehouse)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    centers = ["ctr-a", "ctr-b", "ctr-c"]
    procs = [
        subprocess.Popen(
            [*CLI, "ingest", str(_bundle(tmp_path / c, c)), "--center", c, "--warehouse", str(warehouse)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in centers
    ]
    try:
        for p in procs:  # each says it waits (its first line) before the holder lets go
            assert "waiting for another load of" in p.stderr.readline()
    finally:
        holder.communicate("", timeout=60)
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
    snap = serving.current(warehouse)
    con = duckdb.connect(str(snap.path), read_only=True)
    try:
        assert con.execute("SELECT center, n FROM resource_counts ORDER BY 1").fetchall() == [
            (c, 5) for c in centers
        ]
    finally:
        con.close()


def test_a_load_that_waits_too_long_fails_clearly(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    connect(warehouse).close()
    holder = _hold(warehouse)
    try:
        said: list[str] = []
        with pytest.raises(WarehouseError, match="another process still holds it after 0.3 s"):
            connect(warehouse, timeout=0.3, wait_message=said.append)
        assert said == [f"waiting for another load of {warehouse} to finish (up to 0.3 s) ..."]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "CHC_EQUITY_LOCK_TIMEOUT": "0.5"}
        bundle = _bundle(tmp_path / "b", "ctr-x")
        proc = subprocess.run(
            [*CLI, "ingest", str(bundle), "--center", "ctr-x", "--warehouse", str(warehouse)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and "CHC_EQUITY_LOCK_TIMEOUT" in proc.stderr
    finally:
        holder.communicate("", timeout=60)
