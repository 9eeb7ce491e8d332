"""UDS page and Excel download on a small real network, built without ever writing to the warehouse."""

from __future__ import annotations

import hashlib
import io
from datetime import date
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from browser.webseed import add_users, login, make_app
from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import find
from chc_equity.network import precompute
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from chc_equity.web import uds

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl not installed")
pytestmark = pytest.mark.skipif(
    not uds.status_of_writer(), reason="chc_equity.uds has no workbook writer yet"
)
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uds")
    summary = generate(
        folder / "net", centers=2, patients=250, seed=3, period_end=PERIOD[1], cfg=load_config()
    )
    path = folder / "wh.duckdb"
    con = connect(path)
    centers = [c["id"] for c in summary["centers"]]
    for center in centers:
        load(con, [folder / "net" / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    run_measures(con, find(["CMS122", "CMS165"]), period_start=PERIOD[0], period_end=PERIOD[1])
    precompute(con, period_start=PERIOD[0], period_end=PERIOD[1], equity=False)
    con.close()
    # The webseed users, with center staff bound to the generated centers.
    add_users(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_uds_download_by_role_without_writing_to_the_warehouse(warehouse: Path) -> None:
    before = _digest(warehouse)
    app = make_app(warehouse)
    admin = TestClient(app)
    assert login(admin, "admin").status_code == 303
    assert 'id="uds-download"' in admin.get("/uds").text
    response = admin.get("/uds/tables.xlsx")
    assert response.status_code == 200 and "uds-2026-network.xlsx" in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert {"Table 3A", "Table 3B", "Table 4", "Table 6B", "Table 7"} <= set(book.sheetnames)
    viewer = TestClient(app)
    assert login(viewer, "viewer").status_code == 303
    assert viewer.get("/uds/tables.xlsx").status_code == 403
    assert 'id="uds-download"' not in viewer.get("/uds").text
    assert _digest(warehouse) == before  # the build ran in an in-memory overlay
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert "uds_visits" not in tables and "uds_patients" not in tables
