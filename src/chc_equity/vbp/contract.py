"""Value-based contracts as data (one YAML file per contract) and the incentive estimator.

The estimator is pure and exact: every amount is a :class:`fractions.Fraction` until it is shown, then
rounded half-up to the cent, so the worked example of docs/vbp.md is reproduced to the cent
(tests/test_vbp_contract.py).

Payment (docs/vbp.md, "Contracts"):

- each measure's **rate** is met / denominator over the attributed members who pass the measure's
  continuous-enrollment rule; met = in the eCQM's denominator without an open care gap (the CHW
  worklist's rule), so for an inverse eCQM such as CMS122 (HbA1c poor control) met means *not* in its
  numerator: the contract scores "HbA1c control" as payers do;
- **points** (0-100): ``tiers`` (the highest tier whose rate the measure reaches; a tier may name the
  payer's percentile it stands for) or ``linear`` (0 at ``floor``, 100 at ``goal``, in proportion between);
  a measure whose denominator is under ``min_denominator`` is not scored;
- **quality score** = weighted mean of the points of the scored measures;
- **gate**: a minimum quality score and number of scored measures; failing it forfeits the quality pool and
  shared savings (per-member bonuses are still paid);
- **quality pool** = pool PMPM x member months x quality score / 100;
- **shared savings**: savings = benchmark PMPM x member months - actual cost; paid when savings /
  benchmark >= the minimum savings rate: savings x sharing rate (x quality score / 100 when
  ``quality_adjusted``), capped at ``cap_rate`` x benchmark;
- **per-member bonuses**: an amount for each member meeting a measure.

What a gap is worth: the payment with ``k`` more members met, minus the payment now, divided by ``k``,
where ``k`` is the number of closures to the measure's next step of points (1 for a linear measure, and
when no step is left): a tiered measure two closures short of its next tier is worth half the step to
each of those two closures, not zero to the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

HUNDRED = Fraction(100)


def frac(value: float | int | str | Fraction) -> Fraction:
    """An exact fraction of a YAML number (0.6 is 3/5, not the nearest binary float)."""
    return value if isinstance(value, Fraction) else Fraction(str(value))


def money(value: Fraction) -> Decimal:
    """Rounded half-up to the cent."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Model):
    rate: float = Field(ge=0, le=1)
    points: float = Field(ge=0, le=100)
    percentile: int | None = None  # the payer's benchmark percentile this rate stands for (shown only)


class Linear(_Model):
    floor: float = Field(ge=0, le=1)
    goal: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> Linear:
        if self.goal <= self.floor:
            raise ValueError("linear: goal must be above floor")
        return self


class Enrollment(_Model):
    """HEDIS-like continuous enrollment over the measurement period, on the payer's roster."""

    allowed_gap_days: int = 45
    max_gaps: int = 1


class ContractMeasure(_Model):
    id: str
    title: str = ""
    source: str  # our eCQM (CMS id, e.g. CMS165)
    group: str = "Group_1"
    weight: float = Field(default=1, gt=0)
    continuous_enrollment: Enrollment | None = None
    min_denominator: int = 0
    tiers: list[Tier] | None = None
    linear: Linear | None = None

    @model_validator(mode="after")
    def _one_scale(self) -> ContractMeasure:
        if (self.tiers is None) == (self.linear is None):
            raise ValueError(f"measure {self.id}: give exactly one of tiers or linear")
        return self


class Gate(_Model):
    min_quality_score: float = 0
    min_measures_scored: int = 0


class QualityPool(_Model):
    pmpm: float = Field(ge=0)


class SharedSavings(_Model):
    benchmark_pmpm: float = Field(gt=0)
    minimum_savings_rate: float = Field(ge=0, le=1)
    sharing_rate: float = Field(ge=0, le=1)
    quality_adjusted: bool = True
    cap_rate: float | None = Field(default=None, ge=0)


class Bonus(_Model):
    measure: str
    amount: float = Field(ge=0)


class Contract(_Model):
    id: str
    payer: str
    title: str = ""
    period_start: date
    period_end: date
    measures: list[ContractMeasure]
    gate: Gate = Gate()
    quality_pool: QualityPool | None = None
    shared_savings: SharedSavings | None = None
    bonuses: list[Bonus] = []

    @model_validator(mode="after")
    def _check(self) -> Contract:
        ids = [m.id for m in self.measures]
        if len(set(ids)) != len(ids):
            raise ValueError("measure ids must be unique")
        unknown = [b.measure for b in self.bonuses if b.measure not in ids]
        if unknown:
            raise ValueError(f"bonus for unknown measure(s): {', '.join(unknown)}")
        if self.period_end < self.period_start:
            raise ValueError("period_end before period_start")
        return self

    def measure(self, measure_id: str) -> ContractMeasure:
        return next(m for m in self.measures if m.id == measure_id)


class ContractError(ValueError):
    """A contract file that does not load: names the file and what is wrong."""


def parse_contract(raw: Mapping[str, Any], source: str = "contract") -> Contract:
    from pydantic import ValidationError

    try:
        return Contract.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ContractError(f"{source}: {where}: {first['msg']} ({exc.error_count()} error(s))") from exc


def load_contract(path: str | Path) -> Contract:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ContractError(f"{p}: not YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"{p}: expected a mapping at the top")
    return parse_contract(raw, str(p))


# ----------------------------------------------------------------------------------- inputs and estimate
@dataclass(frozen=True, slots=True)
class Count:
    met: int
    denominator: int


@dataclass(frozen=True)
class Inputs:
    """What the estimator needs: per contract measure (met, denominator), member months, total cost."""

    counts: Mapping[str, Count]
    member_months: int
    total_cost: Fraction | None = None  # None: no claims, no shared-savings estimate

    def closing(self, measure_id: str, k: int) -> Inputs:
        c = self.counts[measure_id]
        counts = dict(self.counts)
        counts[measure_id] = Count(min(c.met + k, c.denominator), c.denominator)
        return replace(self, counts=counts)


@dataclass(frozen=True, slots=True)
class MeasureScore:
    id: str
    met: int
    denominator: int
    weight: Fraction
    rate: Fraction | None
    points: Fraction | None  # None: not scored (denominator under the minimum)


@dataclass(frozen=True)
class Estimate:
    measures: list[MeasureScore]
    quality_score: Fraction
    gate_passed: bool
    gate_reason: str
    quality_pool: Fraction
    benchmark: Fraction | None
    savings: Fraction | None
    savings_rate: Fraction | None
    shared_savings: Fraction
    bonuses: Fraction
    lines: dict[str, Fraction] = field(default_factory=dict)

    @property
    def total(self) -> Fraction:
        return self.quality_pool + self.shared_savings + self.bonuses


def points(m: ContractMeasure, rate: Fraction) -> Fraction:
    if m.linear is not None:
        lo, hi = frac(m.linear.floor), frac(m.linear.goal)
        return HUNDRED * min(max((rate - lo) / (hi - lo), Fraction(0)), Fraction(1))
    reached = [frac(t.points) for t in m.tiers or [] if rate >= frac(t.rate)]
    return max(reached, default=Fraction(0))


def score(m: ContractMeasure, c: Count) -> MeasureScore:
    if c.denominator == 0 or c.denominator < m.min_denominator:
        rate = Fraction(c.met, c.denominator) if c.denominator else None
        return MeasureScore(m.id, c.met, c.denominator, frac(m.weight), rate, None)
    rate = Fraction(c.met, c.denominator)
    return MeasureScore(m.id, c.met, c.denominator, frac(m.weight), rate, points(m, rate))


def estimate(contract: Contract, inputs: Inputs) -> Estimate:
    """The projected payment of ``contract`` on ``inputs`` (exact fractions; :func:`money` to show)."""
    scores = [score(m, inputs.counts.get(m.id, Count(0, 0))) for m in contract.measures]
    scored = [s for s in scores if s.points is not None]
    weights = sum((s.weight for s in scored), Fraction(0))
    quality = sum((s.weight * s.points for s in scored), Fraction(0)) / weights if weights else Fraction(0)
    gate = contract.gate
    reasons = []
    if quality < frac(gate.min_quality_score):
        reasons.append(f"quality score under {gate.min_quality_score}")
    if len(scored) < gate.min_measures_scored:
        reasons.append(f"fewer than {gate.min_measures_scored} measures scored")
    passed = not reasons
    mm = Fraction(inputs.member_months)
    pool = Fraction(0)
    if contract.quality_pool and passed:
        pool = frac(contract.quality_pool.pmpm) * mm * quality / HUNDRED
    bench = savings = rate = None
    shared = Fraction(0)
    ss = contract.shared_savings
    if ss and inputs.total_cost is not None and mm:
        bench = frac(ss.benchmark_pmpm) * mm
        savings = bench - inputs.total_cost
        rate = savings / bench
        if passed and rate >= frac(ss.minimum_savings_rate) and savings > 0:
            shared = savings * frac(ss.sharing_rate) * (quality / HUNDRED if ss.quality_adjusted else 1)
            if ss.cap_rate is not None:
                shared = min(shared, frac(ss.cap_rate) * bench)
    bonus = sum(
        (frac(b.amount) * inputs.counts.get(b.measure, Count(0, 0)).met for b in contract.bonuses),
        Fraction(0),
    )
    return Estimate(scores, quality, passed, "; ".join(reasons), pool, bench, savings, rate, shared, bonus)


@dataclass(frozen=True, slots=True)
class GapValue:
    """What closing gaps of one measure is worth now."""

    measure: str
    open_gaps: int
    next_gap: Fraction  # payment with one more member met, minus the payment now
    to_next_step: int  # closures to the next step of points (1 for linear / no step left)
    per_gap: Fraction  # (payment with to_next_step more met - payment now) / to_next_step


def gap_values(contract: Contract, inputs: Inputs) -> list[GapValue]:
    now = estimate(contract, inputs).total
    out = []
    for m in contract.measures:
        c = inputs.counts.get(m.id, Count(0, 0))
        room = c.denominator - c.met
        if room <= 0:
            out.append(GapValue(m.id, 0, Fraction(0), 0, Fraction(0)))
            continue
        one = estimate(contract, inputs.closing(m.id, 1)).total - now
        base = score(m, c).points
        k = 1
        if m.tiers is not None and base is not None:
            k = next(
                (j for j in range(1, room + 1) if score(m, Count(c.met + j, c.denominator)).points > base), 1
            )
        per = (estimate(contract, inputs.closing(m.id, k)).total - now) / k
        out.append(GapValue(m.id, room, one, k, per))
    return out


def patient_values(
    contract: Contract, inputs: Inputs, open_gaps: Mapping[str, list[str]]
) -> list[tuple[str, Fraction, list[str]]]:
    """(patient, worth, contract measures open) for patients with open contract gaps, worth first; the
    worth of a patient is the sum of :attr:`GapValue.per_gap` of their open measures."""
    per = {g.measure: g.per_gap for g in gap_values(contract, inputs)}
    rows = []
    for pid, measures in open_gaps.items():
        ms = sorted({m for m in measures if m in per})
        if ms:
            rows.append((pid, sum((per[m] for m in ms), Fraction(0)), ms))
    return sorted(rows, key=lambda r: (-r[1], r[0]))
