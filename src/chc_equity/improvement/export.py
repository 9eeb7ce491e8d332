"""Assessments, projects and PDSA cycles as flat rows (for ``chc-equity improvement export``).

Rows are read from the app database through one session and scored with each assessment's own rubric.
They hold what people wrote and scores, never patient data; the CLI writes them as CSV through
:mod:`chc_equity.exports` (cells a spreadsheet would run are neutralized).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from chc_equity.appdb import improvement as records
from chc_equity.improvement import rubric as rubrics
from chc_equity.improvement.assessment import change


def assessment_rows(s: Session, center: str | None = None) -> list[dict[str, Any]]:
    """One row per assessment x domain (and ``overall``): score, answered items, spread, change."""
    out: list[dict[str, Any]] = []
    previous: dict[tuple[str, str, str], Any] = {}
    for a in records.list_assessments(s, center):
        sc = records.score_assessment(s, a)
        key = (a.center, a.rubric_id, a.rubric_version)
        delta = change(sc, previous.get(key))
        previous[key] = sc
        base = {"assessment_id": a.id, "center": a.center, "assessed_on": a.assessed_on.isoformat(),
                "rubric": f"{a.rubric_id}@{a.rubric_version}", "raters": "; ".join(sc.raters)}  # fmt: skip
        for d in sc.domains:
            row = {"domain": d.domain_id, "score": d.score, "answered": d.answered, "items": d.items}
            out.append(base | row | {"spread": d.spread, "change": delta[d.domain_id]})
        out.append(base | {"domain": "overall", "score": sc.overall, "answered": None, "items": None,
                           "spread": None, "change": delta["overall"]})  # fmt: skip
    return out


def response_rows(s: Session, center: str | None = None) -> list[dict[str, Any]]:
    out = []
    for a in records.list_assessments(s, center):
        rubric = rubrics.get(a.rubric_id, a.rubric_version)
        for r in records.responses_of(s, a.id):
            out.append({"assessment_id": a.id, "center": a.center, "item_id": r.item_id,
                        "domain": rubric.domain_of(r.item_id).id, "rater": r.rater, "level": r.level,
                        "evidence_url": r.evidence_url, "note": r.note})  # fmt: skip
    return out


def project_rows(s: Session, center: str | None = None) -> list[dict[str, Any]]:
    out = []
    for p in records.list_projects(s, center):
        links = "; ".join(
            f"{m.role}: {m.measure}" + (f" ({m.stratum_dimension} = {m.stratum})" if m.stratum else "")
            for m in records.measures_of(s, p.id)
        )
        out.append({"project_id": p.id, "center": p.center, "title": p.title, "aim": p.aim,
                    "measures": links, "baseline": p.baseline, "target": p.target,
                    "target_date": p.target_date, "baseline_end": p.baseline_end,
                    "series_kind": p.series_kind, "team": p.team, "rubric_items": p.rubric_items,
                    "status": p.status, "version": p.version, "updated_by": p.updated_by})  # fmt: skip
    return out


def cycle_rows(s: Session, center: str | None = None) -> list[dict[str, Any]]:
    out = []
    for p in records.list_projects(s, center):
        for i, c in enumerate(records.cycles_of(s, p.id), start=1):
            out.append({"project_id": p.id, "center": p.center, "cycle": i, "change_idea": c.change_idea,
                        "started_on": c.started_on, "ended_on": c.ended_on, "plan": c.plan,
                        "prediction": c.prediction, "do": c.do, "study": c.study, "act": c.act,
                        "decision": c.decision, "new_phase": c.new_phase})  # fmt: skip
    return out
