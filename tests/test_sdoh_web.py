"""The "Social needs" page: each role sees its centers' aggregates; viewers only suppressed ones.

The route is in the authorization matrix (tests/test_web_access.py) through the route registry; this
checks what the page shows. Data: the hand-written ``sdoh_metrics`` / ``sdoh_equity`` of
``browser.webseed`` (north: 5 of 25 food-positive, 4 of 9 referrals closed; south: 12 of 14 closed).
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from browser.webseed import NORTH, SOUTH, add_users, build_warehouse, login, make_app, mrn, patient_id

HIDDEN = "supp.‡"  # stored suppressed, so the reason (small or complementary) is not known: "either"


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
    assert "Hidden numbers:" in html and "suppressed (small number" in html  # the legend
    assert "Portuguese" not in html  # a suppressed equity cell is never listed


def test_center_bound_viewer_and_network_analyst(page) -> None:
    html = page("viewer-north")
    assert NORTH in html and SOUTH not in html and "Network (all centers)" not in html
    analyst = page("analyst", f"?center={SOUTH}")
    assert "12 / 14" in analyst and NORTH not in analyst and "Network (all centers)" not in analyst


def test_network_row(page) -> None:
    """The network funnel (all centers together) for network roles, before the centers; for viewers the
    network counts that would give back a hidden center count are hidden too."""
    analyst = page("analyst")
    network = analyst.split('id="sdoh-network"')[1].split("</table>\n</table>")[0].split("<h2")[0]
    assert "70" in network and "16 / 23" in network and "47 / 68" in network  # 40+30, 4+12 / 9+14, 25+22
    assert analyst.index('id="sdoh-network"') < analyst.index(NORTH)
    viewer = page("viewer").split('id="sdoh-network"')[1].split("<h2")[0]
    assert "16 /" not in viewer and f"{HIDDEN}</span> /" in viewer  # north's 4 closed is hidden: so is 16
    assert ">70<" in viewer.replace(" ", "")  # 40 and 30 eligible are both shown: so is 70


def test_missing_tables_say_so(tmp_path) -> None:
    warehouse = build_warehouse(tmp_path / "wh.duckdb", with_measures=False)
    add_users(warehouse)
    client = TestClient(make_app(warehouse))
    assert login(client, "admin").status_code == 303
    html = client.get("/social-needs").text
    assert 'id="sdoh-missing"' in html


# -- staff lists (build item 4): patient rows for the outreach roles of the center, never for viewers ---
LISTS = "/centers/{c}/social-needs/lists"


def _client(app_and_get, user: str) -> TestClient:
    client = TestClient(app_and_get)
    assert login(client, user).status_code == 303
    return client


@pytest.fixture(scope="module")
def lists_app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("sdoh-lists") / "wh.duckdb")
    add_users(warehouse)
    return make_app(warehouse)


@pytest.mark.parametrize("user", ["staff-north", "pm-north", "chw-north", "analyst", "admin"])
def test_staff_lists_show_their_center_only(lists_app, user: str) -> None:
    client = _client(lists_app, user)
    html = client.get(LISTS.format(c=NORTH)).text
    assert mrn(NORTH, 0) in html and mrn(NORTH, 1) in html  # positive, not referred
    assert mrn(NORTH, 2) not in html and mrn(NORTH, 4) not in html  # referred; negative
    assert SOUTH not in html and mrn(SOUTH, 0) not in html
    rows = list(csv.reader(io.StringIO(client.get(LISTS.format(c=NORTH) + ".csv").text)))
    assert [r[0] for r in rows[1:]] == [patient_id(NORTH, 0), patient_id(NORTH, 1)]
    assert rows[2][5] == "food; housing_instability"
    rows = list(
        csv.reader(io.StringIO(client.get(LISTS.format(c=NORTH) + ".csv?list=referred-not-closed").text))
    )
    assert [(r[0], r[8]) for r in rows[1:]] == [
        (patient_id(NORTH, 2), "accepted"),
        (patient_id(NORTH, 3), "rejected"),
    ]
    assert "sdoh-lists" in client.get("/social-needs").text  # the page links to them


def test_staff_lists_refuse_viewers_and_other_centers(lists_app) -> None:
    for user in ("viewer", "viewer-north"):
        client = _client(lists_app, user)
        for url in (LISTS.format(c=NORTH), LISTS.format(c=NORTH) + ".csv"):
            assert client.get(url).status_code == 403
        assert "sdoh-lists" not in client.get("/social-needs").text
    staff = _client(lists_app, "staff-north")
    assert staff.get(LISTS.format(c=SOUTH) + ".csv").status_code == 403
    south = _client(lists_app, "analyst").get(LISTS.format(c=SOUTH) + ".csv?list=referred-not-closed").text
    assert patient_id(SOUTH, 1) in south and NORTH not in south  # 0 cross-center rows


def test_chw_limited_to_a_panel_sees_only_their_patients(tmp_path) -> None:
    warehouse = build_warehouse(tmp_path / "wh.duckdb")
    add_users(warehouse)
    lists_app = make_app(warehouse)  # its own app: this test changes the center's CHW settings
    pm = _client(lists_app, "pm-north")
    csrf = pm.get("/api/me").json()["csrf_token"]
    h = {"X-CSRF-Token": csrf}
    chw = pm.post(
        f"/api/centers/{NORTH}/chws", json={"display_name": "C", "username": "chw-north"}, headers=h
    )
    assert chw.status_code in (200, 201), chw.text
    body = {"chw_id": chw.json()["id"], "patient_ids": [patient_id(NORTH, 1)]}
    assert pm.post(f"/api/centers/{NORTH}/assignments", json=body, headers=h).status_code == 200
    assert pm.put(f"/api/centers/{NORTH}/settings", json={"panel_only": True}, headers=h).status_code == 200
    rows = list(
        csv.reader(io.StringIO(_client(lists_app, "chw-north").get(LISTS.format(c=NORTH) + ".csv").text))
    )
    assert [r[0] for r in rows[1:]] == [patient_id(NORTH, 1)]


def test_community_organizations_per_role(page) -> None:
    staff = page("staff-north")
    assert 'id="sdoh-organizations"' in staff
    # the Organization's name is shown (the id only as a tooltip)
    assert "Harbor Food Bank" in staff and "Eastside Pantry" in staff and "Utility Assistance" not in staff
    viewer = page("viewer")
    assert "Harbor Food Bank" in viewer and "Utility Assistance Fund" in viewer  # counts all below 11
    table = viewer.split('id="sdoh-organizations"')[1].split("</table>")[0]
    assert ">1<" not in table and ">2<" not in table and HIDDEN in table
