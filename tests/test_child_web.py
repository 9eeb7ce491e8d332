"""The child-health pages through the real app (TestClient, webseed warehouse): the pediatric view for
every analytics role (suppressed for viewers), its Excel workbook, and the lists with the guardian's
contact only for roles allowed to see that center's patients (issue 22)."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from browser.webseed import NORTH, SOUTH, add_users, build_warehouse, login, make_app, mrn

SMALL = re.compile(r"(?<![\d.])([1-9]|10) / \d")  # a shown numerator from 1 to 10
GAPS = f"/centers/{NORTH}/children/lists?list=gaps"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("child-web") / "wh.duckdb")
    add_users(warehouse)
    return make_app(warehouse)


def _client(app, user: str) -> TestClient:
    c = TestClient(app)
    assert login(c, user).status_code == 303
    return c


def test_staff_see_their_gap_list_with_guardian_contact(app) -> None:
    text = _client(app, "staff-north").get(GAPS).text
    assert "Guardian-North, Ana" in text and "(617) 555-0700" in text and mrn(NORTH, 0) in text
    assert "Spanish" in text  # the family's language
    assert "Guardian-South" not in text and mrn(SOUTH, 0) not in text


@pytest.mark.parametrize("user", ["viewer", "viewer-north", "staff-south", "chw-north"])
def test_guardian_contact_never_for_viewers_other_centers_or_chws(app, user: str) -> None:
    response = _client(app, user).get(GAPS)
    assert response.status_code == 403
    assert "Guardian-North" not in response.text and "555-0700" not in response.text


def test_open_referrals_list(app) -> None:
    text = (
        _client(app, "analyst").get(f"/centers/{NORTH}/children/lists?list=open-referrals&min_days=90").text
    )
    assert mrn(NORTH, 2) in text and "95" in text and "Harbor Youth Counseling" in text
    assert mrn(SOUTH, 1) not in text


def test_viewer_sees_suppressed_aggregates_only(app) -> None:
    c = _client(app, "viewer")
    text = c.get("/children").text
    assert "CMS155" in text and "Guardian" not in text and "children/lists" not in text
    assert "Portuguese" in text and "11 / 40" in text  # a flagged stratum (stored suppressed)
    assert not SMALL.search(text), SMALL.search(text)
    assert '<td class="n">9</td>' not in text  # NORTH's 9 open 30+ days: 1-10 suppressed for viewers
    book = load_workbook(io.BytesIO(c.get("/children/pediatric.xlsx").content))
    assert book.sheetnames == ["Pediatric measures", "Referral loops", "BH follow-up", "Flagged strata"]
    opens = [row[9].value for row in book["Referral loops"].iter_rows(min_row=2)]
    assert all(v is None or v == 0 or v >= 11 for v in opens)


def test_staff_see_their_center_counts(app) -> None:
    text = _client(app, "staff-north").get("/children").text
    assert NORTH in text and SOUTH not in text
    assert "21 / 30" in text and "Spanish" in text  # CMS155 0-17, the flagged referral-closure stratum
    assert "58.3% (7)" in text  # 7 of 12 followed up within 7 days
