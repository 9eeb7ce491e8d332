"""Real-browser tests of the equity pages (issue 17): a center's own equity, the largest inequities,
the help pages and a viewer's suppressed cells with their legend. Screenshots go to ARTIFACTS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import (
    NORTH,
    SOUTH,
    add_equity_strata,
    add_users,
    build_warehouse,
    live_server,
    make_app,
)
from chc_equity.web.routes_equity import HELP_TOPICS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    warehouse: Path = build_warehouse(tmp_path_factory.mktemp("equity") / "wh.duckdb")
    add_equity_strata(warehouse)
    add_users(warehouse)
    with live_server(make_app(warehouse)) as url:
        yield url


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _charts_drawn(page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart[data-spec]')]"
        ".every(c => c.classList.contains('rendered'))"
    )


def test_center_staff_see_their_own_center_equity(browser, base_url: str) -> None:
    page, errors = sign_in(browser, base_url, "staff-north")
    page.click(f"text=Equity at {NORTH}")
    page.wait_for_url(f"{base_url}/centers/{NORTH}/equity")
    _charts_drawn(page)
    # CMS122 at NORTH, hand-set: Black non-Hispanic 50/150 = 33.3 % vs Hispanic 60/300 = 20 % (inverse);
    # gap = ceil(50 - 0.2 * 150) = 20 patients would have to leave the numerator.
    sentence = page.inner_text("#equity-sentence-1")
    assert sentence.startswith(f"Black non-Hispanic patients at {NORTH} are 13 points more likely")
    assert "lower is better" in sentence and "20 fewer patients" in sentence
    assert "than Hispanic patients" in sentence
    assert "reference group" in page.inner_text("#equity tbody")
    assert page.locator("#forest-1-chart svg").count() == 1
    assert page.locator("#forest-1-chart").get_attribute("aria-label") == sentence
    _shot(page, "center-equity")

    page.select_option("#reference-form select", "White non-Hispanic")  # data-autosubmit
    page.wait_for_url("**reference=White+non-Hispanic**")
    rows = page.locator("#equity tbody tr")
    white = rows.filter(has=page.locator("th", has_text="White non-Hispanic"))
    assert "reference group" in white.inner_text()
    assert (
        "reference group"
        not in rows.filter(has=page.locator("th", has_text="Hispanic").first).first.inner_text()
    )
    _shot(page, "center-equity-reference")

    page.click(f"text=Largest inequities at {NORTH}")
    page.wait_for_url(f"{base_url}/centers/{NORTH}/inequities")
    ranked = page.locator("#inequities tbody tr")
    # CMS130 gap ceil(0.6 * 150 - 60) = 30 ranks above CMS122's 20 (both Black non-Hispanic at NORTH)
    assert ranked.count() == 2 and "CMS130" in ranked.first.inner_text()
    assert all("Black non-Hispanic" in ranked.nth(i).inner_text() for i in range(2))
    _shot(page, "center-inequities")
    ranked.filter(has_text="CMS122").locator("a.gaps-link").click()
    page.wait_for_url("**/gaps?**stratum=Black**")
    assert page.inner_text("#gap-count") == "2"  # NORTH patients 0 and 2: Black non-Hispanic with a gap
    _shot(page, "center-inequity-gaps")

    assert errors == [], errors
    response = page.goto(f"{base_url}/centers/{SOUTH}/equity")
    assert response is not None and response.status == 403
    page.close()


def test_network_largest_inequities_link_to_the_measure_page(browser, base_url: str) -> None:
    page, errors = sign_in(browser, base_url, "analyst")
    page.click("nav >> text=Inequities")
    page.wait_for_url(f"{base_url}/inequities")
    rows = page.locator("#inequities tbody tr")
    # Ranked by gap: CMS130 Black non-Hispanic 60 (= 0.6 * 300 - 120), CMS122 30, CMS122 Spanish 24.
    assert rows.count() == 3
    gaps = [rows.nth(i).locator("td").nth(8).inner_text().split()[0] for i in range(3)]
    assert gaps == ["60", "30", "24"]
    _shot(page, "network-inequities")
    rows.first.locator("td").nth(1).locator("a").click()
    page.wait_for_url(f"{base_url}/measures/CMS130#equity-heading")
    _charts_drawn(page)
    assert "higher is better" in page.inner_text("#equity-sentence-1 ~ p.hint") or "higher is better" in (
        page.inner_text("main")
    )
    assert errors == [], errors
    page.close()


def test_help_pages(browser, base_url: str) -> None:
    page, errors = sign_in(browser, base_url, "viewer")
    page.goto(f"{base_url}/measures/CMS122")
    page.locator("a.help-link[href='/help/q-value']").first.click()
    page.wait_for_url(f"{base_url}/help/q-value")
    assert "Benjamini-Hochberg" in page.inner_text("main")
    for slug, title in HELP_TOPICS.items():
        page.goto(f"{base_url}/help/{slug}")
        assert page.inner_text("h1") == title
        assert len(page.inner_text("article")) > 300, slug
        _shot(page, f"help-{slug}")
    page.goto(f"{base_url}/help")
    _shot(page, "help")
    assert errors == [], errors
    page.close()


def test_viewer_sees_suppressed_cells_with_their_legend(browser, base_url: str) -> None:
    page, errors = sign_in(browser, base_url, "viewer")
    page.goto(f"{base_url}/measures/CMS122")
    _charts_drawn(page)
    legend = page.locator(".suppression-legend").first
    assert legend.is_visible()
    assert "suppressed (small number" in legend.inner_text()
    assert "hidden so that another cell cannot be recovered" in legend.inner_text()
    hidden = page.locator("#equity tbody .suppressed")
    assert hidden.count() >= 1  # Asian non-Hispanic: 4 of 30
    asian = page.locator("#equity tbody tr").filter(has=page.locator("th", has_text="Asian non-Hispanic"))
    assert asian.locator(".suppressed").count() >= 1
    _shot(page, "viewer-suppressed-measure")
    page.goto(f"{base_url}/centers/{NORTH}")
    assert page.locator(".suppression-legend").first.is_visible()
    # 5 of 40 with an unknown race: a small number, labelled as such (not "hidden to protect")
    race = page.locator("#demographics tbody tr", has_text="race").first
    assert race.locator(".suppressed.small").count() == 1
    _shot(page, "viewer-suppressed-center")
    assert errors == [], errors
    response = page.goto(f"{base_url}/centers/{NORTH}/equity")
    assert response is not None and response.status == 403  # a center's own strata: not for viewers
    page.close()
