"""The overview at network scale (issue 17): 36 generated centers at a 1,366 px window, no horizontal
scrolling of the page; sorting (numeric, worst first), the family filter, a cell opening that center's
measure page, and the CSV / Excel exports of the matrix. Screenshots go to the ARTIFACTS folder."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from browser.conftest import ARTIFACTS, sign_in
from browser.webseed import add_users, build_network_warehouse, live_server, make_app

CENTERS = 36
SLOW = 120_000  # ms: a 36-center page and its exports on a loaded 2-core CI machine


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path, ids = build_network_warehouse(
        tmp_path_factory.mktemp("net36"), centers=CENTERS, patients=CENTERS * 20
    )
    add_users(path)
    path.with_suffix(".targets.yaml").write_text("targets:\n  CMS165: 0.70\n  CMS2: 80\n")
    return path, ids


@pytest.fixture(scope="module")
def base_url(network: tuple[Path, list[str]]) -> Iterator[str]:
    with live_server(make_app(network[0])) as url:
        yield url


def _widths(page) -> dict[str, int]:
    return page.evaluate(
        """() => ({page: document.documentElement.scrollWidth, window: window.innerWidth,
                   body: document.body.scrollWidth,
                   matrix: document.querySelector('.matrix-wrap').scrollWidth,
                   box: document.querySelector('.matrix-wrap').clientWidth})"""
    )


def test_overview_36_centers_fits_1366_px(browser, base_url: str, network) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = sign_in(browser, base_url, "analyst")
    page.set_default_timeout(SLOW)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{base_url}/")
    assert page.locator("#heatmap tbody tr[data-center]").count() == CENTERS
    keys = page.locator("#heatmap thead th.m a.mname").all_inner_texts()
    assert len(keys) >= 26  # every measure group the registry computes (28 with CMS347 Group 4 data)
    numbers = [int(k.split()[0][3:]) for k in keys]
    assert numbers == sorted(numbers) and keys.index("CMS2") < keys.index("CMS177")  # numeric, not text
    assert "CMS347 Group 3" in keys and "CMS155 Group 2" in keys  # each group its own column
    w = _widths(page)
    page.screenshot(path=str(ARTIFACTS / "overview-36-centers-1366.png"), full_page=True)
    assert w["page"] <= w["window"], w  # no horizontal scrolling of the page
    assert w["matrix"] <= w["box"], w  # and the matrix fits whole (no scroll box inside it either)
    # the targets from <warehouse>.targets.yaml: a row of their own, and marks on the cells
    assert page.locator("#row-target").count() == 1
    assert page.locator("#heatmap td[data-measure='CMS165'] .bench-below, "
                        "#heatmap td[data-measure='CMS165'] .bench-above").count() > 0  # fmt: skip
    assert page.locator("#row-national").count() == 1  # packaged UDS national averages
    assert errors == [], errors


def test_overview_sorts_filters_and_opens_a_center_measure(browser, base_url: str, network) -> None:
    page, errors = sign_in(browser, base_url, "analyst")
    page.set_default_timeout(SLOW)
    page.set_viewport_size({"width": 1366, "height": 768})
    # sort by CMS165 (higher is better): worst (lowest rate) first, centers without a rate last
    page.click("#heatmap th.m:has(a.mname:text-is('CMS165')) a.sort")
    page.wait_for_url("**sort=CMS165**")
    rates = page.eval_on_selector_all(
        "#heatmap tbody tr[data-center] td[data-measure='CMS165']",
        "tds => tds.map(t => t.dataset.rate ?? null)",
    )
    shown = [float(r) for r in rates if r is not None]
    assert shown == sorted(shown) and len(shown) > CENTERS // 2
    assert all(r is None for r in rates[len(shown) :])
    worst = page.locator("#heatmap tbody tr[data-center]").first.get_attribute("data-center")
    # an inverse measure sorts worst (highest rate) first
    page.click("#heatmap th.m:has(a.mname:text-is('CMS122')) a.sort")
    page.wait_for_url("**sort=CMS122**")
    inverse = [
        float(r)
        for r in page.eval_on_selector_all(
            "#heatmap tbody tr[data-center] td[data-measure='CMS122']",
            "tds => tds.map(t => t.dataset.rate ?? null)",
        )
        if r is not None
    ]
    assert inverse == sorted(inverse, reverse=True)
    # filter: pediatric measures only
    page.click("nav.families a:text('Pediatric')")
    page.wait_for_url("**family=pediatric**")
    pediatric = set(page.locator("#heatmap thead th.m a.mname").all_inner_texts())
    assert {"CMS117", "CMS155"} <= {k.split()[0] for k in pediatric} and "CMS165" not in pediatric
    page.screenshot(path=str(ARTIFACTS / "overview-36-centers-pediatric.png"), full_page=True)
    # clicking a cell opens that center's measure page
    page.goto(f"{base_url}/?sort=CMS165")
    page.click(f"#heatmap td[data-center='{worst}'][data-measure='CMS165'] a")
    page.wait_for_url(f"{base_url}/centers/{worst}/measures/CMS165#group-Group_1")
    assert page.locator("#focus-summary").count() == 1
    assert page.locator(f"#centers-1 tr.focus[data-center='{worst}']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "center-measure-cms165.png"), full_page=True)
    assert errors == [], errors


def test_overview_exports_match_the_page(browser, base_url: str, network) -> None:
    page, _ = sign_in(browser, base_url, "analyst")
    page.set_default_timeout(SLOW)
    page.goto(f"{base_url}/?family=adult")
    columns = page.locator("#heatmap thead th.m a.mname").all_inner_texts()
    with page.expect_download() as info:
        page.click("#matrix-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert len(rows) == CENTERS * len(columns)
    assert [r["measure"] for r in rows[: len(columns)]] == columns  # same columns, same order
    cell = page.locator(f"#heatmap td[data-center='{rows[0]['center']}'][data-measure='{columns[0]}']")
    assert float(rows[0]["rate"]) == pytest.approx(float(cell.get_attribute("data-rate")))
    with page.expect_download() as info:
        page.click("#matrix-xlsx")
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    assert book.sheetnames == ["matrix", "cells"]
    sheet = list(book["matrix"].iter_rows(values_only=True))
    assert list(sheet[1][1:]) == columns and len(sheet) == 2 + 3 + CENTERS  # header, 3 reference rows
