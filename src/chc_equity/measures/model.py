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

Basis = Literal["boolean", "Encounter", "Procedure", "Observation"]  # boolean: patient-based

# Canonical base of the official (MADiE-exported) Measure resources: url = base + Measure.name.
MEASURE_URL_BASE = "https://madie.cms.gov/Measure/"


@dataclass(frozen=True)
class Group:
    """One population group (one rate) of a measure.

    ``populations`` lists the population codes the Measure resource defines for this group (the others
    are always false and are not reported). ``stratifiers`` names the stratifier criteria as the CQL
    defines them ("Stratification 1", ...), in the Measure resource's order; a subject's
    ``measure_results.strata`` holds the names it meets. ``stratifier_labels`` says what each one is in
    words (the Measure resource's descriptions), for people reading a summary.
    """

    id: str
    populations: tuple[str, ...]
    stratifiers: tuple[str, ...] = ()
    title: str = ""
    stratifier_labels: tuple[str, ...] = ()

    @property
    def number(self) -> str:
        """The group's ordinal as the Measure resource's ids spell it ("Group_2" -> "2")."""
        return self.id.rsplit("_", 1)[-1]

    @property
    def stratifier_ids(self) -> tuple[str, ...]:
        """FHIR ids of the stratifiers (Measure.group.stratifier.id): "Stratification_<group>_<k>".

        MADiE numbers stratifiers by position, not by CQL name, so the id is derived from the order of
        ``stratifiers`` (checked against the official Measure resources in the tests).
        """
        return tuple(f"Stratification_{self.number}_{k}" for k in range(1, len(self.stratifiers) + 1))

    def stratifier_label(self, name: str) -> str:
        """Human label of a stratifier named ``name`` (falls back to the CQL name)."""
        if name in self.stratifiers and len(self.stratifier_labels) == len(self.stratifiers):
            return self.stratifier_labels[self.stratifiers.index(name)]
        return name


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
    # What closes a care gap, in a CHW's words (shown on care-gap lists; the measure logic is the spec).
    care_gap: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Canonical URL of the official Measure resource this module implements."""
        return MEASURE_URL_BASE + self.name

    @property
    def canonical(self) -> str:
        """Versioned canonical reference (``url|version``), as MeasureReport.measure cites it."""
        return f"{self.url}|{self.version}"

    @property
    def inverse(self) -> bool:
        """Lower is better (e.g. CMS122 HbA1c poor control, CMS75 dental decay)."""
        return self.improvement_notation == "decrease"
