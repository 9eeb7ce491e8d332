"""What a measure *is*: metadata, groups and populations, independent of how its logic is written.

Each eCQM module declares one :class:`Measure` whose fields mirror the official Measure resource
(``../shared/ecqm/input/resources/measure/<name>.json``) so a reviewer can check them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# FHIR measure-population codes, in the order the MeasureReport lists them.
POPULATIONS: tuple[str, ...] = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "denominator-exception",
    "numerator",
    "numerator-exclusion",
)

# Column name in the results table for each population code.
POPULATION_COLUMNS: dict[str, str] = {code: code.replace("-", "_") for code in POPULATIONS}

Basis = Literal["boolean", "Encounter"]


@dataclass(frozen=True)
class Group:
    """One population group (one rate) of a measure.

    ``populations`` lists the population codes the Measure resource defines for this group (the others
    are always false and are not reported). ``stratifiers`` names the Measure's stratifier criteria.
    """

    id: str
    populations: tuple[str, ...]
    stratifiers: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class Measure:
    """Metadata of one eCQM (CMS id, version, title, UDS line, scoring, groups, population basis)."""

    name: str  # folder-style id, e.g. "CMS122FHIRDiabetesAssessGT9Pct" (as in expected.csv)
    cms_id: str  # e.g. "CMS122"
    version: str
    title: str
    groups: tuple[Group, ...]
    basis: Basis = "boolean"
    scoring: str = "proportion"
    improvement_notation: Literal["increase", "decrease"] = "increase"
    uds: tuple[str, ...] = ()  # UDS table/line(s), e.g. ("Table 6B Line 10",)
    steward: str = ""
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def inverse(self) -> bool:
        """Lower is better (e.g. CMS122 HbA1c poor control, CMS75 dental decay)."""
        return self.improvement_notation == "decrease"
