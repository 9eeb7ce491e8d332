"""Real-browser test: Debian's Chromium driven by Playwright against a live uvicorn server.

Never downloads a browser (no `playwright install`): it uses /usr/bin/chromium and skips with the reason
when that is absent. Screenshots go to out/test-artifacts/ for review.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.webseed import (
    NORTH,
    PASSWORD,
    RAW_SENTINEL,
    SOUTH,
    add_users,
    build_warehouse,
    live_server,
    make_app,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    warehouse = build_warehouse(tmp_path_factory.mktemp("browser") / "wh.duckdb")
    add_users(warehouse)
    with live_server(make_app(warehouse)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _sign_in(browser, base_url: str, username: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base_url}/data-quality")
    assert page.url.endswith("/login")  # not signed in: redirected
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return page, errors


def test_analyst_sees_overview_and_data_quality(browser, base_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _sign_in(browser, base_url, "analyst")
    assert "No measure results yet" in page.inner_text("main")
    assert page.locator("#centers tbody tr").count() == 2
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    page.click("text=Data quality")
    page.wait_for_url(f"{base_url}/data-quality")
    assert page.locator("#rejects tbody tr").count() == 3
    assert page.locator("#demographics tbody tr").count() == 10  # 2 centers x 5 fields
    assert RAW_SENTINEL not in page.content()
    page.screenshot(path=str(ARTIFACTS / "data-quality.png"), full_page=True)

    page.click("text=Overview")
    page.click(f"#centers a:text('{NORTH}')")
    page.wait_for_url(f"{base_url}/centers/{NORTH}")
    page.select_option("select[name=field]", "race")
    page.click("text=List patients")
    assert page.locator("#missing-ids li").count() == 5
    page.screenshot(path=str(ARTIFACTS / "center.png"), full_page=True)

    page.click("text=Sign out")
    page.wait_for_url(f"{base_url}/login")
    assert errors == [], errors  # no JS errors, no CSP violations
    page.close()


def test_center_staff_cannot_open_another_center(browser, base_url: str) -> None:
    page, _ = _sign_in(browser, base_url, "staff-north")
    assert SOUTH not in page.inner_text("main")
    response = page.goto(f"{base_url}/centers/{SOUTH}")
    assert response is not None and response.status == 403
    page.close()
