"""The data-feeds page (/admin/pulls): last pull and load per center, for network admins and analysts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from browser.webseed import NORTH, SOUTH, USERS, add_users, build_warehouse, login, make_app
from chc_equity.pull import state
from chc_equity.warehouse import connect
from chc_equity.web.roles import Role

SOURCE = "https://ehr.example.org/fhir/Group/g1"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    path = build_warehouse(tmp_path_factory.mktemp("pulls") / "wh.duckdb", with_measures=False)
    add_users(path)
    return path


def _client(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def test_page_without_pulls_lists_the_loads(warehouse) -> None:
    app = make_app(warehouse)
    page = _client(app, "admin").get("/admin/pulls")
    assert page.status_code == 200
    assert NORTH in page.text and "never" in page.text  # loads exist, no pull yet


def test_page_shows_last_pull_per_center_with_errors(warehouse, tmp_path) -> None:
    path = tmp_path / "wh.duckdb"
    path.write_bytes(warehouse.read_bytes())
    add_users(path)
    con = connect(path)
    state.ensure_table(con)
    now = datetime.now(UTC)
    ok = state.PullRecord(NORTH, SOURCE, now, status="ok", files=7, resources=1234, deleted=5, duration_s=3.2)
    state.record(con, ok)
    failed = state.PullRecord(SOUTH, SOURCE, now, status="error", error="download x failed after 5 attempts")
    state.record(con, failed)
    con.close()
    app = make_app(path)
    for name in ("admin", "analyst"):
        text = _client(app, name).get("/admin/pulls").text
        assert "1,234" in text and "failed after 5 attempts" in text and SOURCE in text
    for name, (role, _center) in USERS.items():
        if role not in (Role.NETWORK_ADMIN, Role.NETWORK_ANALYST):
            assert _client(app, name).get("/admin/pulls").status_code == 403, name

