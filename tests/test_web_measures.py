"""Measure pages and care gaps on the seeded two-center warehouse (agg_* from the real precompute)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    NORTH,
    SOUTH,
    VISIT_DAY,
    add_users,
    build_warehouse,
    expected_gaps,
    login,
    make_app,
    mrn,
)
from chc_equity.measures.registry import find
from chc_equity.web.gaps import CSV_COLUMNS
from chc_equity.web.security import CSRF_HEADER


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("measures") / "wh.duckdb")
    add_users(warehouse)
    return make_app(warehouse)


def _client(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def test_overview_heat_map_marks_the_worse_center(app) -> None:
    page = _client(app, "analyst").get("/").text
    assert 'id="heatmap"' in page  # centers as rows, measure groups as columns
    assert f'class="n worse" data-center="{SOUTH}" data-measure="CMS130"' in page
    assert f'class="n worse" data-center="{SOUTH}" data-measure="CMS122"' in page  # inverse: higher = worse
    assert f'class="n worse" data-center="{NORTH}"' not in page
    assert f'class="n better" data-center="{NORTH}" data-measure="CMS130"' in page  # "better" marks too
    assert "78.9 %" in page and "16.7 %" in page  # CMS130 NORTH 30/38, SOUTH 5/30 (cell titles)
    assert f'href="/centers/{NORTH}/measures/CMS130#group-Group_1"' in page  # a cell opens that page


def test_overview_api_and_periods(app) -> None:
    client = _client(app, "analyst")
    periods = client.get("/api/periods").json()
    assert [p["period_end"] for p in periods] == ["2026-12-31", "2025-12-31"]
    body = client.get("/api/overview").json()
    assert body["centers"] == [NORTH, SOUTH] and body["run"]["period_end"] == "2026-12-31"
    cells = {(c["cms_id"], c["center"]): c for c in body["cells"]}
    assert cells[("CMS130", NORTH)]["performance_denominator"] == 38
    assert cells[("CMS130", "*")]["numerator"] == 35
    prior = client.get("/api/overview?period_end=2025-12-31").json()
    assert prior["run"]["period_end"] == "2025-12-31"
    assert client.get("/api/overview?period_end=2020-12-31").status_code == 404


def test_measure_page_funnel_trend_and_equity_status(app) -> None:
    client = _client(app, "analyst")
    page = client.get("/measures/CMS130").text
    assert 'id="funnel-1-spec"' in page and 'id="trend-spec"' in page
    assert "Equity breakdown not computed" in page or 'id="equity"' in page
    detail = client.get("/api/measures/cms130").json()
    assert detail["cms_id"] == "CMS130" and not detail["inverse"]
    assert {c["center"] for c in detail["cells"]} == {"*", NORTH, SOUTH}
    assert detail["funnel"] and all(
        f["lo998"] <= f["lo95"] <= f["hi95"] <= f["hi998"] for f in detail["funnel"]
    )
    assert {t["period_end"] for t in detail["trend"]} == {"2025-12-31", "2026-12-31"}
    assert client.get("/measures/CMS999").status_code == 404
    assert client.get("/api/measures/CMS999").status_code == 404


def test_center_staff_of_a_two_center_network_see_no_network_number(app) -> None:
    """With two centers the network minus your own center *is* the other center: nothing of it is shown."""
    client = _client(app, "staff-north")
    for url in ("/", "/measures/CMS130", "/measures/CMS122", f"/centers/{NORTH}"):
        page = client.get(url)
        assert page.status_code == 200 and SOUTH not in page.text, url
    detail = client.get("/api/measures/CMS130").json()
    assert {c["center"] for c in detail["cells"]} == {"*", NORTH}
    network = next(c for c in detail["cells"] if c["center"] == "*")
    assert network["rate"] is None and network["numerator"] is None and network["ci_low"] is None
    own = next(c for c in detail["cells"] if c["center"] == NORTH)
    assert own["numerator"] == 30 and own["network_rate"] is None and own["p_value"] is None
    assert detail["funnel"] == [] and detail["equity"] == []
    assert all(t["network_rate"] is None and t["rate"] is None for t in detail["trend"] if t["center"] == "*")
    assert client.get(f"/api/centers/{SOUTH}/measures").status_code == 403


def test_viewers_get_suppressed_rates(app) -> None:
    body = _client(app, "viewer").get("/api/overview").json()
    cells = {(c["cms_id"], c["center"]): c for c in body["cells"]}
    south = cells[("CMS130", SOUTH)]  # 5 of 30: the numerator is a small cell
    assert south["numerator"] is None and south["rate"] is None and south["signal"] is None
    north = cells[("CMS130", NORTH)]  # 30 of 38: 8 not met is a small cell
    assert north["rate"] is None
    ok = cells[("CMS122", SOUTH)]  # 15 of 20: 5 not met -> hidden too
    assert ok["rate"] is None
    assert all(c["denominator_exclusion"] is None for c in body["cells"])


def test_care_gap_list_and_csv(app) -> None:
    client = _client(app, "staff-north")
    for cms in ("CMS130", "CMS122"):
        want = {mrn(NORTH, i) for i in expected_gaps(cms, NORTH)}
        page = client.get(f"/centers/{NORTH}/measures/{cms}/gaps")
        assert page.status_code == 200 and f'<span id="gap-count">{len(want)}</span>' in page.text
        response = client.get(f"/centers/{NORTH}/measures/{cms}/gaps.csv")
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(response.text)))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert {r[3] for r in rows[1:]} == want and len(rows) - 1 == len(want)
        api = client.get(f"/api/centers/{NORTH}/measures/{cms}/gaps").json()
        assert {g["mrn"] for g in api["gaps"]} == want
        assert all(g["last_visit"] and g["name"].startswith("Family") for g in api["gaps"])
        action = find([cms])[0].measure.care_gap  # what closes the gap, from the measure's own file
        assert action and all(g["reason"].endswith(action) for g in api["gaps"])
    # CMS122 is inverse: the gaps are the patients IN the numerator (indices 0-3).
    assert expected_gaps("CMS122", NORTH) == [0, 1, 2, 3]


def test_care_gaps_never_for_viewers_or_other_centers(app) -> None:
    for name in ("viewer", "viewer-north"):
        client = _client(app, name)
        assert client.get(f"/centers/{NORTH}/measures/CMS130/gaps.csv").status_code == 403
        assert client.get(f"/api/centers/{NORTH}/measures/CMS130/gaps").status_code == 403
    south = _client(app, "staff-south")
    denied = south.get(f"/centers/{NORTH}/measures/CMS130/gaps.csv")
    assert denied.status_code == 403 and mrn(NORTH, 0) not in denied.text


def test_previsit_planning(app) -> None:
    client = _client(app, "staff-north")
    csrf = client.get("/api/me").json()[("csrf_token")]
    body = client.post(
        f"/api/centers/{NORTH}/previsit", json={"date": VISIT_DAY.isoformat()}, headers={CSRF_HEADER: csrf}
    ).json()
    assert [p["mrn"] for p in body["patients"]] == [mrn(NORTH, i) for i in range(6)]
    for i, patient in enumerate(body["patients"]):
        want = {cms for cms in ("CMS130", "CMS122") if i in expected_gaps(cms, NORTH)}
        assert {g["cms_id"] for g in patient["gaps"]} == want
        assert patient["visit_times"] == [f"{8 + i:02d}:30"]
    assert (
        client.post(f"/api/centers/{NORTH}/previsit", json={"date": VISIT_DAY.isoformat()}).status_code == 403
    )
    page = client.post(f"/centers/{NORTH}/previsit", data={"day": VISIT_DAY.isoformat(), "csrf_token": csrf})
    assert page.status_code == 200 and mrn(NORTH, 5) in page.text
    none = client.post(f"/centers/{NORTH}/previsit", data={"day": "2026-03-03", "csrf_token": csrf})
    assert "No visits" in none.text


def test_uds_page_says_not_built_yet_until_the_package_exists(app) -> None:
    page = _client(app, "analyst").get("/uds").text
    from chc_equity.web import uds

    if uds.status_of_writer():
        assert 'id="uds-download"' in page
    else:
        assert "UDS tables are not built yet" in page


def test_without_measure_results_pages_say_so(tmp_path: Path) -> None:
    warehouse = build_warehouse(tmp_path / "wh.duckdb", with_measures=False)
    add_users(warehouse)
    client = _client(make_app(warehouse), "analyst")
    assert "No measure results yet" in client.get("/").text
    assert client.get("/api/overview").json()["cells"] == []
    assert client.get("/measures/CMS130").status_code == 404


def test_seed_demo_users(tmp_path: Path) -> None:
    from chc_equity.web.demo_users import seed_demo_users

    warehouse = build_warehouse(tmp_path / "wh.duckdb", with_measures=False)
    users = seed_demo_users(warehouse)
    assert [(u, r.value, c) for u, _p, r, c in users] == [
        ("admin", "network_admin", None),
        ("analyst", "network_analyst", None),
        ("viewer", "viewer", None),
        ("program", "program_staff", None),
        (f"staff-{NORTH}", "center_staff", NORTH),
    ]
    app = make_app(warehouse)
    for name, password, _role, _center in users:
        assert login(TestClient(app), name, password).status_code == 303
    again = seed_demo_users(warehouse)
    assert login(TestClient(app), "admin", users[0][1]).status_code == 401  # old password replaced
    assert login(TestClient(app), "admin", again[0][1]).status_code == 303
