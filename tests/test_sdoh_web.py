"""The "Social needs" page: each role sees its centers' aggregates; viewers only suppressed ones.

The route is in the authorization matrix (tests/test_web_access.py) through the route registry; this
checks what the page shows. Data: the hand-written ``sdoh_metrics`` / ``sdoh_equity`` of
``browser.webseed`` (north: 5 of 25 food-positive, 4 of 9 referrals closed; south: 12 of 14 closed).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from browser.webseed import NORTH, SOUTH, add_users, build_warehouse, login, make_app

HIDDEN = "&lt;11*"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("sdoh-web") / "wh.duckdb")
    add_users(warehouse)
    app = make_app(warehouse)

    def get(user: str, query: str = "") -> str:
        client = TestClient(app)
        assert login(client, user).status_code == 303
        response = client.get(f"/social-needs{query}")
        assert response.status_code == 200, response.text
        return response.text

    return get


def test_staff_see_their_center_unsuppressed(page) -> None:
    html = page("staff-north")
    assert "5 / 25" in html and "4 / 9" in html  # small counts: staff are allowed to see them
    assert "Spanish" in html  # the flagged equity stratum
    assert SOUTH not in html


def test_viewer_sees_suppressed_aggregates_only(page) -> None:
    html = page("viewer")
    assert NORTH in html and SOUTH in html
    assert "5 / 25" not in html and "4 / 9" not in html
    assert f"{HIDDEN}</span> / 25" in html  # 5 hidden, 25 shown
    assert "25 / 38" not in html  # 38 = 40 eligible - 2 declined (hidden) would give the 2 back
    assert "Counts from 1 to 10 are suppressed" in html
    assert "Portuguese" not in html  # a suppressed equity cell is never listed


def test_center_bound_viewer_and_network_analyst(page) -> None:
    html = page("viewer-north")
    assert NORTH in html and SOUTH not in html
    analyst = page("analyst", f"?center={SOUTH}")
    assert "12 / 14" in analyst and NORTH not in analyst


def test_missing_tables_say_so(tmp_path) -> None:
    warehouse = build_warehouse(tmp_path / "wh.duckdb", with_measures=False)
    add_users(warehouse)
    client = TestClient(make_app(warehouse))
    assert login(client, "admin").status_code == 303
    html = client.get("/social-needs").text
    assert 'id="sdoh-missing"' in html
