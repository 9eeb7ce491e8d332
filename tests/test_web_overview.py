"""The overview matrix's rules (web/matrix.py, network/benchmarks.py) and the measure-series trend on the
measure pages, on hand-made cells and the seeded two-center warehouse."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    NORTH,
    SERIES_MONTHS,
    SOUTH,
    add_measure_series,
    add_users,
    build_warehouse,
    login,
    make_app,
    series_counts,
)
from chc_equity.network import benchmarks
from chc_equity.web import matrix, plainwords
from chc_equity.web.analytics import Cell


def _cell(center: str, cms: str, rate: float | None, *, group: str = "Group_1", inverse: bool = False,
          signal: str | None = None) -> Cell:  # fmt: skip
    return Cell(
        f"{cms}FHIRx", cms, f"title {cms}", group, None, inverse, None, center, None, None, None, None,
        None, None, 100, rate, None, None, None, None, signal, None, date(2026, 1, 1), date(2026, 12, 31),
    )  # fmt: skip


CELLS = [
    _cell("*", "CMS2", 0.5),
    _cell("*", "CMS177", 0.5),
    _cell("*", "CMS122", 0.3, inverse=True),
    _cell("*", "CMS347", 0.6, group="Group_3"),
    _cell("c10", "CMS2", 0.40, signal="worse"),
    _cell("c2", "CMS2", 0.60, signal="better"),
    _cell("c3", "CMS2", None),
    _cell("c10", "CMS122", 0.20, inverse=True, signal="better"),
    _cell("c2", "CMS122", 0.45, inverse=True, signal="worse"),
    _cell("c3", "CMS122", 0.30, inverse=True, signal="as expected"),
    _cell("c2", "CMS177", 0.7),
    _cell("c2", "CMS347", 0.55, group="Group_3"),
]


def test_columns_sort_numerically_and_rows_naturally() -> None:
    m = matrix.build(CELLS)
    assert [c.key for c in m.columns] == ["CMS2", "CMS122", "CMS177", "CMS347 Group 3"]
    assert [r.center for r in m.rows] == ["c2", "c3", "c10"]  # c2 before c10
    assert [r.center for r in matrix.build(CELLS, order="desc").rows] == ["c10", "c3", "c2"]


def test_sort_by_a_column_puts_the_worst_first_in_the_measures_direction() -> None:
    assert [r.center for r in matrix.build(CELLS, sort="CMS2").rows] == ["c10", "c2", "c3"]  # None last
    assert [r.center for r in matrix.build(CELLS, sort="CMS2", order="desc").rows] == ["c2", "c10", "c3"]
    # CMS122 is inverse: the highest rate is the worst
    assert [r.center for r in matrix.build(CELLS, sort="CMS122").rows] == ["c2", "c3", "c10"]
    by_worse = matrix.build(CELLS, sort="worse")
    assert by_worse.rows[0].center == "c2" and by_worse.rows[0].worse == 1 and by_worse.rows[0].better == 1
    assert matrix.build(CELLS, sort="nonsense").sort == "center"


def test_family_filter_and_measure_families() -> None:
    assert [c.key for c in matrix.build(CELLS, family="pediatric").columns] == ["CMS2", "CMS177"]
    assert [c.key for c in matrix.build(CELLS, family="behavioral").columns] == ["CMS2", "CMS177"]
    assert "CMS177" not in [c.key for c in matrix.build(CELLS, family="adult").columns]
    uds = [replace(c, uds="Table 7 Line 3f") if c.cms_id == "CMS122" else c for c in CELLS]
    assert [c.key for c in matrix.build(uds, family="uds").columns] == ["CMS122"]
    assert matrix.build(CELLS, family="bogus").family is None  # unknown family: everything


def test_benchmarks_compare_in_the_measures_direction() -> None:
    assert benchmarks.compare(0.6, 0.5, inverse=False) == "better"
    assert benchmarks.compare(0.6, 0.5, inverse=True) == "worse"
    assert benchmarks.compare(0.5, 0.5002, inverse=False) == "same"
    assert benchmarks.compare(None, 0.5, inverse=False) is None
    m = matrix.build(CELLS, {"CMS2": 0.55, "CMS122": 0.25})
    c2 = m.rows[0].cells
    assert (c2["CMS2"].vs_target, c2["CMS122"].vs_target) == ("better", "worse")
    assert c2["CMS2"].benchmark == "better" and m.has_targets


def test_national_figures_are_packaged_with_year_and_source() -> None:
    cervical = benchmarks.national("CMS124")
    assert cervical is not None and cervical.rate == pytest.approx(0.51) and cervical.year == 2020
    assert cervical.url.startswith("https://data.hrsa.gov/") and "Table 6B" in cervical.source
    assert benchmarks.national("CMS165") is None  # no public figure packaged: left empty
    assert benchmarks.national("CMS124", "Group_2") is None


def test_targets_file(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("targets:\n  CMS165: 70\n  CMS347 Group 3: 0.6\n")
    assert benchmarks.load_targets(f) == {"CMS165": 0.70, "CMS347 Group 3": 0.6}
    assert benchmarks.target_for({"CMS347": 0.5}, "CMS347", "CMS347 Group 3") == 0.5
    f.write_text("targets:\n  CMS165: high\n")
    with pytest.raises(ValueError, match="t.yaml: target 'CMS165'"):
        benchmarks.load_targets(f)
    assert benchmarks.load_targets(tmp_path / "absent.yaml") == {}


def test_episode_measures_count_encounters() -> None:
    assert plainwords.unit_of("CMS22") == plainwords.unit_of("CMS177") == "encounters"
    assert plainwords.unit_of("CMS165") == "patients"


# -- the measure series on the measure pages ---------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("series") / "wh.duckdb")
    add_measure_series(warehouse)
    add_users(warehouse)
    return make_app(warehouse)


def _client(app, name: str) -> TestClient:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client


def test_center_measure_page_trend_uses_the_measure_series(app) -> None:
    page = _client(app, "analyst").get(f"/centers/{NORTH}/measures/CMS122").text
    assert 'id="series"' in page and 'id="series-chart"' in page
    rows = page[page.index('id="series"') :].split("</table>")[0].count("<tr>") - 1
    assert rows == len(SERIES_MONTHS) >= 12
    num, den = series_counts(0)
    assert f"{100 * num / den:.1f}%" in page  # the first month's rate, as stored
    assert f'class=" focus" data-center="{NORTH}"' in page  # the center's row is marked


def test_measure_page_without_a_network_series_says_how_to_get_one(app) -> None:
    page = _client(app, "analyst").get("/measures/CMS122").text
    assert 'id="series-missing"' in page and "chc-equity series CMS122" in page
    staff = _client(app, "staff-north").get("/measures/CMS122").text  # their own center's series
    assert 'id="series"' in staff


def test_center_measure_page_is_the_centers_own(app) -> None:
    staff = _client(app, "staff-north")
    assert staff.get(f"/centers/{SOUTH}/measures/CMS122").status_code == 403
    assert _client(app, "analyst").get("/centers/nowhere/measures/CMS122").status_code == 404


def test_uds_lines_that_combine_groups_are_named() -> None:
    assert "line 17a" in matrix.uds_note("CMS347") and "any group" in matrix.uds_note("CMS347")
    assert "every group" in matrix.uds_note("CMS155")
    assert matrix.uds_note("CMS138") == "UDS Table 6B line 14a reports Group 3 only."
    assert matrix.uds_note("CMS165") is None  # Table 7, one group
