"""Real-browser test of assessments and improvement projects (issue 15): center staff create a readiness
assessment and an improvement project with a PDSA cycle through the forms; the project page draws the
chart of its measure (the seeded CMS122 series with a planted improvement) with the signal in words;
after the app is stopped and started again on the same files, everything is still there. Debian's
Chromium, a live uvicorn server, the webseed warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import NORTH, add_measure_series, add_users, build_warehouse, live_server, make_app

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)

SIGNAL = "Unusually long run: 12 points below the median from Jan 2026 to Dec 2026"


def test_assessment_and_project_survive_a_restart(browser, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = build_warehouse(tmp_path / "wh.duckdb")
    add_measure_series(path)
    add_users(path)

    with live_server(make_app(path)) as base_url:
        page, errors = sign_in(browser, base_url, "staff-north")
        page.click("header nav a:text('Assessments')")
        page.wait_for_url(f"{base_url}/assessments")
        page.click(f"a[href='/centers/{NORTH}/assessments']")
        page.wait_for_url(f"{base_url}/centers/{NORTH}/assessments")
        form = page.locator("#assessment-form")
        form.locator("input[name=rater]").fill("Ana Rater")
        form.locator("select[name='level:strategy.plan']").select_option("3")
        form.locator("select[name='level:strategy.leadership']").select_option("2")
        form.locator("select[name='level:data.use']").select_option("4")
        form.locator("input[name='evidence:data.use']").fill("https://example.org/gap-report")
        form.locator("button[type=submit]").click()
        page.wait_for_url(lambda url: "/assessments/" in url)
        assessment_url = page.url
        # strategy (3 + 2) / 2 = 2.5, data 4: overall (2.5 + 4) / 2 = 3.25
        assert page.inner_text("#overall").startswith("3.25")
        page.wait_for_selector("#radar-chart svg, #radar-chart canvas")
        page.screenshot(path=str(ARTIFACTS / "assessment.png"), full_page=True)

        page.click("header nav a:text('Projects')")
        page.wait_for_url(f"{base_url}/projects")
        form = page.locator("#project-form")
        form.locator("input[name=title]").fill("HbA1c call-backs")
        form.locator("textarea[name=aim]").fill("HbA1c > 9 % from 30 % to 15 % by December 2026")
        form.locator("select[name=outcome_measure]").select_option("CMS122")
        form.locator("select[name=series_kind]").select_option("month")
        form.locator("input[name=baseline_end]").fill("2025-12-31")
        form.locator("select[name=status]").select_option("active")
        form.locator("button[type=submit]").click()
        page.wait_for_url(lambda url: "/projects/" in url)
        project_url = page.url
        cycle = page.locator("#cycle-form")
        cycle.locator("input[name=change_idea]").fill("Nurse call-backs")
        cycle.locator("input[name=started_on]").fill("2026-01-05")
        cycle.locator("textarea[name=prediction]").fill("Fewer patients above 9 % within 3 months")
        cycle.locator("button[type=submit]").click()
        page.wait_for_selector("#cycles td.idea:text('Nurse call-backs')")
        page.wait_for_selector("#chart-outcome .chart svg, #chart-outcome .chart canvas")
        assert SIGNAL in page.inner_text("#chart-outcome ul.signals")
        page.screenshot(path=str(ARTIFACTS / "project.png"), full_page=True)
        assert errors == [], errors  # no JS errors, no CSP violations
        page.close()

    # a fresh app on the same warehouse and app database: the records are read back
    with live_server(make_app(path)) as base_url:
        page, errors = sign_in(browser, base_url, "staff-north")
        page.goto(assessment_url.replace(assessment_url.split("/centers/")[0], base_url))
        assert page.inner_text("#overall").startswith("3.25")
        assert page.inner_text("#raters") == "Ana Rater"
        assert "https://example.org/gap-report" in page.inner_text("#responses")
        page.goto(project_url.replace(project_url.split("/centers/")[0], base_url))
        assert page.inner_text("h1") == "HbA1c call-backs"
        assert "Fewer patients above 9 % within 3 months" in page.inner_text("#cycles")
        assert SIGNAL in page.inner_text("#chart-outcome ul.signals")
        page.goto(f"{base_url}/projects")
        assert "HbA1c call-backs" in page.inner_text("#projects")
        assert errors == [], errors
        page.close()
