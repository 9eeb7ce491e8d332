"""Scoring an assessment with its rubric: item, domain and overall scores, rater spread, change.

Pure functions of the rubric and the responses (one level per item and rater), so the web pages, the
Excel export, the CLI and the tests compute the same numbers:

* an item's score is the mean of its raters' levels; its *spread* is the highest minus the lowest level
  given (0 when the raters agree; a large spread is a conversation to have, not an error);
* a domain's score is the mean of its answered items' scores; the overall score is the mean of the
  domain scores, each domain weighing the same whatever its number of items (so adding an item to a
  domain does not shift the balance between domains); unanswered items are left out and counted;
* the change since the last assessment is the difference of domain and overall scores;
* network comparison (:func:`network_means`): the mean of each domain over the centers' latest
  assessments, shown only when at least :data:`MIN_CENTERS` centers contribute, so that a center that
  sees its own score and the mean cannot work out another center's score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from chc_equity.improvement.rubric import Rubric

MIN_CENTERS = 3  # a network mean of fewer centers would disclose the others' scores to each center


@dataclass(frozen=True, slots=True)
class Response:
    item_id: str
    rater: str
    level: int


@dataclass(frozen=True, slots=True)
class ItemScore:
    item_id: str
    score: float | None  # mean level over raters; None: nobody answered
    raters: int
    spread: int | None  # max - min level over raters


@dataclass(frozen=True, slots=True)
class DomainScore:
    domain_id: str
    title: str
    score: float | None
    answered: int
    items: int
    spread: int | None  # the largest item spread in the domain


@dataclass(frozen=True, slots=True)
class AssessmentScore:
    overall: float | None
    domains: tuple[DomainScore, ...]
    items: dict[str, ItemScore]
    raters: tuple[str, ...]

    def domain(self, domain_id: str) -> DomainScore:
        return next(d for d in self.domains if d.domain_id == domain_id)

    @property
    def by_domain(self) -> dict[str, float | None]:
        return {d.domain_id: d.score for d in self.domains}


def check_responses(rubric: Rubric, responses: Iterable[Response]) -> list[Response]:
    """The responses, checked against the rubric: a known item, a level of that item, one per rater."""
    items = rubric.items
    seen: set[tuple[str, str]] = set()
    out = []
    for r in responses:
        item = items.get(r.item_id)
        if item is None:
            raise ValueError(f"item {r.item_id!r} is not in rubric {rubric.key}")
        if r.level not in {lv.level for lv in item.levels}:
            raise ValueError(f"item {r.item_id}: level {r.level} is not one of its levels")
        if not r.rater.strip():
            raise ValueError(f"item {r.item_id}: a response needs its rater")
        if (r.item_id, r.rater) in seen:
            raise ValueError(f"item {r.item_id}: rater {r.rater!r} answered twice")
        seen.add((r.item_id, r.rater))
        out.append(r)
    return out


def score(rubric: Rubric, responses: Iterable[Response]) -> AssessmentScore:
    rows = check_responses(rubric, responses)
    by_item: dict[str, list[int]] = {}
    for r in rows:
        by_item.setdefault(r.item_id, []).append(r.level)
    items: dict[str, ItemScore] = {}
    for item_id in rubric.items:
        levels = by_item.get(item_id, [])
        items[item_id] = ItemScore(
            item_id,
            fmean(levels) if levels else None,
            len(levels),
            (max(levels) - min(levels)) if levels else None,
        )
    domains = []
    for d in rubric.domains:
        answered = [items[i.id] for i in d.items if items[i.id].score is not None]
        spreads = [s.spread for s in answered if s.spread is not None]
        domains.append(
            DomainScore(
                d.id,
                d.title,
                fmean(s.score for s in answered) if answered else None,  # type: ignore[misc]
                len(answered),
                len(d.items),
                max(spreads) if spreads else None,
            )
        )
    scored = [d.score for d in domains if d.score is not None]
    raters = tuple(sorted({r.rater for r in rows}))
    return AssessmentScore(fmean(scored) if scored else None, tuple(domains), items, raters)


def change(current: AssessmentScore, previous: AssessmentScore | None) -> dict[str, float | None]:
    """Domain id (and ``"overall"``) -> current minus previous score; None where either is missing."""
    if previous is None:
        return {d.domain_id: None for d in current.domains} | {"overall": None}
    before = previous.by_domain
    out: dict[str, float | None] = {}
    for d in current.domains:
        b = before.get(d.domain_id)
        out[d.domain_id] = None if d.score is None or b is None else d.score - b
    out["overall"] = (
        None if current.overall is None or previous.overall is None else current.overall - previous.overall
    )
    return out


def network_means(
    latest: Mapping[str, AssessmentScore], domain_ids: Sequence[str], min_centers: int = MIN_CENTERS
) -> dict[str, tuple[float | None, int]]:
    """Domain id (and ``"overall"``) -> (mean over centers, number of centers); the mean is None
    (suppressed) when fewer than ``min_centers`` centers have a score for it."""
    out: dict[str, tuple[float | None, int]] = {}
    for key in (*domain_ids, "overall"):
        values = [s.overall if key == "overall" else s.by_domain.get(key) for s in latest.values()]
        present = [v for v in values if v is not None]
        out[key] = (fmean(present) if len(present) >= min_centers else None, len(present))
    return out
