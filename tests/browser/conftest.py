"""The real browser for tests/browser: Debian's Chromium driven by Playwright (never a downloaded one).

Tests using :func:`browser` skip with the reason when /usr/bin/chromium or the playwright package is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser.webseed import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("PYTEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
)
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


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python package) not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser, base_url: str, username: str, password: str = PASSWORD):
    """A new page signed in through the login form; returns it and the list collecting its JS errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base_url}/data-quality")
    assert page.url.endswith("/login")  # not signed in: redirected
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return page, errors
