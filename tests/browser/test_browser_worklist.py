"""Real-browser test of the CHW worklist (issue 13): a CHW signs in, filters the worklist to Spanish
speakers with diabetes (CMS122) gaps, records a reached phone call from a row, and after a reload the
row shows that last outreach with its date. Debian's Chromium, a live uvicorn server, the webseed
warehouse (NORTH's patients 0-3 are Spanish speakers with a CMS122 gap)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
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
    path: Path = build_warehouse(tmp_path_factory.mktemp("browser-worklist") / "wh.duckdb")
    add_users(path)
    with live_server(make_app(path)) as url:
        yield url


def test_chw_filters_records_a_call_and_sees_it_after_reload(browser, base_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, "chw-north")
    page.click("header nav a:text('Worklist')")
    page.wait_for_url(f"{base_url}/centers/{NORTH}/worklist")
    assert int(page.inner_text("#matched")) == 12

    page.select_option("#filters select[name=language]", "es")
    page.select_option("#filters select[name=measure]", "CMS122")
    page.click("#filters button[type=submit]")
    page.wait_for_url(lambda url: "language=es" in url and "measure=CMS122" in url)
    filtered = page.url
    rows = page.locator("#worklist tbody tr")
    assert rows.count() == 4 == int(page.inner_text("#matched"))
    assert sorted(page.locator("#worklist td.mrn").all_inner_texts()) == [mrn(NORTH, i) for i in range(4)]
    page.screenshot(path=str(ARTIFACTS / "worklist-filtered.png"), full_page=True)

    target = mrn(NORTH, 2)
    row = page.locator(f"#worklist tbody tr:has(td.mrn:text-is('{target}'))")
    assert row.locator("td.last-outreach").inner_text().strip() == ""
    row.locator("button.record").click()
    page.wait_for_selector("#record")
    page.select_option("#record select[name=channel]", "phone")
    page.select_option("#record select[name=outcome]", "reached")
    page.fill("#record input[name=minutes]", "12")
    page.click("#record button[type=submit]")
    page.wait_for_selector("text=Outreach recorded.")

    page.goto(filtered)
    page.reload()
    row = page.locator(f"#worklist tbody tr:has(td.mrn:text-is('{target}'))")
    assert row.locator("td.last-outreach").inner_text().strip() == f"{date.today().isoformat()} reached"
    others = page.locator(f"#worklist tbody tr:not(:has(td.mrn:text-is('{target}'))) td.last-outreach")
    assert [t.strip() for t in others.all_inner_texts()] == ["", "", ""]
    page.screenshot(path=str(ARTIFACTS / "worklist-after-call.png"), full_page=True)
    assert errors == [], errors  # no JS errors, no CSP violations
    page.close()
