"""Assessments, improvement projects and PDSA cycles in the app database and on the web, on SQLite and
PostgreSQL (``app_backend``): history, optimistic edits, field checks, who may write what, what a viewer
sees, the Excel export and a project's chart of the seeded CMS122 series (planted improvement)."""

from __future__ import annotations

import re
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from browser.webseed import (
    NORTH,
    PASSWORD,
    SERIES_SHIFT,
    SOUTH,
    USERS,
    add_measure_series,
    build_warehouse,
    login,
    sdoh_series_counts,
    series_counts,
)
from chc_equity.appdb import AppDB, database_url
from chc_equity.appdb import improvement as records
from chc_equity.web import WebConfig, create_app
from chc_equity.web.authstore import AuthStore


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_warehouse(tmp_path_factory.mktemp("improve") / "wh.duckdb")
    add_measure_series(path)
    return path


def _target(app_backend: str, warehouse: Path, tmp_path: Path) -> str | Path:
    """A fresh app database: a SQLite file of this test, or the PostgreSQL database of app_backend."""
    return database_url(warehouse) if app_backend == "postgresql" else tmp_path / "app.sqlite"


@pytest.fixture
def db(app_backend: str, warehouse: Path, tmp_path: Path):
    appdb = AppDB(_target(app_backend, warehouse, tmp_path))
    yield appdb
    appdb.dispose()


@pytest.fixture
def app(app_backend: str, warehouse: Path, tmp_path: Path):
    app = create_app(WebConfig(warehouse=warehouse, database=_target(app_backend, warehouse, tmp_path)))
    store = AuthStore(app.state.db)
    for name in ("admin", "staff-north", "staff-south", "pm-north", "viewer", "viewer-north"):
        store.add_user(name, PASSWORD, *USERS[name])
    yield app
    app.state.db.dispose()


def _fields(day: date, *levels: tuple[str, str, int], note: str | None = None) -> records.AssessmentFields:
    return records.AssessmentFields(day, [records.ResponseIn(i, r, lv) for i, r, lv in levels], note)


def test_assessment_history_and_optimistic_edits(db: AppDB) -> None:
    with db.write() as s:
        a = records.create_assessment(s, NORTH, _fields(date(2026, 1, 10), ("strategy.plan", "Ana", 2)), "pm")
    with db.write() as s:
        records.edit_assessment(
            s,
            NORTH,
            a.id,
            1,
            _fields(date(2026, 1, 11), ("strategy.plan", "Ana", 3), ("data.use", "Ben", 1)),
            "pm",
        )
    with db.write() as s, pytest.raises(records.Stale):
        records.edit_assessment(s, NORTH, a.id, 1, _fields(date(2026, 1, 11)), "pm")
    with db.read() as s:
        assert records.get_assessment(s, SOUTH, a.id) is None  # another center's id: not found
        row = records.get_assessment(s, NORTH, a.id)
        assert row is not None and row.version == 2 and row.assessed_on == date(2026, 1, 11)
        assert [(r.item_id, r.rater, r.level) for r in records.responses_of(s, a.id)] == [
            ("data.use", "Ben", 1),
            ("strategy.plan", "Ana", 3),
        ]
        sc = records.score_assessment(s, row)
        assert sc.by_domain["strategy"] == 3 and sc.by_domain["data"] == 1 and sc.overall == 2
        history = records.revisions(s, "assessment", a.id)
        assert [h.version for h in history] == [1, 2]
        assert '"level": 2' in history[0].data and '"level": 3' in history[1].data


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (_fields(date(2099, 1, 1)), "assessed_on: an assessment cannot be dated in the future"),
        (_fields(date(2026, 1, 1), ("strategy.plan", "Ana", 9)), "level 9 is not one of its levels"),
        (_fields(date(2026, 1, 1), ("nope", "Ana", 1)), "item 'nope' is not in rubric"),
        (_fields(date(2026, 1, 1), ("strategy.plan", " ", 1)), "rater: required"),
    ],
)
def test_assessment_fields_are_checked(fields: records.AssessmentFields, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fields.checked()


def _project(**change) -> records.ProjectFields:
    base = {
        "title": "HbA1c call-backs",
        "aim": "HbA1c > 9 % from 30 % to 15 % by December 2026 for adults with diabetes",
        "measures": [records.MeasureLink("outcome", "cms122")],
        "baseline": 0.3,
        "target": 0.15,
        "series_kind": "month",
        "rubric_items": ["data.use"],
    }
    return records.ProjectFields(**(base | change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"measures": [records.MeasureLink("outcome", "CMS999")]}, "measure: 'CMS999' is not an eCQM"),
        ({"measures": [records.MeasureLink("process", "CMS122")]}, "needs an outcome measure"),
        ({"measures": [records.MeasureLink("outcome", "CMS122", "race", None)]}, "give both the dimension"),
        ({"measures": [records.MeasureLink("outcome", "CMS122", "shoe", "x")]}, "'shoe' is not an equity"),
        ({"target": 15.0}, "target: a rate between 0 and 1"),
        ({"status": "done"}, "status: one of planning"),
        ({"rubric_items": ["x.y"]}, "rubric_items: 'x.y' is not an item"),
        ({"title": "  "}, "title: required"),
        ({"measures": [records.MeasureLink("outcome", "sdoh:happiness")]}, "the metric is one of screened"),
        ({"measures": [records.MeasureLink("outcome", "sdoh:screened:food")]}, "domains of screened: none"),
        ({"measures": [records.MeasureLink("outcome", "sdoh:closure:moon")]}, "domains of closure: food"),
        ({"measures": [records.MeasureLink("outcome", "sdoh:closure", "center", "c1")]}, "not an equity"),
    ],
)
def test_project_fields_are_checked(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _project(**change).checked()


def test_projects_and_cycles_keep_their_history(db: AppDB) -> None:
    with db.write() as s:
        p = records.create_project(s, NORTH, _project(), "staff")
        c = records.add_cycle(s, p, records.CycleFields("Nurse call-backs", date(2026, 1, 5)), "staff")
    with db.write() as s:
        p2 = records.get_project(s, NORTH, p.id)
        assert p2 is not None and records.get_project(s, SOUTH, p.id) is None
        stratum = records.MeasureLink("outcome", "CMS122", "race_ethnicity", "Black non-Hispanic")
        records.edit_project(s, NORTH, p.id, 1, _project(measures=[stratum], status="active"), "staff")
        done = records.CycleFields("Nurse call-backs", date(2026, 1, 5), date(2026, 2, 28), decision="adopt")
        records.edit_cycle(s, p2, c.id, 1, done, "staff")
        with pytest.raises(records.Stale):
            records.edit_cycle(s, p2, c.id, 1, done, "staff")
    with db.read() as s:
        row = records.get_project(s, NORTH, p.id)
        assert row is not None and row.version == 2 and row.status == "active"
        assert records.measures_of(s, p.id) == [stratum]
        (cycle,) = records.cycles_of(s, p.id)
        assert cycle.version == 2 and cycle.decision == "adopt" and cycle.ended_on == date(2026, 2, 28)
        assert [r.version for r in records.revisions(s, "project", p.id)] == [1, 2]
        assert [r.version for r in records.revisions(s, "pdsa", c.id)] == [1, 2]
    with pytest.raises(ValueError, match="ended_on: before started_on"):
        records.CycleFields("x", date(2026, 2, 1), date(2026, 1, 1)).checked()


# -- the web ------------------------------------------------------------------------------------------------
def _client(app, name: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    assert login(client, name).status_code == 303
    return client, client.get("/api/me").json()["csrf_token"]


def _assessment_form(csrf: str, rater: str, **levels: int) -> dict[str, str]:
    form = {"csrf_token": csrf, "assessed_on": "2026-03-01", "rater": rater, "note": "first round"}
    form |= {f"level:{k.replace('_', '.')}": str(v) for k, v in levels.items()}
    form["evidence:strategy.plan"] = "https://example.org/plan.pdf"
    return form


def test_web_assessments_guards_and_views(app) -> None:
    staff, csrf = _client(app, "staff-north")
    url = f"/centers/{NORTH}/assessments"
    r = staff.post(
        url, data=_assessment_form(csrf, "Ana", strategy_plan=3, data_use=1), follow_redirects=False
    )
    assert r.status_code == 303
    page = r.headers["location"]
    aid = int(page.rsplit("/", 1)[1])
    # a second rater adds theirs to the same assessment (version 1 -> 2); a stale form is refused
    form = _assessment_form(csrf, "Ben", strategy_plan=1) | {"version": "1"}
    assert staff.post(page, data=form, follow_redirects=False).status_code == 303
    assert staff.post(page, data=form, follow_redirects=False).status_code == 409
    text = staff.get(page).text
    # strategy: (3 + 1) / 2 = 2, data: 1 -> overall 1.5; rater spread in strategy 2
    assert 'id="overall">1.50' in text and "Ana, Ben" in text and "https://example.org/plan.pdf" in text

    # other centers' staff: 403 on the center, 404 for the id under their own center
    south, south_csrf = _client(app, "staff-south")
    assert south.get(page).status_code == 403
    assert south.post(url, data=_assessment_form(south_csrf, "Eve", strategy_plan=4)).status_code == 403
    assert south.get(f"/centers/{SOUTH}/assessments/{aid}").status_code == 404
    form = _assessment_form(south_csrf, "Eve", strategy_plan=4) | {"version": "2"}
    assert south.post(f"/centers/{SOUTH}/assessments/{aid}", data=form).status_code == 404
    # a viewer sees scores, never raters, evidence or notes, and cannot write or export
    viewer, viewer_csrf = _client(app, "viewer")
    text = viewer.get(page).text
    assert 'id="overall">1.50' in text and "Ana" not in text and "example.org" not in text
    assert "first round" not in text and "assessment-form" not in text
    assert viewer.get(f"{page}.xlsx").status_code == 403
    assert viewer.post(url, data=_assessment_form(viewer_csrf, "V", strategy_plan=1)).status_code == 403

    # the Excel export: scores and every response
    xlsx = staff.get(f"{page}.xlsx")
    assert xlsx.status_code == 200
    wb = load_workbook(BytesIO(xlsx.content))
    scores = {row[0]: row[1] for row in wb["Scores"].iter_rows(min_row=6, values_only=True)}
    assert scores["Equity as a strategic priority"] == 2 and scores["Overall"] == 1.5
    rows = [r for r in wb["Responses"].iter_rows(min_row=2, values_only=True) if r[3] is not None]
    assert sorted((r[1], r[3], r[4]) for r in rows) == [
        ("data.use", "Ana", 1),
        ("strategy.plan", "Ana", 3),
        ("strategy.plan", "Ben", 1),
    ]

    # heat map: staff see their own row; the network mean needs 3 assessed centers (2 here: hidden)
    admin, admin_csrf = _client(app, "admin")
    r = admin.post(f"/centers/{SOUTH}/assessments", data=_assessment_form(admin_csrf, "Fac", strategy_plan=4))
    assert r.status_code == 200  # followed the redirect to the new assessment
    heat = staff.get("/assessments").text
    assert NORTH in heat and SOUTH not in heat and "2 centers" in heat
    assert re.search(
        r'<tr class="network"><td>Network mean</td><td>2 centers</td>\s*'
        r'<td class="n"><span class="suppressed">',
        heat,
    )
    assert SOUTH in admin.get("/assessments").text
    # bad input: a clear 422 naming the field, nothing written
    bad = admin.post(url, data={"csrf_token": admin_csrf, "assessed_on": "2026-13-01", "rater": "x"})
    assert bad.status_code == 422 and "assessed_on: a date YYYY-MM-DD" in bad.text
    assert (
        admin.post(
            "/centers/ctr-nowhere/assessments", data=_assessment_form(admin_csrf, "x", strategy_plan=1)
        ).status_code
        == 404
    )


def test_web_project_chart_finds_the_planted_improvement(app) -> None:
    staff, csrf = _client(app, "pm-north")
    form = {
        "csrf_token": csrf,
        "title": "HbA1c call-backs",
        "aim": "HbA1c > 9 % from 30 % to 15 % by December 2026",
        "outcome_measure": "CMS122",
        "series_kind": "month",
        "baseline_end": "2025-12-31",
        "baseline": "30",
        "target": "15",
        "status": "active",
    }
    r = staff.post(f"/centers/{NORTH}/projects", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = r.headers["location"]
    cycle = {
        "csrf_token": csrf,
        "change_idea": "Nurse call-backs",
        "started_on": "2026-01-05",
        "plan": "call 20",
    }
    assert staff.post(f"{page}/cycles", data=cycle, follow_redirects=False).status_code == 303
    text = staff.get(page).text
    # run chart, median frozen on the 12 baseline months (2025): the 12 months of 2026 are all below it
    assert "Unusually long run: 12 points below the median from Jan 2026 to Dec 2026" in text
    assert "the process has shifted (an improvement)" in text
    assert "PDSA 1: Nurse call-backs" in text and "call 20" in text
    p_text = staff.get(page + "?chart=p").text
    assert "12 points in a row below the centre line from Jan 2026 to Dec 2026" in p_text
    # a viewer sees the chart and the cycle's change idea, not its plan
    viewer, _ = _client(app, "viewer-north")
    vt = viewer.get(page).text
    assert "PDSA 1: Nurse call-backs" in vt and "call 20" not in vt and "cycle-form" not in vt
    # a project of another center is not reachable under one's own center
    south, _ = _client(app, "staff-south")
    pid = page.rsplit("/", 1)[1]
    assert south.get(f"/centers/{SOUTH}/projects/{pid}").status_code == 404
    assert south.get(page).status_code == 403


def test_project_p_chart_limits_and_phases_from_the_cycles(warehouse: Path) -> None:
    """p-chart limits of the project chart equal p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i) with p-bar
    of the baseline months (to 1e-12); an adopted cycle starts a new phase after it ended."""
    import duckdb
    import numpy as np

    from chc_equity.improvement.project_chart import CycleMark, project_chart

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        pc = project_chart(con, "CMS122", NORTH, kind="month", baseline_end=date(2025, 12, 31), chart="p")
        adopted = CycleMark("PDSA 1: call-backs", date(2026, 1, 5), date(2026, 2, 28), new_phase=True)
        phased = project_chart(con, "CMS122", NORTH, kind="month", cycles=[adopted])
        assert project_chart(con, "CMS122", SOUTH, kind="month") is None  # no series there
        assert project_chart(con, "CMS122", NORTH, kind="quarter") is None
    finally:
        con.close()
    assert pc is not None and phased is not None
    counts = [series_counts(i) for i in range(24)]
    n = np.array([d for _, d in counts], dtype=float)
    pbar = sum(x for x, _ in counts[:SERIES_SHIFT]) / n[:SERIES_SHIFT].sum()
    half = 3 * np.sqrt(pbar * (1 - pbar) / n)
    chart = pc.chart
    assert np.max(np.abs(chart.ucl - np.minimum(1, pbar + half))) < 1e-12
    assert np.max(np.abs(chart.lcl - np.maximum(0, pbar - half))) < 1e-12
    assert pc.points[0]["period"] == "Jan 2025" and pc.suppressed == 0
    # the adopted cycle ended in Feb 2026: phase 2 starts at Mar 2026, with its own median
    assert [(ph.start, ph.stop) for ph in phased.chart.phases] == [(0, 14), (14, 24)]
    later = [x / d for x, d in counts[14:]]
    assert phased.chart.phases[1].median == pytest.approx(float(np.median(later)), abs=1e-12)
    assert "PDSA 1: call-backs" in str(phased.spec)


def test_cli_exports_the_records_and_checks_rubrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    from typer.testing import CliRunner

    from chc_equity.appdb import app_db_path
    from chc_equity.cli import _register
    from chc_equity.cli import app as cli

    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    wh = tmp_path / "wh.duckdb"
    db = AppDB(app_db_path(wh))
    with db.write() as s:
        records.create_assessment(s, NORTH, _fields(date(2025, 6, 1), ("strategy.plan", "Ana", 1)), "pm")
        records.create_assessment(
            s,
            NORTH,
            _fields(date(2026, 6, 1), ("strategy.plan", "Ana", 3), ("strategy.plan", "Ben", 4)),
            "pm",
        )
        p = records.create_project(s, SOUTH, _project(), "pm")
        records.add_cycle(s, p, records.CycleFields("=HYPERLINK(1)", date(2026, 1, 5)), "pm")
    db.dispose()
    _register("improvement")
    runner = CliRunner()
    result = runner.invoke(cli, ["improvement", "export", "--out", str(tmp_path / "x"), "-w", str(wh)])
    assert result.exit_code == 0, result.output
    with (tmp_path / "x" / "assessments.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["domain"] == "strategy"]
    assert [(r["assessed_on"], r["score"], r["spread"], r["change"]) for r in rows] == [
        ("2025-06-01", "1.0", "0", ""),
        ("2026-06-01", "3.5", "1", "2.5"),
    ]
    cycles = (tmp_path / "x" / "pdsa_cycles.csv").read_text()
    assert "'=HYPERLINK(1)" in cycles  # a cell a spreadsheet would run is neutralized
    result = runner.invoke(
        cli, ["improvement", "export", "--out", str(tmp_path / "y"), "--center", NORTH, "-w", str(wh)]
    )
    assert "projects.csv (0 rows)" in result.output and "assessments.csv (12 rows)" in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: '1'\ntitle: t\ndomains: []\n")
    result = runner.invoke(cli, ["improvement", "rubric", str(bad)])
    assert result.exit_code == 1 and f"{bad}:4: domains: Tuple should have at least 1 item" in result.output
    result = runner.invoke(cli, ["improvement", "rubric"])
    assert "chc-equity-readiness@1.0" in result.output and "15 items" in result.output


def test_project_links_a_social_needs_metric(db: AppDB) -> None:
    """A project's outcome can be a social-needs metric, optionally per domain and stratum; it is stored
    in its normal form (lower case) and comes back as linked."""
    links = [
        records.MeasureLink("outcome", "SDOH:Screened"),
        records.MeasureLink("process", "sdoh:closure:interpersonal_safety", "language", "Spanish"),
    ]
    with db.write() as s:
        row = records.create_project(s, NORTH, _project(measures=links), "pm")
        pid = row.id
    with db.read() as s:
        got = records.measures_of(s, pid)
    assert [(m.role, m.measure, m.stratum_dimension, m.stratum) for m in got] == [
        ("outcome", "sdoh:screened", None, None),
        ("process", "sdoh:closure:interpersonal_safety", "language", "Spanish"),
    ]


def test_project_chart_of_a_social_needs_metric(warehouse: Path) -> None:
    """The chart of ``sdoh:screened`` reads ``sdoh_series``: its p-chart limits follow the formula on the
    seeded counts, and the planted rise from Jan 2026 is a signal in words (an improvement: higher is
    better for screening)."""
    import duckdb
    import numpy as np

    from chc_equity.improvement.project_chart import project_chart

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        run = project_chart(con, "sdoh:screened", NORTH, kind="month", baseline_end=date(2025, 12, 31))
        pc = project_chart(
            con, "sdoh:screened", NORTH, kind="month", baseline_end=date(2025, 12, 31), chart="p"
        )
        assert project_chart(con, "sdoh:screened", SOUTH, kind="month") is None
        assert project_chart(con, "sdoh:closure:food", NORTH, kind="month") is None
    finally:
        con.close()
    assert run is not None and pc is not None and pc.suppressed == 0
    counts = [sdoh_series_counts(i) for i in range(24)]
    assert [p["rate"] for p in run.points] == pytest.approx([x / n for x, n in counts], abs=1e-12)
    n = np.array([d for _, d in counts], dtype=float)
    pbar = sum(x for x, _ in counts[:SERIES_SHIFT]) / n[:SERIES_SHIFT].sum()
    half = 3 * np.sqrt(pbar * (1 - pbar) / n)
    assert np.max(np.abs(pc.chart.ucl - np.minimum(1, pbar + half))) < 1e-12
    assert run.title.startswith("Social needs: screened -- ")
    words = " ".join(run.signals)
    assert "12 points above the median from Jan 2026 to Dec 2026" in words and "improvement" in words, words


def test_web_project_of_a_social_needs_metric(app) -> None:
    staff, csrf = _client(app, "pm-north")
    form = {
        "csrf_token": csrf,
        "title": "Screen every adult",
        "aim": "Social-needs screening from 35 % to 60 % by December 2026",
        "outcome_measure": "sdoh:screened",
        "series_kind": "month",
        "baseline_end": "2025-12-31",
        "status": "active",
    }
    new = staff.get(f"/centers/{NORTH}/projects")
    assert new.status_code == 200 and 'value="sdoh:closure:food"' in new.text  # offered in the form
    r = staff.post(f"/centers/{NORTH}/projects", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    text = staff.get(r.headers["location"]).text
    assert "Social needs: screened" in text
    assert "12 points above the median from Jan 2026 to Dec 2026" in text
