"""Authorization matrix: every route x every role (and no session), with own/other/unknown centers.

The routes come from :func:`route_registry`, i.e. from the guards actually attached, so a new route is
covered automatically and a route without a guard fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    NORTH,
    SOUTH,
    USERS,
    VISIT_DAY,
    add_hospital_events,
    add_measure_series,
    add_udsplus_package,
    add_users,
    build_warehouse,
    login,
    make_app,
    mrn,
    patient_id,
)
from chc_equity.udsplus.store import find_package, root_for
from chc_equity.web import uds
from chc_equity.web.roles import Role
from chc_equity.web.security import CSRF_HEADER, RouteRule, route_registry

ROLES: list[str | None] = [None, *USERS]  # None: no session
OTHER = {NORTH: SOUTH, SOUTH: NORTH}
UNKNOWN_CENTER = "ctr-nowhere"


# Per center: the ids of one assessment, one project and one PDSA cycle (seeded below), so every
# improvement route with a record id has a record of the center asked for.
RECORD_IDS: dict[str, dict[str, int]] = {}


def _seed_improvement(app) -> None:
    """One assessment, project (charting the seeded CMS122 series) and PDSA cycle per center."""
    from chc_equity.appdb import improvement as records

    with app.state.db.write() as s:
        for center in (NORTH, SOUTH):
            responses = [records.ResponseIn("strategy.plan", "Rater A", 2)]
            a = records.create_assessment(
                s, center, records.AssessmentFields(VISIT_DAY, responses, f"{center} note"), "admin"
            )
            link = records.MeasureLink("outcome", "CMS122")
            aim = "Fewer HbA1c > 9 %"
            fields = records.ProjectFields(f"{center} project", aim, [link], series_kind="month")
            p = records.create_project(s, center, fields, "admin")
            c = records.add_cycle(s, p, records.CycleFields(f"{center} idea", VISIT_DAY), "admin")
            s.flush()
            RECORD_IDS[center] = {"assessment_id": a.id, "project_id": p.id, "cycle_id": c.id}
    RECORD_IDS[UNKNOWN_CENTER] = RECORD_IDS[NORTH]


# The submission id of the UDS+ package seeded beside the warehouse (the admin's zip route gets a real one).
UDSPLUS: dict[str, str] = {}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("web") / "wh.duckdb")
    add_measure_series(warehouse)
    add_users(warehouse)
    UDSPLUS["submission_id"] = add_udsplus_package(warehouse)
    app = make_app(warehouse)
    _seed_improvement(app)
    add_hospital_events(app)  # transitions, review queue: real rows for the leak checks
    return app


@pytest.fixture(scope="module")
def clients(app) -> dict[str | None, tuple[TestClient, str]]:
    """One signed-in client per user (and an anonymous one), with the session's CSRF token."""
    out: dict[str | None, tuple[TestClient, str]] = {None: (TestClient(app), "")}
    for name in USERS:
        client = TestClient(app)
        assert login(client, name).status_code == 303
        out[name] = (client, client.get("/api/me").json()["csrf_token"])
    return out


def _leak_markers(center: str) -> list[str]:
    """Strings that only appear in data of ``center`` (its id, its patients' ids, its files)."""
    return [center, patient_id(center, 0), f"/data/{center}/", mrn(center, 0)]


def _targets(rule: RouteRule, user_center: str | None) -> list[tuple[str, str | None]]:
    """(url, center asked for) pairs to try for a rule: own, other and unknown centers where relevant."""
    path = rule.path.replace("{username}", "nobody-here").replace("{measure}", "CMS130")
    path = path.replace("{record_id}", "1").replace("{submission_id}", UDSPLUS["submission_id"])
    path = path.replace("{topic}", "funnel-plot")
    centers = [NORTH, SOUTH, UNKNOWN_CENTER] if user_center is None else [user_center, OTHER[user_center]]
    centers.append(UNKNOWN_CENTER) if user_center else None
    if "{center}" in path:
        return [(_record_ids(path.replace("{center}", c), c), c) for c in centers]
    if rule.access and rule.access.center_scoped:  # optional ?center=
        return [(path, None)] + [(f"{path}?center={c}", c) for c in centers]
    return [(path, None)]


def _record_ids(path: str, center: str) -> str:
    """Improvement record ids of ``center`` (its own records: another center's id is a 404)."""
    for name, value in RECORD_IDS.get(center, {}).items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _request(client: TestClient, rule: RouteRule, url: str, csrf: str):
    headers = {CSRF_HEADER: csrf} if csrf else {}
    if rule.method == "GET":
        return client.get(url, headers=headers, follow_redirects=False)
    if rule.is_api:  # invalid bodies (422) except previsit's, so nothing changes state
        body = {"date": VISIT_DAY.isoformat()} if url.endswith("/previsit") else {"field": "race"}
        return client.request(rule.method, url, json=body, headers=headers, follow_redirects=False)
    # Page forms: invalid on purpose (short password / unknown role) so nothing changes state.
    form = {"csrf_token": csrf, "field": "race", "username": "x", "password": "short", "role": "viewer"}
    form["day"] = VISIT_DAY.isoformat()
    return client.post(url, data=form, follow_redirects=False)


def test_every_route_has_a_guard(app) -> None:
    rules = route_registry(app)
    assert len(rules) >= 15
    unguarded = [f"{r.method} {r.path}" for r in rules if r.access is None]
    assert unguarded == []
    for r in rules:
        if r.method != "GET" and r.path != "/login":
            assert r.access.csrf, f"{r.method} {r.path} changes state without CSRF protection"
        if r.access.patient_level:
            assert Role.VIEWER not in r.access.roles


def test_pull_status_page_is_in_the_matrix_for_admin_and_analyst(app) -> None:
    """The data-feeds page (chc-equity pull status) is one of the matrix's routes, for these two roles."""
    (rule,) = [r for r in route_registry(app) if r.path == "/admin/pulls"]
    assert rule.method == "GET"
    assert rule.access.roles == {Role.NETWORK_ADMIN, Role.NETWORK_ANALYST}


def test_udsplus_zip_is_in_the_matrix_for_network_admins_only(app) -> None:
    """The UDS+ package download is one of the matrix's routes (seeded with a real package), admin only."""
    (rule,) = [r for r in route_registry(app) if r.path == "/uds/udsplus/{submission_id}.zip"]
    assert rule.method == "GET" and rule.access.roles == {Role.NETWORK_ADMIN}
    seeded = find_package(root_for(app.state.config.warehouse), UDSPLUS["submission_id"])
    assert seeded is not None and seeded.violations == 0 and seeded.files > 0


def test_authorization_matrix(app, clients) -> None:
    rules = [r for r in route_registry(app) if r.path != "/logout"]  # logout ends the session: own test
    checked = 0
    for rule in rules:
        for name in ROLES:
            client, csrf = clients[name]
            role, user_center = USERS[name] if name else (None, None)
            for url, center in _targets(rule, user_center):
                response = _request(client, rule, url, csrf)
                where = f"{rule.method} {url} as {name}"
                status = response.status_code
                assert status < 500, where
                checked += 1
                if rule.access.roles is None:  # public (POST /login answers 403 without its form token)
                    assert status != 401, where
                    continue
                if name is None:
                    if rule.is_api:
                        assert status == 401, where
                    else:
                        assert status == 303 and response.headers["location"] == "/login", where
                    continue
                if role not in rule.access.roles:
                    assert status == 403, where
                    continue
                if user_center is not None and center is not None and center != user_center:
                    assert status == 403, where  # the same answer whether or not the center exists
                    continue
                assert status != 403 and status != 401, where
                if rule.path == "/uds/tables.xlsx":  # the seed has no flat tables UDS needs: 409
                    assert status == (409 if uds.status_of_writer() else 404), where
                elif (
                    rule.method == "GET" and center in (None, NORTH, SOUTH) and user_center in (None, center)
                ):
                    assert status == 200, where
                if user_center is not None:
                    for marker in _leak_markers(OTHER[user_center]):
                        assert marker not in response.text, f"{where} leaks {marker!r}"
    # 8 users (chw and program_manager included) + anonymous over every route and center variant.
    print(f"authorization matrix: {len(rules)} route rules, {checked} requests")
    assert checked > 300


def test_all_api_routes_but_health_need_a_session(app) -> None:
    anon = TestClient(app)
    for rule in route_registry(app):
        if not rule.is_api:
            continue
        url = re.sub(r"\{[^}]+\}", NORTH, rule.path.replace("{measure}", "CMS130"))
        response = anon.request(rule.method, url, json={"field": "race"})
        expected = 200 if rule.path == "/api/health" else 401
        assert response.status_code == expected, f"{rule.method} {rule.path}"
    assert anon.get("/api/openapi.json").status_code == 401
    assert anon.get("/api/no-such-route").status_code in (401, 404)


def test_center_staff_see_only_their_center(clients) -> None:
    client, _ = clients["staff-north"]
    assert [c["center"] for c in client.get("/api/centers").json()] == [NORTH]
    quality = client.get("/api/data-quality").json()
    assert quality["center"] == NORTH
    assert {r["center"] for r in quality["rejects"]} == {NORTH}
    assert {r["center"] for r in quality["demographics"]["rates"]} == {NORTH}
    assert {x["center"] for x in quality["loads"]} == {NORTH}
    page = client.get("/").text
    assert NORTH in page and SOUTH not in page
    analyst, _ = clients["analyst"]
    assert {c["center"] for c in analyst.get("/api/centers").json()} == {NORTH, SOUTH}


def test_patient_lists_only_for_own_center_and_never_for_viewers(clients) -> None:
    url = f"/api/centers/{NORTH}/data-quality/missing-demographics"
    staff, csrf = clients["staff-north"]
    body = staff.post(url, json={"field": "race"}, headers={CSRF_HEADER: csrf}).json()
    assert body["patient_ids"] == [patient_id(NORTH, i) for i in range(5)]
    other, other_csrf = clients["staff-south"]
    denied = other.post(url, json={"field": "race"}, headers={CSRF_HEADER: other_csrf})
    assert denied.status_code == 403 and NORTH not in denied.text
    for viewer in ("viewer", "viewer-north"):
        client, token = clients[viewer]
        assert client.post(url, json={"field": "race"}, headers={CSRF_HEADER: token}).status_code == 403
        page = client.get(f"/centers/{NORTH}").text
        assert "List patients" not in page and patient_id(NORTH, 0) not in page


def test_logout_ends_the_session(app, tmp_path: Path) -> None:
    client = TestClient(app)
    assert login(client, "analyst").status_code == 303
    csrf = client.get("/api/me").json()["csrf_token"]
    assert client.post("/logout", follow_redirects=False).status_code == 403  # no CSRF token
    response = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/api/me").status_code == 401


def test_improvement_records_center_staff_write_own_viewers_see_scores_only(clients) -> None:
    """Issue 15: a center's staff edit only their own center's assessments, projects and cycles;
    viewers read scores and charts, never raters, notes or PDSA text, and write nothing."""
    ids = RECORD_IDS[NORTH]
    page = f"/centers/{NORTH}/assessments/{ids['assessment_id']}"
    rating = {"assessed_on": VISIT_DAY.isoformat(), "rater": "Rater B", "level:strategy.plan": "4"}
    south, south_csrf = clients["staff-south"]
    assert south.post(page, data={"csrf_token": south_csrf, "version": "1", **rating}).status_code == 403
    cycle = f"/centers/{NORTH}/projects/{ids['project_id']}/cycles"
    idea = {"change_idea": "x", "started_on": VISIT_DAY.isoformat()}
    assert south.post(cycle, data={"csrf_token": south_csrf, **idea}).status_code == 403
    for name in ("viewer", "viewer-north"):
        viewer, csrf = clients[name]
        text = viewer.get(page).text
        assert "Rater A" not in text and f"{NORTH} note" not in text and 'id="overall">2.00' in text
        assert viewer.post(page, data={"csrf_token": csrf, "version": "1", **rating}).status_code == 403
        assert viewer.post(cycle, data={"csrf_token": csrf, **idea}).status_code == 403
    analyst, _ = clients["analyst"]
    assert "Rater A" in analyst.get(page).text
    staff, csrf = clients["staff-north"]
    version = re.search(r'name="version" value="(\d+)"', staff.get(page).text).group(1)
    saved = staff.post(page, data={"csrf_token": csrf, "version": version, **rating}, follow_redirects=False)
    assert saved.status_code == 303
    assert "Rater B" in staff.get(page).text and 'id="overall">3.00' in staff.get(page).text
