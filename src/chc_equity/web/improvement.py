"""What the improvement pages show one user: assessments (heat map, center history, one assessment),
projects and their charts. The routes (``routes_improvement.py``) only parse forms and render.

Who sees what (``roles.py``): the route guard scopes the center; here a viewer's view is cut to
aggregates (domain and overall scores, project titles, aims and charts) and never carries responses,
raters, evidence, notes or PDSA text (:func:`detail`); a center-bound user sees their own center's row
of the heat map and the network mean, which is suppressed under
:data:`chc_equity.improvement.assessment.MIN_CENTERS` centers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import HTTPException, Request

from chc_equity.appdb import AppDB
from chc_equity.appdb import improvement as records
from chc_equity.appdb.models import Assessment, ImprovementProject
from chc_equity.improvement import rubric as rubrics
from chc_equity.improvement.assessment import AssessmentScore, change, network_means
from chc_equity.improvement.project_chart import CycleMark, ProjectChart, project_chart
from chc_equity.web import data
from chc_equity.web.roles import IMPROVEMENT_DETAIL_ROLES, IMPROVEMENT_WRITE_ROLES, Principal

NO_ASSESSMENT = "No such assessment at this center."
NO_PROJECT = "No such project at this center."
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def appdb(request: Request) -> AppDB:
    return request.app.state.db


def detail(user: Principal) -> bool:
    """Whether ``user`` sees responses, raters, evidence, notes and PDSA text (viewers do not)."""
    return user.role in IMPROVEMENT_DETAIL_ROLES


def may_write(user: Principal, center: str | None) -> bool:
    return user.role in IMPROVEMENT_WRITE_ROLES and center is not None and user.may_see_center(center)


def check_center(request: Request, center: str) -> None:
    """404 for a center the warehouse does not know (records are only written for real centers)."""
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        known = data.center_exists(con, center)
    if not known:
        raise HTTPException(status_code=404, detail="No such center.")


# -- assessments ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoredAssessment:
    row: Assessment
    score: AssessmentScore
    change: dict[str, float | None]


def history(request: Request, center: str | None) -> list[ScoredAssessment]:
    """Assessments of ``center`` (None: all), oldest first, each with its change since the center's
    previous assessment scored with the same rubric."""
    out: list[ScoredAssessment] = []
    previous: dict[tuple[str, str, str], AssessmentScore] = {}
    with appdb(request).read() as s:
        for a in records.list_assessments(s, center):
            sc = records.score_assessment(s, a)
            key = (a.center, a.rubric_id, a.rubric_version)
            out.append(ScoredAssessment(a, sc, change(sc, previous.get(key))))
            previous[key] = sc
    return out


@dataclass(frozen=True)
class HeatRow:
    center: str
    assessed_on: date | None
    scores: dict[str, float | None]
    overall: float | None


def heat_map(request: Request, user: Principal, center: str | None) -> dict[str, Any]:
    """Latest assessment per center (default rubric) x domains, and the network mean per domain.

    The network mean is over every center's latest assessment (whatever the user may see), so it is
    suppressed below MIN_CENTERS centers; the rows are only the centers the user may see."""
    rubric = rubrics.default()
    latest: dict[str, ScoredAssessment] = {}
    for sa in history(request, None):
        if (sa.row.rubric_id, sa.row.rubric_version) == (rubric.id, rubric.version):
            latest[sa.row.center] = sa
    means = network_means({c: sa.score for c, sa in latest.items()}, [d.id for d in rubric.domains])
    visible = center if center is not None else user.center
    rows = [
        HeatRow(c, sa.row.assessed_on, sa.score.by_domain, sa.score.overall)
        for c, sa in sorted(latest.items())
        if visible is None or c == visible
    ]
    return {"rubric": rubric, "rows": rows, "means": means, "spec": heat_spec(rubric, rows, means)}


def heat_spec(rubric: rubrics.Rubric, rows: list[HeatRow], means: dict) -> dict[str, Any] | None:
    values = [
        {"center": r.center, "domain": d.title, "score": r.scores.get(d.id)}
        for r in rows
        for d in rubric.domains
    ]
    values += [
        {"center": "Network mean", "domain": d.title, "score": means[d.id][0]}
        for d in rubric.domains
        if means[d.id][0] is not None
    ]
    if not values:
        return None
    lo, hi = rubric.domains[0].items[0].min_level, rubric.domains[0].items[0].max_level
    enc = {
        "x": {"field": "domain", "type": "nominal", "title": None, "sort": [d.title for d in rubric.domains],
              "axis": {"labelAngle": -30, "labelLimit": 220}},
        "y": {"field": "center", "type": "nominal", "title": None},
    }  # fmt: skip
    tooltip = [{"field": "center"}, {"field": "domain"}, {"field": "score", "format": ".2f"}]
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": max(100, 30 * (len(rows) + 1)),
        "data": {"values": values},
        "layer": [
            {
                "mark": {"type": "rect", "stroke": "white"},
                "encoding": {
                    **enc,
                    "color": {
                        "field": "score",
                        "type": "quantitative",
                        "scale": {"scheme": "greens", "domain": [lo, hi]},
                        "legend": {"title": "Score"},
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "mark": {"type": "text", "fontSize": 12},
                "encoding": {**enc, "text": {"field": "score", "type": "quantitative", "format": ".1f"}},
            },
        ],
    }


def radar_spec(rubric: rubrics.Rubric, sc: AssessmentScore) -> dict[str, Any] | None:
    """Domain scores of one assessment as a polar ("radar") chart: one wedge per domain, each the same
    angle, its radius the score on the rubric's level scale."""
    scores = [sc.by_domain.get(d.id) for d in rubric.domains]
    if all(x is None for x in scores):
        return None
    # an unanswered domain keeps its (empty) wedge, so every domain has the same angle
    values = [
        {"domain": d.title, "score": x or 0, "shown": "not answered" if x is None else f"{x:.2f}"}
        for d, x in zip(rubric.domains, scores, strict=True)
    ]
    hi = max(i.max_level for i in rubric.items.values())
    return {
        "$schema": SCHEMA,
        "width": 320,
        "height": 320,
        "data": {"values": values},
        "mark": {"type": "arc", "stroke": "white", "innerRadius": 10},
        "encoding": {
            "theta": {"field": "domain", "type": "nominal", "sort": None},
            "radius": {"field": "score", "type": "quantitative", "scale": {"domain": [0, hi], "zero": True}},
            "color": {"field": "domain", "type": "nominal", "legend": {"title": None, "orient": "bottom"}},
            "tooltip": [{"field": "domain"}, {"field": "shown", "title": "score"}],
        },
    }


def assessment_or_404(request: Request, center: str, assessment_id: int) -> tuple[ScoredAssessment, list]:
    """The assessment (scored, with its change) and its responses (empty for viewers' pages to drop)."""
    found = [sa for sa in history(request, center) if sa.row.id == assessment_id]
    if not found:
        raise HTTPException(status_code=404, detail=NO_ASSESSMENT)
    with appdb(request).read() as s:
        responses = records.responses_of(s, assessment_id)
    return found[0], responses


# -- projects -------------------------------------------------------------------------------------------
def projects(request: Request, center: str | None) -> list[dict[str, Any]]:
    with appdb(request).read() as s:
        counts = records.cycle_counts(s)
        out = []
        for p in records.list_projects(s, center):
            links = records.measures_of(s, p.id)
            outcome = next((m for m in links if m.role == "outcome"), None)
            out.append({"row": p, "outcome": outcome, "cycles": counts.get(p.id, 0)})
    return out


@dataclass(frozen=True)
class ProjectView:
    row: ImprovementProject
    measures: list[records.MeasureLink]
    cycles: list
    charts: list[tuple[records.MeasureLink, ProjectChart | None]]


def project_view(request: Request, center: str, project_id: int, chart: str = "run") -> ProjectView:
    with appdb(request).read() as s:
        row = records.get_project(s, center, project_id)
        if row is None:
            raise HTTPException(status_code=404, detail=NO_PROJECT)
        links = records.measures_of(s, row.id)
        cycles = records.cycles_of(s, row.id)
    marks = [CycleMark(f"PDSA {i + 1}: {c.change_idea}", c.started_on, c.ended_on, c.new_phase)
             for i, c in enumerate(cycles)]  # fmt: skip
    charts = []
    with data.open_warehouse(request.app.state.config.warehouse, request.state) as con:
        for link in links:
            pc = project_chart(
                con,
                link.measure,
                center,
                kind=row.series_kind,
                dimension=link.stratum_dimension,
                stratum=link.stratum,
                cycles=marks,
                baseline_end=row.baseline_end,
                chart="p" if chart == "p" else "run",
            )
            charts.append((link, pc))
    return ProjectView(row, links, cycles, charts)
