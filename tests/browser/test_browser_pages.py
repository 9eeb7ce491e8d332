"""Real-browser test: Debian's Chromium driven by Playwright against a live uvicorn server.

Never downloads a browser (no `playwright install`): it uses /usr/bin/chromium and skips with the reason
when that is absent. Screenshots (and the downloaded care-gap CSV) go to $PYTEST_ARTIFACTS, default
out/test-artifacts/ (gitignored), for review.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import (
    NORTH,
    RAW_SENTINEL,
    SOUTH,
    add_users,
    build_warehouse,
    live_server,
    make_app,
    measure_name,
)
from chc_equity.web.gaps import CSV_COLUMNS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_warehouse(tmp_path_factory.mktemp("browser") / "wh.duckdb")
    add_users(path)
    return path


@pytest.fixture(scope="module")
def base_url(warehouse: Path) -> Iterator[str]:
    with live_server(make_app(warehouse)) as url:
        yield url


def test_analyst_sees_overview_and_data_quality(browser, base_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, "analyst")
    assert page.locator("#heatmap tbody tr[data-center]").count() == 2  # centers as rows
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
    page, _ = sign_in(browser, base_url, "staff-north")
    assert SOUTH not in page.inner_text("main")
    response = page.goto(f"{base_url}/centers/{SOUTH}")
    assert response is not None and response.status == 403
    page.close()


def test_overview_measure_and_care_gap_csv(browser, base_url: str, warehouse: Path) -> None:
    """Log in, overview heat map, drill into a measure (funnel plot), export the care-gap CSV."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, "analyst")
    assert page.locator("#heatmap td.worse").count() == 2  # SOUTH on both measures
    assert page.locator("#heatmap td.better").count() == 2  # NORTH on both
    page.screenshot(path=str(ARTIFACTS / "overview-heatmap.png"), full_page=True)

    page.click("#heatmap a:text('CMS130')")
    page.wait_for_url(f"{base_url}/measures/CMS130")
    page.wait_for_selector("#funnel-1-chart.rendered svg", timeout=20_000)
    page.wait_for_selector("#trend-chart.rendered svg", timeout=20_000)
    assert page.locator("#centers-1 tbody tr").count() == 2
    page.screenshot(path=str(ARTIFACTS / "measure-cms130.png"), full_page=True)

    page.click(f"#centers-1 tr:has-text('{NORTH}') a.gaps-link")
    page.wait_for_url(f"{base_url}/centers/{NORTH}/measures/CMS130/gaps?period_end=2026-12-31")
    shown = int(page.inner_text("#gap-count"))
    page.screenshot(path=str(ARTIFACTS / "care-gaps.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#csv-link")
    target = ARTIFACTS / "care-gaps.csv"
    info.value.save_as(str(target))
    with target.open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        expected = con.execute(
            "SELECT count(*) FROM measure_results WHERE center = ? AND measure = ? AND period_end = DATE "
            "'2026-12-31' AND denominator AND NOT denominator_exclusion AND NOT denominator_exception "
            "AND NOT numerator",
            [NORTH, measure_name("CMS130")],
        ).fetchone()[0]
    finally:
        con.close()
    assert len(rows) - 1 == expected == shown == page.locator("#gaps tbody tr").count()
    assert errors == [], errors  # no JS errors, no CSP violations (Vega runs with its interpreter)
    page.close()
