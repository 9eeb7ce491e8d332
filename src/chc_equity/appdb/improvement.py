"""Rules for readiness assessments, improvement projects and PDSA cycles: pure functions on a session.

* every record belongs to one center, and every lookup here is by ``(center, id)``: a record of another
  center is "not found", so a caller that scoped the center correctly cannot reach another's record;
* edits are optimistic: the caller sends the ``version`` it edited, a stale one raises :class:`Stale`;
* every version of every record is kept as JSON in ``improvement_revisions`` (append-only history);
* field checks raise ``ValueError`` with a message naming the field; the web layer adds who may write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import (
    Assessment,
    AssessmentResponse,
    ImprovementProject,
    ImprovementRevision,
    PdsaCycle,
    ProjectMeasure,
)
from chc_equity.improvement import rubric as rubrics
from chc_equity.improvement.assessment import AssessmentScore, Response, check_responses, score

STATUSES = ("planning", "active", "sustaining", "closed")
MEASURE_ROLES = ("outcome", "process", "balancing")
SERIES_KINDS = ("rolling12", "month", "quarter")
DECISIONS = ("adopt", "adapt", "abandon")
MAX_TEXT = 4000


class Stale(Exception):
    """The record changed since the version the caller edited."""


def _now() -> datetime:
    return datetime.now(UTC)


def _expect_version(row: Assessment | ImprovementProject | PdsaCycle, what: str, version: int) -> None:
    """Optimistic concurrency: the caller edited ``version``; if the record has moved on, the edit is
    refused (the web answers 409) rather than overwriting someone else's change."""
    if row.version != version:
        raise Stale(f"{what} {row.id} is at version {row.version}, not {version}")


def _touch(row: Assessment | ImprovementProject | PdsaCycle, user: str) -> None:
    """Mark an edited record: the next version, who and when."""
    row.version += 1
    row.updated_by, row.updated_at = user, _now()


def _text(name: str, value: str | None, limit: int = MAX_TEXT, required: bool = False) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise ValueError(f"{name}: required")
    if len(value) > limit:
        raise ValueError(f"{name}: at most {limit} characters")
    return value or None


def _revision(s: Session, kind: str, record_id: int, version: int, data: dict, user: str) -> None:
    s.add(
        ImprovementRevision(
            kind=kind,
            record_id=record_id,
            version=version,
            data=json.dumps(data, default=str, sort_keys=True),
            changed_by=user,
            changed_at=_now(),
        )
    )


def revisions(s: Session, kind: str, record_id: int) -> list[ImprovementRevision]:
    return list(
        s.scalars(
            select(ImprovementRevision)
            .where(ImprovementRevision.kind == kind, ImprovementRevision.record_id == record_id)
            .order_by(ImprovementRevision.version)
        )
    )


# -- assessments ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseIn:
    item_id: str
    rater: str
    level: int
    evidence_url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class AssessmentFields:
    assessed_on: date
    responses: Sequence[ResponseIn]
    note: str | None = None
    rubric_id: str = rubrics.DEFAULT_RUBRIC
    rubric_version: str | None = None  # None: the newest version of rubric_id

    def checked(self) -> tuple[rubrics.Rubric, list[ResponseIn], str | None]:
        if self.rubric_version is None:
            known = [r for r in rubrics.available().values() if r.id == self.rubric_id]
            if not known:
                raise ValueError(f"rubric: no rubric {self.rubric_id!r}")
            rubric = rubrics.default() if self.rubric_id == rubrics.DEFAULT_RUBRIC else known[-1]
        else:
            try:
                rubric = rubrics.get(self.rubric_id, self.rubric_version)
            except KeyError as exc:
                raise ValueError(f"rubric: {exc.args[0]}") from None
        if self.assessed_on > date.today():
            raise ValueError("assessed_on: an assessment cannot be dated in the future")
        out = []
        for r in self.responses:
            rater = _text("rater", r.rater, 100, required=True)
            url = _text("evidence_url", r.evidence_url, 500)
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"evidence_url of {r.item_id}: a link starting with https:// or http://")
            out.append(ResponseIn(r.item_id, rater or "", r.level, url, _text("note", r.note)))
        check_responses(rubric, [Response(r.item_id, r.rater, r.level) for r in out])
        return rubric, out, _text("note", self.note)


def _assessment_data(a: Assessment, responses: Sequence[ResponseIn]) -> dict[str, Any]:
    return {
        "center": a.center,
        "rubric": f"{a.rubric_id}@{a.rubric_version}",
        "assessed_on": a.assessed_on.isoformat(),
        "note": a.note,
        "responses": [asdict(r) for r in responses],
    }


def _put_responses(s: Session, assessment_id: int, responses: Sequence[ResponseIn]) -> None:
    s.execute(delete(AssessmentResponse).where(AssessmentResponse.assessment_id == assessment_id))
    s.add_all(
        AssessmentResponse(
            assessment_id=assessment_id,
            item_id=r.item_id,
            rater=r.rater,
            level=r.level,
            evidence_url=r.evidence_url,
            note=r.note,
        )
        for r in responses
    )


def create_assessment(s: Session, center: str, fields: AssessmentFields, user: str) -> Assessment:
    rubric, responses, note = fields.checked()
    now = _now()
    row = Assessment(
        center=center,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        assessed_on=fields.assessed_on,
        note=note,
        version=1,
        created_by=user,
        created_at=now,
        updated_by=user,
        updated_at=now,
    )
    s.add(row)
    s.flush()
    _put_responses(s, row.id, responses)
    _revision(s, "assessment", row.id, 1, _assessment_data(row, responses), user)
    return row


def edit_assessment(
    s: Session, center: str, assessment_id: int, version: int, fields: AssessmentFields, user: str
) -> Assessment | None:
    """Replace the date, note and responses (the rubric stays the one it was scored with)."""
    row = get_assessment(s, center, assessment_id)
    if row is None:
        return None
    _expect_version(row, "assessment", version)
    same = AssessmentFields(
        fields.assessed_on, fields.responses, fields.note, row.rubric_id, row.rubric_version
    )
    _rubric, responses, note = same.checked()
    row.assessed_on, row.note = fields.assessed_on, note
    _touch(row, user)
    _put_responses(s, row.id, responses)
    _revision(s, "assessment", row.id, row.version, _assessment_data(row, responses), user)
    return row


def get_assessment(s: Session, center: str, assessment_id: int) -> Assessment | None:
    row = s.get(Assessment, assessment_id)
    return row if row is not None and row.center == center else None


def responses_of(s: Session, assessment_id: int) -> list[AssessmentResponse]:
    return list(
        s.scalars(
            select(AssessmentResponse)
            .where(AssessmentResponse.assessment_id == assessment_id)
            .order_by(AssessmentResponse.item_id, AssessmentResponse.rater)
        )
    )


def list_assessments(s: Session, center: str | None = None) -> list[Assessment]:
    """Assessments of ``center`` (None: every center), by center and date (oldest first)."""
    q = select(Assessment).order_by(Assessment.center, Assessment.assessed_on, Assessment.id)
    if center is not None:
        q = q.where(Assessment.center == center)
    return list(s.scalars(q))


def score_assessment(s: Session, a: Assessment) -> AssessmentScore:
    rubric = rubrics.get(a.rubric_id, a.rubric_version)
    return score(rubric, [Response(r.item_id, r.rater, r.level) for r in responses_of(s, a.id)])


# -- projects -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasureLink:
    role: str
    measure: str  # CMS id, e.g. CMS122, or a social-needs metric, e.g. sdoh:closure:food
    stratum_dimension: str | None = None
    stratum: str | None = None


@dataclass(frozen=True)
class ProjectFields:
    title: str
    aim: str
    measures: Sequence[MeasureLink]
    baseline: float | None = None
    target: float | None = None
    target_date: date | None = None
    baseline_end: date | None = None
    series_kind: str = "rolling12"
    team: str | None = None
    rubric_items: Sequence[str] = field(default_factory=tuple)
    status: str = "planning"

    def checked(self) -> ProjectFields:
        from chc_equity.equity.attributes import DIMENSIONS
        from chc_equity.measures.registry import find
        from chc_equity.sdoh import series as sdoh_series

        if self.status not in STATUSES:
            raise ValueError(f"status: one of {', '.join(STATUSES)}")
        if self.series_kind not in SERIES_KINDS:
            raise ValueError(f"series_kind: one of {', '.join(SERIES_KINDS)}")
        for name, value in (("baseline", self.baseline), ("target", self.target)):
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name}: a rate between 0 and 1")
        if not self.measures:
            raise ValueError("measures: a project needs at least its outcome measure")
        links = []
        for m in self.measures:
            if m.role not in MEASURE_ROLES:
                raise ValueError(f"measure role: one of {', '.join(MEASURE_ROLES)}")
            social = sdoh_series.is_key(m.measure)
            if social:  # a social-needs metric: sdoh:<metric>[:<domain>]
                try:
                    cms = sdoh_series.key(*sdoh_series.parse_key(m.measure))
                except ValueError as exc:
                    raise ValueError(f"measure: {exc}") from None
            else:
                cms = m.measure.strip().upper()
                try:
                    find([cms])
                except (KeyError, ValueError):
                    raise ValueError(f"measure: {m.measure!r} is not an eCQM of chc-equity") from None
            dim = _text("stratum_dimension", m.stratum_dimension, 64)
            stratum = _text("stratum", m.stratum, 200)
            if (dim is None) != (stratum is None):
                raise ValueError("stratum: give both the dimension and the stratum, or neither")
            dims = sdoh_series.DIMENSIONS if social else DIMENSIONS
            if dim is not None and (dim not in dims or dim == "center"):
                raise ValueError(f"stratum_dimension: {dim!r} is not an equity dimension")
            links.append(MeasureLink(m.role, cms, dim, stratum))
        if "outcome" not in {m.role for m in links}:
            raise ValueError("measures: a project needs an outcome measure")
        known = rubrics.default().items
        items = tuple(dict.fromkeys(i.strip() for i in self.rubric_items if i.strip()))
        for i in items:
            if i not in known:
                raise ValueError(f"rubric_items: {i!r} is not an item of {rubrics.default().key}")
        return ProjectFields(
            title=_text("title", self.title, 200, required=True) or "",
            aim=_text("aim", self.aim, required=True) or "",
            measures=tuple(links),
            baseline=self.baseline,
            target=self.target,
            target_date=self.target_date,
            baseline_end=self.baseline_end,
            series_kind=self.series_kind,
            team=_text("team", self.team, 1000),
            rubric_items=items,
            status=self.status,
        )


def _project_data(p: ImprovementProject, links: Sequence[MeasureLink]) -> dict[str, Any]:
    cols = ("center", "title", "aim", "baseline", "target", "target_date", "baseline_end", "series_kind")
    data = {c: getattr(p, c) for c in (*cols, "team", "rubric_items", "status")}
    return data | {"measures": [asdict(m) for m in links]}


def _put_measures(s: Session, project_id: int, links: Sequence[MeasureLink]) -> None:
    s.execute(delete(ProjectMeasure).where(ProjectMeasure.project_id == project_id))
    s.add_all(ProjectMeasure(project_id=project_id, **asdict(m)) for m in links)


def _apply(row: ImprovementProject, f: ProjectFields) -> None:
    row.title, row.aim, row.status, row.team = f.title, f.aim, f.status, f.team
    row.baseline, row.target, row.target_date = f.baseline, f.target, f.target_date
    row.baseline_end, row.series_kind = f.baseline_end, f.series_kind
    row.rubric_items = ",".join(f.rubric_items) or None


def create_project(s: Session, center: str, fields: ProjectFields, user: str) -> ImprovementProject:
    f = fields.checked()
    now = _now()
    row = ImprovementProject(
        center=center, version=1, created_by=user, created_at=now, updated_by=user, updated_at=now
    )
    _apply(row, f)
    s.add(row)
    s.flush()
    _put_measures(s, row.id, f.measures)
    _revision(s, "project", row.id, 1, _project_data(row, f.measures), user)
    return row


def edit_project(
    s: Session, center: str, project_id: int, version: int, fields: ProjectFields, user: str
) -> ImprovementProject | None:
    row = get_project(s, center, project_id)
    if row is None:
        return None
    _expect_version(row, "project", version)
    f = fields.checked()
    _apply(row, f)
    _touch(row, user)
    _put_measures(s, row.id, f.measures)
    _revision(s, "project", row.id, row.version, _project_data(row, f.measures), user)
    return row


def get_project(s: Session, center: str, project_id: int) -> ImprovementProject | None:
    row = s.get(ImprovementProject, project_id)
    return row if row is not None and row.center == center else None


def list_projects(s: Session, center: str | None = None) -> list[ImprovementProject]:
    q = select(ImprovementProject).order_by(ImprovementProject.center, ImprovementProject.id)
    if center is not None:
        q = q.where(ImprovementProject.center == center)
    return list(s.scalars(q))


def measures_of(s: Session, project_id: int) -> list[MeasureLink]:
    rows = s.scalars(
        select(ProjectMeasure).where(ProjectMeasure.project_id == project_id).order_by(ProjectMeasure.id)
    )
    return [MeasureLink(r.role, r.measure, r.stratum_dimension, r.stratum) for r in rows]


def cycle_counts(s: Session) -> dict[int, int]:
    rows = s.execute(select(PdsaCycle.project_id, func.count()).group_by(PdsaCycle.project_id))
    return {pid: n for pid, n in rows}


# -- PDSA cycles ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CycleFields:
    change_idea: str
    started_on: date
    ended_on: date | None = None
    plan: str | None = None
    prediction: str | None = None
    do: str | None = None
    study: str | None = None
    act: str | None = None
    decision: str | None = None
    new_phase: bool = False

    def checked(self) -> CycleFields:
        if self.decision is not None and self.decision not in DECISIONS:
            raise ValueError(f"decision: one of {', '.join(DECISIONS)}")
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise ValueError("ended_on: before started_on")
        texts = {k: _text(k, getattr(self, k)) for k in ("plan", "prediction", "do", "study", "act")}
        idea = _text("change_idea", self.change_idea, 200, required=True) or ""
        return CycleFields(
            idea, self.started_on, self.ended_on, decision=self.decision, new_phase=self.new_phase, **texts
        )


_CYCLE_FIELDS = ("change_idea", "started_on", "ended_on", "plan", "prediction", "do", "study", "act")


def _cycle_data(c: PdsaCycle) -> dict[str, Any]:
    return {k: getattr(c, k) for k in (*_CYCLE_FIELDS, "decision", "new_phase", "project_id")}


def add_cycle(s: Session, project: ImprovementProject, fields: CycleFields, user: str) -> PdsaCycle:
    f = fields.checked()
    now = _now()
    row = PdsaCycle(
        project_id=project.id,
        version=1,
        created_by=user,
        created_at=now,
        updated_by=user,
        updated_at=now,
        **asdict(f),
    )
    s.add(row)
    s.flush()
    _revision(s, "pdsa", row.id, 1, _cycle_data(row), user)
    return row


def get_cycle(s: Session, project: ImprovementProject, cycle_id: int) -> PdsaCycle | None:
    row = s.get(PdsaCycle, cycle_id)
    return row if row is not None and row.project_id == project.id else None


def edit_cycle(
    s: Session, project: ImprovementProject, cycle_id: int, version: int, fields: CycleFields, user: str
) -> PdsaCycle | None:
    row = get_cycle(s, project, cycle_id)
    if row is None:
        return None
    _expect_version(row, "PDSA cycle", version)
    for k, v in asdict(fields.checked()).items():
        setattr(row, k, v)
    _touch(row, user)
    _revision(s, "pdsa", row.id, row.version, _cycle_data(row), user)
    return row


def cycles_of(s: Session, project_id: int) -> list[PdsaCycle]:
    return list(
        s.scalars(
            select(PdsaCycle)
            .where(PdsaCycle.project_id == project_id)
            .order_by(PdsaCycle.started_on, PdsaCycle.id)
        )
    )
