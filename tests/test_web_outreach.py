"""CHW program through the web app: a program manager adds CHWs and assigns patients, a CHW records and
edits outreach (idempotent creates, history kept), and the "panel only" setting limits a CHW to their
own patients on every route: 0 cross-center and 0 cross-panel patient rows."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    NORTH,
    PATIENTS,
    SOUTH,
    USERS,
    add_users,
    build_warehouse,
    login,
    make_app,
    mrn,
    patient_id,
)
from chc_equity.web.security import CSRF_HEADER, route_registry

PANEL = [patient_id(NORTH, i) for i in range(4)]  # chw-north's patients
OTHERS = [patient_id(NORTH, i) for i in range(4, 8)]  # another CHW's
UNASSIGNED = [patient_id(NORTH, i) for i in range(8, PATIENTS[NORTH][0])]
SOUTH_IDS = [patient_id(SOUTH, i) for i in range(PATIENTS[SOUTH][0])]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("outreach") / "wh.duckdb")
    add_users(warehouse)
    return make_app(warehouse)


def _client(app, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client, {CSRF_HEADER: client.get("/api/me").json()["csrf_token"]}


@pytest.fixture(scope="module")
def program(app) -> dict[str, str]:
    """PM-north sets up two CHWs (one linked to chw-north) and their panels; returns the CHW ids."""
    pm, h = _client(app, "pm-north")
    rosa = pm.post(
        f"/api/centers/{NORTH}/chws", json={"display_name": "Rosa", "username": "CHW-North"}, headers=h
    )
    assert rosa.status_code == 201, rosa.text
    luis = pm.post(f"/api/centers/{NORTH}/chws", json={"display_name": "Luis"}, headers=h)
    ids = {"rosa": rosa.json()["id"], "luis": luis.json()["id"]}
    for chw, patients in (("rosa", PANEL), ("luis", OTHERS)):
        done = pm.post(
            f"/api/centers/{NORTH}/assignments", json={"chw_id": ids[chw], "patient_ids": patients}, headers=h
        )
        assert done.json() == {"assigned": len(patients)}
    return ids


def _outreach(pid: str, **extra) -> dict:
    return {
        "patient_id": pid,
        "contact_date": "2026-03-02",
        "channel": "phone",
        "outcome": "reached",
        "minutes": 10,
        **extra,
    }


def test_program_manager_adds_chws_and_assigns(app, program) -> None:
    pm, h = _client(app, "pm-north")
    listing = pm.get(f"/api/centers/{NORTH}/chws").json()
    assert {(c["display_name"], c["username"], c["patients"]) for c in listing["chws"]} == {
        ("Rosa", "chw-north", 4),
        ("Luis", None, 4),
    }
    # Only patients of this center can be assigned, only to this center's CHWs, only by program roles.
    bad = pm.post(
        f"/api/centers/{NORTH}/assignments",
        json={"chw_id": program["luis"], "patient_ids": SOUTH_IDS[:2]},
        headers=h,
    )
    assert bad.status_code == 400 and SOUTH not in bad.text
    assert pm.post(f"/api/centers/{SOUTH}/chws", json={"display_name": "X"}, headers=h).status_code == 403
    staff, hs = _client(app, "staff-north")
    assert staff.post(f"/api/centers/{NORTH}/chws", json={"display_name": "X"}, headers=hs).status_code == 403
    linked = pm.post(
        f"/api/centers/{NORTH}/chws", json={"display_name": "Y", "username": "staff-north"}, headers=h
    )
    assert linked.status_code == 400  # only a chw user of this center can be linked


def test_chw_records_idempotently_and_edits_keep_history(app, program) -> None:
    chw, h = _client(app, "chw-north")
    body = _outreach(PANEL[0], outcome="no_answer", minutes=2)
    first = chw.post(f"/api/centers/{NORTH}/outreach", json=body, headers={**h, "Idempotency-Key": "retry-1"})
    assert first.status_code == 201 and first.json()["chw_id"] == program["rosa"]
    again = chw.post(f"/api/centers/{NORTH}/outreach", json=body, headers={**h, "Idempotency-Key": "retry-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    reused = chw.post(
        f"/api/centers/{NORTH}/outreach",
        json=_outreach(PANEL[1]),
        headers={**h, "Idempotency-Key": "retry-1"},
    )
    assert reused.status_code == 409
    rid = first.json()["id"]
    edit = {k: v for k, v in _outreach(PANEL[0], minutes=15).items() if k != "patient_id"}
    edited = chw.put(f"/api/centers/{NORTH}/outreach/{rid}", json={**edit, "version": 1}, headers=h)
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert (
        chw.put(f"/api/centers/{NORTH}/outreach/{rid}", json={**edit, "version": 1}, headers=h).status_code
        == 409
    )
    history = chw.post(
        f"/api/centers/{NORTH}/outreach/history", json={"patient_id": PANEL[0]}, headers=h
    ).json()
    assert len(history) == 1
    assert [(r["version"], r["outcome"], r["minutes"]) for r in history[0]["revisions"]] == [
        (1, "no_answer", 2),
        (2, "reached", 15),
    ]
    # Other center, unknown patient, future date: refused without creating anything.
    assert (
        chw.post(f"/api/centers/{SOUTH}/outreach", json=_outreach(SOUTH_IDS[0]), headers=h).status_code == 403
    )
    assert (
        chw.post(f"/api/centers/{NORTH}/outreach", json=_outreach(SOUTH_IDS[0]), headers=h).status_code == 404
    )
    future = _outreach(PANEL[0], contact_date=date(2099, 1, 1).isoformat())
    assert chw.post(f"/api/centers/{NORTH}/outreach", json=future, headers=h).status_code == 400
    # Someone else's record: a CHW may not edit it; the center's program manager may.
    pm, hp = _client(app, "pm-north")
    theirs = pm.post(f"/api/centers/{NORTH}/outreach", json=_outreach(PANEL[1]), headers=hp).json()
    assert (
        chw.put(
            f"/api/centers/{NORTH}/outreach/{theirs['id']}", json={**edit, "version": 1}, headers=h
        ).status_code
        == 403
    )
    # A center staff member of the other center cannot reach the record at all.
    south, hs = _client(app, "staff-south")
    assert (
        south.put(f"/api/centers/{NORTH}/outreach/{rid}", json={**edit, "version": 2}, headers=hs).status_code
        == 403
    )
    assert (
        south.put(f"/api/centers/{SOUTH}/outreach/{rid}", json={**edit, "version": 2}, headers=hs).status_code
        == 404
    )


def _patient_ids(text: str) -> set[str]:
    return set(re.findall(r"ctr-(?:north|south)-pt-\d{3}", text))


def test_panel_only_limits_a_chw_to_their_own_patients_on_every_route(app, program) -> None:
    pm, hp = _client(app, "pm-north")
    for pid in PANEL[:2] + OTHERS[:2] + UNASSIGNED[:2]:
        assert pm.post(f"/api/centers/{NORTH}/outreach", json=_outreach(pid), headers=hp).status_code == 201
    chw, h = _client(app, "chw-north")
    everyone = chw.get(f"/api/centers/{NORTH}/outreach").text
    assert set(OTHERS[:2]) <= _patient_ids(everyone)  # panel option off: the whole center
    assert pm.put(f"/api/centers/{NORTH}/settings", json={"panel_only": True}, headers=hp).status_code == 200
    try:
        assert set(chw.get(f"/api/centers/{NORTH}/assignments").json()) == set(PANEL)
        assert _patient_ids(chw.get(f"/api/centers/{NORTH}/outreach").text) <= set(PANEL)
        for pid in OTHERS[:1] + UNASSIGNED[:1]:
            assert (
                chw.post(f"/api/centers/{NORTH}/outreach", json=_outreach(pid), headers=h).status_code == 404
            )
            hist = chw.post(f"/api/centers/{NORTH}/outreach/history", json={"patient_id": pid}, headers=h)
            assert hist.status_code == 404 and pid not in hist.text
        outside = chw.get(f"/api/centers/{NORTH}/outreach")
        assert outside.status_code == 200
        # Every GET route of the app, as this CHW: no patient outside the panel, none of another center.
        checked = 0
        for rule in route_registry(app):
            if rule.method != "GET" or "{username}" in rule.path:
                continue
            url = (
                rule.path.replace("{center}", NORTH)
                .replace("{measure}", "CMS130")
                .replace("{record_id}", "1")
            )
            response = chw.get(url, follow_redirects=False)
            assert response.status_code < 500, url
            leaked = _patient_ids(response.text) - set(PANEL)
            assert not leaked, f"GET {url} shows patients outside the panel: {sorted(leaked)[:3]}"
            checked += 1
        assert checked >= 10
        page = chw.post(
            f"/centers/{NORTH}/outreach/history", data={"csrf_token": h[CSRF_HEADER], "patient_id": OTHERS[0]}
        )
        assert page.status_code == 404 and _patient_ids(page.text) <= set(PANEL)
        # Staff and program managers are not limited by the CHW panel setting.
        assert set(OTHERS[:2]) <= _patient_ids(pm.get(f"/api/centers/{NORTH}/outreach").text)
    finally:
        pm.put(f"/api/centers/{NORTH}/settings", json={"panel_only": False}, headers=hp)


def test_pages_record_and_show_history(app, program) -> None:
    chw, h = _client(app, "chw-north")
    page = chw.get(f"/centers/{NORTH}/outreach")
    assert page.status_code == 200 and 'name="idempotency_key"' in page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    form = {
        "csrf_token": h[CSRF_HEADER],
        "idempotency_key": key,
        **_outreach(PANEL[2], outcome="scheduled_visit"),
    }
    form = {k: str(v) for k, v in form.items()}
    first = chw.post(f"/centers/{NORTH}/outreach", data=form)
    assert first.status_code == 200 and "Outreach recorded." in first.text and "scheduled visit" in first.text
    chw.post(f"/centers/{NORTH}/outreach", data=form)  # a double submit
    history = chw.post(
        f"/api/centers/{NORTH}/outreach/history", json={"patient_id": PANEL[2]}, headers=h
    ).json()
    assert len(history) == 1
    edit = {k: v for k, v in form.items() if k not in ("patient_id", "idempotency_key")}
    edited = chw.post(
        f"/centers/{NORTH}/outreach/{history[0]['id']}/edit", data={**edit, "version": "1", "minutes": "25"}
    )
    assert (
        edited.status_code == 200
        and "Outreach record updated." in edited.text
        and "Earlier versions" in edited.text
    )
    pm, hp = _client(app, "pm-north")
    chws_page = pm.get(f"/centers/{NORTH}/chws")
    assert chws_page.status_code == 200 and "Rosa" in chws_page.text and "Assign patients" in chws_page.text
    assert "Assign patients" not in chw.get(f"/centers/{NORTH}/chws").text
    assert set(USERS) >= {"chw-north", "pm-north"}


# NORTH's worklist (webseed): CMS122 gaps for patients 0-3 (Spanish speakers, PANEL), CMS130 gaps for 30-37.
ON_LIST = PANEL + [patient_id(NORTH, i) for i in range(30, 38)]


def _worklist(client: TestClient, **params) -> dict:
    response = client.get(f"/api/centers/{NORTH}/worklist", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_worklist_joins_assignments_and_last_outreach(app, program) -> None:
    staff, hs = _client(app, "staff-north")
    body = _worklist(staff)
    assert body["visible"] == body["matched"] == len(ON_LIST)
    assert sorted(r["patient_id"] for r in body["rows"]) == sorted(ON_LIST)
    assigned = _worklist(staff, assigned="yes")
    assert {(r["patient_id"], r["assigned_chw"]) for r in assigned["rows"]} == {(p, "Rosa") for p in PANEL}
    assert _worklist(staff, assigned="no")["matched"] == len(ON_LIST) - len(PANEL)
    spanish = _worklist(staff, language="es", measure="CMS122")
    assert sorted(r["mrn"] for r in spanish["rows"]) == [mrn(NORTH, i) for i in range(4)]
    assert all(r["phone"] and r["items"][0]["code"] == "CMS122" for r in spanish["rows"])
    found = _worklist(staff, q=mrn(NORTH, 31).lower())
    assert [r["mrn"] for r in found["rows"]] == [mrn(NORTH, 31)]
    by_name = _worklist(staff, sort="name")
    assert [r["name"] for r in by_name["rows"]] == sorted(r["name"] for r in by_name["rows"])
    assert _worklist(staff, page=2)["rows"] == []  # 12 rows: one page
    for bad in ({"sort": "nope"}, {"priority": "urgent"}, {"assigned": "maybe"}, {"page": 0}):
        assert staff.get(f"/api/centers/{NORTH}/worklist", params=bad).status_code == 422
    # A reached call recorded today is the row's last outreach, on the API, the page and the exports.
    today = date.today().isoformat()
    call = _outreach(PANEL[3], contact_date=today, outcome="reached")
    assert staff.post(f"/api/centers/{NORTH}/outreach", json=call, headers=hs).status_code == 201
    row = next(r for r in _worklist(staff)["rows"] if r["patient_id"] == PANEL[3])
    assert (row["last_outreach"], row["last_outcome"]) == (today, "reached")
    page = staff.get(f"/centers/{NORTH}/worklist", params={"q": mrn(NORTH, 3)})
    assert page.status_code == 200 and f"{today} reached" in page.text and 'id="worklist"' in page.text
    assert f'name="patient_id" value="{PANEL[3]}"' in page.text  # the row's "Record outreach" form
    csv_text = staff.get(f"/centers/{NORTH}/worklist.csv", params={"assigned": "yes"}).text
    lines = csv_text.splitlines()
    assert lines[0].startswith('"priority","band","name","mrn"') and len(lines) == 1 + len(PANEL)
    assert any(today in line and "reached" in line for line in lines)
    assert all(pid not in csv_text for pid in PANEL)  # the internal key is never exported
    xlsx = staff.get(f"/centers/{NORTH}/worklist.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_worklist_panel_rule_and_mine(app, program) -> None:
    chw, _ = _client(app, "chw-north")
    assert _worklist(chw)["visible"] == len(ON_LIST)  # panel option off: the whole center
    mine = _worklist(chw, assigned="mine")
    assert sorted(r["patient_id"] for r in mine["rows"]) == sorted(PANEL)
    pm, hp = _client(app, "pm-north")
    assert pm.put(f"/api/centers/{NORTH}/settings", json={"panel_only": True}, headers=hp).status_code == 200
    try:
        body = _worklist(chw)
        assert body["visible"] == len(PANEL) and {r["patient_id"] for r in body["rows"]} == set(PANEL)
        assert _worklist(chw, assigned="no")["rows"] == []
        for url in ("/worklist", "/worklist.csv", "/worklist.xlsx"):
            response = chw.get(f"/centers/{NORTH}{url}")
            assert response.status_code == 200
            if not url.endswith(".xlsx"):
                assert _patient_ids(response.text) <= set(PANEL)
                assert mrn(NORTH, 30) not in response.text and mrn(NORTH, 0) in response.text
        assert _worklist(pm)["visible"] == len(ON_LIST)  # program managers are not limited
    finally:
        pm.put(f"/api/centers/{NORTH}/settings", json={"panel_only": False}, headers=hp)
    south, _ = _client(app, "staff-south")
    assert south.get(f"/api/centers/{NORTH}/worklist").status_code == 403
    other = south.get(f"/api/centers/{SOUTH}/worklist").json()
    assert other["rows"] and all(r["patient_id"].startswith(SOUTH) for r in other["rows"])
