"""Real browser: the Child health page and its pediatric care-gap list (issue 22, must-show).

One live server over :mod:`browser.webseed`'s hand-written ``child_*`` tables. Center staff follow the
nav link to Child health, then the list link, and see the guardian's name and phone with the child's and
the family's language; a viewer sees the aggregates without any list link, and the list itself is
refused to viewers and to another center's staff.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import NORTH, add_users, build_warehouse, live_server, make_app, mrn

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = build_warehouse(tmp_path_factory.mktemp("browser-child") / "wh.duckdb")
    add_users(path)
    with live_server(make_app(path)) as url:
        yield url


def test_staff_follow_the_page_to_the_gap_list_with_guardian_contact(browser, base_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, "staff-north")
    page.click("nav >> text=Child health")
    page.wait_for_url(f"{base_url}/children")
    text = page.inner_text("main")
    assert "CMS155" in text and "21 / 30" in text and "behavioral health" in text
    page.screenshot(path=str(ARTIFACTS / "child-health-staff-north.png"), full_page=True)
    page.click("#child-gaps-link")
    page.wait_for_url(f"{base_url}/centers/{NORTH}/children/lists?list=gaps")
    table = page.inner_text("#child-list")
    assert "Guardian-North, Ana" in table and "(617) 555-0700" in table and mrn(NORTH, 0) in table
    assert "Spanish" in page.inner_text("#child-list tbody tr:first-child .col-family_language")
    page.screenshot(path=str(ARTIFACTS / "child-gaps-staff-north.png"), full_page=True)
    assert errors == [], errors
    page.close()


@pytest.mark.parametrize("username", ["viewer", "staff-south"])
def test_no_guardian_contact_for_viewers_or_other_centers(browser, base_url: str, username: str) -> None:
    page, errors = sign_in(browser, base_url, username)
    page.goto(f"{base_url}/children")
    text = page.inner_text("main")
    assert "Guardian-North" not in text and "555-0700" not in text
    links = page.locator("#child-gaps-link")
    if username == "viewer":
        assert links.count() == 0  # no patient-level list at all
    else:  # their own center's list only
        assert NORTH not in (links.get_attribute("href") or "")
    response = page.goto(f"{base_url}/centers/{NORTH}/children/lists?list=gaps")
    assert response is not None and response.status == 403
    assert "555-0700" not in page.content()
    page.screenshot(path=str(ARTIFACTS / f"child-gaps-{username}.png"), full_page=True)
    page.close()
