"""What a center's measure rate is compared with besides the network: public national health-center
averages (HRSA UDS, packaged in ``benchmarks.yaml`` with their year and source) and the targets a network
sets itself (a small YAML file of its own), plus the measure families the overview filters by.

Pure data and pure functions; the only I/O is reading YAML. Comparisons with a benchmark or a target are
plain "above / below" statements in the measure's direction (lower is better for inverse measures): a
benchmark is a fixed number, not a sample, so there is no test of significance against it, unlike the
comparison with the network (:mod:`chc_equity.network.stats`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

FAMILIES = {
    "uds": "UDS tables",
    "adult": "Adult",
    "pediatric": "Pediatric",
    "behavioral": "Behavioral health",
}
Comparison = Literal["better", "worse", "same"]


@dataclass(frozen=True, slots=True)
class National:
    """A national health-center average for one measure (every group unless ``group`` is set)."""

    rate: float
    year: int
    line: str
    source: str
    url: str


@cache
def _packaged() -> dict[str, Any]:
    text = resources.files("chc_equity.network").joinpath("benchmarks.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def cms_number(cms_id: str) -> int:
    """The number of a CMS id for sorting (CMS2 before CMS177); ids without a number sort last."""
    found = re.search(r"\d+", cms_id)
    return int(found.group()) if found else 1_000_000


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: c2 before c10, CMS2 before CMS177."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def families(cms_id: str, uds: str | None = None) -> tuple[str, ...]:
    """The overview families of a measure; "uds" when it has a UDS table line."""
    listed = tuple(_packaged()["measures"].get(cms_id, {}).get("families", ()))
    return (("uds",) if uds else ()) + listed


def national(cms_id: str, group_id: str = "Group_1") -> National | None:
    """The packaged national average of a measure, None when no public figure is packaged.

    Figures are for a measure's first (or only) population: UDS reports one line per measure, so the
    later groups of a multi-group eCQM have no national figure of their own.
    """
    if group_id != "Group_1":
        return None
    doc = _packaged()
    entry = doc["measures"].get(cms_id, {}).get("national")
    if not entry:
        return None
    return National(
        float(entry["rate"]),
        int(entry["year"]),
        str(entry["line"]),
        doc["source"]["title"],
        doc["source"]["url"],
    )


def load_targets(path: Path | None) -> dict[str, float]:
    """A network's own targets: YAML ``targets: {CMS165: 0.70, "CMS347 Group 3": 0.6}`` (rates 0-1).

    Keys are a CMS id (every group) or the overview's column label (one group). A clear error names the
    file and the key when a value is not a rate.
    """
    if path is None or not Path(path).exists():
        return {}
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    raw = doc.get("targets", doc) if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping 'targets: {{CMS165: 0.7, ...}}'")
    out: dict[str, float] = {}
    for key, value in raw.items():
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: target {key!r}: {value!r} is not a number") from None
        if rate > 1 and rate <= 100:  # written as a percentage
            rate /= 100
        if not 0 <= rate <= 1:
            raise ValueError(f"{path}: target {key!r}: {value!r} is not a rate between 0 and 1 (or 0-100 %)")
        out[str(key)] = rate
    return out


def target_for(targets: dict[str, float], cms_id: str, key: str) -> float | None:
    """The target of a measure group: its column label first, else the measure's CMS id."""
    return targets.get(key, targets.get(cms_id))


def compare(rate: float | None, reference: float | None, *, inverse: bool) -> Comparison | None:
    """Whether ``rate`` is better or worse than ``reference`` in the measure's direction (0.05 points
    either way is "same": a rounding difference is not news)."""
    if rate is None or reference is None:
        return None
    diff = (reference - rate) if inverse else (rate - reference)
    if abs(diff) < 0.0005:
        return "same"
    return "better" if diff > 0 else "worse"
