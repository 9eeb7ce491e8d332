"""Per-center UDS settings: which encounters are countable visits, designated sites, edit thresholds.

A UDS patient is anyone with at least one *countable visit* in the calendar year, and what counts is a
local decision that vendors expose as a per-center mapping (encounter types / CPT lists). So the rule
is data, not code: :class:`VisitRule` holds it, a YAML/JSON file (``--config``) overrides the defaults
for the whole network (``default:``) or one center (``centers: {c01: ...}``), and docs/uds.md explains
every field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SNOMED = "http://snomed.info/sct"


@dataclass(frozen=True)
class VisitRule:
    """What makes an Encounter a countable UDS visit.

    Defaults: a *finished* ambulatory (AMB), virtual (VR) or home-health (HH) encounter that starts in
    the year, that is not only a CHW community-health-integration service (HCPCS G0019/G0022: billed
    under a practitioner's initiating visit, so the CHW does not exercise independent professional
    judgment as UDS requires of a visit) and not a hospice admission. ``include_types`` (system|code or
    bare code), when non-empty, whitelists encounter types like a center's CPT list. ``require_provider``
    asks for an Encounter.participant.individual (off by default: many exports omit participants).
    """

    statuses: tuple[str, ...] = ("finished",)
    classes: tuple[str, ...] = ("AMB", "VR", "HH")
    exclude_types: tuple[str, ...] = (f"{HCPCS}|G0019", f"{HCPCS}|G0022", f"{SNOMED}|305336008")
    include_types: tuple[str, ...] = ()
    require_provider: bool = False


@dataclass(frozen=True)
class CenterConfig:
    """Everything UDS needs to know about one center beyond its FHIR data."""

    visits: VisitRule = field(default_factory=VisitRule)
    school_based_sites: tuple[str, ...] = ()  # Location ids (flat.location.id) of school-based sites
    public_housing_sites: tuple[str, ...] = ()  # Location ids in / immediately accessible to public housing


@dataclass(frozen=True)
class EditThresholds:
    """Thresholds of the validation edits (fractions of the center's UDS patients unless noted)."""

    income_unknown: float = 0.25
    race_unreported: float = 0.10
    ethnicity_unreported: float = 0.10
    sexual_orientation_unknown: float = 0.25
    insurance_not_recorded: float = 0.05
    yoy_relative_change: float = 0.30  # year-over-year swing of a count ...
    yoy_min_count: int = 20  # ... when the larger of the two years is at least this
    yoy_rate_points: float = 0.10  # year-over-year swing of a 6B/7 rate (absolute)
    yoy_min_denominator: int = 30


@dataclass(frozen=True)
class UdsConfig:
    default: CenterConfig = field(default_factory=CenterConfig)
    centers: dict[str, CenterConfig] = field(default_factory=dict)
    edits: EditThresholds = field(default_factory=EditThresholds)
    # Day (MM-DD) of the reporting year on which ages are taken: June 30 for the UDS tables [R]; the UDS+
    # IG computes the submitted age on December 31 ("12-31"), so the UDS+ round trip uses that.
    age_as_of: str = "06-30"

    def for_center(self, center: str) -> CenterConfig:
        return self.centers.get(center, self.default)


def _tuple_fields(cls: type, raw: dict[str, Any], base: Any) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return replace(base, **values)


def _center(raw: dict[str, Any], base: CenterConfig) -> CenterConfig:
    raw = dict(raw)
    visits = _tuple_fields(VisitRule, raw.pop("visits", {}) or {}, base.visits)
    return _tuple_fields(CenterConfig, raw, replace(base, visits=visits))


def parse_config(raw: dict[str, Any] | None) -> UdsConfig:
    """Config from a mapping; a center's block overrides the (overridden) default field by field."""
    raw = dict(raw or {})
    unknown = set(raw) - {"default", "centers", "edits", "age_as_of"}
    if unknown:
        raise ValueError(f"unknown UDS config section(s): {', '.join(sorted(unknown))}")
    default = _center(raw.get("default") or {}, CenterConfig())
    centers = {str(c): _center(v or {}, default) for c, v in (raw.get("centers") or {}).items()}
    edits = _tuple_fields(EditThresholds, raw.get("edits") or {}, EditThresholds())
    age_as_of = str(raw.get("age_as_of", "06-30"))
    if age_as_of not in ("06-30", "12-31"):
        raise ValueError(f"age_as_of must be '06-30' or '12-31', not {age_as_of!r}")
    return UdsConfig(default, centers, edits, age_as_of)


def load_config(path: str | Path | None) -> UdsConfig:
    """Read a YAML or JSON config file (JSON is YAML, but ``.json`` is parsed strictly)."""
    if path is None:
        return UdsConfig()
    text = Path(path).read_text()
    raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return parse_config(raw)
