"""Real browser: the Social needs page for each role (issue 14, must-show).

One page load per role on one live server over :mod:`browser.webseed`'s hand-written ``sdoh_metrics`` /
``sdoh_equity`` (north: 5 of 25 food-positive, 4 of 9 referrals closed; south: 12 of 14 closed). A viewer
sees suppressed aggregates only (no count from 1 to 10, no patient rows), center staff their center, an
analyst or admin the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import NORTH, SOUTH, add_users, build_warehouse, live_server, make_app

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)
SMALL = re.compile(r"(?<![\d.])([1-9]|10) / \d")  # a shown numerator from 1 to 10


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = build_warehouse(tmp_path_factory.mktemp("browser-sdoh") / "wh.duckdb")
    add_users(path)
    with live_server(make_app(path)) as url:
        yield url


def _social_needs(browser, base_url: str, username: str) -> str:
    """Sign in, follow the nav link to Social needs, screenshot; returns the main text."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, username)
    page.click("nav >> text=Social needs")
    page.wait_for_url(f"{base_url}/social-needs")
    text = page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / f"social-needs-{username}.png"), full_page=True)
    assert errors == [], errors  # no JS errors, no CSP violations
    page.close()
    return text


def test_viewer_sees_suppressed_aggregates_only(browser, base_url: str) -> None:
    text = _social_needs(browser, base_url, "viewer")
    assert NORTH in text and SOUTH in text
    # stored suppressed (the reason is not kept): labelled "either", with the legend that says so
    assert "supp.‡" in text and "Hidden numbers:" in text and "hidden so that another cell" in text
    assert not SMALL.search(text), SMALL.search(text)
    assert "Portuguese" not in text  # a suppressed equity cell is never listed
    assert "MRN-" not in text and "Family0" not in text  # no patient rows


def test_center_staff_sees_their_center(browser, base_url: str) -> None:
    text = _social_needs(browser, base_url, "staff-north")
    assert NORTH in text and SOUTH not in text
    assert "5 / 25" in text and "4 / 9" in text  # staff see small counts of their own center
    assert "Spanish" in text  # the flagged equity stratum


@pytest.mark.parametrize("username", ["analyst", "admin"])
def test_network_roles_see_every_center(browser, base_url: str, username: str) -> None:
    text = _social_needs(browser, base_url, username)
    assert NORTH in text and SOUTH in text
    assert "4 / 9" in text and "12 / 14" in text
    assert "Network (all centers)" in text and "16 / 23" in text  # the network funnel row: 4+12 / 9+14
