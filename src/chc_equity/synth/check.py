"""Compare measure-engine results on generated data with the generator's truth.json.

The generator knows, per measure x stratum, the exact denominator and the sum (and variance) of the
per-unit numerator probabilities. If the generated FHIR qualifies for the eCQMs the way the generator
intends, the engine's performance denominator equals the truth exactly and its numerator count is a
Poisson-binomial draw around ``expected_numerator``. Disagreement points at a generator (or measure) bug.

Pure comparison logic plus one SQL query over ``measure_results`` and ``patient_attributes``
(:mod:`chc_equity.equity.attributes`); see docs/synth.md "How to compare with the measure engine".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
from scipy.stats import binom

from chc_equity.synth.config import DIMENSIONS

Z_99 = 2.576  # two-sided 99 % normal quantile
SMALL = 30  # below this denominator the normal approximation is poor: use a binomial interval
ALPHA = 0.01


def truth_key(cms: str, group_id: str) -> str:
    """The truth.json key of a measure group: the CMS id for Group_1, else "CMS347:Group_3"."""
    return cms if group_id == "Group_1" else f"{cms}:{group_id}"


# patient_attributes labels -> generator labels (src/chc_equity/synth/people.py). Labels not listed map
# to themselves (race_ethnicity, language and sdoh_risk already use the generator's names).
_INCOME = {"101-150%": "101-200%", "151-200%": "101-200%", "Unknown": "unknown"}
_INSURANCE = {
    "Medicaid": "medicaid",
    "Medicare": "medicare",
    "Private": "private",
    "Uninsured": "uninsured",
}


def generator_label(dimension: str, label: str) -> str:
    """The generator's stratum name for an attributes label (income bands merge; insurance lower-case)."""
    if dimension == "income":
        return _INCOME.get(label, label)
    if dimension == "insurance":
        return _INSURANCE.get(label, label)
    return label


@dataclass(frozen=True)
class Cell:
    """One measure x dimension x stratum comparison."""

    measure: str
    dimension: str
    stratum: str
    truth_denominator: int
    denominator: int
    expected_numerator: float
    variance: float
    numerator: int

    @property
    def denominator_ok(self) -> bool:
        return self.denominator == self.truth_denominator

    @property
    def interval(self) -> tuple[float, float]:
        """99 % acceptance interval for the numerator count (docs/synth.md)."""
        n, e = self.truth_denominator, self.expected_numerator
        if n == 0:
            return (0.0, 0.0)
        if n < SMALL:
            # binomial at the mean rate: its variance bounds the Poisson-binomial's, so conservative
            rate = min(1.0, max(0.0, e / n))
            return (float(binom.ppf(ALPHA / 2, n, rate)), float(binom.isf(ALPHA / 2, n, rate)))
        half = Z_99 * math.sqrt(self.variance) + 0.5
        return (e - half, e + half)

    @property
    def numerator_ok(self) -> bool:
        lo, hi = self.interval
        return lo <= self.numerator <= hi

    def describe(self) -> str:
        lo, hi = self.interval
        return (
            f"{self.measure} {self.dimension}={self.stratum}: denominator {self.denominator} "
            f"(truth {self.truth_denominator}), numerator {self.numerator} "
            f"(expected {self.expected_numerator:.1f}, 99 % [{lo:.1f}, {hi:.1f}])"
        )


def engine_counts(
    con: duckdb.DuckDBPyConnection,
    *,
    period_start: date,
    period_end: date,
    attributes: str = "patient_attributes",
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(truth key, dimension, generator stratum) -> (performance denominator, numerator) from the engine.

    The truth key is the CMS id for a measure's first group and "CMS347:Group_3" for a later one
    (:func:`truth_key`); every group is counted, those without truth are left out by :func:`compare`.

    Performance denominator = denominator - exclusions - exceptions (eCQM convention); units are the
    result rows (patients, or encounters for episode measures). Dimensions other than overall/center
    come from joining ``attributes`` on (center, patient_id).
    """
    attrs = ", ".join(f"a.{d}" for d in DIMENSIONS if d != "center")
    per_dim = "".join(
        f" UNION ALL SELECT cms, '{d}', coalesce({d}, 'Unknown'), count(*) FILTER (WHERE den),"
        f" count(*) FILTER (WHERE num) FROM r GROUP BY ALL"
        for d in DIMENSIONS
    )
    rows = con.execute(
        f"""
        WITH r AS (
          SELECT CASE WHEN r.group_id = 'Group_1' THEN split_part(r.measure, 'FHIR', 1)
                      ELSE split_part(r.measure, 'FHIR', 1) || ':' || r.group_id END AS cms,
                 r.center, {attrs},
                 r.denominator AND NOT r.denominator_exclusion AND NOT r.denominator_exception AS den,
                 r.numerator AS num
          FROM measure_results r
          LEFT JOIN {attributes} a ON a.center = r.center AND a.patient_id = r.patient_id
          WHERE r.period_start = ? AND r.period_end = ?
        )
        SELECT cms, 'overall', 'all', count(*) FILTER (WHERE den), count(*) FILTER (WHERE num)
        FROM r GROUP BY ALL {per_dim}
        """,
        [period_start, period_end],
    ).fetchall()
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for cms, dim, label, den, num in rows:
        key = (cms, dim, generator_label(dim, label))
        d0, n0 = out.get(key, (0, 0))
        out[key] = (d0 + int(den), n0 + int(num))
    return out


def compare(truth: Mapping[str, Any], counts: Mapping[tuple[str, str, str], tuple[int, int]]) -> list[Cell]:
    """Every truth cell, plus every engine cell with a denominator the truth does not have."""
    cells: list[Cell] = []
    seen: set[tuple[str, str, str]] = set()
    for measure, dims in sorted(truth.items()):
        for dim, strata in sorted(dims.items()):
            for stratum, t in sorted(strata.items()):
                key = (measure, dim, stratum)
                seen.add(key)
                den, num = counts.get(key, (0, 0))
                cells.append(
                    Cell(
                        measure,
                        dim,
                        stratum,
                        int(t["denominator"]),
                        den,
                        float(t["expected_numerator"]),
                        float(t["variance_numerator"]),
                        num,
                    )
                )
    for key, (den, num) in sorted(counts.items()):
        if key not in seen and (den or num) and key[0] in truth:
            cells.append(Cell(*key, 0, den, 0.0, 0.0, num))
    return cells


def allowed_chance_failures(n_cells: int, alpha: float = ALPHA, tail: float = 0.001) -> int:
    """How many of `n_cells` independent 99 % checks may fail by chance: the binomial (1 - tail) quantile."""
    return int(binom.isf(tail, n_cells, alpha))


def failures(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if not (c.denominator_ok and c.numerator_ok)]
