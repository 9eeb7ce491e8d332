"""A measure's populations, declared as the Measure resource declares them: population -> define.

A measure module that declares ``POPULATIONS`` writes only its defines (``defines(ctx)``: a ``WITH``
of named relations); this module writes the one SELECT that turns them into per-subject criteria, so
no measure file builds its own population SELECT. Each population names a define, a relation holding
the subjects that meet it (``center, patient_id`` for patient-based measures; ``center, id`` for
episode-of-care measures, ``id`` being the Encounter), exactly as Measure.group.population.criteria
names a CQL expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from chc_equity.measures.defines import snake
from chc_equity.measures.model import Basis

if TYPE_CHECKING:
    from chc_equity.measures.engine import Context

# Population field -> the CQL define name MADiE exports use for it.
CQL_NAMES = {
    "initial_population": "Initial Population",
    "denominator": "Denominator",
    "denominator_exclusion": "Denominator Exclusions",
    "denominator_exception": "Denominator Exceptions",
    "numerator": "Numerator",
    "numerator_exclusion": "Numerator Exclusions",
}


@dataclass(frozen=True)
class Populations:
    """One group: the define (relation name) of each population; ``None`` where the group has none.

    ``denominator=None`` means the CQL ``define "Denominator": "Initial Population"``. With ``strata``
    the initial-population relation carries a ``strata VARCHAR[]`` column (the stratifier defines the
    subject meets).
    """

    initial_population: str = "initial_population"
    denominator: str | None = None
    denominator_exclusion: str | None = None
    denominator_exception: str | None = None
    numerator: str | None = None
    numerator_exclusion: str | None = None
    group: str = "Group_1"
    strata: bool = False

    @classmethod
    def of(cls, *populations: str, **options: object) -> Populations:
        """A group whose population defines carry the CQL's own names, e.g.
        ``Populations.of("denominator_exclusion", "numerator")`` maps them to the relations
        ``denominator_exclusions`` and ``numerator`` (``define "Denominator Exclusions"``, ...)."""
        return cls(**{p: snake(CQL_NAMES[p]) for p in populations}, **options)  # type: ignore[arg-type]


def _member(define: str, basis: Basis) -> str:
    key = "id" if basis == "Encounter" else "patient_id"
    return f"EXISTS (SELECT 1 FROM {define} x_ WHERE x_.center = ip.center AND x_.{key} = ip.{key})"


def population_select(groups: tuple[Populations, ...], basis: Basis) -> str:
    """The criteria SELECT of every group (``UNION ALL``), in :data:`engine.CRITERIA_COLUMNS` order."""
    selects = []
    for g in groups:
        subject = "ip.id" if basis == "Encounter" else "ip.patient_id"
        lines = [f"-- CQL populations of {g.group}"]
        if g.denominator is None:
            lines.append('-- CQL: define "Denominator": "Initial Population"')
        columns = [f"ip.center, ip.patient_id, {subject} AS subject_id, '{g.group}' AS group_id",
                   "TRUE AS initial_population"]
        for f in fields(Populations)[1:6]:
            define = getattr(g, f.name)
            if define is None:
                columns.append(f"{'TRUE' if f.name == 'denominator' else 'FALSE'} AS {f.name}")
            else:
                columns.append(f"{_member(define, basis)} AS {f.name}")
        columns.append("ip.strata" if g.strata else "CAST(NULL AS VARCHAR[]) AS strata")
        body = ",\n       ".join(columns)
        selects.append("\n".join(lines) + f"\nSELECT {body}\nFROM {g.initial_population} ip")
    return "\nUNION ALL\n".join(selects)


def declared_criteria(
    defines: Callable[[Context], str], groups: tuple[Populations, ...], basis: Basis
) -> Callable[[Context], str]:
    """A measure's criteria function from its ``defines(ctx)`` and declared populations."""

    def criteria(ctx: Context) -> str:
        return defines(ctx).rstrip() + "\n" + population_select(groups, basis) + "\n"

    criteria.__name__ = criteria.__qualname__ = f"criteria_of_{defines.__module__.rsplit('.', 1)[-1]}"
    return criteria
