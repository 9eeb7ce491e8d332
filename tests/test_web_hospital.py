"""Hospital pages (issue 21): the transitions list and the review queue for a center's staff only (never
viewers, never another center), follow-up rates as suppressed aggregates, and a confirmation through
the review form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    HOSPITAL_DAY,
    NORTH,
    PASSWORD,
    PERIOD,
    SOUTH,
    USERS,
    add_hospital_events,
    build_warehouse,
    login,
    mrn,
    patient_id,
)
from chc_equity.web import WebConfig, create_app
from chc_equity.web.authstore import AuthStore

END = PERIOD[1]
DAY = HOSPITAL_DAY


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("webhosp")
    warehouse = build_warehouse(folder / "wh.duckdb")
    app = create_app(WebConfig(warehouse=warehouse, database=folder / "app.sqlite"))
    store = AuthStore(app.state.db)
    for name in ("admin", "staff-north", "staff-south", "viewer", "viewer-north", "chw-north"):
        if name in USERS:
            store.add_user(name, PASSWORD, *USERS[name])
    add_hospital_events(app)
    yield app
    app.state.db.dispose()


def _client(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def test_staff_see_their_discharges_with_windows(app) -> None:
    staff = _client(app, "staff-north")
    page = staff.get(f"/centers/{NORTH}/hospital", params={"as_of": str(END)})
    assert page.status_code == 200
    for i in range(15):
        assert mrn(NORTH, i) in page.text
    assert mrn(SOUTH, 0) not in page.text and patient_id(SOUTH, 0) not in page.text
    # discharged Sat Dec 26 2026: contact due Tue Dec 29 (2nd business day), visits by Jan 2 / Jan 9
    assert str(DAY) == "2026-12-26" and "2026-12-29" in page.text
    assert staff.get(f"/centers/{SOUTH}/hospital").status_code == 403


@pytest.mark.parametrize("name", ["viewer", "viewer-north"])
def test_viewers_get_no_patient_pages_but_suppressed_rates(app, name: str) -> None:
    viewer = _client(app, name)
    assert viewer.get(f"/centers/{NORTH}/hospital").status_code == 403
    assert viewer.get(f"/centers/{NORTH}/hospital/review").status_code == 403
    rates = viewer.get(f"/centers/{NORTH}/hospital/rates", params={"as_of": str(END + timedelta(days=30))})
    assert rates.status_code == 200 and mrn(NORTH, 0) not in rates.text
    # 15 discharges at MERCY (patient 20 awaits review), no outreach: contact 0 of 15, published (zero is
    # not a small cell, 15 not met). Visits (webseed: patient i on END - i days, discharge on END - 5):
    # patients 0-4 on days 1-5, so 5 of 15 within 7 and within 14 days: 5 and 10 are small, suppressed.
    row = re.search(r"<td>MERCY</td>(.*?)</tr>", rates.text, re.S).group(1)
    contact, visit7, visit14 = (c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S))
    assert "0 %" in contact and "0/15" in contact
    assert visit7 == visit14 == "—"


def test_review_queue_and_confirmation(app) -> None:
    staff = _client(app, "staff-north")
    page = staff.get(f"/centers/{NORTH}/hospital/review")
    assert (
        page.status_code == 200
        and "Family020, Test" in page.text
        and "same name, birth date one edit away" in page.text
    )
    assert mrn(SOUTH, 20) not in page.text
    review_id, version = re.search(
        r'/hospital/review/(\d+)".*?name="version" value="(\d+)"', page.text, re.S
    ).groups()
    csrf = staff.get("/api/me").json()["csrf_token"]
    other = _client(app, "staff-south")
    other_csrf = other.get("/api/me").json()["csrf_token"]
    denied = other.post(
        f"/centers/{NORTH}/hospital/review/{review_id}",
        data={"csrf_token": other_csrf, "decision": "confirm", "version": version},
    )
    assert denied.status_code == 403
    no_csrf = staff.post(
        f"/centers/{NORTH}/hospital/review/{review_id}", data={"decision": "confirm", "version": version}
    )
    assert no_csrf.status_code == 403
    done = staff.post(
        f"/centers/{NORTH}/hospital/review/{review_id}",
        data={"csrf_token": csrf, "decision": "confirm", "version": version},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Nothing to review" in staff.get(f"/centers/{NORTH}/hospital/review").text
    assert mrn(NORTH, 20) in staff.get(f"/centers/{NORTH}/hospital", params={"as_of": str(END)}).text
    again = staff.post(
        f"/centers/{NORTH}/hospital/review/{review_id}",
        data={"csrf_token": csrf, "decision": "reject", "version": version},
    )
    assert again.status_code == 409
