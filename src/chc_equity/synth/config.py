"""Synth configuration: the packaged default YAML, optional user overrides, and the good-care model.

Pure data + pure functions; the only I/O is reading YAML files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MEASURES = (
    "CMS2",
    "CMS22",
    "CMS69",
    "CMS74",
    "CMS75",
    "CMS117",
    "CMS122",
    "CMS124",
    "CMS125",
    "CMS130",
    "CMS131",
    "CMS138",
    "CMS139",
    "CMS155",
    "CMS159",
    "CMS165",
    "CMS177",
    "CMS314",
    "CMS347",
    "CMS349",
    "CMS951",
)
# The later groups of multi-group measures that have a rate of their own ("CMS:Group_n"); the first
# group of each is its CMS id above. synth/check.py compares each with the engine's group.
GROUP_MEASURES = (
    "CMS138:Group_2",
    "CMS138:Group_3",
    "CMS155:Group_2",
    "CMS155:Group_3",
    "CMS347:Group_2",
    "CMS347:Group_3",
)
DIMENSIONS = ("center", "race_ethnicity", "language", "income", "insurance", "sdoh_risk")
P_MAX = 0.98  # cap so that multipliers > 1 never push a chance to certainty


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in `override` replace those in `base`."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def load_config(path: str | Path | None = None, *, disparities: bool = True) -> dict[str, Any]:
    """Default config merged with `path` (if any); `disparities=False` drops every multiplier rule and
    the planted social-needs and child-health gaps."""
    text = resources.files("chc_equity.synth").joinpath("default_config.yaml").read_text(encoding="utf-8")
    cfg: dict[str, Any] = yaml.safe_load(text)
    if path is not None:
        cfg = _merge(cfg, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    if not disparities:
        cfg["multipliers"] = []
        cfg["sdoh_gaps"] = {}
        cfg["child_gaps"] = {}
    unknown = set(cfg["measures"]) - set(MEASURES) - set(GROUP_MEASURES)
    if unknown:
        raise ValueError(f"unknown measures in config: {sorted(unknown)}")
    for rule in cfg["multipliers"]:
        if rule["dimension"] not in DIMENSIONS:
            raise ValueError(f"unknown multiplier dimension {rule['dimension']!r}; use one of {DIMENSIONS}")
    if cfg.get("changes"):
        from chc_equity.synth.changes import parse_changes  # changes.py imports this module

        try:
            parse_changes(cfg["changes"])
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return cfg


@dataclass(frozen=True)
class CareModel:
    """Turns a patient's strata into the probability of meeting each measure's numerator."""

    base: dict[str, float]
    inverse: frozenset[str]
    # (dimension, stratum, measure) -> combined factor; measure "*" applies to all
    factors: dict[tuple[str, str, str], float]

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> CareModel:
        factors: dict[tuple[str, str, str], float] = {}
        for rule in cfg["multipliers"]:
            measures = rule.get("measures", "*")
            for m in [measures] if isinstance(measures, str) else measures:
                key = (rule["dimension"], str(rule["stratum"]), m)
                factors[key] = factors.get(key, 1.0) * float(rule["factor"])
        return cls(
            {k: float(v) for k, v in cfg["measures"].items()}, frozenset(cfg["inverse_measures"]), factors
        )

    def multiplier(self, measure: str, dimension: str, stratum: str) -> float:
        """Combined planted factor for one stratum of one dimension (1.0 when nothing is planted)."""
        return self.factors.get((dimension, stratum, "*"), 1.0) * self.factors.get(
            (dimension, stratum, measure), 1.0
        )

    def numerator_probability(self, measure: str, strata: dict[str, str], *, factor: float = 1.0) -> float:
        """P(numerator) for a denominator patient: base x all stratum multipliers, inverted if needed.

        ``factor`` multiplies the good-care chance once more: a planted change (synth/changes.py)."""
        good = self.base[measure]
        for dim in DIMENSIONS:
            good *= self.multiplier(measure, dim, strata[dim])
        if factor != 1.0:
            good *= factor
        good = min(P_MAX, max(0.0, good))
        return 1.0 - good if measure in self.inverse else good
