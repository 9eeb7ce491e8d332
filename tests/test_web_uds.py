"""UDS page and Excel download on a small real network, built without ever writing to the warehouse."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from browser.webseed import PASSWORD, add_users, build_synthetic_warehouse, login, make_app
from chc_equity.web import uds
from chc_equity.web.authstore import AuthStore, auth_path
from chc_equity.web.roles import Role

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl not installed")
pytestmark = pytest.mark.skipif(
    not uds.status_of_writer(), reason="chc_equity.uds has no workbook writer yet"
)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A real two-center warehouse (full precompute: ``patient_attributes`` is in it) and its centers."""
    path, centers = build_synthetic_warehouse(tmp_path_factory.mktemp("uds"))
    add_users(path)
    AuthStore(auth_path(path)).add_user("staff-first", PASSWORD, Role.CENTER_STAFF, centers[0])
    return path, centers


@pytest.fixture(scope="module")
def warehouse(network: tuple[Path, list[str]]) -> Path:
    return network[0]


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


def test_uds_download_where_the_warehouse_has_patient_attributes(network: tuple[Path, list[str]]) -> None:
    """Regression (issue 11 item 11): the warehouse's own ``patient_attributes`` (left by the equity
    precompute) matched the overlay's freshness check, so the build skipped it and then found no such
    table in memory: 409 for every role."""
    path, centers = network
    con = duckdb.connect(str(path), read_only=True)
    try:
        kept = con.execute("SELECT count(*) FROM patient_attributes").fetchone()[0]
    finally:
        con.close()
    assert kept > 0  # the condition that used to break the download
    app = make_app(path)
    for username in ("admin", "analyst"):
        client = TestClient(app)
        assert login(client, username).status_code == 303
        response = client.get("/uds/tables.xlsx")
        assert response.status_code == 200, (username, response.status_code)
    staff = TestClient(app)
    assert login(staff, "staff-first").status_code == 303
    response = staff.get("/uds/tables.xlsx")
    assert response.status_code == 200
    assert f"uds-2026-{centers[0]}.xlsx" in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["Table 3B"]
    scopes = {row[0] for row in sheet.iter_rows(min_row=4, values_only=True) if row[0]}
    assert scopes == {centers[0]}  # own center only, no other center and no network roll-up
